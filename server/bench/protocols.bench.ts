import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ort from 'onnxruntime-node';
import { buildLogisticRegressionModel } from '../../examples/trainer/src/onnx.ts';
import { sha256Digest } from '../src/runtime/artifact.ts';
import { ensureGhz, GHZ_VERSION } from './ghz.ts';
import { compileLikeDockerfileServer, runLoadGenerator, startCompiled, type Server } from './processes.ts';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { LoadOptions, LoadResult } from './protocol-load.ts';
import { answerKey, grpcRequest, restRequest, type FloorAnswers, type Kind } from './protocol-requests.ts';
import { machineFacts } from '../../test/support/machine.ts';
import { median } from '../../test/support/figures.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const NODE_OPTIONS = '--max-semi-space-size=4';
const FEATURES = 5;
const KINDS: Kind[] = ['rest-json', 'rest-binary', 'grpc-typed', 'grpc-raw'];
const SIZES = [
  { rows: 1, connections: 16 },
  { rows: 1000, connections: 4 },
];
const WORKERS = [1, 2];
// gRPC load from ghz (Go) unless BENCH_GRPC_CLIENT=grpc-js, or no Go toolchain to build it.
const GHZ = process.env.BENCH_GRPC_CLIENT === 'grpc-js' ? undefined : ensureGhz();
const GRPC_CLIENT = GHZ ? `ghz ${GHZ_VERSION} (Go)` : 'grpc-js (Node, warmed by 3000 calls)';

const work = mkdtempSync(join(tmpdir(), 'loopline-bench-protocols-'));
const bytes = buildLogisticRegressionModel({ weights: [0.02, 1.5, -0.01, 2, 0.3], bias: -1 });
const modelPath = join(work, 'model.onnx');
writeFileSync(modelPath, bytes);
const signature = {
  inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, FEATURES] }],
  outputs: [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }],
};

console.log('compiling the server as Dockerfile.server does');
compileLikeDockerfileServer();
const servers: Record<number, Server> = {};
for (const workers of WORKERS) {
  servers[workers] = await startCompiled(
    'server/src/main.ts',
    {
      WORKERS: String(workers),
      MODEL_NAME: 'credit',
      MODEL_VERSION: '1',
      MODEL_URI: pathToFileURL(modelPath).href,
      MODEL_DIGEST: sha256Digest(bytes),
      MODEL_SIGNATURE: JSON.stringify(signature),
    },
    '/v2/health/ready',
    { nodeOptions: NODE_OPTIONS },
  );
  // Every worker ready, not just the first to answer.
  while (
    !/^predictor_workers (\d+)/m.exec(await (await fetch(`${servers[workers].url}/metrics`)).text()) ||
    Number(/^predictor_workers (\d+)/m.exec(await (await fetch(`${servers[workers].url}/metrics`)).text())![1]) !==
      workers
  ) {
    await new Promise((r) => setTimeout(r, 200));
  }
}

