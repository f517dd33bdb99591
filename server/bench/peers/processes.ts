// The peers' servers as processes: started as their docs start them, each with every process it forks
// counted for CPU and memory (uvicorn workers, MLServer's inference pool), and stopped as a whole tree.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, readdirSync, readFileSync } from 'node:fs';

/** A process and every descendant it has now. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // Fields after the parenthesised command name: state, ppid, ...
      const ppid = Number(readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // gone between readdir and read
    }
  }
  const out: number[] = [];
  const visit = (p: number) => {
    out.push(p);
    for (const c of children.get(p) ?? []) visit(c);
  };
  visit(pid);
  return out;
}

/** User + system CPU seconds of a process tree (processes that already exited are not counted). */
export function treeCpuSeconds(pid: number): number {
  let total = 0;
  for (const p of processTree(pid)) {
    try {
      const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      // exited
    }
  }
  return total;
}

/** Resident memory of a process tree, MB: now, and the sum of each process's peak. */
export function treeMemoryMb(pid: number): { rssMb: number; peakRssMb: number } {
  let rss = 0;
  let peak = 0;
  for (const p of processTree(pid)) {
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      rss += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      peak += Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
    } catch {
      // exited
    }
  }
  return { rssMb: rss / 1024, peakRssMb: peak / 1024 };
}

/** SIGKILL to a process and every descendant it has now. */
export function killTree(pid: number): void {
  for (const p of processTree(pid)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

export interface PeerServer {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Start `command` with its output in `logPath`, and wait until GET `readyUrl` answers 200. */
export async function startPeer(
  command: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string>; logPath: string; url: string; readyPath: string },
): Promise<PeerServer> {
  const log = openSync(options.logPath, 'a');
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', log, log],
  });
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(
        `${command} ${args.join(' ')} exited (${child.exitCode}): ${readFileSync(options.logPath, 'utf8').slice(-3000)}`,
      );
    // A timeout on each probe: a port taken by another process may accept and never answer.
    if (
      (await fetch(options.url + options.readyPath, { signal: AbortSignal.timeout(2000) }).then(
        (r) => r.status,
        () => 0,
      )) === 200
    )
      break;
    if (Date.now() > deadline) {
      killTree(child.pid!);
      throw new Error(`${command} not ready after 180 s: ${readFileSync(options.logPath, 'utf8').slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    url: options.url,
    child,
    stop: async () => {
      // SIGTERM to every process of the tree (uvicorn waits for its grace period, MLServer for its pool), then SIGKILL.
      const tree = processTree(child.pid!);
      const exited = new Promise((resolve) =>
        child.exitCode !== null ? resolve(undefined) : child.once('exit', resolve),
      );
      for (const p of tree)
        try {
          process.kill(p, 'SIGTERM');
        } catch {
          /* gone */
        }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      for (const p of tree)
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* gone */
        }
    },
  };
}
