/**
 * Serving peers benchmark: `npm run bench -- peers` (with drift-peers.bench.ts), or `npx tsx server/bench/peers.bench.ts`.
 * Our predictor beside the servers a user would pick instead, on the same model, machine and run:
 *   - KServe's Python model server (kserve 0.21): a kserve.Model running the same model.onnx with onnxruntime
 *     (peers/kserve_onnx_model.py), started with kserve.ModelServer; defaults, then --workers <cores>;
 *   - MLServer 1.7 with mlserver-sklearn: a scikit-learn LogisticRegression with the ONNX file's weights
 *     (peers/make_sklearn_model.py), `mlserver start`; defaults, then parallel_workers <cores>;
 *   - our predictor as server/bench starts it (compiled as Dockerfile.server does, batching on, drift accounting on):
 *     1 worker, then WORKERS unset (its default: one worker per core);
 *   - the floor: bare fastify with no model (peers/fastify-floor.ts), JSON-parsing the same request and answering
 *     what our predictor answered to it, byte for byte. Where the floor itself cannot reach 10× the best peer on
 *     this machine, the target is judged on our ratio to the floor (the table says so).
 * The same Open Inference Protocol request (1 row, and 100 rows; the answers checked equal within 1e-6 first) at
 * concurrency 1, 16, 64 from autocannon in its own process: requests/s, p50/p99 (client side) and server CPU per
 * request (every process of the server's tree, from /proc). Every combination runs once per round, in alternating
 * order, and the figures are medians of the rounds, so load from elsewhere on the shared machine falls on all alike.
 * Python environments: peers/venv.ts (pinned, cached in ~/.cache/loopline). Writes bench/results/peers.{json,md}.
 */
// bench: no cluster
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateCreditRisk } from '../../examples/trainer/src/dataset.ts';
import { freePort } from '../../test/support/local.ts';
import { trainExample } from './peers/example.ts';
import { killTree, startPeer, treeCpuSeconds, treeMemoryMb } from './peers/processes.ts';
import { peerPython, pinnedVersion } from './peers/venv.ts';
import { compileLikeDockerfileServer, type Load, load, startCompiled } from './processes.ts';
import { machineFacts } from '../../test/support/machine.ts';
import { median } from '../../test/support/figures.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONCURRENCY = [1, 16, 64];
const ROWS = [1, 100];
const CORES = cpus().length;
const INFER = '/v2/models/credit/infer';
const TOLERANCE = 1e-6;

const uptime = () => spawnSync('uptime', { encoding: 'utf8' }).stdout.trim();
const uptimeBefore = uptime();
const loadBefore = loadavg();
const started = Date.now();
const work = mkdtempSync(join(tmpdir(), 'loopline-bench-peers-'));

console.log(`peers: ${uptimeBefore}`);
const example = trainExample(join(work, 'trainer'));
const python = { kserve: peerPython('kserve'), mlserver: peerPython('mlserver') };
const versions = { kserve: pinnedVersion('kserve'), mlserver: pinnedVersion('mlserver'), node: process.version };

// ---- the servers ----
interface Running {
  key: string;
  label: string;
  peer: 'loopline' | 'floor' | 'kserve' | 'mlserver';
  settings: string;
  url: string;
  pid: number;
  /** The output tensor this server answers the probability in, and how to read row i's probability from its data. */
  output: string;
  probability: (data: number[], row: number) => number;
  stop(): Promise<void>;
}
const own = (data: number[], row: number) => data[row];
const running: Running[] = [];
// A failed run (a peer that will not start, answers that differ) leaves none of the servers it started behind.
let stopped = false;
process.on('exit', () => {
  if (!stopped) for (const server of running) killTree(server.pid);
});

