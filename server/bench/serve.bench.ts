/**
 * Predictor benchmark: `npx tsx server/bench/serve.bench.ts` (also run by `npm run bench`).
 * On this machine, load generator (autocannon, own process) and server (own process) on the
 * same host, same run: requests/s and p50/p99 at concurrency 1, 16, 64 for
 *   (a) our server on the example model, batching on and off (and on without drift accounting),
 *   (b) a bare fastify route answering a constant of the same shape and size (the HTTP floor),
 *   (c) raw session.run per row and per batch of 64 (the runtime limit),
 * resident memory, and a CPU profile of the server at concurrency 64.
 * Writes bench/results/server.json and bench/results/server.md.
 */
// bench: no cluster
import { spawnSync } from 'node:child_process';
import { DEFAULT_DRIFT_OPTIONS } from '../src/drift/detector.ts';
import { DriftMonitor } from '../src/drift/monitor.ts';
import { parseReferenceProfile } from '../src/drift/profile.ts';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { request as httpRequest } from 'node:http';
import { cpuSecondsOf } from '../../test/support/local.ts';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ort from 'onnxruntime-node';
import { buildLogisticRegressionModel } from '../../examples/trainer/src/onnx.ts';
import { sha256Digest } from '../src/runtime/artifact.ts';
import { compiled, compileLikeDockerfileServer, load, type Load, type Server, startCompiled } from './processes.ts';
import { machineFacts } from '../../test/support/machine.ts';
import { type ExampleModel, trainExample } from './peers/example.ts';
import { median } from '../../test/support/figures.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
// The V8 setting recommended for predictor pods (see server/src/main.ts): a small young
// generation keeps resident memory down at no measurable throughput cost. Same for the floor.
const SERVER_NODE_OPTIONS = process.env.BENCH_SERVER_NODE_OPTIONS ?? '--max-semi-space-size=4';
const CONCURRENCY = [1, 16, 64];
/**
 * A second Node binary the predictor is also run on, in the same alternating rounds (the move from Node 20 to 24):
 * BENCH_COMPARE_NODE, or the machine's own /usr/bin/node when its major differs from the project's pinned Node.
 */
function compareNode(): { path: string; version: string } | undefined {
  const path = process.env.BENCH_COMPARE_NODE ?? '/usr/bin/node';
  if (!existsSync(path)) return undefined;
  const version = spawnSync(path, ['--version'], { encoding: 'utf8' }).stdout.trim();
  if (!process.env.BENCH_COMPARE_NODE && version.split('.')[0] === process.version.split('.')[0]) return undefined;
  // The server writes Parquet parts with zstd (node:zlib's, from Node 23.8): a Node without it cannot run it at all.
  const zstd = spawnSync(path, ['-e', "process.exit(require('node:zlib').zstdCompressSync ? 0 : 1)"]).status === 0;
  if (!zstd) {
    const why = `${path} (${version}) has no zstd in node:zlib, which the server needs`;
    if (process.env.BENCH_COMPARE_NODE) throw new Error(`BENCH_COMPARE_NODE: ${why}; name a Node of 23.8 or later`);
    console.error(`serve bench: no second-Node comparison: ${why}`);
    return undefined;
  }
  return { path, version };
}
const otherNode = compareNode();
const work = mkdtempSync(join(tmpdir(), 'loopline-bench-'));

// ---- the example model: the example trainer's output, or the same model built directly ----
interface Example {
  source: string;
  env: Record<string, string>;
  row: number[];
  bytes: Uint8Array;
}

function exampleModel(): Example {
  let trained: ExampleModel;
  try {
    trained = trainExample(join(work, 'trainer'));
  } catch (error) {
    return fallbackModel(error as Error);
  }
  return {
    source: 'examples/trainer (model.onnx + profile.json)',
    env: trained.env,
    row: trained.row,
    bytes: readFileSync(trained.modelPath),
  };
}

