// The predictor as its image runs it: server/src/main.ts in a child process of its own, configured only by the
// environment given (and PATH and HOME), as the operator's pod spec configures it, with its output kept for
// assertion messages and stopped by signal as a kubelet stops it.
import { type ChildProcess, spawn } from 'node:child_process';
import { freePort } from '../../../test/support/local.ts';

export interface PredictorProcess {
  child: ChildProcess;
  url: string;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  /** SIGTERM, as the kubelet sends it; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Starts main.ts on a free port (GRPC_PORT off unless `env` gives one), one worker and info logs unless told. */
export async function spawnPredictor(env: Record<string, string>): Promise<PredictorProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [...process.execArgv, 'server/src/main.ts'], {
    cwd: new URL('../../..', import.meta.url).pathname,
    env: {
      PATH: process.env.PATH!,
      HOME: process.env.HOME!,
      PORT: String(port),
      GRPC_PORT: 'off',
      WORKERS: '1',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    output: () => output,
    exited,
    stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Waits until /v2/health/ready answers 200 (and `also`, when given, holds); throws with the output if not. */
export async function waitReady(
  predictor: PredictorProcess,
  timeoutMs = 60_000,
  also: () => Promise<boolean> = async () => true,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ready = await fetch(`${predictor.url}/v2/health/ready`).then(
      (r) => r.status,
      () => 0,
    );
    if (ready === 200 && (await also())) return;
    if (Date.now() > deadline)
      throw new Error(`the predictor did not get ready in ${timeoutMs / 1000} s:\n${predictor.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
