// Runs the trainer as the pod image does: a separate process configured by environment, plain JavaScript under
// plain node.
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Ajv } from 'ajv';
import { buildSync } from 'esbuild';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const mainScript = join(repoRoot, 'examples/trainer/src/main.ts');

let compiled: string | undefined;
/**
 * The trainer compiled to JavaScript once per test process, as Dockerfile.trainer compiles it, so each run is a
 * plain `node main.mjs` (through tsx every run would transpile the trainer and resolve its dependencies anew,
 * about a second each). Written inside node_modules so that it resolves the project's dependencies, at the depth
 * of the source so that the schemas copied beside it are found where result.ts looks for them.
 */
function compiledTrainer(): string {
  if (compiled) return compiled;
  const cache = join(repoRoot, 'node_modules/.cache');
  mkdirSync(cache, { recursive: true });
  const dir = mkdtempSync(join(cache, 'loopline-trainer-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const outfile = join(dir, 'examples/trainer/src/main.mjs');
  buildSync({
    entryPoints: [mainScript],
    outfile,
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node24',
    logLevel: 'error',
  });
  for (const schema of ['training-result.schema.json', 'reference-profile.schema.json']) {
    const target = join(dir, 'operator/api', schema);
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(join(repoRoot, 'operator/api', schema), target);
  }
  compiled = outfile;
  return outfile;
}

export interface TrainerRun {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
  dir: string;
  outputDir: string;
  resultPath: string;
  /** The termination message as written, or undefined when the trainer wrote none. */
  resultText?: string;
  lastStdoutLine: string;
}

/** Runs one trainer process in a fresh temporary directory; env adds to a clean base environment. */
export function runTrainer(env: Record<string, string> = {}): Promise<TrainerRun> {
  const dir = mkdtempSync(join(tmpdir(), 'loopline-trainer-'));
  const outputDir = join(dir, 'out');
  const resultPath = join(dir, 'termination-log');
  const script = compiledTrainer();
  const started = performance.now();
  const fullEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? dir,
    LOOPLINE_OUTPUT_URI: pathToFileURL(outputDir).href,
    LOOPLINE_RESULT_PATH: resultPath,
    ...env,
  };
  return new Promise((resolve) => {
    execFile(process.execPath, [script], { cwd: repoRoot, env: fullEnv, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      const lines = stdout.trim().split('\n');
      resolve({
        code,
        stdout,
        stderr,
        seconds: (performance.now() - started) / 1000,
        dir,
        outputDir,
        resultPath,
        resultText: existsSync(resultPath) ? readFileSync(resultPath, 'utf8') : undefined,
        lastStdoutLine: lines[lines.length - 1] ?? '',
      });
    });
  });
}

function schemaValidator(name: string) {
  const schema = JSON.parse(readFileSync(join(repoRoot, 'operator/api', name), 'utf8'));
  const ajv = new Ajv({ allErrors: true, allowUnionTypes: true });
  const validate = ajv.compile(schema);
  return (value: unknown): string | undefined => (validate(value) ? undefined : ajv.errorsText(validate.errors));
}

/** Schema errors as text, or undefined when valid. */
export const resultSchemaErrors = schemaValidator('training-result.schema.json');
export const profileSchemaErrors = schemaValidator('reference-profile.schema.json');

/** The JSON log lines of a run (everything on stdout that parses and carries a msg). */
export function logLines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .trim()
    .split('\n')
    .flatMap((line) => {
      try {
        const entry = JSON.parse(line);
        return typeof entry === 'object' && entry !== null && 'msg' in entry ? [entry] : [];
      } catch {
        return [];
      }
    });
}