function fallbackModel(error: Error): Example {
  console.warn(`${error.message}; using the same logistic regression built directly`);
  const bytes = buildLogisticRegressionModel({ weights: [0.02, 1.5, -0.01, 2, 0.3], bias: -1 });
  const path = join(work, 'model.onnx');
  writeFileSync(path, bytes);
  return {
    source: 'fallback: buildLogisticRegressionModel, 5 features, no reference profile',
    env: { MODEL_URI: pathToFileURL(path).href, MODEL_DIGEST: sha256Digest(bytes) },
    row: [50, 0.3, 40, 0.5, 1],
    bytes,
  };
}

// ---- processes ----
console.log('compiling the server as Dockerfile.server does (tsc --rewriteRelativeImportExtensions)');
compileLikeDockerfileServer();
const startProcess = (
  script: string,
  env: Record<string, string>,
  readyPath: string,
  nodeFlags: string[] = [],
  node = process.execPath,
) => startCompiled(script, { WORKERS: '1', ...env }, readyPath, { nodeFlags, node, nodeOptions: SERVER_NODE_OPTIONS });

function memoryOf(pid: number): { rssMb: number; peakRssMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakRssMb: kb('VmHWM') / 1024 };
}

// ---- the CPU profile: self time by function and by area ----
function summarizeProfile(
  dir: string,
  seconds: number,
): { byArea: Record<string, number>; top: Array<{ fn: string; selfPct: number }> } {
  // The main thread's profile is the largest (tsx's module-loader thread writes its own).
  const file = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort((a, b) => statSync(join(dir, b)).size - statSync(join(dir, a)).size)[0];
  if (!file) return { byArea: {}, top: [] };
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
    nodes: Array<{
      id: number;
      callFrame: { functionName: string; url: string; lineNumber: number };
      hitCount?: number;
    }>;
    samples: number[];
    timeDeltas: number[];
    endTime: number;
    startTime: number;
  };
  // Only samples taken while the load ran (the last SECONDS of the process), not start-up and module loading.
  const hits = new Map<number, number>();
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i];
    if (t >= profile.endTime - seconds * 1e6) hits.set(id, (hits.get(id) ?? 0) + 1);
  });
  for (const node of profile.nodes) node.hitCount = hits.get(node.id) ?? 0;
  const total = profile.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0) || 1;
  const byFn = new Map<string, number>();
  const byArea: Record<string, number> = {};
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (!hits) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const short = url
      .replace(/^file:\/\//, '')
      .replace(`${compiled}/`, '')
      .replace(root, '');
    const area =
      functionName === '(idle)'
        ? 'idle'
        : functionName === '(garbage collector)'
          ? 'garbage collector'
          : functionName === '(program)'
            ? 'native (program: libuv, onnxruntime binding, syscalls)'
            : short.includes('node_modules/fastify') ||
                short.includes('node_modules/find-my-way') ||
                short.includes('node_modules/light-my-request') ||
                short.includes('node_modules/fast-json-stringify') ||
                short.includes('node_modules/secure-json-parse')
              ? 'fastify'
              : short.includes('onnxruntime')
                ? 'onnxruntime-node (JS side)'
                : short.includes('prom-client')
                  ? 'prom-client'
                  : short.startsWith('server/src/drift')
                    ? 'server/src/drift'
                    : short.startsWith('server/src')
                      ? 'server/src (protocol, runtime)'
                      : short.startsWith('node:') || short === ''
                        ? 'node core (http, streams, buffers)'
                        : 'other node_modules';
    byArea[area] = (byArea[area] ?? 0) + (100 * hits) / total;
    const key = `${functionName || '(anonymous)'} ${short ? `${short}:${lineNumber + 1}` : ''}`.trim();
    byFn.set(key, (byFn.get(key) ?? 0) + (100 * hits) / total);
  }
  const top = [...byFn.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15)
    .map(([fn, selfPct]) => ({ fn, selfPct }));
  return { byArea, top };
}

