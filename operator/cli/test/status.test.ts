/**
 * `loopline status` against the real pieces: the local cluster's API server (CRDs, ModelVersions, an
 * InferenceService whose status is written through the status subresource, Events from the engine's recorder),
 * a real Prometheus scraping the predictor's own metrics module, and the real NATS JetStream stream with
 * lifecycle events from the operator's publisher and a drift event in the predictor's format.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { installCrds } from '../../api/install.ts';
import { KubeApi, kinds, type KubeObject } from '../../engine/index.ts';
import { EventRecorder } from '../../engine/events.ts';
import { cloudEvent } from '../../events/cloudevents.ts';
import { LifecyclePublisher } from '../../events/publisher.ts';
import { ensureStream } from '../../events/stream.ts';
import { freePort } from '../../../test/support/local.ts';
import { startPrometheus, type TestPrometheus } from '../../../test/support/prometheus.ts';
import { ServerMetrics } from '../../../server/src/metrics/metrics.ts';
import { run } from '../main.ts';

for (const name of ['KUBECONFIG', 'NATS_URL']) {
  if (!process.env[name])
    throw new Error(
      `${name} is not set: run eval "$(bash e2e/cluster/cluster.sh env)" first (the test runner sets it)`,
    );
}
const kc = new KubeConfig();
kc.loadFromDefault();
const api = new KubeApi(kc);
const ns = `cli-status-${randomBytes(3).toString('hex')}`;
const MODEL = 'credit-risk';
let prometheus: TestPrometheus;
let nc: NatsConnection;
const predictors: Array<{ server: Server; timer: NodeJS.Timeout; servedPerSecond(windowMs: number): number }> = [];

/** The dashboard as a user sees it on a pipe: plain lines. */
async function status(
  args: string[],
  env: Record<string, string | undefined>,
): Promise<{ code: number; lines: string[]; text: string }> {
  const lines: string[] = [];
  const code = await run(['status', ...args, '-n', ns], (line) => lines.push(line), { env });
  return { code, lines, text: lines.join('\n') };
}

/** The lines of one section, from its heading to the next blank line. */
function section(lines: string[], heading: string): string[] {
  const start = lines.findIndex((l) => l.startsWith(heading));
  assert.ok(start >= 0, `no ${heading} section in:\n${lines.join('\n')}`);
  const end = lines.indexOf('', start);
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** Where each cell of a table row starts. */
const columnStarts = (line: string) => [0, ...[...line.matchAll(/ {2,}(?=\S)/g)].map((m) => m.index! + m[0].length)];

/** Cells of a table row split on the two-space column gaps. */
const cells = (line: string) => line.trim().split(/ {2,}/);

/**
 * A stand-in predictor pod: the server's own ServerMetrics registry on /metrics, fed at a steady pace with a
 * fixed share of errors and a fixed latency, so the figures Prometheus derives are known in advance.
 */
async function startPredictor(
  version: number,
  perTick: { success: number; error: number },
  latencySeconds: number,
  drift: Record<string, number> = {},
): Promise<string> {
  const metrics = new ServerMetrics();
  const labels = { model: MODEL, model_version: String(version) };
  for (const [feature, score] of Object.entries(drift)) {
    metrics.driftScore.set({ ...labels, feature, method: 'psi' }, score);
    metrics.driftFeatureDrifted.set({ ...labels, feature }, score > 0.2 ? 1 : 0);
  }
  const served: Array<[number, number]> = [];
  let total = 0;
  const tick = () => {
    total += perTick.success + perTick.error;
    served.push([Date.now(), total]);
    // One synchronous step: a scrape never sees the successes without their errors.
    for (const [outcome, n] of [
      ['success', perTick.success],
      ['error', perTick.error],
    ] as const) {
      if (n === 0) continue;
      for (let i = 0; i < n; i++) metrics.recordPrediction(MODEL, labels.model_version, outcome, latencySeconds);
    }
  };
  tick();
  const timer = setInterval(tick, 100);
  const server = createServer(async (_req, res) => {
    res.setHeader('content-type', metrics.registry.contentType);
    res.end(await metrics.registry.metrics());
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const servedPerSecond = (windowMs: number) => {
    const since = served.find(([time]) => time >= Date.now() - windowMs)!;
    const last = served[served.length - 1]!;
    return (last[1] - since[1]) / ((last[0] - since[0]) / 1000);
  };
  predictors.push({ server, timer, servedPerSecond });
  return `127.0.0.1:${port}`;
}

async function instant(query: string): Promise<Array<{ metric: Record<string, string>; values?: unknown }>> {
  const body = (await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(query)}`).then((r) =>
    r.json(),
  )) as { data: { result: Array<{ metric: Record<string, string> }> } };
  return body.data.result;
}

async function createModelVersion(
  version: number,
  metrics: Record<string, number>,
  stage: string,
  aliases: string[],
): Promise<void> {
  const name = `${MODEL}-v${version}`;
  await api.create(
    kinds.ModelVersion,
    {
      apiVersion: 'loopline.dev/v1alpha1',
      kind: 'ModelVersion',
      metadata: { name, namespace: ns },
      spec: {
        model: MODEL,
        version,
        artifact: {
          uri: `file:///models/${MODEL}/v${version}/model.onnx`,
          digest: `sha256:${String(version).repeat(64)}`,
          format: 'onnx',
        },
        metrics,
        primaryMetric: 'auc',
        lineage: { trainingJob: `${MODEL}-train-${version}` },
        stage,
        aliases,
      },
    } as never,
    'loopline-test',
  );
  await api.mergePatch(kinds.ModelVersion, ns, name, { status: { stage, aliases } }, 'loopline-test', 'status');
}

