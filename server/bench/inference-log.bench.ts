import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { cpuSecondsOf } from '../../test/support/local.ts';
import { LogBatch, tableOf } from '../src/ground-truth/log-batch.ts';
import { encodeParquet } from '../src/ground-truth/parquet.ts';
import { compileLikeDockerfileServer, load, type Server, startCompiled } from './processes.ts';
import { machineFacts } from '../../test/support/machine.ts';
import { trainExample } from './peers/example.ts';
import { median } from '../../test/support/figures.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 11);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const CONCURRENCY = [16, 64];
const TARGET = 0.05;
const work = mkdtempSync(join(tmpdir(), 'loopline-log-bench-'));

function filesBelow(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? filesBelow(join(dir, e.name)) : [join(dir, e.name)],
    );
  } catch {
    return [];
  }
}

/** CPU seconds of the serving thread (a process's main thread has the process's id as its thread id). */
function mainThreadCpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

// The example trainer's model and reference profile, as the demo serves them.
const trained = trainExample(join(work, 'trainer'));
const modelEnv = {
  MODEL_NAME: 'credit',
  MODEL_VERSION: '1',
  WORKERS: '1',
  BATCHING: 'on',
  ...trained.env,
};
const row = trained.row;
// 4096 different rows around the example's, sent in turn: parts of varied values, as production writes them.
const bodiesFile = join(work, 'bodies.json');
let seed = 7;
const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
writeFileSync(
  bodiesFile,
  JSON.stringify(
    Array.from({ length: 4096 }, () =>
      JSON.stringify({
        inputs: [
          {
            name: 'input',
            shape: [1, row.length],
            datatype: 'FP32',
            data: row.map((v, j) =>
              j === row.length - 1 ? Math.floor(random() * 3) : Number((v * (0.5 + random())).toFixed(3)),
            ),
          },
        ],
      }),
    ),
  ),
);
const body = `@${bodiesFile}`;
const INFER = '/v2/models/credit/infer';
const logDir = join(work, 'log');

console.log('compiling the server as Dockerfile.server does');
compileLikeDockerfileServer();
const start = (extra: Record<string, string>) =>
  startCompiled('server/src/main.ts', { ...modelEnv, ...extra }, '/v2/health/ready', {
    nodeOptions: '--max-semi-space-size=4',
  });
const started = Date.now();
const loadBefore = loadavg();
const servers: Record<'off' | 'logged', Server> = {
  off: await start({}),
  logged: await start({ INFERENCE_LOG_URI: pathToFileURL(logDir).href, INFERENCE_LOG_SAMPLE_RATE: '1' }),
};
for (const server of Object.values(servers)) await load(server.url + INFER, 16, 2, body);

type Side = { rps: number[]; cpuUs: number[]; mainCpuUs: number[]; p99Ms: number[]; failed: number[] };
const side = (): Side => ({ rps: [], cpuUs: [], mainCpuUs: [], p99Ms: [], failed: [] });
const rounds: Record<number, Record<'off' | 'logged', Side> & { load1: number[] }> = {};
const failures = { non2xx: 0, errors: 0, timeouts: 0 };
for (const c of CONCURRENCY) {
  rounds[c] = { off: side(), logged: side(), load1: [] };
  for (let round = 0; round < ROUNDS; round++) {
    rounds[c].load1.push(loadavg()[0]);
    for (const key of (round % 2 ? ['logged', 'off'] : ['off', 'logged']) as Array<'off' | 'logged'>) {
      const pid = servers[key].child.pid!;
      const before = cpuSecondsOf(pid);
      const mainBefore = mainThreadCpuSeconds(pid);
      const l = await load(servers[key].url + INFER, c, SECONDS, body);
      const answered = l.requests + l.warmupRequests;
      const r = rounds[c][key];
      r.rps.push(l.requestsPerSecond);
      r.p99Ms.push(l.p99Ms);
      r.cpuUs.push(((cpuSecondsOf(pid) - before) * 1e6) / answered);
      r.mainCpuUs.push(((mainThreadCpuSeconds(pid) - mainBefore) * 1e6) / answered);
      // autocannon's errors include its timeouts (no answer within 10 s): counted once.
      r.failed.push(l.non2xx + l.errors);
      failures.non2xx += l.non2xx;
      failures.errors += l.errors;
      failures.timeouts += l.timeouts;
    }
    const r = rounds[c];
    console.log(
      `c=${c} round ${round + 1} (load ${r.load1.at(-1)!.toFixed(1)}): off ${Math.round(r.off.rps.at(-1)!)} req/s ${r.off.cpuUs.at(-1)!.toFixed(1)} µs, logged ${Math.round(r.logged.rps.at(-1)!)} req/s ${r.logged.cpuUs.at(-1)!.toFixed(1)} µs`,
    );
  }
}
const failed = failures.non2xx + failures.errors;
const exposition = await (await fetch(`${servers.logged.url}/metrics`)).text();
const metric = (name: string) =>
  exposition
    .split('\n')
    .filter((l) => l.startsWith(name) && !l.startsWith('#'))
    .reduce((s, l) => s + Number(l.split(' ').pop()), 0);