// ---- raw session.run ----
async function rawRuns(
  bytes: Uint8Array,
  features: number,
  rows: number,
  seconds: number,
): Promise<{ runsPerSecond: number; rowsPerSecond: number; p50Us: number; p99Us: number }> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const input = new ort.Tensor('float32', new Float32Array(rows * features).fill(0.5), [rows, features]);
  const name = session.inputNames[0];
  for (let i = 0; i < 500; i++) await session.run({ [name]: input });
  const times: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const t = performance.now();
    await session.run({ [name]: input });
    times.push((performance.now() - t) * 1000);
  }
  await session.release();
  times.sort((a, b) => a - b);
  const runsPerSecond = times.length / seconds;
  return {
    runsPerSecond,
    rowsPerSecond: runsPerSecond * rows,
    p50Us: times[Math.floor(times.length / 2)],
    p99Us: times[Math.floor(times.length * 0.99)],
  };
}

// ---- the run ----
/**
 * The drift accounting's own CPU per request, in-process: a DriftMonitor as the server builds one (the example's
 * reference profile, the default 1000-row windows and tests) records `rows` requests of one row each, drawn from the
 * reference sample so that the window statistics sort and compare real spreads, and evaluates every window they close.
 * Divided by the server's CPU per request in the paired rounds it is the share of the server's work that drift takes.
 * Timed twice: a first monitor in code V8 has not optimized yet (as in a server's first seconds), and a third one, in
 * the optimized code a server runs from then on (the steady state, which the target is checked on).
 * process.cpuUsage counts every thread of this process (V8's compiler and GC helpers, tsx's loader), so both are upper bounds.
 */
async function timeDriftMonitor(
  profileUri: string | undefined,
  rows: number,
): Promise<{ microseconds: number; coldMicroseconds: number; windows: number } | undefined> {
  if (!profileUri) return undefined;
  const profile = parseReferenceProfile(readFileSync(fileURLToPath(profileUri), 'utf8'), profileUri);
  const columns = profile.features.map((f) =>
    f.type === 'numeric' ? f.sample : Object.keys(f.frequencies).map(Number),
  );
  // Request tensors made beforehand (a prime number of them, cycled) so that making them is not timed.
  const requests = Array.from({ length: 997 }, (_, i) =>
    Float32Array.from(columns, (column, j) => column[(i * 7 + j * 13) % column.length]),
  );
  const timeOne = async () => {
    let windows = 0;
    const monitor = new DriftMonitor(profile, {
      drift: DEFAULT_DRIFT_OPTIONS,
      model: 'credit',
      modelVersion: '1',
      windowSize: 1000,
      windowSeconds: 3600,
      onReport: () => void windows++,
      onError: (error) => {
        throw error;
      },
    });
    const start = process.cpuUsage();
    for (let i = 0; i < rows; i++) {
      monitor.record(requests[i % requests.length], 1);
      // As in the server, closed windows are evaluated between requests, not all at the end.
      if (i % 1000 === 999) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await monitor.stop('shutdown');
    const used = process.cpuUsage(start);
    return { microseconds: (used.user + used.system) / rows, windows };
  };
  const cold = await timeOne();
  await timeOne(); // V8 optimizes the hot functions over the first few hundred windows
  const warm = await timeOne();
  return { microseconds: warm.microseconds, coldMicroseconds: cold.microseconds, windows: warm.windows };
}

const started = Date.now();
const loadBefore = loadavg();
const example = exampleModel();
const features = example.row.length;
const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, features], datatype: 'FP32', data: example.row }] });
const INFER = '/v2/models/credit/infer';
const withoutProfile = Object.fromEntries(
  Object.entries(example.env).filter(([k]) => !k.startsWith('REFERENCE_PROFILE')),
);
const serverEnv = (extra: Record<string, string>) => ({
  MODEL_NAME: 'credit',
  MODEL_VERSION: '1',
  ...example.env,
  ...extra,
});

