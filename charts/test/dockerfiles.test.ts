// Dockerfile.operator, Dockerfile.server and Dockerfile.trainer, checked without a Docker engine: their shape
// (multi-stage, production dependencies only, non-root, onnxruntime-node-install=skip honoured), that what they
// prune is never imported, and — running each build stage's own COPY/RUN lines — that the assembled image
// content starts: the predictor serves a real ONNX model, the operator answers its probes against the real API server.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { load } from 'js-yaml';
import { CHART, ROOT, deleteNamespace, kubectl, requireKubeconfig, uniqueNamespace } from './support/chart.ts';
import { assembleRuntime, makeWritable, readDockerfile, runBuildStage, type Stage } from './support/dockerfile.ts';
import { freePort } from '../../test/support/local.ts';
import { inferenceLogPart, labelCsv } from '../../test/support/ground-truth.ts';

// The operator ships as esbuild bundles (the operator, and the quality evaluator its `evaluate` command loads; no
// node_modules in the image but DuckDB's native bindings, which the evaluator loads); the predictor and the trainer with their production dependencies
// (onnxruntime-node's native library cannot be bundled).
const IMAGES = [
  { file: 'Dockerfile.operator', entry: 'operator/main.ts', bundled: true },
  { file: 'Dockerfile.server', entry: 'server/src/main.ts', bundled: false },
  { file: 'Dockerfile.trainer', entry: 'examples/trainer/src/main.ts', bundled: false },
];
const values = load(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as any;

const args = (stage: Stage, op: string) => stage.instructions.filter((i) => i.op === op).map((i) => i.args);

/** Every file `entry` reaches through relative imports, with the packages each imports. */
function importGraph(entry: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const visit = (path: string) => {
    if (graph.has(path)) return;
    const source = readFileSync(path, 'utf8');
    const specifiers = [...source.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]/g)].map(
      (m) => m[1],
    );
    graph.set(
      path,
      specifiers
        .filter((s) => !s.startsWith('.') && !s.startsWith('node:'))
        .map((s) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0])),
    );
    for (const s of specifiers) if (s.startsWith('.')) visit(resolve(dirname(path), s));
  };
  visit(join(ROOT, entry));
  return graph;
}

for (const { file, entry, bundled } of IMAGES) {
  test(`${file}: multi-stage; npm ci runs no install scripts; runtime is Node 24, ${bundled ? 'one bundle, no node_modules' : 'production deps only'}, non-root`, () => {
    const { stages } = readDockerfile(file);
    assert.ok(
      stages.length >= (bundled ? 2 : 3),
      bundled ? 'build and runtime stages' : 'build, deps and runtime stages',
    );
    const final = stages.at(-1)!;
    assert.match(final.from, /^(gcr\.io\/distroless\/nodejs24-debian12(:nonroot)?|node:24-slim)$/);
    assert.equal(args(final, 'USER'), ['65532:65532']);
    assert.is(values.operator.runAsUser, 65532, 'the chart runs the operator as the image user');
    assert.not.ok(args(final, 'RUN').length, 'nothing is run in the runtime stage (distroless has no shell)');
    for (const stage of stages) {
      const copiesBefore = (index: number) =>
        stage.instructions
          .slice(0, index)
          .filter((i) => i.op === 'COPY')
          .map((i) => i.args)
          .join(' ');
      stage.instructions.forEach((instruction, index) => {
        if (instruction.op === 'RUN' && /\bnpm (ci|uninstall)\b/.test(instruction.args)) {
          for (const step of instruction.args.split('&&').filter((s) => /\bnpm (ci|uninstall)\b/.test(s))) {
            assert.match(
              step,
              /--ignore-scripts/,
              `${stage.name}: "${step.trim()}" would run install scripts (onnxruntime-node's fetches CUDA binaries)`,
            );
          }
          assert.match(copiesBefore(index), /\.npmrc/, `${stage.name}: .npmrc must be in place before npm ci`);
          assert.match(copiesBefore(index), /package-lock\.json/, `${stage.name}: npm ci needs the lock file`);
        }
      });
    }
    const modules = args(final, 'COPY').find((a) => / \/src\/node_modules /.test(a));
    if (bundled) {
      assert.not.ok(modules, 'a bundle needs no node_modules');
      const runs = stages.flatMap((s) => args(s, 'RUN')).join(' ');
      assert.match(runs, /scripts\/bundle-operator\.ts operator\/main\.ts dist\/operator\/main\.js/);
      assert.match(
        runs,
        /scripts\/bundle-operator\.ts operator\/quality\/evaluate\.ts dist\/operator\/evaluate\.js/,
        'the evaluator that operator/main.js evaluate loads',
      );
    } else {
      assert.ok(modules, 'node_modules copied from a deps stage');
      const deps = stages.find((s) => s.name === /--from=(\S+)/.exec(modules!)![1])!;
      assert.match(args(deps, 'RUN').join(' '), /npm ci --omit=dev/);
    }
    const entrypoint = JSON.parse(args(final, 'ENTRYPOINT')[0]!);
    assert.equal(entrypoint, ['/nodejs/bin/node', entry.replace(/\.ts$/, '.js')]);
    assert.ok(existsSync(join(ROOT, entry)), `${entry} missing`);
  });

  if (!bundled)
    test(`${file}: no file the image runs imports a package the Dockerfile uninstalls`, () => {
      const { stages } = readDockerfile(file);
      const uninstalled = stages
        .flatMap((s) => args(s, 'RUN'))
        .flatMap((r) => [...r.matchAll(/npm uninstall ((?:--\S+ )*)([^&]+)/g)].flatMap((m) => m[2].trim().split(' ')));
      assert.ok(uninstalled.length > 0);
      const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
      for (const name of uninstalled) assert.ok(name in pkg.dependencies, `${name} is not a dependency`);
      const offending = [...importGraph(entry)].flatMap(([path, packages]) =>
        packages.filter((p) => uninstalled.includes(p)).map((p) => `${path} imports ${p}`),
      );
      assert.equal(offending, []);
    });
}