const now = new Date();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let seriesStart = 0;
const minutesAgo = (m: number) => new Date(now.getTime() - m * 60_000).toISOString().replace(/\.\d+Z$/, 'Z');

test.before(async () => {
  await installCrds(kc);
  await api.create(
    kinds.Namespace,
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } as never,
    'loopline-test',
  );
  await createModelVersion(1, { auc: 0.912, accuracy: 0.871 }, 'Production', ['production']);
  await createModelVersion(2, { auc: 0.925, accuracy: 0.88 }, 'Staging', ['candidate']);
  const isvc = (await api.create(
    kinds.InferenceService,
    {
      apiVersion: 'loopline.dev/v1alpha1',
      kind: 'InferenceService',
      metadata: { name: 'scoring', namespace: ns },
      spec: {
        model: MODEL,
        stable: { alias: 'production' },
        canary: { alias: 'candidate' },
        rollout: { steps: [10, 25, 50, 100], interval: '30s', analysis: { maxErrorRate: 0.02, maxLatencyP95Ms: 20 } },
        drift: { enabled: true, threshold: 0.3 },
      },
    } as never,
    'loopline-test',
  )) as KubeObject;
  // What the operator would have written: step 2 of 4 at 25%, one failed analysis, drift on two of five features.
  await api.mergePatch(
    kinds.InferenceService,
    ns,
    'scoring',
    {
      status: {
        url: `http://scoring.${ns}.svc.cluster.local`,
        stableVersion: 1,
        canaryVersion: 2,
        canaryWeight: 25,
        currentStep: 1,
        phase: 'Progressing',
        observedGeneration: isvc.metadata.generation,
        analysis: {
          lastCheck: minutesAgo(1),
          stepStartedAt: minutesAgo(1),
          requests: 840,
          errorRate: 0.0125,
          latencyP95Ms: 3.2,
          latencyP99Ms: 4.1,
          failedChecks: 1,
          message: 'Passed: 840 requests, error rate 1.25%',
        },
        drift: {
          score: 0.4,
          drifted: true,
          driftedFeatures: ['income', 'utilization'],
          lastEventTime: minutesAgo(3),
          lastEventId: 'drift-1',
        },
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'StableServing',
            message: 'v1 serves 75% of requests',
            lastTransitionTime: minutesAgo(10),
          },
        ],
      },
    },
    'loopline-test',
    'status',
  );

  const recorder = new EventRecorder(api, 'loopline-operator', 'test', 'loopline-test', pino({ level: 'silent' }));
  await recorder.record(isvc, 'Normal', 'CanaryStarted', 'canary v2 started at 10%');
  await recorder.record(isvc, 'Warning', 'AnalysisFailed', 'canary v2: error rate 3.10% above 2.00%');

  nc = await connect({ servers: process.env.NATS_URL! });
  await ensureStream(nc);
  const publisher = new LifecyclePublisher(nc);
  for (const [i, reason] of ['canarystarted', 'stepadvanced', 'analysisfailed', 'stepadvanced'].entries()) {
    await publisher.publish({
      kind: 'inferenceservice',
      namespace: ns,
      name: 'scoring',
      reason,
      data: { message: `event ${i + 1}: ${reason}` },
    });
  }
  // A drift window as the predictor publishes it (server/src/events/drift-event.ts).
  const driftFeatures = [
    { name: 'age', method: 'psi', score: 0.05, threshold: 0.2, drifted: false },
    { name: 'income', method: 'psi', score: 0.61, threshold: 0.2, drifted: true },
    { name: 'utilization', method: 'psi', score: 0.34, threshold: 0.2, drifted: true },
    { name: 'tenure', method: 'psi', score: 0.12, threshold: 0.2, drifted: false },
    { name: 'region', method: 'chiSquare', score: 0.01, threshold: 0.2, drifted: false },
  ];
  await jetstream(nc).publish(
    `loopline.drift.${ns}.scoring`,
    JSON.stringify(
      cloudEvent({
        type: 'dev.loopline.drift.window.v1',
        source: `/apis/loopline.dev/v1alpha1/namespaces/${ns}/inferenceservices/scoring`,
        data: {
          namespace: ns,
          inferenceService: 'scoring',
          model: MODEL,
          modelVersion: '1',
          drifted: true,
          score: 0.4,
          features: driftFeatures,
        },
      }),
    ),
  );

  prometheus = await startPrometheus({ scrapeIntervalMs: 500 });
  const podLabels = { namespace: ns, inference_service: 'scoring' };
  prometheus.setTargets([
    // v1: 20 requests a tick (200/s), none failing, 3 ms each; v2: 97 good and 3 failed a tick, 30 ms each.
    {
      address: await startPredictor(1, { success: 20, error: 0 }, 0.003, {
        age: 0.05,
        income: 0.61,
        utilization: 0.34,
      }),
      labels: podLabels,
    },
    { address: await startPredictor(2, { success: 97, error: 3 }, 0.03), labels: podLabels },
  ]);
  await prometheus.waitForTargets(2);
  // rate() needs two scrapes with the series in them.
  const deadline = Date.now() + 20_000;
  while ((await instant(`rate(prediction_requests_total{namespace="${ns}"}[1m])`)).length < 3) {
    if (Date.now() > deadline) throw new Error('Prometheus has no request rates after 20 s');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  seriesStart = Date.now();
});

