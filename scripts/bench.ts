/**
 * Runs every benchmark (`*.bench.ts` under a `bench/` folder) one after another,
 * each as its own process, against a fresh local cluster where one is needed. A benchmark
 * that needs none says so with a line `// bench: no cluster`, and then runs with no control
 * plane on the machine (an idle one still takes CPU and wakes up for its leases and resyncs).
 * Each benchmark writes its figures to bench/results/<name>.json and .md;
 * this script then joins the markdown into bench/results/SUMMARY.md.
 *   npm run bench -- server      # only benchmarks whose path contains "server"
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const filters = process.argv.slice(2);
const results = join(root, 'bench/results');

function find(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) find(path, out);
    else if (name.endsWith('.bench.ts')) out.push(path);
  }
  return out.sort();
}

let files = find(root);
if (filters.length) files = files.filter((f) => filters.some((s) => relative(root, f).includes(s)));
const env = { ...process.env, LOOPLINE_CLUSTER: process.env.LOOPLINE_CLUSTER ?? 'loopline-bench' } as Record<
  string,
  string
>;
const cluster = join(root, 'e2e/cluster/cluster.sh');
/** A fresh cluster per benchmark: deleting 1000 InferenceServices keeps the control plane busy for minutes after. */
function up(): void {
  if (spawnSync('bash', [cluster, 'up'], { env, stdio: ['ignore', 'ignore', 'inherit'] }).status !== 0) process.exit(1);
  for (const line of spawnSync('bash', [cluster, 'env'], { env, encoding: 'utf8' }).stdout.split('\n')) {
    const m = /^export (\w+)=(.*)$/.exec(line);
    if (m) env[m[1]] = m[2].replace('$PATH', process.env.PATH ?? '');
  }
}
mkdirSync(results, { recursive: true });
let failed = 0;
for (const [index, file] of files.entries()) {
  console.log(`\n=== ${relative(root, file)}`);
  const needsCluster = !/^\/\/ bench: no cluster$/m.test(readFileSync(file, 'utf8'));
  if (needsCluster) up();
  const run = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: root, env, stdio: 'inherit' });
  if (run.status !== 0) failed++;
  if (needsCluster && (process.env.LOOPLINE_KEEP_CLUSTER !== '1' || index < files.length - 1))
    spawnSync('bash', [cluster, 'down'], { env, stdio: 'inherit' });
}
const parts = readdirSync(results)
  .filter((n) => n.endsWith('.md') && n !== 'SUMMARY.md')
  .sort();
const summary = parts.map((n) => readFileSync(join(results, n), 'utf8').trim()).join('\n\n');
writeFileSync(
  join(results, 'SUMMARY.md'),
  `# Loopline benchmarks\n\nMachine: ${process.arch}, ${(await import('node:os')).cpus().length} cores; generated ${new Date().toISOString()} by \`npm run bench\`.\n\n${summary}\n`,
);
console.log(`\n${files.length - failed} benchmarks ran, ${failed} failed; figures in ${relative(root, results)}/`);
if (!existsSync(results) || failed) process.exit(1);