const configs: Array<{ key: string; label: string; start: () => Promise<Server> }> = [
  { key: 'bare', label: 'bare fastify, constant answer', start: () => startProcess('server/bench/bare.ts', {}, '/') },
  {
    key: 'batchingOn',
    label: 'our server, batching on',
    start: () => startProcess('server/src/main.ts', serverEnv({ BATCHING: 'on' }), '/v2/health/ready'),
  },
  {
    key: 'batchingOff',
    label: 'our server, batching off',
    start: () => startProcess('server/src/main.ts', serverEnv({ BATCHING: 'off' }), '/v2/health/ready'),
  },
  {
    key: 'batchingOnNoDrift',
    label: 'our server, batching on, no drift accounting',
    start: () =>
      startProcess(
        'server/src/main.ts',
        { MODEL_NAME: 'credit', MODEL_VERSION: '1', ...withoutProfile, BATCHING: 'on' },
        '/v2/health/ready',
      ),
  },
  ...(otherNode
    ? [
        {
          key: 'batchingOnOtherNode',
          label: `our server, batching on, Node ${otherNode.version}`,
          start: () =>
            startProcess('server/src/main.ts', serverEnv({ BATCHING: 'on' }), '/v2/health/ready', [], otherNode.path),
        },
      ]
    : []),
];

const http: Record<string, Record<string, Load>> = {};
const memory: Record<string, { rssMb: number; peakRssMb: number }> = {};
const running: Record<string, Server> = {};
for (const config of configs) {
  const server = await config.start();
  running[config.key] = server;
  await load(server.url + INFER, 16, 1, body); // warm-up: JIT, connection pools
  http[config.key] = {};
  for (const c of CONCURRENCY) {
    http[config.key][c] = await load(server.url + INFER, c, SECONDS, body);
    console.log(
      `${config.label.padEnd(46)} c=${String(c).padStart(2)}  ${Math.round(http[config.key][c].requestsPerSecond)} req/s  p50 ${http[config.key][c].p50Ms.toFixed(2)} ms  p99 ${http[config.key][c].p99Ms.toFixed(2)} ms`,
    );
  }
  memory[config.key] = memoryOf(server.child.pid!);
}

/** Bytes of one whole HTTP response (status line, headers, body) on a fresh connection. */
function responseBytes(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      url,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.socket.bytesRead));
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}
// The floor answers with as many bytes as the predictor (same headers, same lengths): a difference
// would make the comparison about response length instead of the work behind it.
const answerBytes = {
  bare: await responseBytes(running.bare.url + INFER),
  ours: await responseBytes(running.batchingOn.url + INFER),
};
if (answerBytes.bare !== answerBytes.ours)
  console.warn(
    `response sizes differ: bare ${answerBytes.bare} B, ours ${answerBytes.ours} B; the bare answer in server/bench/bare.ts no longer matches`,
  );

// The ratios the targets are about, measured in alternation so that load from other
// processes on the machine hits both sides of a comparison alike; medians of the rounds.
// Nine rounds: with three, one disturbed round decided the median (bare fastify alone ranged 18k-31k req/s).
const ROUNDS = 9;
/**
 * Server CPU per answered request in each paired round, µs, by comparison and server: the work a request costs, which
 * bounds the rate once the server's core is saturated. Reported beside the rates, not instead of them: on this virtual
 * machine time taken by other guests is charged to whichever process was running, so it sways with them as req/s does.
 */
const cpuPerRequest: Record<string, Record<string, number[]>> = {};
const pairName = (a: string, b: string, concurrency: number) => `${a} vs ${b} at c=${concurrency}`;
async function paired(
  a: string,
  b: string,
  concurrency: number,
  measure: (l: Load) => number,
): Promise<{ [key: string]: number[] }> {
  const values: { [key: string]: number[] } = { [a]: [], [b]: [] };
  const cpu: Record<string, number[]> = (cpuPerRequest[pairName(a, b, concurrency)] = { [a]: [], [b]: [] });
  for (let round = 0; round < ROUNDS; round++) {
    for (const key of round % 2 ? [b, a] : [a, b]) {
      const pid = running[key].child.pid!;
      const before = cpuSecondsOf(pid);
      const result = await load(running[key].url + INFER, concurrency, PAIRED_SECONDS, body);
      // The CPU reading spans the warm-up second too, so its requests are counted with the timed ones.
      cpu[key].push(((cpuSecondsOf(pid) - before) * 1e6) / (result.requests + result.warmupRequests));
      values[key].push(measure(result));
    }
  }
  return values;
}
const PAIRED_SECONDS = 2;
const versusBare = await paired('bare', 'batchingOn', 64, (l) => l.requestsPerSecond);
const versusNoDrift = await paired('batchingOnNoDrift', 'batchingOn', 64, (l) => l.requestsPerSecond);
const p99AtC16 = await paired('bare', 'batchingOn', 16, (l) => l.p99Ms);
const versusOtherNode = otherNode
  ? await paired('batchingOnOtherNode', 'batchingOn', 64, (l) => l.requestsPerSecond)
  : undefined;
