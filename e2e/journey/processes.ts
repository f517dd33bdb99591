/**
 * Long-running local processes of the journey (operator, local-kubelet): each in its own process group,
 * output to `<dir>/<name>.log`, pid in `<dir>/<name>.pid`, so `bash e2e/demo.sh stop` finds them later.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from './commands.ts';

export interface Background {
  name: string;
  pid: number;
  log: string;
  /** Resolves with the exit code when the process ends (only for processes this process started). */
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

/** SIGTERM to the process group, SIGKILL after `graceMs`. */
export async function stopPid(pid: number, graceMs = 10_000): Promise<void> {
  if (!alive(pid)) return;
  signalGroup(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await sleep(100);
  if (alive(pid)) signalGroup(pid, 'SIGKILL');
  while (alive(pid)) await sleep(50);
}

/** Stops what `<dir>/<name>.pid` names, if it still runs. */
export async function stopByPidFile(dir: string, name: string): Promise<boolean> {
  const file = join(dir, `${name}.pid`);
  if (!existsSync(file)) return false;
  const pid = Number(readFileSync(file, 'utf8').trim());
  const wasAlive = pid > 0 && alive(pid);
  if (wasAlive) await stopPid(pid);
  rmSync(file, { force: true });
  return wasAlive;
}

export interface StartOptions {
  dir: string;
  env: Record<string, string | undefined>;
  cwd: string;
  /** Keep running after this process exits (the demo); otherwise it is stopped with this process. */
  detached?: boolean;
}

export async function startBackground(name: string, argv: string[], options: StartOptions): Promise<Background> {
  mkdirSync(options.dir, { recursive: true });
  await stopByPidFile(options.dir, name);
  const log = join(options.dir, `${name}.log`);
  const out = openSync(log, 'w');
  let child;
  try {
    child = spawn(argv[0]!, argv.slice(1), {
      cwd: options.cwd,
      env: options.env as NodeJS.ProcessEnv,
      stdio: ['ignore', out, out],
      detached: true,
    });
  } finally {
    closeSync(out);
  }
  const pid = child.pid!;
  writeFileSync(join(options.dir, `${name}.pid`), `${pid}\n`);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  if (options.detached) {
    child.unref();
  } else {
    // A test that dies must not leave its operator behind.
    const kill = () => signalGroup(pid, 'SIGKILL');
    process.once('exit', kill);
    void exited.then(() => process.off('exit', kill));
  }
  return {
    name,
    pid,
    log,
    exited,
    async stop() {
      await stopPid(pid);
      rmSync(join(options.dir, `${name}.pid`), { force: true });
    },
  };
}

/** The last lines of a log, for error messages. */
export function tail(file: string, lines = 20): string {
  if (!existsSync(file)) return '';
  return readFileSync(file, 'utf8')
    .split('\n')
    .slice(-lines - 1)
    .join('\n');
}