const rssMb = (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
const peakRss = { off: rssMb(servers.off.child.pid!), logged: rssMb(servers.logged.child.pid!) };
const beforeStop = {
  rowsWritten: metric('inference_log_rows_total'),
  parts: metric('inference_log_parts_total'),
  dropped: metric('inference_log_rows_dropped_total'),
  buffered: metric('inference_log_buffered_rows'),
};
for (const server of Object.values(servers)) await server.stop();
const parts = filesBelow(logDir).filter((f) => f.endsWith('.parquet'));
const partBytes = parts.reduce((s, f) => s + statSync(f).size, 0);

/**
 * Encoding parts as the encoder thread does (a sealed batch's columns, 10,000 rows) with varied values: CPU µs
 * and bytes per row. The batches are filled beforehand; only tableOf + encodeParquet are timed.
 */
function timeEncoding(): { microsecondsPerRow: number; bytesPerRow: number } {
  const rows = 10_000;
  const names = ['income', 'debt_ratio', 'age', 'utilization', 'region'].map((n) => `input_${n}`);
  const prefix = '2f1c9a4e-7b3d-4c2a-9e11-';
  const part = (k: number) => {
    const batch = new LogBatch(rows, 'credit', 1, 'credit-v1-7d9f8c6b5-x2x9q', names, ['output_probability']);
    const t0 = Date.now();
    for (let i = 0; i < rows; i++) {
      batch.reserve();
      batch.times[i] = t0 + Math.floor(i / 8);
      batch.scores[i] = Math.fround(Math.random());
      for (let j = 0; j < names.length; j++) batch.inputs[j][i] = Math.fround(Math.random() * 100);
      batch.outputs[0][i] = batch.scores[i];
      batch.endRow(prefix + (k * rows + i).toString(16).padStart(12, '0'), -1);
    }
    return batch.job();
  };
  for (let k = 0; k < 3; k++) encodeParquet(tableOf(part(k))); // optimized code, as in a long-running server
  const parts = Array.from({ length: 10 }, (_, k) => part(k + 3));
  // CPU time, not wall time: other processes on the machine do not count against the encoder.
  const before = process.cpuUsage();
  let bytes = 0;
  for (const p of parts) bytes += encodeParquet(tableOf(p)).byteLength;
  const used = process.cpuUsage(before);
  return {
    microsecondsPerRow: (used.user + used.system) / (rows * parts.length),
    bytesPerRow: bytes / (rows * parts.length),
  };
}
const encoding = timeEncoding();
const encodingShare = encoding.microsecondsPerRow / median(rounds[64].off.cpuUs);

/** Median over rounds of logged / off within the same round, minus 1. */
const pairedCost = (off: number[], logged: number[]) => median(logged.map((v, i) => v / off[i])) - 1;
const byConcurrency = Object.fromEntries(
  CONCURRENCY.map((c) => {
    const r = rounds[c];
    return [
      c,
      {
        cpuCost: pairedCost(r.off.cpuUs, r.logged.cpuUs),
        servingThreadCpuCost: pairedCost(r.off.mainCpuUs, r.logged.mainCpuUs),
        throughputCost: -pairedCost(r.off.rps, r.logged.rps),
        medianRps: { off: median(r.off.rps), logged: median(r.logged.rps) },
        medianCpuUsPerRequest: { off: median(r.off.cpuUs), logged: median(r.logged.cpuUs) },
        medianServingThreadCpuUsPerRequest: { off: median(r.off.mainCpuUs), logged: median(r.logged.mainCpuUs) },
        medianP99Ms: { off: median(r.off.p99Ms), logged: median(r.logged.p99Ms) },
        rounds: r,
      },
    ];
  }),
);
const targets = Object.fromEntries(
  CONCURRENCY.flatMap((c) => [
    [
      `cpuCostAtC${c}`,
      {
        value: byConcurrency[c].cpuCost,
        target: `server CPU per request +${100 * TARGET}% at most at 100% sampling (median of paired rounds)`,
        met: byConcurrency[c].cpuCost <= TARGET,
      },
    ],
    [
      `throughputCostAtC${c}`,
      {
        value: byConcurrency[c].throughputCost,
        target: `req/s -${100 * TARGET}% at most at 100% sampling (median of paired rounds)`,
        met: byConcurrency[c].throughputCost <= TARGET,
      },
    ],
  ]),
);
const results = {
  generatedAt: new Date().toISOString(),
  machine: machineFacts(loadBefore),
  note: 'Server and load generator share a 2-core machine with other work: figures are noisy; each cost is the median over rounds of logged/off within one round (the two runs of a round are back to back, in alternating order), so load that moves both cancels out.',
  endpoint: `POST ${INFER} with one row of ${row.length} FP32 features (one logged row per request; 4096 different rows in turn)`,
  logging: { sampleRate: 1, maxRowsPerPart: 10_000, flushIntervalMs: 30_000, uri: 'file:// (a local directory)' },
  roundSeconds: SECONDS,
  rounds: ROUNDS,
  byConcurrency,
  logged: {
    ...beforeStop,
    partsOnDisk: parts.length,
    bytesOnDisk: partBytes,
    bytesPerRow: partBytes / Math.max(1, beforeStop.rowsWritten + beforeStop.buffered),
  },
  encodingVariedRows: { ...encoding, shareOfServerCpuPerRequestAtC64: encodingShare },
  peakRssMb: peakRss,
  failedRequests: failed,
  failures,
  targets,
  durationSeconds: (Date.now() - started) / 1000,
};

const f0 = (n: number) => Math.round(n).toLocaleString('en-US');
const f1 = (n: number) => n.toFixed(1);
const pct = (n: number) => `${(100 * n).toFixed(1)}%`;
const md = `## Inference log (\`server/bench/inference-log.bench.ts\`)

${results.note} Load average before/after: ${loadBefore.map((x) => x.toFixed(2)).join(', ')} / ${loadavg()
  .map((x) => x.toFixed(2))
  .join(', ')}.
The predictor on the example trainer's model (drift on, batching on, one worker), compiled as the image runs it, with logging off and with every request logged (sample rate 1, parts of 10,000 rows, to a local directory). ${results.endpoint}. ${ROUNDS} alternating rounds of ${SECONDS} s per concurrency; autocannon in its own process.

| concurrency | server CPU µs per request off / logged (median) | CPU cost (paired) | serving thread CPU µs off / logged | serving thread cost | req/s off / logged (median) | req/s cost (paired) | p99 ms off / logged |
|---|---|---|---|---|---|---|---|
${CONCURRENCY.map((c) => {
  const b = byConcurrency[c];
  return `| ${c} | ${f1(b.medianCpuUsPerRequest.off)} / ${f1(b.medianCpuUsPerRequest.logged)} | ${pct(b.cpuCost)} | ${f1(b.medianServingThreadCpuUsPerRequest.off)} / ${f1(b.medianServingThreadCpuUsPerRequest.logged)} | ${pct(b.servingThreadCpuCost)} | ${f0(b.medianRps.off)} / ${f0(b.medianRps.logged)} | ${pct(b.throughputCost)} | ${b.medianP99Ms.off.toFixed(2)} / ${b.medianP99Ms.logged.toFixed(2)} |`;
}).join('\n')}

Rounds (load average 1 min at the start; req/s and server CPU µs per request): ${CONCURRENCY.map(
  (c) =>
    `c=${c}: ${rounds[c].load1
      .map(
        (l, i) =>
          `${l.toFixed(1)}: ${f0(rounds[c].off.rps[i])} / ${f0(rounds[c].logged.rps[i])} req/s, ${f1(rounds[c].off.cpuUs[i])} / ${f1(rounds[c].logged.cpuUs[i])} µs`,
      )
      .join('; ')}`,
).join(' — ')}.
Encoding parts of varied rows on the encoder thread's path (random inputs and scores, unique ids; 10 parts of 10,000 rows, CPU time in-process): ${encoding.microsecondsPerRow.toFixed(2)} µs and ${f1(encoding.bytesPerRow)} bytes per row, ${pct(encodingShare)} of the server's CPU per request with logging off at c=64.
Logged: ${f0(beforeStop.rowsWritten)} rows in ${f0(beforeStop.parts)} parts while running (${f0(beforeStop.buffered)} buffered, written at shutdown; ${f0(beforeStop.dropped)} dropped), ${f0(parts.length)} parts on disk, ${(partBytes / 1e6).toFixed(1)} MB, ${f1(results.logged.bytesPerRow)} bytes per row. Peak RSS off / logged: ${f0(peakRss.off)} / ${f0(peakRss.logged)} MB. Failed requests: ${failed} (non-2xx ${failures.non2xx}, connection errors ${failures.errors} of which timeouts after 10 s ${failures.timeouts}; per round off / logged: ${CONCURRENCY.map((c) => `c=${c} ${rounds[c].off.failed.join(',')} / ${rounds[c].logged.failed.join(',')}`).join('; ')}).

| target | measured | met |
|---|---|---|
${Object.entries(targets)
  .map(
    ([k, t]) =>
      `| c=${k.replace(/^\D+/, '')}: ${t.target} | ${pct(t.value)} | ${t.met ? 'yes' : `no, over by ${(100 * (t.value - TARGET)).toFixed(1)} points`} |`,
  )
  .join('\n')}
`;
const out = join(root, 'bench/results');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'inference-log.json'), `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(join(out, 'inference-log.md'), md);
rmSync(work, { recursive: true, force: true });
console.log(
  `\n${md}\nbench took ${results.durationSeconds.toFixed(0)} s; wrote bench/results/inference-log.json and .md`,
);