const p99VersusOtherNode = otherNode
  ? await paired('batchingOnOtherNode', 'batchingOn', 16, (l) => l.p99Ms)
  : undefined;
for (const server of Object.values(running)) await server.stop();
console.log(
  `paired c=16 p99 ms: bare ${p99AtC16.bare.map((x) => x.toFixed(2))} vs ours ${p99AtC16.batchingOn.map((x) => x.toFixed(2))}`,
);
console.log(
  `paired c=64 req/s: bare ${versusBare.bare.map(Math.round)} vs ours ${versusBare.batchingOn.map(Math.round)}; no drift ${versusNoDrift.batchingOnNoDrift.map(Math.round)} vs drift ${versusNoDrift.batchingOn.map(Math.round)}`,
);

const raw = {
  perRow: await rawRuns(example.bytes, features, 1, 2),
  perBatch64: await rawRuns(example.bytes, features, 64, 2),
};
const driftWork = await timeDriftMonitor(example.env.REFERENCE_PROFILE_URI, 200_000);
console.log(
  `raw session.run: 1 row ${Math.round(raw.perRow.runsPerSecond)} runs/s; 64 rows ${Math.round(raw.perBatch64.runsPerSecond)} runs/s (${Math.round(raw.perBatch64.rowsPerSecond)} rows/s)`,
);

// A CPU profile of the server (batching on, with drift) under concurrency 64.
const profileDir = join(work, 'profile');
mkdirSync(profileDir);
const profiled = await startProcess('server/src/main.ts', serverEnv({ BATCHING: 'on' }), '/v2/health/ready', [
  '--cpu-prof',
  `--cpu-prof-dir=${profileDir}`,
]);
await load(profiled.url + INFER, 16, 1, body);
const profiledLoad = await load(profiled.url + INFER, 64, SECONDS, body);
await profiled.stop();
const profile = summarizeProfile(profileDir, SECONDS);

const vsBare = median(versusBare.batchingOn) / median(versusBare.bare);
const driftCost = 1 - median(versusNoDrift.batchingOn) / median(versusNoDrift.batchingOnNoDrift);
const driftCpu = cpuPerRequest[pairName('batchingOnNoDrift', 'batchingOn', 64)];
const driftCpuCost = median(driftCpu.batchingOn) / median(driftCpu.batchingOnNoDrift) - 1;
const driftShare = driftWork ? driftWork.microseconds / median(driftCpu.batchingOn) : undefined;
const targets = {
  c64VsBare: { value: vsBare, target: '>= 0.85 (median of alternating rounds)', met: vsBare >= 0.85 },
  p99AtC16Ms: {
    value: median(p99AtC16.batchingOn),
    target: '<= 2 ms (median of alternating rounds)',
    met: median(p99AtC16.batchingOn) <= 2,
  },
  rssMb: {
    value: memory.batchingOn.peakRssMb,
    target: '<= 150 MB (peak RSS, batching on)',
    met: memory.batchingOn.peakRssMb <= 150,
  },
  driftCost: {
    value: driftCost,
    target: '<= 3% throughput at c=64 (median of alternating rounds)',
    met: driftCost <= 0.03,
  },
  driftCpuPerRequest: {
    value: driftCpuCost,
    target: '<= 3% more server CPU per request at c=64 (median of alternating rounds)',
    met: driftCpuCost <= 0.03,
  },
  driftShareOfServerCpu: {
    value: driftShare ?? null,
    target: '<= 3% of the server CPU per request (the monitor timed in-process, optimized code, / the server median)',
    met: driftShare !== undefined && driftShare <= 0.03,
  },
};
const failures = Object.values(http)
  .flatMap((byC) => Object.values(byC))
  .reduce((s, l) => s + l.non2xx + l.errors, 0);

