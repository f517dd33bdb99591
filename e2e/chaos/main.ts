/**
 * `npm run chaos`: every fault-injection scenario, at full length, against a fresh local cluster
 * (LOOPLINE_CLUSTER, default loopline-chaos), one after another; the summary table goes to
 * bench/results/chaos.md and the figures to bench/results/chaos.json. Exits 1 on any violation.
 *   npm run chaos -- prometheus nats     # only scenarios whose name contains one of the words; the table
 *                                        # keeps the other scenarios' last results (from chaos.json)
 * CHAOS_SOAK_MINUTES sets the soak's length (default 10).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './harness.ts';
import { chaosTable, type ScenarioResult } from './report.ts';
import { scenarios } from './scenarios/index.ts';

const filters = process.argv.slice(2);
const env = { ...process.env, LOOPLINE_CLUSTER: process.env.LOOPLINE_CLUSTER ?? 'loopline-chaos' } as Record<
  string,
  string
>;
const cluster = join(REPO_ROOT, 'e2e/cluster/cluster.sh');

function freshCluster(): void {
  spawnSync('bash', [cluster, 'down'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  if (spawnSync('bash', [cluster, 'up'], { env, stdio: ['ignore', 'ignore', 'inherit'] }).status !== 0) process.exit(1);
  for (const line of spawnSync('bash', [cluster, 'env'], { env, encoding: 'utf8' }).stdout.split('\n')) {
    const m = /^export (\w+)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!.replace('$PATH', process.env.PATH ?? '');
  }
  Object.assign(process.env, env);
}

const chosen = scenarios.filter((s) => filters.length === 0 || filters.some((f) => s.name.includes(f)));
if (chosen.length === 0) {
  console.error(`no scenario matches ${filters.join(' ')}; there are: ${scenarios.map((s) => s.name).join(', ')}`);
  process.exit(2);
}
const started = Date.now();
// The machine may be shared (other test runs, builds): the 1-minute load average, sampled through the run, goes
// into the table's heading so the figures can be read against it.
const loads: number[] = [loadavg()[0]!];
const loadSampler = setInterval(() => loads.push(loadavg()[0]!), 15_000);
freshCluster();
const results: ScenarioResult[] = [];
for (const scenario of chosen) {
  console.log(`\n=== ${scenario.name}`);
  try {
    results.push(await scenario.full());
  } catch (error) {
    results.push({
      scenario: scenario.name,
      fault: 'scenario did not complete',
      faults: 0,
      checks: 1,
      violations: [`the scenario failed: ${(error as Error).stack ?? error}`],
      recoveriesMs: [],
      notes: [],
      seconds: 0,
    });
  }
  console.log(chaosTable(results.slice(-1)));
}
if (process.env.LOOPLINE_KEEP_CLUSTER !== '1') spawnSync('bash', [cluster, 'down'], { env, stdio: 'inherit' });

const out = join(REPO_ROOT, 'bench/results');
// A partial run replaces its scenarios' rows of the last full table and keeps the rest.
if (filters.length && existsSync(join(out, 'chaos.json'))) {
  const previous = (JSON.parse(readFileSync(join(out, 'chaos.json'), 'utf8')) as { results: ScenarioResult[] }).results;
  const rerun = new Map(results.map((r) => [r.scenario, r]));
  // A scenario that did not complete is filed under its short name: a rerun replaces that row too.
  const merged = previous
    .filter((r) => !chosen.some((c) => c.name === r.scenario) || rerun.has(r.scenario))
    .map((r) => rerun.get(r.scenario) ?? r);
  for (const r of results) if (!previous.some((p) => p.scenario === r.scenario)) merged.push(r);
  results.splice(0, results.length, ...merged);
}
clearInterval(loadSampler);
loads.push(loadavg()[0]!);
const load = {
  min: Math.min(...loads),
  mean: Math.round((loads.reduce((a, b) => a + b, 0) / loads.length) * 100) / 100,
  max: Math.max(...loads),
};
const violations = results.reduce((n, r) => n + r.violations.length, 0);
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'chaos.json'),
  `${JSON.stringify({ generated: new Date().toISOString(), cores: cpus().length, load, results }, null, 2)}\n`,
);
writeFileSync(
  join(out, 'chaos.md'),
  `## Faults survived (\`npm run chaos\`)\n\n` +
    `${results.length} scenarios on a fresh local cluster, ${cpus().length} cores shared with the control plane` +
    ` and, this run, with whatever else the machine ran: 1-minute load average ${load.min.toFixed(2)}–${load.max.toFixed(2)}` +
    ` (mean ${load.mean.toFixed(2)}) while ${filters.length ? filters.join(', ') : 'the suite'} ran; ` +
    `${Math.round((Date.now() - started) / 60_000)} min in all, generated ${new Date().toISOString()}. ` +
    `Faults come from Toxiproxy v2.12.0 between the operator and the API server, NATS, Prometheus and S3 (and between ` +
    `pods and NATS and S3), from restarting kube-apiserver, and from compacting etcd. Recovery: from the end of a fault ` +
    `to the operator's next reconcile a probe sees (a new ModelVersion's alias put in effect), or as the scenario says.\n\n` +
    `${chaosTable(results)}\n`,
);
console.log(`\n${results.length} scenarios, ${violations} violations; table in bench/results/chaos.md`);
process.exit(violations > 0 ? 1 : 0);