console.log('compiling our server as Dockerfile.server does');
compileLikeDockerfileServer();
const ourEnv = { MODEL_NAME: 'credit', MODEL_VERSION: '1', ...example.env, BATCHING: 'on' };
const nodeOptions = '--max-semi-space-size=4';
for (const workers of [1, undefined]) {
  const server = await startCompiled(
    'server/src/main.ts',
    workers ? { ...ourEnv, WORKERS: String(workers) } : ourEnv,
    '/v2/health/ready',
    { nodeOptions },
  );
  const expected = workers ?? CORES;
  // Every worker ready, not only the first to answer.
  for (;;) {
    const count = /^predictor_workers (\d+)/m.exec(await (await fetch(`${server.url}/metrics`)).text());
    if (expected === 1 || Number(count?.[1]) === expected) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  running.push({
    key: workers ? 'loopline-1' : 'loopline-default',
    label: workers ? 'Loopline, 1 worker' : `Loopline, default (WORKERS unset: ${CORES})`,
    peer: 'loopline',
    settings: workers ? 'WORKERS=1' : `WORKERS unset (one per core: ${CORES})`,
    url: server.url,
    pid: server.child.pid!,
    output: 'probability',
    probability: own,
    stop: server.stop,
  });
}

// The floor answers, byte for byte, what our predictor answered to the same request.
const rowsOf = (n: number) =>
  n === 1 ? [[94.2, 0.163, 22, 0.197, 0]] : generateCreditRisk({ rows: n, seed: 2112, shift: 0 }).x;
const bodyFor = (server: { output: string }, rows: number[][]) =>
  JSON.stringify({
    inputs: [{ name: 'input', shape: [rows.length, rows[0].length], datatype: 'FP32', data: rows.flat() }],
    outputs: [{ name: server.output }],
  });
const floorAnswers: Record<string, unknown> = {};
for (const n of ROWS) {
  const response = await fetch(running[0].url + INFER, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: bodyFor({ output: 'probability' }, rowsOf(n)),
  });
  floorAnswers[n] = await response.json();
}
writeFileSync(join(work, 'floor-answers.json'), JSON.stringify(floorAnswers));
{
  const server = await startCompiled(
    'server/bench/peers/fastify-floor.ts',
    { ANSWERS: join(work, 'floor-answers.json') },
    '/',
    {
      nodeOptions,
    },
  );
  running.push({
    key: 'floor',
    label: 'bare fastify (floor: no model)',
    peer: 'floor',
    settings: "no model, no Loopline logic: parses the same body, answers our answer's bytes",
    url: server.url,
    pid: server.child.pid!,
    output: 'probability',
    probability: own,
    stop: server.stop,
  });
}

for (const workers of [undefined, CORES]) {
  const [port, grpcPort] = [await freePort(), await freePort()];
  const args = [
    'server/bench/peers/kserve_onnx_model.py',
    '--model_name',
    'credit',
    '--model_path',
    example.modelPath,
    '--http_port',
    String(port),
    '--grpc_port',
    String(grpcPort),
    ...(workers ? ['--workers', String(workers)] : []),
  ];
  const url = `http://127.0.0.1:${port}`;
  const server = await startPeer(python.kserve, args, {
    cwd: root,
    logPath: join(work, `kserve-${workers ?? 'default'}.log`),
    url,
    readyPath: '/v2/models/credit/ready',
  });
  running.push({
    key: workers ? `kserve-${workers}` : 'kserve-default',
    label: workers ? `KServe ${versions.kserve}, --workers ${workers}` : `KServe ${versions.kserve}, defaults`,
    peer: 'kserve',
    settings: workers
      ? `--workers ${workers} (uvicorn worker processes, one per core)`
      : 'defaults (1 uvicorn worker; gRPC server on; onnxruntime session defaults)',
    url,
    pid: server.child.pid!,
    output: 'probability',
    probability: own,
    stop: server.stop,
  });
}

