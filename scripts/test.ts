/**
 * Runs every test suite of the project against real components and prints the
 * totals as the last line: `N passed, M failed`.
 *
 * It brings up a dedicated local cluster ("loopline-test": real kube-apiserver,
 * KWOK nodes, NATS with JetStream), runs each `*.test.ts` file under a `test/`
 * folder as its own process (uvu), and tears the cluster down at the end unless
 * LOOPLINE_KEEP_CLUSTER=1. Arguments filter the files by substring:
 *   npm test -- server crds
 *
 * `--unit` (npm run test:unit) runs only the files that need no cluster, with no cluster started and none
 * reachable (KUBECONFIG unset): a file says it needs none with a line `// test: no cluster`, and fails here if it
 * does after all. Files chosen by arguments that all need no cluster run the same way. They run twice as many at
 * a time as there are cores (LOOPLINE_TEST_JOBS to change it), since most of a file's time is spent waiting on
 * servers, sockets and timers; the longest of the last run first, so that no long file starts last. Their
 * TypeScript is loaded through scripts/ts-hooks.mjs, which costs half the CPU of tsx's loader per file.
 *
 * One run at a time per cluster: a run holds ~/.cache/loopline/test-runs/<cluster>.pid while it owns the
 * cluster, and a second run on the same LOOPLINE_CLUSTER stops at once instead of tearing the first one's down.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const unit = process.argv.includes('--unit');
const filters = process.argv.slice(2).filter((a) => a !== '--unit');
const fileTimeoutMs = Number(process.env.LOOPLINE_TEST_FILE_TIMEOUT_MS ?? 8 * 60_000);
const clusterName = process.env.LOOPLINE_CLUSTER ?? 'loopline-test';
const cluster = join(root, 'e2e/cluster/cluster.sh');
const cacheDir = process.env.LOOPLINE_CACHE ?? join(homedir(), '.cache/loopline');
/** Each no-cluster file's seconds in the last run that ran it, to start the longest first. */
const unitSecondsFile = join(cacheDir, 'test-runs/unit-seconds.json');
const unitJobs = Number(process.env.LOOPLINE_TEST_JOBS ?? 2 * availableParallelism());
const tsHooks = pathToFileURL(join(root, 'scripts/ts-hooks.mjs')).href;

function findTestFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) findTestFiles(path, out);
    else if (name.endsWith('.test.ts') && path.split('/').includes('test')) out.push(path);
  }
  return out.sort();
}

/** Takes the cluster for this run, or exits naming the run that has it. */
function lockCluster(): () => void {
  const dir = join(cacheDir, 'test-runs');
  const lock = join(dir, `${clusterName}.pid`);
  mkdirSync(dir, { recursive: true });
  let holder: number | undefined;
  try {
    holder = Number(readFileSync(lock, 'utf8').trim());
  } catch {}
  if (holder && holder !== process.pid) {
    let alive = true;
    try {
      process.kill(holder, 0);
    } catch (error) {
      alive = (error as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (alive) {
      console.error(
        `cluster ${clusterName} is in use by the test run of pid ${holder} (${lock}); set LOOPLINE_CLUSTER to another name to run beside it`,
      );
      console.log('0 passed, 1 failed');
      process.exit(1);
    }
  }
  writeFileSync(lock, String(process.pid));
  return () => rmSync(lock, { force: true });
}

function clusterEnv(): Record<string, string> {
  const env = { ...process.env, LOOPLINE_CLUSTER: clusterName } as Record<string, string>;
  const up = spawnSync('bash', [cluster, 'up'], { env, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (up.status !== 0) throw new Error(`local cluster failed to start (exit ${up.status}); see the log above`);
  const lines = spawnSync('bash', [cluster, 'env'], { env, encoding: 'utf8' }).stdout;
  for (const line of lines.split('\n')) {
    const m = /^export (\w+)=(.*)$/.exec(line);
    if (m) env[m[1]] = m[2].replace('$PATH', process.env.PATH ?? '');
  }
  return env;
}

interface FileResult {
  file: string;
  passed: number;
  failed: number;
  skipped: number;
  seconds: number;
  note?: string;
}

const NO_CLUSTER_MARK = /^\/\/ test: no cluster$/m;

/**
 * The environment of a run with no cluster: nothing points at an API server, NATS, Prometheus or the S3 server;
 * the cluster's binaries (promtool among them) are on PATH as in a cluster run.
 */
function noClusterEnv(): Record<string, string> {
  const env = { ...process.env } as Record<string, string>;
  for (const key of [
    'KUBECONFIG',
    'NATS_URL',
    'PROMETHEUS_URL',
    'AWS_ENDPOINT_URL_S3',
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'LOOPLINE_S3_BUCKET',
    'LOOPLINE_POSTGRES_URL',
  ])
    delete env[key];
  const path = /^export PATH=(.*)$/m.exec(spawnSync('bash', [cluster, 'env'], { env, encoding: 'utf8' }).stdout)?.[1];
  if (path) env.PATH = path.replace('$PATH', process.env.PATH ?? '');
  return env;
}

function readSeconds(): Record<string, number> {
  try {
    return JSON.parse(readFileSync(unitSecondsFile, 'utf8'));
  } catch {
    return {};
  }
}

function runFile(file: string, env: Record<string, string>, stream = true, loader = 'tsx'): Promise<FileResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', loader, file], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const collect = (chunk: Buffer) => {
      if (stream) process.stdout.write(chunk);
      output += chunk.toString();
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => {
      output += '\n[runner] timed out\n';
      child.kill('SIGKILL');
    }, fileTimeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (!stream) process.stdout.write(`\n=== ${relative(root, file)}\n${output}`);
      const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
      const num = (label: string) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(plain)?.[1] ?? NaN);
      const total = num('Total'),
        passed = num('Passed'),
        skipped = num('Skipped') || 0;
      const seconds = (Date.now() - started) / 1000;
      const rel = relative(root, file);
      if (Number.isNaN(total)) {
        resolve({ file: rel, passed: 0, failed: 1, skipped: 0, seconds, note: `no uvu summary (exit ${code})` });
      } else {
        // uvu's Total counts the tests that ran: skipped ones are not in it.
        const failed = total - passed + (code !== 0 && total === passed ? 1 : 0);
        resolve({ file: rel, passed, failed, skipped, seconds, note: code !== 0 ? `exit ${code}` : undefined });
      }
    });
  });
}