// ---- the floor: what the predictor answered, replayed by bare fastify and bare grpc-js (protocol-floor.ts) ----
const FLOOR = 0;
{
  const answers: FloorAnswers = { rest: {}, grpc: {} };
  for (const { rows } of SIZES) {
    for (const kind of ['rest-json', 'rest-binary'] as const) {
      const { body, headers } = restRequest(kind, rows, FEATURES);
      const response = await fetch(`${servers[1].url}/v2/models/credit/infer`, {
        method: 'POST',
        body: typeof body === 'string' ? body : new Uint8Array(body),
        headers,
      });
      if (!response.ok) throw new Error(`capturing ${kind} ${rows}: ${response.status} ${await response.text()}`);
      const kept: Record<string, string> = {};
      for (const name of ['x-request-id', 'x-model-version', 'inference-header-content-length']) {
        const value = response.headers.get(name);
        if (value !== null) kept[name] = value;
      }
      answers.rest[answerKey(kind, rows)] = {
        contentType: response.headers.get('content-type') ?? 'application/json',
        headers: kept,
        bodyBase64: Buffer.from(await response.arrayBuffer()).toString('base64'),
      };
    }
  }
  const definition = protoLoader.loadSync(join(root, 'server/src/protocol/grpc_predict_v2.proto'), {
    keepCase: true,
    longs: String,
    enums: String,
    oneofs: true,
  });
  const Service = (grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject)
    .GRPCInferenceService as grpc.ServiceClientConstructor;
  const client = new Service(`127.0.0.1:${servers[1].grpcPort}`, grpc.credentials.createInsecure());
  for (const { rows } of SIZES) {
    for (const kind of ['grpc-typed', 'grpc-raw'] as const) {
      const answer = await new Promise<{ raw_output_contents?: Buffer[] }>((resolve, reject) =>
        (client as any).ModelInfer(grpcRequest(kind, rows, FEATURES), (error: Error | null, value: any) =>
          error ? reject(error) : resolve(value),
        ),
      );
      answers.grpc[answerKey(kind, rows)] = answer.raw_output_contents?.length
        ? { ...answer, raw_output_contents: answer.raw_output_contents.map((b) => b.toString('base64')) }
        : answer;
    }
  }
  client.close();
  const answersPath = join(work, 'answers.json');
  writeFileSync(answersPath, JSON.stringify(answers));
  servers[FLOOR] = await startCompiled('server/bench/protocol-floor.ts', { ANSWERS: answersPath }, '/', {
    nodeOptions: NODE_OPTIONS,
  });
}

function load(options: LoadOptions): Promise<LoadResult> {
  return runLoadGenerator<LoadResult>('server/bench/protocol-load.ts', [JSON.stringify({ ...options, ghz: GHZ })]);
}

const key = (workers: number, kind: Kind, rows: number) => `${workers}w ${kind} ${rows}`;
const combos = [...WORKERS, FLOOR].flatMap((workers) =>
  KINDS.flatMap((kind) => SIZES.map((size) => ({ workers, kind, ...size }))),
);
const runs: Record<string, LoadResult[]> = {};
const started = Date.now();
const loadBefore = loadavg();
for (const c of combos)
  await load({
    kind: c.kind,
    url: servers[c.workers].url,
    grpcPort: servers[c.workers].grpcPort,
    connections: c.connections,
    seconds: 1,
    rows: c.rows,
    features: FEATURES,
  });
for (let round = 0; round < ROUNDS; round++) {
  for (const c of round % 2 ? [...combos].reverse() : combos) {
    const result = await load({
      kind: c.kind,
      url: servers[c.workers].url,
      grpcPort: servers[c.workers].grpcPort,
      connections: c.connections,
      seconds: SECONDS,
      rows: c.rows,
      features: FEATURES,
    });
    (runs[key(c.workers, c.kind, c.rows)] ??= []).push(result);
    console.log(
      `round ${round + 1} ${key(c.workers, c.kind, c.rows).padEnd(22)} c=${String(c.connections).padStart(2)}  ${Math.round(result.rowsPerSecond)} rows/s  p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms  failed ${result.failures}`,
    );
  }
}
for (const server of Object.values(servers)) await server.stop();

// ---- raw session.run on the same batches, sequential, one intra-op thread (as each worker's session) ----
async function rawRuns(
  rows: number,
  seconds: number,
): Promise<{ rowsPerSecond: number; p50Ms: number; p99Ms: number }> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const values = Float32Array.from({ length: rows * FEATURES }, (_, i) => Math.round(((i * 7919) % 1000) - 500) / 100);
  const input = new ort.Tensor('float32', values, [rows, FEATURES]);
  for (let i = 0; i < 200; i++) await session.run({ input });
  const times: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const t = performance.now();
    await session.run({ input });
    times.push(performance.now() - t);
  }
  await session.release();
  times.sort((a, b) => a - b);
  return {
    rowsPerSecond: (times.length * rows) / seconds,
    p50Ms: times[Math.floor(times.length / 2)],
    p99Ms: times[Math.floor(times.length * 0.99)],
  };
}
const raw: Record<number, Array<{ rowsPerSecond: number; p50Ms: number; p99Ms: number }>> = { 1: [], 1000: [] };
for (let round = 0; round < 3; round++) for (const { rows } of SIZES) raw[rows].push(await rawRuns(rows, SECONDS));