const results = {
  generatedAt: new Date().toISOString(),
  machine: machineFacts(loadBefore, { compareNode: otherNode?.version ?? null }),
  note: 'Server and load generator are separate processes on the same 2-core machine, which is shared with other builds during this run: figures are noisy.',
  serverNodeOptions: SERVER_NODE_OPTIONS,
  exampleModel: example.source,
  answerBytes,
  secondsPerRun: SECONDS,
  endpoint: `POST ${INFER} with one row of ${features} FP32 features`,
  http,
  pairedAtC64: { seconds: PAIRED_SECONDS, versusBare, versusNoDrift },
  pairedP99AtC16: { seconds: PAIRED_SECONDS, p99Ms: p99AtC16 },
  nodeVersions: otherNode
    ? {
        ours: process.version,
        other: otherNode.version,
        pairedAtC64: versusOtherNode,
        pairedP99AtC16: p99VersusOtherNode,
      }
    : null,
  pairedCpuMicrosecondsPerRequest: cpuPerRequest,
  driftMonitorCpu: driftWork ?? null,
  raw,
  memory,
  targets,
  failedRequests: failures,
  profile: { requestsPerSecond: profiledLoad.requestsPerSecond, ...profile },
  durationSeconds: (Date.now() - started) / 1000,
};

