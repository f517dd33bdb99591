import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startLocalKubelet } from '../local-kubelet/kubelet.ts';
import { buildLogisticRegressionModel } from '../../examples/trainer/src/onnx.ts';
import { createEngine, kinds, KubeApi } from '../../operator/engine/index.ts';
import { registerInferenceServices } from '../../operator/inferenceservice/index.ts';
import {
  cpuSecondsOf,
  quietLogger,
  requireKubeconfig,
  uniqueName,
  waitFor as sharedWaitFor,
} from '../../test/support/local.ts';
import { GatewayClient, gatewayUrl } from '../../test/support/gateway.ts';
import { machineFacts } from '../../test/support/machine.ts';
import { type Load, load as runLoad } from '../../server/bench/processes.ts';
import { median } from '../../test/support/figures.ts';
import { createNamespace } from '../../test/support/namespaces.ts';
import { registerVersion } from '../../test/support/model-versions.ts';
import { installCrds } from '../../operator/api/install.ts';
import { inProcessEngine } from '../../test/support/local.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CONCURRENCY = [16, 64];
const kc = requireKubeconfig();
const api = new KubeApi(kc);
const ns = uniqueName('bench-gateway');
const host = `credit.${ns}.example.com`;
const gateway = gatewayUrl();
const traefikPid = readFileSync(
  join(
    process.env.LOOPLINE_CACHE ?? join(homedir(), '.cache/loopline'),
    'clusters',
    process.env.LOOPLINE_CLUSTER ?? 'loopline',
    'traefik.pid',
  ),
  'utf8',
).trim();

const load = (url: string, connections: number, body: string, host?: string) =>
  runLoad(url, connections, SECONDS, body, host);

const waitFor = <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000) =>
  sharedWaitFor(what, probe, timeoutMs, 250);

const started = Date.now();
const loadBefore = loadavg();
const work = mkdtempSync(join(tmpdir(), 'loopline-bench-gateway-'));
const features = [50, 0.3, 40, 0.5, 1];
const bytes = buildLogisticRegressionModel({ weights: [0.02, 1.5, -0.01, 2, 0.3], bias: -1 });
writeFileSync(join(work, 'model.onnx'), bytes);

// A fresh cluster (npm run bench makes one per benchmark) has none of our CRDs yet.
await installCrds(kc);
await createNamespace(api, ns, 'loopline-bench');
await registerVersion(
  api,
  ns,
  'credit',
  1,
  [],
  { uri: pathToFileURL(join(work, 'model.onnx')).href, bytes, features: features.length },
  { effective: false },
);
const kubelet = await startLocalKubelet({ kubeconfig: kc, repoRoot: root, namespace: ns, logger: quietLogger() });
const engine = createEngine(inProcessEngine(kc, ns));
// No canary runs here, so Prometheus is never asked.
await registerInferenceServices(engine, { prometheusUrl: 'http://127.0.0.1:9' });
await engine.start();
let results: Record<string, unknown> | undefined;
try {
  await api.create(
    kinds.InferenceService,
    {
      apiVersion: 'loopline.dev/v1alpha1',
      kind: 'InferenceService',
      metadata: { name: 'credit', namespace: ns },
      spec: {
        model: 'credit',
        stable: { version: 1 },
        // As examples/inferenceservice.yaml serves it.
        predictor: {
          replicas: 1,
          resources: { cpu: '1', memory: '1Gi' },
          batching: { enabled: true, maxBatchSize: 64, maxWaitMs: 5 },
        },
        traffic: {
          provider: 'gatewayAPI',
          parentRefs: [{ name: 'loopline-gateway', namespace: 'loopline-system', sectionName: 'http' }],
          hostnames: [host],
        },
      },
    } as never,
    'loopline-bench',
  );
  const pod = await waitFor('a ready predictor pod', async () => {
    const pods = (await api.list(kinds.Pod, ns, { labelSelector: 'loopline.dev/inferenceservice=credit' })).items;
    return pods.find(
      (p) =>
        p.status?.podIP &&
        p.status.conditions?.some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True'),
    );
  });
  const client = new GatewayClient(host);
  await waitFor(
    'an answer through the gateway',
    async () => ((await client.post('/predict', { instances: [features] })).status === 200 ? true : undefined),
    60_000,
  );
  client.close();

  const direct = `http://${pod.status.podIP}:8080`;
  const INFER = '/v2/models/credit/infer';
  const body = JSON.stringify({
    inputs: [{ name: 'input', shape: [1, features.length], datatype: 'FP32', data: features }],
  });
  const paths = { direct: { url: direct + INFER }, gateway: { url: gateway + INFER, host } } as const;
  type Path = keyof typeof paths;
  const rounds: Record<number, Record<Path, Load[]>> = {};
  const traefikCpu: Record<number, number[]> = {};
  // Untimed: JIT, connection pools on both sides.
  for (const path of Object.values(paths)) await load(path.url, 16, body, 'host' in path ? path.host : undefined);
  for (const c of CONCURRENCY) {
    rounds[c] = { direct: [], gateway: [] };
    traefikCpu[c] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const order: Path[] = round % 2 === 0 ? ['direct', 'gateway'] : ['gateway', 'direct'];
      for (const key of order) {
        const path = paths[key];
        const cpuBefore = cpuSecondsOf(traefikPid);
        const result = await load(path.url, c, body, 'host' in path ? path.host : undefined);
        rounds[c][key].push(result);
        if (key === 'gateway')
          traefikCpu[c].push(
            (1e6 * (cpuSecondsOf(traefikPid) - cpuBefore)) / (result.requests + result.warmupRequests),
          );
        console.log(
          `c=${c} round ${round + 1} ${key.padEnd(7)} ${Math.round(result.requestsPerSecond)} req/s  p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms`,
        );
      }
    }
  }

  const summary = Object.fromEntries(
    CONCURRENCY.map((c) => {
      const of = (key: Path) => ({
        requestsPerSecond: median(rounds[c]![key].map((r) => r.requestsPerSecond)),
        p50Ms: median(rounds[c]![key].map((r) => r.p50Ms)),
        p99Ms: median(rounds[c]![key].map((r) => r.p99Ms)),
      });
      const d = of('direct');
      const g = of('gateway');
      return [
        c,
        {
          direct: d,
          gateway: g,
          throughputRatio: g.requestsPerSecond / d.requestsPerSecond,
          addedP50Ms: g.p50Ms - d.p50Ms,
          addedP99Ms: g.p99Ms - d.p99Ms,
          traefikCpuMicrosecondsPerRequest: median(traefikCpu[c]!),
        },
      ];
    }),
  );
  const failures = Object.values(rounds)
    .flatMap((byPath) => Object.values(byPath).flat())
    .reduce((s, l) => s + l.non2xx + l.errors + l.timeouts, 0);
  results = {
    generatedAt: new Date().toISOString(),
    machine: machineFacts(loadBefore),
    note: 'Predictor pod, Traefik and the load generator share one 2-core machine (with the control plane and other work): figures are noisy; the pairs are comparable.',
    endpoint: `POST ${INFER} with one row of ${features.length} FP32 features`,
    secondsPerRun: SECONDS,
    rounds: ROUNDS,
    podAddress: pod.status.podIP,
    gateway,
    summary,
    runs: rounds,
    failedRequests: failures,
    durationSeconds: (Date.now() - started) / 1000,
  };
} finally {
  await engine.stop();
  await api.delete(kinds.Namespace, undefined, ns).catch(() => undefined);
  await waitFor(
    'the predictor pod gone',
    async () => ((await api.list(kinds.Pod, ns)).items.length === 0 ? true : undefined),
    30_000,
  ).catch(() => undefined);
  await kubelet.stop();
  rmSync(work, { recursive: true, force: true });
}