const mlserverModel = join(work, 'mlserver-model');
const made = spawnSync(
  python.mlserver,
  [
    'server/bench/peers/make_sklearn_model.py',
    mlserverModel,
    JSON.stringify({ weights: example.weights, bias: example.bias }),
  ],
  { cwd: root, encoding: 'utf8' },
);
if (made.status !== 0) throw new Error(`make_sklearn_model.py failed: ${made.stderr}`);
for (const workers of [undefined, CORES]) {
  const [port, grpcPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const dir = join(work, `mlserver-${workers ?? 'default'}`);
  mkdirSync(join(dir, 'credit'), { recursive: true });
  for (const file of ['model.joblib', 'model-settings.json'])
    writeFileSync(join(dir, 'credit', file), readFileSync(join(mlserverModel, file)));
  writeFileSync(
    join(dir, 'settings.json'),
    JSON.stringify({
      http_port: port,
      grpc_port: grpcPort,
      metrics_port: metricsPort,
      ...(workers ? { parallel_workers: workers } : {}),
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const server = await startPeer(join(python.mlserver, '../mlserver'), ['start', dir], {
    cwd: dir,
    logPath: join(work, `mlserver-${workers ?? 'default'}.log`),
    url,
    readyPath: '/v2/models/credit/ready',
  });
  running.push({
    key: workers ? `mlserver-${workers}` : 'mlserver-default',
    label: workers
      ? `MLServer ${versions.mlserver}, parallel_workers ${workers}`
      : `MLServer ${versions.mlserver}, defaults`,
    peer: 'mlserver',
    settings: workers
      ? `parallel_workers ${workers} (inference pool, one process per core)`
      : 'defaults (parallel_workers 1: inference in one pool process beside the HTTP one)',
    url,
    pid: server.child.pid!,
    output: 'predict_proba',
    probability: (data, row) => data[row * 2 + 1],
    stop: server.stop,
  });
}

// ---- the answers, checked before anything is timed ----
/** sigmoid(x · w + b) in float64 from the float32 inputs the server receives. */
const expected = (row: number[]) =>
  1 / (1 + Math.exp(-(row.reduce((s, v, i) => s + Math.fround(v) * example.weights[i], 0) + example.bias)));
const answerCheck: Record<string, { rows: number; maxDifference: number; bytes: number }[]> = {};
for (const server of running) {
  answerCheck[server.key] = [];
  for (const n of ROWS) {
    const rows = rowsOf(n);
    const response = await fetch(server.url + INFER, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: bodyFor(server, rows),
    });
    const text = await response.text();
    if (response.status !== 200) throw new Error(`${server.label} answered ${response.status}: ${text.slice(0, 500)}`);
    const data = (JSON.parse(text).outputs as Array<{ name: string; data: number[] }>).find(
      (o) => o.name === server.output,
    )!.data;
    const maxDifference = Math.max(...rows.map((row, i) => Math.abs(server.probability(data, i) - expected(row))));
    if (!(maxDifference <= TOLERANCE))
      throw new Error(
        `${server.label}: answers differ from sigmoid(x·w+b) by up to ${maxDifference} on ${n} rows (tolerance ${TOLERANCE})`,
      );
    answerCheck[server.key].push({ rows: n, maxDifference, bytes: Buffer.byteLength(text) });
  }
}
for (const n of ROWS) {
  const bytes = (k: string) => answerCheck[k].find((c) => c.rows === n)!.bytes;
  if (bytes('floor') !== bytes('loopline-1'))
    throw new Error(`${n} rows: the floor answers ${bytes('floor')} bytes, our predictor ${bytes('loopline-1')}`);
}
console.log(
  `answers equal within ${TOLERANCE}: ${Object.entries(answerCheck)
    .map(([k, v]) => `${k} ${v.map((c) => c.maxDifference.toExponential(1)).join('/')}`)
    .join(', ')}`,
);

// ---- load ----
interface Run extends Load {
  cpuMicrosecondsPerRequest: number;
}
const key = (server: string, rows: number, c: number) => `${server} ${rows} c=${c}`;
const runs: Record<string, Run[]> = {};
const combos = ROWS.flatMap((rows) => CONCURRENCY.map((c) => ({ rows, c })));
for (let round = 0; round < ROUNDS; round++) {
  for (const { rows, c } of combos) {
    for (const server of round % 2 ? [...running].reverse() : running) {
      const body = bodyFor(server, rowsOf(rows));
      const before = treeCpuSeconds(server.pid);
      const result = await load(server.url + INFER, c, SECONDS, body);
      // The CPU reading spans autocannon's untimed warm-up second too, so its requests are counted with the timed ones.
      const cpu = ((treeCpuSeconds(server.pid) - before) * 1e6) / Math.max(1, result.requests + result.warmupRequests);
      (runs[key(server.key, rows, c)] ??= []).push({ ...result, cpuMicrosecondsPerRequest: cpu });
      console.log(
        `round ${round + 1} ${server.label.padEnd(42)} ${String(rows).padStart(3)} rows c=${String(c).padStart(2)}  ${Math.round(result.requestsPerSecond)} req/s  p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms  ${cpu.toFixed(0)} µs CPU/req`,
      );
    }
  }
}
const memory = Object.fromEntries(running.map((s) => [s.key, treeMemoryMb(s.pid)]));
for (const server of running) await server.stop();
stopped = true;
const uptimeAfter = uptime();
console.log(`peers: ${uptimeAfter}`);

// ---- figures ----
const med = (k: string, field: keyof Run) => median(runs[k].map((r) => r[field]));
const failures = Object.values(runs)
  .flat()
  .reduce((n, r) => n + r.non2xx + r.errors, 0);
/** Per peer and size, the configuration with the most requests/s at c=64. */
const best = (peer: Running['peer'], rows: number) =>
  running
    .filter((s) => s.peer === peer)
    .reduce((a, b) =>
      med(key(b.key, rows, 64), 'requestsPerSecond') > med(key(a.key, rows, 64), 'requestsPerSecond') ? b : a,
    );
const targets = ROWS.map((rows) => {
  const ours = best('loopline', rows);
  const peers = (['kserve', 'mlserver'] as const).map((p) => best(p, rows));
  const bestPeer = peers.reduce((a, b) =>
    med(key(b.key, rows, 64), 'requestsPerSecond') > med(key(a.key, rows, 64), 'requestsPerSecond') ? b : a,
  );
  const ratio =
    med(key(ours.key, rows, 64), 'requestsPerSecond') / med(key(bestPeer.key, rows, 64), 'requestsPerSecond');
  const oursP99 = med(key(ours.key, rows, 64), 'p99Ms');
  const p99Below = peers.every((p) => oursP99 < med(key(p.key, rows, 64), 'p99Ms'));
  const floorRps = med(key('floor', rows, 64), 'requestsPerSecond');
  const floorMultiple = floorRps / med(key(bestPeer.key, rows, 64), 'requestsPerSecond');
  const ofFloor = med(key(ours.key, rows, 64), 'requestsPerSecond') / floorRps;
  return {
    floorRequestsPerSecond: floorRps,
    /** The floor's own multiple of the best peer: below 10, no server can meet the target here. */
    floorMultiple,
    /** Ours as a share of the floor: the figure to judge when the floor cannot reach 10×. */
    ofFloor,
    floorReaches: floorMultiple >= 10,
    rows,
    ours: ours.key,
    bestPeer: bestPeer.key,
    ratio,
    oursP99Ms: oursP99,
    peersP99Ms: Object.fromEntries(peers.map((p) => [p.key, med(key(p.key, rows, 64), 'p99Ms')])),
    met: ratio >= 10 && p99Below,
    ratioMet: ratio >= 10,
    p99Below,
  };
});
const results = {
  generatedAt: new Date().toISOString(),
  machine: machineFacts(loadBefore, { uptimeBefore, uptimeAfter }),
  versions: { ...versions, requirements: 'server/bench/peers/{kserve,mlserver}.requirements.txt' },
  servers: running.map(({ key, label, settings }) => ({ key, label, settings })),
  secondsPerRun: SECONDS,
  rounds: ROUNDS,
  answerCheck,
  medians: Object.fromEntries(
    Object.keys(runs).map((k) => [
      k,
      {
        requestsPerSecond: med(k, 'requestsPerSecond'),
        p50Ms: med(k, 'p50Ms'),
        p99Ms: med(k, 'p99Ms'),
        cpuMicrosecondsPerRequest: med(k, 'cpuMicrosecondsPerRequest'),
      },
    ]),
  ),
  runs,
  memory,
  targets,
  failedRequests: failures,
  durationSeconds: (Date.now() - started) / 1000,
};

const f0 = (n: number) => Math.round(n).toLocaleString('en-US');
const f2 = (n: number) => n.toFixed(2);
const table = (rows: number) =>
  `| server | settings | ${CONCURRENCY.map((c) => `c=${c}`).join(' | ')} |\n|---|---|${CONCURRENCY.map(() => '---').join('|')}|\n${running
    .map(
      (s) =>
        `| ${s.label} | ${s.settings} | ${CONCURRENCY.map((c) => {
          const k = key(s.key, rows, c);
          return `${f0(med(k, 'requestsPerSecond'))} / ${f2(med(k, 'p50Ms'))} / ${f2(med(k, 'p99Ms'))} / ${f0(med(k, 'cpuMicrosecondsPerRequest'))}`;
        }).join(' | ')} |`,
    )
    .join('\n')}`;
const label = (k: string) => running.find((s) => s.key === k)!.label;
const md = `## Serving peers: KServe and MLServer (\`server/bench/peers.bench.ts\`)

\`npm run bench -- peers\`. Same machine (${CORES} cores, shared with other work), same run, same model (the example trainer's
logistic regression: \`model.onnx\` for our predictor and KServe; for MLServer a scikit-learn LogisticRegression
holding the ONNX file's float32 weights). Load before: \`${uptimeBefore}\`; after: \`${uptimeAfter}\`.
Servers, load generator (autocannon, own process) and their processes all share the cores, unpinned.
One Open Inference Protocol request, \`POST ${INFER}\` with \`inputs: [{name: "input", datatype: "FP32", shape: [rows, 5]}]\`,
naming the output each server answers the probability in (\`probability\`; MLServer's sklearn runtime: \`predict_proba\`).
Answers checked equal to sigmoid(x·w+b) within ${TOLERANCE} on both sizes before timing (largest difference:
${Object.entries(answerCheck)
  .map(([k, v]) => `${label(k)} ${v.map((c) => c.maxDifference.toExponential(1)).join(' / ')}`)
  .join('; ')}).
${SECONDS} s per run after 1 s of untimed load, ${ROUNDS} rounds in alternating order; medians.
Cells: requests/s / p50 ms / p99 ms (client side) / server CPU µs per request (every process of the server).
The floor is bare fastify with no model and no Loopline logic (\`server/bench/peers/fastify-floor.ts\`): it JSON-parses the same
request and answers, byte for byte, what our predictor answered to it (${ROWS.map((n) => `${n} row${n > 1 ? 's' : ''}: ${f0(answerCheck.floor.find((c) => c.rows === n)!.bytes)} B`).join(', ')}), serialized per request.
KServe's predictor opens the session with onnxruntime's defaults (an intra-op pool of one thread per core, which spins while
waiting), as a custom predictor does; ours runs one intra-op thread per worker. Versions: kserve ${versions.kserve}, mlserver ${versions.mlserver} + mlserver-sklearn, Python 3.11, all pinned in
\`server/bench/peers/*.requirements.txt\`; our server on Node ${process.version}, batching and drift accounting on.

### 1 row per request

${table(1)}

### 100 rows per request

${table(100)}

Resident memory after the runs, whole process tree (peak of each process, summed): ${running.map((s) => `${s.label} ${f0(memory[s.key].rssMb)} MB (${f0(memory[s.key].peakRssMb)} MB)`).join('; ')}.
Failed requests across all runs: ${failures}.

| target (c=64) | rows | measured | met |
|---|---|---|---|
${targets
  .map(
    (t) =>
      `| the floor's own multiple of the best-configured peer | ${t.rows} | bare fastify ${f0(t.floorRequestsPerSecond)} req/s = ${t.floorMultiple.toFixed(1)}× ${label(t.bestPeer)}; ours = ${(100 * t.ofFloor).toFixed(0)}% of the floor | ${t.floorReaches ? 'the floor reaches 10×: judged on the absolute figure' : `the floor cannot reach 10× on this machine: judged on the ratio, ours at ${(100 * t.ofFloor).toFixed(0)}% of the floor`} |`,
  )
  .join('\n')}
${targets
  .map(
    (t) =>
      `| ours ≥ 10× the best-configured peer's requests/s, p99 below both | ${t.rows} | ${label(t.ours)} ${f0(med(key(t.ours, t.rows, 64), 'requestsPerSecond'))} req/s = ${t.ratio.toFixed(1)}× ${label(t.bestPeer)} (${f0(med(key(t.bestPeer, t.rows, 64), 'requestsPerSecond'))}); p99 ${f2(t.oursP99Ms)} ms vs ${Object.entries(
        t.peersP99Ms,
      )
        .map(([k, v]) => `${label(k)} ${f2(v)}`)
        .join(
          ', ',
        )} ms | ${t.met ? 'yes' : `no (${[t.ratioMet ? '' : `${t.ratio.toFixed(1)}× < 10×`, t.p99Below ? '' : 'p99 not below both'].filter(Boolean).join('; ')})`} |`,
  )
  .join('\n')}
`;
const out = join(root, 'bench/results');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'peers.json'), `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(join(out, 'peers.md'), md);
rmSync(work, { recursive: true, force: true });
console.log(`\n${md}`);
console.log(`bench took ${results.durationSeconds.toFixed(0)} s; wrote bench/results/peers.json and peers.md`);
