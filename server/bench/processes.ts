// The predictor processes the benchmarks start: compiled as Dockerfile.server compiles them and run with
// plain node, each on its own HTTP and gRPC ports.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../test/support/local.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface Server {
  url: string;
  grpcPort: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

async function waitReady(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited: ${output()}`);
    const status = await fetch(url).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200 || status === 404) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server not ready: ${output()}`);
}

/**
 * The servers run as Dockerfile.server ships them: compiled by tsc and started with plain node (through tsx,
 * every function expression also costs a keep-names call, which is not what runs in the image). Emitted
 * inside node_modules so the compiled files resolve the project's dependencies and its "type": "module".
 */
export const compiled = join(root, 'node_modules/.cache/loopline-bench-server-dist');
export function compileLikeDockerfileServer(): void {
  rmSync(compiled, { recursive: true, force: true });
  const tsc = spawnSync(
    process.execPath,
    [
      join(root, 'node_modules/typescript/bin/tsc'),
      '-p',
      'tsconfig.json',
      '--noEmit',
      'false',
      '--outDir',
      compiled,
      '--rootDir',
      '.',
      '--rewriteRelativeImportExtensions',
    ],
    { cwd: root, encoding: 'utf8' },
  );
  const main = join(compiled, 'server/src/main.js');
  if (!existsSync(main)) throw new Error(`tsc emitted no ${main}: ${tsc.stdout}${tsc.stderr}`);
  // Files the image copies beside the emitted code: the drift monitor's profile schema, the gRPC service.
  cpSync(
    join(root, 'operator/api/reference-profile.schema.json'),
    join(compiled, 'operator/api/reference-profile.schema.json'),
  );
  cpSync(
    join(root, 'server/src/protocol/grpc_predict_v2.proto'),
    join(compiled, 'server/src/protocol/grpc_predict_v2.proto'),
  );
}

/** Start `script` (a .ts path; its compiled .js runs) and wait until `readyPath` answers. */
export async function startCompiled(
  script: string,
  env: Record<string, string>,
  readyPath: string,
  options: { nodeFlags?: string[]; node?: string; nodeOptions: string },
): Promise<Server> {
  // Ports the kernel says are free now, not a guess: a guessed one collided with another process's socket.
  const [port, grpcPort] = [await freePort(), await freePort()];
  const child = spawn(
    options.node ?? process.execPath,
    [...(options.nodeFlags ?? []), join(compiled, script.replace(/\.ts$/, '.js'))],
    {
      cwd: root,
      env: {
        ...process.env,
        ...env,
        PORT: String(port),
        GRPC_PORT: String(grpcPort),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        NATS_URL: '',
        NODE_OPTIONS: options.nodeOptions,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url + readyPath, child, () => output);
  return {
    url,
    grpcPort,
    child,
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The result server/bench/load.ts prints: one load run against one URL. */
export interface Load {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** Requests of the untimed warm-up second before the timed run (see load.ts). */
  warmupRequests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

/**
 * Runs a load generator (a script of this folder) in its own process, so it does not share the bench's event loop,
 * and resolves with the JSON it prints.
 */
export function runLoadGenerator<T>(script: string, args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.once('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out) as T) : reject(new Error(`load generator failed: ${err}`)),
    );
  });
}

/** server/bench/load.ts on one URL; with `host`, every request carries it as its Host header (a gateway routes on it). */
export function load(url: string, connections: number, seconds: number, body: string, host?: string): Promise<Load> {
  return runLoadGenerator<Load>('server/bench/load.ts', [
    url,
    String(connections),
    String(seconds),
    body,
    ...(host ? [host] : []),
  ]);
}