async function main() {
  let files = findTestFiles(root);
  if (filters.length) files = files.filter((f) => filters.some((s) => relative(root, f).includes(s)));
  console.log(`Node ${process.version} (${process.execPath})`);
  const results: FileResult[] = [];
  const noCluster = (f: string) => NO_CLUSTER_MARK.test(readFileSync(f, 'utf8'));
  if (unit || (filters.length > 0 && files.length > 0 && files.every(noCluster))) {
    files = files.filter(noCluster);
    const env = noClusterEnv();
    const last = readSeconds();
    // A file not seen before goes first: it may be long.
    const seconds = (f: string) => last[relative(root, f)] ?? Number.POSITIVE_INFINITY;
    const queue = [...files].sort((a, b) => seconds(b) - seconds(a));
    const worker = async () => {
      for (let f = queue.shift(); f; f = queue.shift()) results.push(await runFile(f, env, false, tsHooks));
    };
    await Promise.all(Array.from({ length: Math.max(1, unitJobs) }, worker));
    results.sort((a, b) => a.file.localeCompare(b.file));
    for (const r of results) last[r.file] = r.seconds;
    mkdirSync(dirname(unitSecondsFile), { recursive: true });
    writeFileSync(unitSecondsFile, `${JSON.stringify(last, null, 1)}\n`);
  } else if (files.length > 0) {
    const unlock = lockCluster();
    const env = clusterEnv();
    for (const file of files) {
      console.log(`\n=== ${relative(root, file)}`);
      results.push(await runFile(file, env));
    }
    if (process.env.LOOPLINE_KEEP_CLUSTER !== '1') spawnSync('bash', [cluster, 'down'], { env, stdio: 'inherit' });
    unlock();
  }

  console.log('\nfile'.padEnd(64) + 'passed  failed  seconds');
  for (const r of results) {
    console.log(
      `${r.file.padEnd(63)} ${String(r.passed).padStart(6)}  ${String(r.failed).padStart(6)}  ${r.seconds.toFixed(1).padStart(7)}${r.note ? `  (${r.note})` : ''}`,
    );
  }
  const passed = results.reduce((s, r) => s + r.passed, 0);
  const failed = results.reduce((s, r) => s + r.failed, 0);
  const skipped = results.reduce((s, r) => s + r.skipped, 0);
  if (files.length === 0) console.log('no test files matched');
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exit(failed > 0 || files.length === 0 ? 1 : 0);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  console.log('0 passed, 1 failed');
  process.exit(1);
});