test.after(async () => {
  for (const { server, timer } of predictors) {
    clearInterval(timer);
    server.close();
  }
  await prometheus?.stop();
  await nc?.close();
  await api.delete(kinds.Namespace, undefined, ns).catch(() => undefined);
});

test('the header and version lines say where the rollout is: phase, step, weights, selectors, url', async () => {
  const { code, lines } = await status(['scoring'], { PROMETHEUS_URL: prometheus.url, NATS_URL: process.env.NATS_URL });
  assert.is(code, 0);
  assert.is(lines[0], `${ns}/scoring  model ${MODEL}  phase Progressing  step 2 of 4`);
  assert.is(lines[1], 'stable  v1  75%  alias production');
  assert.is(lines[2], 'canary  v2  25%  alias candidate  steps 10 [25] 50 100 every 30s');
  assert.is(lines[3], `url     http://scoring.${ns}.svc.cluster.local`);
  assert.equal(cells(section(lines, 'CONDITION')[0]!), ['Ready', 'True', 'StableServing', 'v1 serves 75% of requests']);
  assert.not.match(lines.join('\n'), /\x1b\[/, 'no colour on a pipe');
});

test("the traffic table shows each version's req/s, error rate and p50/p95/p99 from Prometheus", async () => {
  // A window the series fully cover: rate() divides by the whole window.
  await sleep(Math.max(0, seriesStart + 5000 - Date.now()));
  const { lines } = await status(['scoring', '--window', '4s'], {
    PROMETHEUS_URL: prometheus.url,
    NATS_URL: process.env.NATS_URL,
  });
  const [heading, ...rows] = section(lines, 'TRAFFIC');
  assert.equal(cells(heading!), ['VERSION', 'ROLE', 'WEIGHT', 'REQ/S', 'ERRORS', 'P50', 'P95', 'P99']);
  const byVersion = Object.fromEntries(rows.map((row) => [cells(row)[0], cells(row)]));
  const [, role1, weight1, rps1, errors1, p50v1, p95v1, p99v1] = byVersion.v1!;
  assert.equal([role1, weight1, errors1], ['stable', '75%', '0.00%']);
  // All of v1's observations fall in the 2..5 ms bucket: Prometheus interpolates inside it.
  const near = (shown: string | undefined, expected: number) =>
    assert.ok(Math.abs(Number(shown?.replace(/ ms$/, '')) - expected) < 0.015, `${shown} ≈ ${expected} ms`);
  near(p50v1, 3.5);
  near(p95v1, 4.85);
  near(p99v1, 4.97);
  const rps = Number(rps1);
  // Timers run late on a busy machine, so the expectation is what v1 really served in the window.
  const served = predictors[0]!.servedPerSecond(4000);
  assert.ok(Math.abs(rps - served) < 0.3 * served, `v1 served ${served} req/s, shown ${rps1}`);
  const [, role2, weight2, , errors2, p50v2] = byVersion.v2!;
  assert.equal([role2, weight2, errors2], ['canary', '25%', '3.00%']);
  near(p50v2, 37.5);
  assert.match(byVersion.all!.join(' '), /^all \S+ \d+\.\d\d%$/);
  // The canary's p95 (~49 ms) exceeds spec.rollout.analysis.maxLatencyP95Ms = 20, which colour would flag.
  const colored: string[] = [];
  await run(['status', 'scoring', '-n', ns, '--window', '4s'], (line) => colored.push(line), {
    env: { PROMETHEUS_URL: prometheus.url },
    terminal: { color: true, redraw: false },
  });
  const canaryRow = colored.find((line) => line.startsWith('v2'))!;
  assert.match(canaryRow, /\x1b\[31m48\.\d ms\x1b\[0m/);
  const plain = colored.map((l) => l.replace(/\x1b\[[0-9;]*m/g, ''));
  for (const table of [section(lines, 'TRAFFIC'), section(plain, 'TRAFFIC'), section(plain, 'MODEL VERSIONS')]) {
    const starts = columnStarts(table[0]!);
    for (const row of table.slice(1))
      assert.ok(
        columnStarts(row).every((s) => starts.includes(s)),
        `misaligned:\n${table.join('\n')}`,
      );
  }
});

test('the served ModelVersions show stage, aliases, metrics (primary first) and lineage', async () => {
  const { lines } = await status(['scoring'], { PROMETHEUS_URL: prometheus.url, NATS_URL: process.env.NATS_URL });
  const [heading, v1, v2] = section(lines, 'MODEL VERSIONS');
  assert.equal(cells(heading!), ['VERSION', 'ROLE', 'STAGE', 'ALIASES', 'METRICS', 'TRAINED BY', 'AGE']);
  assert.equal(cells(v1!).slice(0, 6), [
    'v1',
    'stable',
    'Production',
    'production',
    'auc=0.912 accuracy=0.871',
    `${MODEL}-train-1`,
  ]);
  assert.equal(cells(v2!).slice(0, 6), [
    'v2',
    'canary',
    'Staging',
    'candidate',
    'auc=0.925 accuracy=0.88',
    `${MODEL}-train-2`,
  ]);
  assert.match(cells(v1!)[6]!, /^\d+s$/);
});

test('analysis and drift: last check, bounds, score, and the most drifted features of the latest window from NATS', async () => {
  const { lines } = await status(['scoring'], { PROMETHEUS_URL: prometheus.url, NATS_URL: process.env.NATS_URL });
  const analysis = lines.find((l) => l.startsWith('ANALYSIS'))!;
  const [, checked] = /^ANALYSIS  last check (\d+)s, failed checks 1 of 2 allowed$/.exec(analysis) ?? [];
  assert.ok(Number(checked) >= 60 && Number(checked) < 120, analysis);
  assert.ok(
    lines.includes('requests 840 (min 20)  errors 1.25% (max 2.00%)  p95 3.2 ms (max 20 ms)  p99 4.1 ms'),
    lines.join('\n'),
  );
  const drift = lines.find((l) => l.startsWith('DRIFT'))!;
  assert.match(drift, /^DRIFT  score 0\.4 \(threshold 0\.3\)  DRIFTED  last window 3m$/);
  const [heading, ...features] = section(lines, 'DRIFT').slice(0);
  assert.equal(cells(heading!), ['FEATURE', 'METHOD', 'SCORE', 'THRESHOLD', 'DRIFTED']);
  assert.equal(
    features.map((f) => cells(f)),
    [
      ['income', 'psi', '0.61', '0.2', 'yes'],
      ['utilization', 'psi', '0.34', '0.2', 'yes'],
      ['tenure', 'psi', '0.12', '0.2', 'no'],
      ['age', 'psi', '0.05', '0.2', 'no'],
      ['region', 'chiSquare', '0.01', '0.2', 'no'],
      ['(latest drift window of v1, from NATS)'],
    ],
  );
});

test('the last Kubernetes Events and the last lifecycle events from JetStream, newest last', async () => {
  const { lines } = await status(['scoring', '--events', '3'], {
    PROMETHEUS_URL: prometheus.url,
    NATS_URL: process.env.NATS_URL,
  });
  const events = section(lines, 'EVENTS').map(cells);
  assert.equal(
    events.map((e) => e.slice(1)),
    [
      ['TYPE', 'REASON', 'MESSAGE'],
      ['Normal', 'CanaryStarted', 'canary v2 started at 10%'],
      ['Warning', 'AnalysisFailed', 'canary v2: error rate 3.10% above 2.00%'],
    ],
  );
  assert.ok(lines.includes(`LIFECYCLE  NATS loopline.events.${ns}.inferenceservice.scoring`));
  assert.equal(
    section(lines, 'LIFECYCLE').map((l) => cells(l).slice(1)),
    [
      ['EVENT', 'DETAILS'],
      ['stepadvanced', 'event 2: stepadvanced'],
      ['analysisfailed', 'event 3: analysisfailed'],
      ['stepadvanced', 'event 4: stepadvanced'],
    ],
  );
});

test('Prometheus and NATS unreachable: one line each says so, everything else is still printed', async () => {
  const closed = await freePort();
  const started = Date.now();
  const { code, lines } = await status(['scoring'], {
    PROMETHEUS_URL: `http://127.0.0.1:${closed}`,
    NATS_URL: `nats://127.0.0.1:${closed}`,
  });
  assert.is(code, 0);
  assert.ok(Date.now() - started < 10_000, 'an unreachable dependency does not stall the dashboard');
  assert.equal(section(lines, 'TRAFFIC'), [
    `Prometheus unreachable at http://127.0.0.1:${closed} (connect ECONNREFUSED 127.0.0.1:${closed}): no latency, throughput or error rates`,
  ]);
  assert.is(lines.filter((l) => /unreachable/.test(l)).length, 2);
  assert.match(
    section(lines, 'LIFECYCLE')[0]!,
    new RegExp(`^lifecycle events not shown: unreachable at nats://127.0.0.1:${closed} \\(`),
  );
  assert.is(lines[1], 'stable  v1  75%  alias production');
  assert.is(section(lines, 'MODEL VERSIONS').length, 3);
  assert.is(section(lines, 'EVENTS').length, 3);
  // Without NATS and Prometheus the drift section falls back to the names in status.
  assert.ok(lines.includes('drifted features: income, utilization'), lines.join('\n'));
});

test("without NATS the top drifted features come from the predictors' drift_score gauges in Prometheus", async () => {
  const { lines } = await status(['scoring'], { PROMETHEUS_URL: prometheus.url });
  assert.equal(section(lines, 'LIFECYCLE'), ['lifecycle events not shown: NATS_URL is not set']);
  const [, ...features] = section(lines, 'DRIFT');
  assert.equal(
    features.map((f) => cells(f)),
    [
      ['income', 'psi', '0.61', '-', 'yes'],
      ['utilization', 'psi', '0.34', '-', 'yes'],
      ['age', 'psi', '0.05', '-', 'no'],
      ['(drift_score gauges, from Prometheus)'],
    ],
  );
});

test('--watch redraws until stopped and shows a status change in the next frame', async () => {
  const stop = new AbortController();
  const lines: string[] = [];
  const watching = run(['status', 'scoring', '-n', ns, '--watch', '--interval', '0.3'], (line) => lines.push(line), {
    env: {},
    signal: stop.signal,
  });
  const waitFor = async (what: string, probe: () => boolean) => {
    const deadline = Date.now() + 15_000;
    while (!probe()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${lines.join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  await waitFor('a first frame', () =>
    lines.includes('canary  v2  25%  alias candidate  steps 10 [25] 50 100 every 30s'),
  );
  await api.mergePatch(
    kinds.InferenceService,
    ns,
    'scoring',
    { status: { canaryWeight: 50, currentStep: 2 } },
    'loopline-test',
    'status',
  );
  await waitFor('the new weight', () =>
    lines.includes('canary  v2  50%  alias candidate  steps 10 25 [50] 100 every 30s'),
  );
  stop.abort();
  assert.is(await watching, 0);
  const frames = lines.filter((l) => l.startsWith('--- every 0.3s, '));
  assert.ok(frames.length >= 2, `${frames.length} frames`);
  assert.ok(lines.includes('stable  v1  50%  alias production'));
  await api.mergePatch(
    kinds.InferenceService,
    ns,
    'scoring',
    { status: { canaryWeight: 25, currentStep: 1 } },
    'loopline-test',
    'status',
  );
});

test('pause, resume, promote and rollback write spec.rollout; bad arguments print the usage and exit 2', async () => {
  const rollout = async () => ((await api.get(kinds.InferenceService, ns, 'scoring')) as KubeObject).spec.rollout;
  const quiet = () => {};
  assert.is(await run(['pause', 'scoring', '-n', ns], quiet), 0);
  assert.is((await rollout()).paused, true);
  const paused = await status(['scoring'], {});
  // No operator runs here, so the dashboard also says the status predates the spec change.
  assert.match(paused.lines[0]!, /step 2 of 4  paused  \(status not yet updated for the latest spec\)$/);
  assert.is(await run(['resume', 'scoring', '-n', ns], quiet), 0);
  assert.is((await rollout()).paused, false);
  assert.is(await run(['promote', 'scoring', '-n', ns], quiet), 0);
  assert.equal([(await rollout()).promoteNow, (await rollout()).abort], [true, false]);
  const said: string[] = [];
  assert.is(await run(['rollback', 'scoring', '-n', ns], (line) => said.push(line)), 0);
  assert.equal([(await rollout()).promoteNow, (await rollout()).abort], [false, true]);
  assert.equal(said, [`inferenceservice ${ns}/scoring: rollback requested`]);
  for (const argv of [
    ['frobnicate', 'scoring'],
    ['status'],
    ['status', 'scoring', '--window', 'soon'],
    ['status', 'scoring', '--bogus'],
  ]) {
    const out: string[] = [];
    assert.is(await run(argv, (line) => out.push(line)), 2, argv.join(' '));
    assert.match(out.join('\n'), /usage: loopline|--window must be/);
  }
  const missing = await run(['status', 'no-such-service', '-n', ns], quiet).catch((error: Error) => error.message);
  assert.is(missing, `inferenceservice ${ns}/no-such-service not found (kubectl get lisvc -n ${ns})`);
});

test.run();
