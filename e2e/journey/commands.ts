/**
 * kubectl, helm and friends as a user types them, run asynchronously (the journey's traffic and NATS
 * subscription keep running meanwhile). KUBECONFIG and PATH come from `bash e2e/cluster/cluster.sh env`.
 */
import { spawn } from 'node:child_process';

export interface CommandResult {
  command: string;
  code: number;
  stdout: string;
  stderr: string;
}

export class CommandError extends Error {
  constructor(readonly result: CommandResult) {
    super(`\`${result.command}\` exited ${result.code}: ${(result.stderr || result.stdout).trim().slice(0, 2000)}`);
  }
}

export interface RunOptions {
  input?: string;
  env?: Record<string, string | undefined>;
  cwd?: string;
  timeoutMs?: number;
}

export function run(file: string, args: string[], options: RunOptions = {}): Promise<CommandResult> {
  const command = [file, ...args]
    .map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ command, code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Runs and insists on exit 0. */
export async function must(file: string, args: string[], options: RunOptions = {}): Promise<CommandResult> {
  const result = await run(file, args, options);
  if (result.code !== 0) throw new CommandError(result);
  return result;
}

export const kubectl = (args: string[], options: RunOptions = {}) => must('kubectl', args, options);
export const helm = (args: string[], options: RunOptions = {}) => must('helm', args, options);

/** `kubectl get ... -o json`, parsed; undefined when the object does not exist. */
export async function getJson<T = any>(args: string[], options: RunOptions = {}): Promise<T | undefined> {
  const result = await run('kubectl', ['get', ...args, '-o', 'json'], options);
  if (result.code !== 0) {
    if (/NotFound|not found/.test(result.stderr)) return undefined;
    throw new CommandError(result);
  }
  return JSON.parse(result.stdout) as T;
}

/** Thrown by a `waitFor` probe when waiting longer cannot help (a job failed, a canary was rolled back). */
export class Fatal extends Error {}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Polls `probe` until it returns a value (not undefined/false/null). `progress` is called with what the last
 * probe saw whenever that changes, so long waits show what they are waiting on.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false | null>,
  options: {
    timeoutMs: number;
    intervalMs?: number;
    describe?: () => string | undefined;
    progress?: (line: string) => void;
  },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError: unknown;
  let lastLine: string | undefined;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false && value !== null) return value as T;
      lastError = undefined;
    } catch (error) {
      if (error instanceof Fatal) throw error;
      lastError = error;
    }
    const line = options.describe?.();
    if (line && line !== lastLine) {
      options.progress?.(line);
      lastLine = line;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${Math.round(options.timeoutMs / 1000)} s waiting for ${what}${lastLine ? ` (last seen: ${lastLine})` : ''}${lastError ? `: ${(lastError as Error).message}` : ''}`,
      );
    }
    await sleep(options.intervalMs ?? 500);
  }
}