const f0 = (n: number) => Math.round(n).toLocaleString('en-US');
const f2 = (n: number) => n.toFixed(2);
const summary = results.summary as Record<number, any>;
const row = (label: string, key: 'direct' | 'gateway') =>
  `| ${label} | ${CONCURRENCY.map((c) => `${f0(summary[c][key].requestsPerSecond)} / ${f2(summary[c][key].p50Ms)} / ${f2(summary[c][key].p99Ms)}`).join(' | ')} |`;
const md = `## Gateway (\`e2e/bench/gateway.bench.ts\`)

${results.note} Load average before/after: ${loadBefore.map(f2).join(', ')} / ${loadavg().map(f2).join(', ')}.
One predictor pod (batching on, as examples/inferenceservice.yaml serves it) at ${results.podAddress}, in its own network namespace; Traefik as the Gateway at ${gateway}, routing the HTTPRoute by Host. Endpoint: ${results.endpoint}. Medians of ${ROUNDS} paired ${SECONDS} s rounds per concurrency, the order alternating; autocannon in its own process, latencies client-side.

| path | c=16 req/s / p50 ms / p99 ms | c=64 |
|---|---|---|
${row('straight to the pod', 'direct')}
${row('through the gateway (Traefik)', 'gateway')}

| the gateway's cost | c=16 | c=64 |
|---|---|---|
| throughput, gateway / direct | ${CONCURRENCY.map((c) => f2(summary[c].throughputRatio)).join(' | ')} |
| added p50 / p99 (ms) | ${CONCURRENCY.map((c) => `${f2(summary[c].addedP50Ms)} / ${f2(summary[c].addedP99Ms)}`).join(' | ')} |
| Traefik CPU per request (µs, /proc) | ${CONCURRENCY.map((c) => f0(summary[c].traefikCpuMicrosecondsPerRequest)).join(' | ')} |

Rounds (req/s): ${CONCURRENCY.map((c) => `c=${c} direct ${(results!.runs as any)[c].direct.map((r: Load) => f0(r.requestsPerSecond)).join(', ')} vs gateway ${(results!.runs as any)[c].gateway.map((r: Load) => f0(r.requestsPerSecond)).join(', ')}`).join('; ')}.
Failed requests across all runs: ${results.failedRequests}.
`;
const out = join(root, 'bench/results');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'gateway.json'), `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(join(out, 'gateway.md'), md);
console.log(`\n${md}`);
process.exit(0);
