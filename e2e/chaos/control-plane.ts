/**
 * Faults of the local cluster's control plane (kwokctl's binary runtime, e2e/cluster/cluster.sh): the
 * kube-apiserver process stopped and started again with the same command line, and etcd compacted to its
 * current revision so that every watch older than that is answered 410 Gone.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from '../../test/support/local.ts';

export interface ApiServerProcess {
  pid: number;
  argv: string[];
  env: Record<string, string>;
  cwd: string;
}

function clusterName(): string {
  return process.env.LOOPLINE_CLUSTER ?? 'loopline-test';
}

function clusterDir(): string {
  const cache = process.env.LOOPLINE_CACHE ?? join(process.env.HOME ?? '/root', '.cache/loopline');
  return join(cache, 'kwok/clusters', clusterName());
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

/** This cluster's kube-apiserver: the process of that name whose arguments point into the cluster's directory. */
export function findApiServer(): ApiServerProcess {
  const dir = `${clusterDir()}/`;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean);
    } catch {
      continue;
    }
    if (!argv[0]?.endsWith('/kube-apiserver') || !argv.some((a) => a.includes(dir))) continue;
    const env = Object.fromEntries(
      readFileSync(`/proc/${entry}/environ`, 'utf8')
        .split('\0')
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
    return { pid: Number(entry), argv, env, cwd: readlinkSync(`/proc/${entry}/cwd`) };
  }
  throw new Error(
    `no kube-apiserver of cluster ${clusterName()} (arguments under ${dir}) is running: bash e2e/cluster/cluster.sh up`,
  );
}

/** The API server's secure port, from its --secure-port argument. */
function securePort(server: ApiServerProcess): number {
  const arg = server.argv.find((a) => a.startsWith('--secure-port='));
  if (!arg) throw new Error('kube-apiserver has no --secure-port argument');
  return Number(arg.split('=')[1]);
}

/** The etcd client URL the API server uses (its first --etcd-servers). */
export function etcdUrl(server = findApiServer()): string {
  const arg = server.argv.find((a) => a.startsWith('--etcd-servers='));
  if (!arg) throw new Error('kube-apiserver has no --etcd-servers argument');
  return arg.split('=')[1]!.split(',')[0]!;
}

async function apiServerReady(port: number): Promise<boolean> {
  // /readyz is readable without credentials (system:public-info-viewer); a self-signed certificate, on loopback.
  const { request } = await import('node:https');
  return await new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/readyz', rejectUnauthorized: false, timeout: 1000 },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

export interface Restart {
  /** When the old process was told to stop, and when the new one answered /readyz. */
  stoppedAt: number;
  readyAt: number;
}

/**
 * Stops this cluster's kube-apiserver (SIGTERM, as a rolling restart does, SIGKILL after 10 s; or the signal
 * given), keeps it down
 * for `downMs`, then starts it again with the same arguments, environment and working directory, and waits
 * for /readyz. The pid files kwokctl keeps are updated, so `cluster.sh down` stops the new process.
 */
export async function restartApiServer(options: { downMs?: number; signal?: NodeJS.Signals } = {}): Promise<Restart> {
  const server = findApiServer();
  const port = securePort(server);
  const stoppedAt = Date.now();
  process.kill(server.pid, options.signal ?? 'SIGTERM');
  for (let waited = 0; alive(server.pid); waited += 100) {
    if (waited === 10_000) process.kill(server.pid, 'SIGKILL');
    await sleep(100);
  }
  await sleep(options.downMs ?? 0);
  const logFile = join(clusterDir(), 'logs', 'kube-apiserver.log');
  const deadline = Date.now() + 90_000;
  // A socket of the old process can outlive it for a moment: a new one that cannot bind exits, and is started again.
  for (let attempt = 1; ; attempt++) {
    const out = existsSync(join(clusterDir(), 'logs')) ? openSync(logFile, 'a') : 'ignore';
    const child = spawn(server.argv[0]!, server.argv.slice(1), {
      cwd: server.cwd,
      env: server.env,
      detached: true,
      stdio: ['ignore', out, out],
    });
    child.unref();
    if (typeof out === 'number') closeSync(out);
    let ready = false;
    while (alive(child.pid!) && Date.now() < deadline) {
      if ((ready = await apiServerReady(port))) break;
      await sleep(100);
    }
    if (ready) {
      for (const file of pidFiles(server.pid)) writeFileSync(file, String(child.pid));
      break;
    }
    if (alive(child.pid!)) throw new Error(`kube-apiserver not ready 90 s after the restart; see ${logFile}`);
    if (Date.now() > deadline || attempt === 20)
      throw new Error(`kube-apiserver exited ${attempt} times after the restart; see ${logFile}`);
    await sleep(1000);
  }
  return { stoppedAt, readyAt: Date.now() };
}

/** kwokctl's pid files under the cluster directory that hold `pid`. */
function pidFiles(pid: number): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 3 || !existsSync(dir)) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path, depth + 1);
      else if (entry.name.endsWith('.pid') && readFileSync(path, 'utf8').trim() === String(pid)) found.push(path);
    }
  };
  walk(clusterDir(), 0);
  return found;
}

/** etcd's v3 JSON gateway (the same API etcdctl speaks over gRPC). */
async function etcd<T>(path: string, body: unknown): Promise<T> {
  const response = await fetch(`${etcdUrl()}${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok) throw new Error(`etcd ${path}: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** Compacts etcd's history up to its current revision (physically); returns that revision. */
export async function compactEtcd(): Promise<number> {
  const range = await etcd<{ header: { revision: string } }>('/v3/kv/range', {
    key: Buffer.from('/registry').toString('base64'),
    limit: 1,
  });
  const revision = Number(range.header.revision);
  await etcd('/v3/kv/compaction', { revision, physical: true });
  return revision;
}