test('.dockerignore keeps node_modules, tests and the git history out of the build context', () => {
  const patterns = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim());
  for (const p of ['**/node_modules', '.git', '**/test']) assert.ok(patterns.includes(p), p);
});

// --- the build stages run for real ---

async function until(
  what: string,
  check: () => Promise<boolean>,
  child: ChildProcess,
  output: () => string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what}: the process exited (${child.exitCode}):\n${output()}`);
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: timed out:\n${output()}`);
}

/** Runs the Dockerfile's build stage and assembles the runtime files in a scratch directory (read-only, like the image). */
function buildImageContent(file: string, scratch: string): string {
  const { stages } = readDockerfile(file);
  const final = stages.at(-1)!;
  const buildName = /--from=(\S+) \/src\/dist/.exec(args(final, 'COPY').join('\n'))![1];
  const build = stages.find((s) => s.name === buildName)!;
  const buildDir = runBuildStage(build, join(scratch, 'build'));
  return assembleRuntime(final, buildName, buildDir, join(scratch, 'image'));
}

function start(
  app: string,
  script: string,
  argv: string[],
  env: Record<string, string>,
): { child: ChildProcess; output: () => string } {
  let output = '';
  const child = spawn(process.execPath, [script, ...argv], {
    cwd: app,
    env: { PATH: process.env.PATH!, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  return { child, output: () => output.slice(-4000) };
}

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

test("Dockerfile.server's build output, read-only, serves a real ONNX model with drift monitoring on", async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'loopline-image-server-'));
  let server: ChildProcess | undefined;
  try {
    const app = buildImageContent('Dockerfile.server', scratch);
    assert.ok(
      existsSync(join(app, 'operator/api/reference-profile.schema.json')),
      'the profile schema the drift monitor reads',
    );
    assert.ok(
      existsSync(join(app, 'server/src/protocol/grpc_predict_v2.proto')),
      'the gRPC service definition the server loads',
    );
    // A model from the example trainer (real ONNX, real reference profile).
    const model = join(scratch, 'model');
    const trained = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'examples/trainer/src/main.ts')], {
      cwd: ROOT,
      encoding: 'utf8',
      env: {
        ...process.env,
        LOOPLINE_OUTPUT_URI: `file://${model}`,
        LOOPLINE_RESULT_PATH: join(scratch, 'result.json'),
        HP_ROWS: '400',
        HP_EPOCHS: '20',
      },
    });
    assert.is(trained.status, 0, trained.stderr);
    const result = JSON.parse(readFileSync(join(scratch, 'result.json'), 'utf8'));
    const port = await freePort();
    const started = start(app, 'server/src/main.js', [], {
      PORT: String(port),
      GRPC_PORT: String(await freePort()),
      HOST: '127.0.0.1',
      MODEL_NAME: 'credit-risk',
      MODEL_VERSION: '1',
      MODEL_URI: result.artifact.uri,
      MODEL_DIGEST: result.artifact.digest,
      REFERENCE_PROFILE_URI: result.referenceProfile.uri,
      REFERENCE_PROFILE_DIGEST: result.referenceProfile.digest,
    });
    server = started.child;
    const base = `http://127.0.0.1:${port}`;
    await until('predictor ready', async () => (await fetch(`${base}/v2/health/ready`)).ok, server, started.output);
    const response = await fetch(`${base}/v2/models/credit-risk/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 5], data: result.inputExample[0] }],
      }),
    });
    assert.is(response.status, 200, `${await response.clone().text()}\n${started.output()}`);
    const answer = (await response.json()) as { outputs: Array<{ name: string; data: number[] }> };
    assert.is(answer.outputs[0].name, 'probability');
    assert.ok(answer.outputs[0].data[0] > 0 && answer.outputs[0].data[0] < 1);
    assert.match(
      await (await fetch(`${base}/metrics`)).text(),
      /prediction_requests_total\{[^}]*outcome="success"[^}]*\} 1/,
    );
    assert.is(await stop(server), 0, started.output());
  } finally {
    if (server) await stop(server);
    makeWritable(scratch);
    rmSync(scratch, { recursive: true, force: true });
  }
});

test("Dockerfile.operator's build output, read-only, runs the operator: probes and metrics against the real API server, clean SIGTERM", async () => {
  requireKubeconfig();
  const scratch = mkdtempSync(join(tmpdir(), 'loopline-image-operator-'));
  const namespace = uniqueNamespace('chart-image');
  let operator: ChildProcess | undefined;
  try {
    const app = buildImageContent('Dockerfile.operator', scratch);
    assert.ok(existsSync(join(app, 'operator/main.js')), 'the bundle');
    assert.equal(
      readdirSync(join(app, 'node_modules')),
      ['@duckdb'],
      'nothing but the bundles and DuckDB: a module they failed to include would fail below',
    );
    // The evaluator, as the quality CronJob runs the image, on ground-truth files: DuckDB fetches nothing at run time.
    const groundTruth = join(scratch, 'ground-truth');
    for (const file of [
      inferenceLogPart(
        'risk',
        'fraud',
        [0.9, 0.2, 0.7, 0.4].map((score, j) => ({
          requestId: `r${j}`,
          time: Date.now() - 1000,
          model: 'fraud',
          version: 1,
          score,
        })),
      ),
      labelCsv(
        'risk',
        'fraud',
        [1, 0, 0, 0].map((label, j) => ({ requestId: `r${j}`, label })),
        'bulk',
      ),
    ]) {
      mkdirSync(dirname(join(groundTruth, file.key)), { recursive: true });
      writeFileSync(join(groundTruth, file.key), file.body);
    }
    const evaluated = spawnSync(
      process.execPath,
      ['operator/main.js', 'evaluate', '--namespace', 'risk', '--service', 'fraud', '--uri', `file://${groundTruth}`],
      { cwd: app, encoding: 'utf8', env: { PATH: process.env.PATH!, HOME: join(scratch, 'home') } },
    );
    assert.is(evaluated.status, 0, evaluated.stdout + evaluated.stderr);
    const quality = JSON.parse(evaluated.stdout).versions[0];
    assert.equal([quality.version, quality.count, quality.accuracy, quality.auc], [1, 4, 0.75, 1]);
    assert.not.ok(existsSync(join(scratch, 'home/.duckdb')), 'no DuckDB extension directory made');
    kubectl(['create', 'namespace', namespace]);
    kubectl([
      'apply',
      '--server-side',
      '--force-conflicts',
      '--field-manager=loopline-crds',
      '-f',
      join(CHART, 'crds'),
    ]);
    const port = await freePort();
    // The chart's arguments, confined to one namespace so it leaves other suites' objects alone.
    const started = start(
      app,
      'operator/main.js',
      [`--http-port=${port}`, '--lease-name=image-test', `--namespace=${namespace}`],
      {
        KUBECONFIG: process.env.KUBECONFIG!,
        POD_NAMESPACE: namespace,
        LOG_LEVEL: 'info',
      },
    );
    operator = started.child;
    const base = `http://127.0.0.1:${port}`;
    await until('operator /readyz', async () => (await fetch(`${base}/readyz`)).ok, operator, started.output);
    assert.ok((await fetch(`${base}/healthz`)).ok);
    await until(
      'leader',
      async () => /loopline_leader 1/.test(await (await fetch(`${base}/metrics`)).text()),
      operator,
      started.output,
    );
    assert.is(
      kubectl(['get', 'lease', 'image-test', '-n', namespace, '-o', 'jsonpath={.spec.holderIdentity}']).length > 0,
      true,
    );
    assert.is(await stop(operator), 0, started.output());
  } finally {
    if (operator) await stop(operator);
    deleteNamespace(namespace);
    makeWritable(scratch);
    rmSync(scratch, { recursive: true, force: true });
  }
});

test.run();