const med = (k: string, field: Exclude<keyof LoadResult, 'clientCpuUsPerRequest'>) =>
  median(runs[k].map((r) => r[field]));
const clientCpu = (k: string) =>
  runs[k][0]?.clientCpuUsPerRequest === undefined ? undefined : median(runs[k].map((r) => r.clientCpuUsPerRequest!));
const rawMedian = (rows: number) => ({
  rowsPerSecond: median(raw[rows].map((r) => r.rowsPerSecond)),
  p50Ms: median(raw[rows].map((r) => r.p50Ms)),
  p99Ms: median(raw[rows].map((r) => r.p99Ms)),
});

const best1000 = Math.max(
  med(key(1, 'rest-binary', 1000), 'rowsPerSecond'),
  med(key(1, 'grpc-raw', 1000), 'rowsPerSecond'),
);
const rawBatch = rawMedian(1000).rowsPerSecond;
const grpcP99 = Math.min(med(key(1, 'grpc-typed', 1), 'p99Ms'), med(key(1, 'grpc-raw', 1), 'p99Ms'));
const restP99 = med(key(1, 'rest-json', 1), 'p99Ms');
const floor1000 = Math.max(
  med(key(FLOOR, 'rest-binary', 1000), 'rowsPerSecond'),
  med(key(FLOOR, 'grpc-raw', 1000), 'rowsPerSecond'),
);
const floorGrpcP99 = Math.min(med(key(FLOOR, 'grpc-typed', 1), 'p99Ms'), med(key(FLOOR, 'grpc-raw', 1), 'p99Ms'));
const floorRestP99 = med(key(FLOOR, 'rest-json', 1), 'p99Ms');
const targets = {
  binary1000VsRaw: {
    value: best1000 / rawBatch,
    target: '>= 0.5: 1000-row binary REST or gRPC raw rows/s over raw session.run rows/s (1 worker, medians)',
    met: best1000 / rawBatch >= 0.5,
    floor: floor1000 / rawBatch,
    vsFloor: best1000 / floor1000,
  },
  grpcP99VsRest: {
    value: grpcP99,
    rest: restP99,
    target: 'gRPC 1-row p99 at c=16 <= REST JSON 1-row p99 (1 worker, medians)',
    met: grpcP99 <= restP99,
    floor: floorGrpcP99,
    floorRest: floorRestP99,
  },
};
const failures = Object.values(runs)
  .flat()
  .reduce((n, r) => n + r.failures, 0);
const results = {
  generatedAt: new Date().toISOString(),
  machine: machineFacts(loadBefore),
  grpcClient: GRPC_CLIENT,
  note: "Load generator and server processes share the machine's 2 cores, unpinned (the load generator is one process; a 2-worker server is 3 processes: primary + 2 workers); the machine is shared with other builds, so figures are noisy. Medians of alternating rounds.",
  model: `logistic regression, ${FEATURES} FP32 features, batching on, no drift profile`,
  secondsPerRun: SECONDS,
  rounds: ROUNDS,
  medians: Object.fromEntries(
    Object.keys(runs).map((k) => [
      k,
      {
        rowsPerSecond: med(k, 'rowsPerSecond'),
        requestsPerSecond: med(k, 'requestsPerSecond'),
        p50Ms: med(k, 'p50Ms'),
        p99Ms: med(k, 'p99Ms'),
        ...(clientCpu(k) !== undefined ? { clientCpuUsPerRequest: clientCpu(k) } : {}),
      },
    ]),
  ),
  runs,
  rawSessionRun: { 1: rawMedian(1), 1000: rawMedian(1000), runs: raw },
  targets,
  failedRequests: failures,
  durationSeconds: (Date.now() - started) / 1000,
};