const f0 = (n: number) => Math.round(n).toLocaleString('en-US');
const f2 = (n: number) => n.toFixed(2);
const f1 = (n: number) => n.toFixed(1);
const rows = configs.map(
  (c) =>
    `| ${c.label} | ${CONCURRENCY.map((k) => `${f0(http[c.key][k].requestsPerSecond)} / ${f2(http[c.key][k].p50Ms)} / ${f2(http[c.key][k].p99Ms)}`).join(' | ')} |`,
);
const md = `## Predictor server (\`server/bench/serve.bench.ts\`)

${results.note} Load average before/after: ${loadBefore.map(f2).join(', ')} / ${loadavg().map(f2).join(', ')}.
Model: ${example.source}. Endpoint: ${results.endpoint}; one answer is ${answerBytes.ours} bytes from our server and ${answerBytes.bare} from the bare route (same headers and lengths: the floor sends every byte the protocol asks of us). Server processes run with NODE_OPTIONS=${SERVER_NODE_OPTIONS}. ${SECONDS} s per run, autocannon in its own process; latencies are client-side.

| server | c=1 req/s / p50 ms / p99 ms | c=16 | c=64 |
|---|---|---|---|
${rows.join('\n')}

Raw \`session.run\` (onnxruntime-node, 1 intra-op thread, sequential): 1 row ${f0(raw.perRow.runsPerSecond)} runs/s (p50 ${f2(raw.perRow.p50Us)} µs, p99 ${f2(raw.perRow.p99Us)} µs); 64 rows ${f0(raw.perBatch64.runsPerSecond)} runs/s = ${f0(raw.perBatch64.rowsPerSecond)} rows/s (p50 ${f2(raw.perBatch64.p50Us)} µs, p99 ${f2(raw.perBatch64.p99Us)} µs).

Alternating ${PAIRED_SECONDS} s rounds at c=64 (req/s): bare ${versusBare.bare.map(f0).join(', ')} vs ours ${versusBare.batchingOn.map(f0).join(', ')}; without drift ${versusNoDrift.batchingOnNoDrift.map(f0).join(', ')} vs with drift ${versusNoDrift.batchingOn.map(f0).join(', ')}.\nAlternating ${PAIRED_SECONDS} s rounds at c=16 (p99 ms): bare ${p99AtC16.bare.map(f2).join(', ')} vs ours ${p99AtC16.batchingOn.map(f2).join(', ')}.
Server CPU per request in the same rounds (µs, from /proc): ${Object.entries(cpuPerRequest)
  .map(
    ([pair, byKey]) =>
      `${pair}: ${Object.entries(byKey)
        .map(([k, xs]) => `${k} ${xs.map(f1).join(', ')} (median ${f1(median(xs))})`)
        .join(' vs ')}`,
  )
  .join('; ')}.

${otherNode && versusOtherNode && p99VersusOtherNode ? `Node ${process.version} (the project's) vs ${otherNode.version} (the machine's), the same server in alternating ${PAIRED_SECONDS} s rounds: c=64 ${f0(median(versusOtherNode.batchingOn))} vs ${f0(median(versusOtherNode.batchingOnOtherNode))} req/s (ratio ${f2(median(versusOtherNode.batchingOn) / median(versusOtherNode.batchingOnOtherNode))}; rounds ${versusOtherNode.batchingOn.map(f0).join(', ')} vs ${versusOtherNode.batchingOnOtherNode.map(f0).join(', ')}); p99 at c=16 ${f2(median(p99VersusOtherNode.batchingOn))} vs ${f2(median(p99VersusOtherNode.batchingOnOtherNode))} ms; peak RSS ${f0(memory.batchingOn.peakRssMb)} vs ${f0(memory.batchingOnOtherNode.peakRssMb)} MB.\n\n` : ''}Resident memory after the runs (peak): ${Object.entries(
  memory,
)
  .map(([k, m]) => `${k} ${f0(m.rssMb)} MB (${f0(m.peakRssMb)} MB)`)
  .join('; ')}.
Failed requests across all runs: ${failures}.

| target | measured | met |
|---|---|---|
| c=64 rate vs bare fastify ${targets.c64VsBare.target} | ${f2(targets.c64VsBare.value)} | ${targets.c64VsBare.met ? 'yes' : `no, short by ${f2(0.85 - targets.c64VsBare.value)}`} |
| p99 at c=16 ${targets.p99AtC16Ms.target} | ${f2(targets.p99AtC16Ms.value)} ms | ${targets.p99AtC16Ms.met ? 'yes' : `no, over by ${f2(targets.p99AtC16Ms.value - 2)} ms`} |
| resident memory ${targets.rssMb.target} | ${f0(targets.rssMb.value)} MB | ${targets.rssMb.met ? 'yes' : `no, over by ${f0(targets.rssMb.value - 150)} MB`} |
| drift accounting cost ${targets.driftCost.target} | ${(100 * targets.driftCost.value).toFixed(1)}% | ${targets.driftCost.met ? 'yes' : `no, over by ${(100 * targets.driftCost.value - 3).toFixed(1)} points`} |
| drift accounting cost ${targets.driftShareOfServerCpu.target} | ${driftShare === undefined ? 'no profile' : `${(100 * driftShare).toFixed(2)}% (${f2(driftWork!.microseconds)} µs of ${f1(median(driftCpu.batchingOn))} µs; ${driftWork!.windows} windows evaluated; ${f2(driftWork!.coldMicroseconds)} µs in a first monitor before V8 optimized the code)`} | ${targets.driftShareOfServerCpu.met ? 'yes' : 'no'} |
| drift accounting cost ${targets.driftCpuPerRequest.target} | ${(100 * targets.driftCpuPerRequest.value).toFixed(1)}% | ${targets.driftCpuPerRequest.met ? 'yes' : `no, over by ${(100 * targets.driftCpuPerRequest.value - 3).toFixed(1)} points`} |

CPU profile of the server (batching on, drift on, c=64, ${f0(profiledLoad.requestsPerSecond)} req/s while profiled; samples of the ${SECONDS} s under load only), self time by area:
${Object.entries(profile.byArea)
  .sort((a, b) => b[1] - a[1])
  .map(([area, pct]) => `${area} ${pct.toFixed(1)}%`)
  .join('; ')}.

Top functions by self time:

| self % | function |
|---|---|
${profile.top.map((t) => `| ${t.selfPct.toFixed(1)} | \`${t.fn}\` |`).join('\n')}
`;

const out = join(root, 'bench/results');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'server.json'), `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(join(out, 'server.md'), md);
rmSync(work, { recursive: true, force: true });
console.log(`\n${md}`);
console.log(`bench took ${results.durationSeconds.toFixed(0)} s; wrote bench/results/server.json and server.md`);