const f0 = (n: number) => Math.round(n).toLocaleString('en-US');
const f2 = (n: number) => n.toFixed(2);
const row = (kind: Kind, rows: number) =>
  `| ${kind} | ${rows} | ${WORKERS.map((w) => {
    const k = key(w, kind, rows);
    return `${f0(med(k, 'rowsPerSecond'))} / ${f2(med(k, 'p50Ms'))} / ${f2(med(k, 'p99Ms'))}`;
  }).join(
    ' | ',
  )} | ${f2(med(key(2, kind, rows), 'rowsPerSecond') / med(key(1, kind, rows), 'rowsPerSecond'))} | ${(() => {
    const k = key(FLOOR, kind, rows);
    return `${f0(med(k, 'rowsPerSecond'))} / ${f2(med(k, 'p50Ms'))} / ${f2(med(k, 'p99Ms'))}`;
  })()} | ${f2(med(key(1, kind, rows), 'rowsPerSecond') / med(key(FLOOR, kind, rows), 'rowsPerSecond'))} |`;
const md = `## Serving protocols (\`server/bench/protocols.bench.ts\`)

${results.note} Load average before/after: ${loadBefore.map(f2).join(', ')} / ${loadavg().map(f2).join(', ')}.
Model: ${results.model}. ${SECONDS} s per run after 1 s of untimed load${GHZ ? '' : ' (gRPC: at least 1 s and 3000 calls, at most 8 s)'}, ${ROUNDS} rounds; 1-row requests with 16 in flight, 1000-row requests with 4; latencies client-side.

| protocol | rows per request | 1 worker: rows/s / p50 ms / p99 ms | 2 workers | 2 workers / 1 worker (rows/s) | floor: no model, same answer | 1 worker / floor (rows/s) |
|---|---|---|---|---|---|---|
${KINDS.flatMap((kind) => SIZES.map((s) => row(kind, s.rows))).join('\n')}
| raw \`session.run\` (sequential, 1 thread) | 1 | ${f0(rawMedian(1).rowsPerSecond)} / ${f2(rawMedian(1).p50Ms)} / ${f2(rawMedian(1).p99Ms)} | | | | |
| raw \`session.run\` (sequential, 1 thread) | 1000 | ${f0(rawMedian(1000).rowsPerSecond)} / ${f2(rawMedian(1000).p50Ms)} / ${f2(rawMedian(1000).p99Ms)} | | | | |

The floor (\`server/bench/protocol-floor.ts\`) is bare fastify and bare grpc-js in one process, decoding each request as the predictor must and answering, byte for byte, what the predictor answered to it (captured before the rounds): what is left between the two is the work behind the answer.

REST load from autocannon; gRPC load from ${GRPC_CLIENT}.
Failed requests across all runs: ${failures}. CPU of the gRPC load generator (${GRPC_CLIENT}) per timed call, 1 worker: ${KINDS.filter(
  (kind) => kind.startsWith('grpc'),
)
  .flatMap((kind) =>
    SIZES.map((s) => `${kind} ${s.rows} row${s.rows > 1 ? 's' : ''} ${f0(clientCpu(key(1, kind, s.rows)) ?? NaN)} us`),
  )
  .join(
    ', ',
  )}: it shares the two cores with the server, so gRPC rows/s are bounded by the client as much as by the server.

| target | measured | floor in the same run | met |
|---|---|---|---|
| 1000-row binary REST or gRPC raw >= 50% of raw session.run rows/s | ${(100 * targets.binary1000VsRaw.value).toFixed(0)}% (${f0(best1000)} vs ${f0(rawBatch)} rows/s) | ${(100 * targets.binary1000VsRaw.floor).toFixed(0)}% (${f0(floor1000)} rows/s with no model); ours is ${(100 * targets.binary1000VsRaw.vsFloor).toFixed(0)}% of the floor | ${targets.binary1000VsRaw.met ? 'yes' : 'no'} |
| gRPC 1-row p99 at c=16 <= REST's | gRPC ${f2(grpcP99)} ms vs REST ${f2(restP99)} ms | gRPC ${f2(floorGrpcP99)} ms vs REST ${f2(floorRestP99)} ms | ${targets.grpcP99VsRest.met ? 'yes' : 'no'} |
`;
const out = join(root, 'bench/results');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'protocols.json'), `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(join(out, 'protocols.md'), md);
rmSync(work, { recursive: true, force: true });
console.log(`\n${md}`);
console.log(`bench took ${results.durationSeconds.toFixed(0)} s; wrote bench/results/protocols.json and protocols.md`);
