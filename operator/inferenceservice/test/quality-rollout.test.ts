/**
 * Model-aware rollouts on the local cluster, every part real: the operator (InferenceService controller and its
 * quality consumer, as operator/main.ts wires them) against the API server; a real Prometheus scraping metrics
 * endpoints whose latency the test sets (predictor pods are KWOK's here: the image is not a loopline/ one); at each
 * due step the evaluation Job the operator starts from its quality CronJob, run by the local kubelet (the operator
 * image's `evaluate` command, DuckDB) on ground truth in the S3 server (versitygw); its quality event on NATS
 * JetStream in status.quality.comparison; and the rollout deciding on it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { inferenceLogPart, labelPart, type LoggedRow } from '../../../test/support/ground-truth.ts';
import { versionEndpoint, type VersionEndpoint } from '../../../test/support/predictor-metrics.ts';
import { startPrometheus, type TestPrometheus } from '../../../test/support/prometheus.ts';
import { requireS3 } from '../../../test/support/s3.ts';
import { rocAuc } from '../../../server/src/quality/metrics.ts';
import { kinds, KubeApi, type KubeObject } from '../../engine/index.ts';
import {
  createNamespace,
  installCrds,
  registerVersion,
  requireKubeconfig,
  sleep,
  uniqueName,
  waitFor,
} from './support/cluster.ts';
import { normalFrom, seededRandom } from '../../../examples/trainer/src/random.ts';
import { eventNotes } from '../../../test/support/events.ts';
import { startLiveOperator, type LiveOperator } from './support/live-operator.ts';
import { requireNatsUrl } from '../../../test/support/nats.ts';

const kc = requireKubeconfig();
const api = new KubeApi(kc);
const s3 = requireS3('quality-rollout');
const ns = uniqueName('isvc-qgate');
const SECRET = 'ground-truth-keys';
const base = s3.uri('ground-truth');
requireNatsUrl();

let live: LiveOperator;
let prometheus: TestPrometheus;
const endpoints: Array<VersionEndpoint & { service: string }> = [];

/**
 * `count` predictions of one version with their labels: half positive, the score a logistic of the label times
 * `separation` plus standard normal noise, so the AUC is about Φ(separation / √2) (1.53 → 0.86, 0.78 → 0.71).
 */
function predictions(version: number, count: number, separation: number, seed: number, prefix: string) {
  const noise = normalFrom(seededRandom(seed));
  const now = Date.now();
  const rows: Array<LoggedRow & { label: number }> = [];
  for (let j = 0; j < count; j++) {
    const label = j % 2;
    const score = 1 / (1 + Math.exp(-(separation * (label - 0.5) + noise())));
    rows.push({ requestId: `${prefix}-v${version}-${j}`, time: now + j, model: prefix, version, score, label });
  }
  return rows;
}

async function logAndLabel(service: string, rows: Array<LoggedRow & { label: number }>, part: number): Promise<void> {
  const logged = inferenceLogPart(ns, service, rows, 'predictor-0', part);
  await s3.put(`ground-truth/${logged.key}`, logged.body);
  const labels = labelPart(
    ns,
    service,
    rows.map((r) => ({ requestId: r.requestId, label: r.label, time: Date.now() })),
  );
  await s3.put(`ground-truth/${labels.key}`, labels.body);
}

async function serveMetrics(service: string, model: string, latencies: Record<number, number>): Promise<void> {
  for (const [version, latencySeconds] of Object.entries(latencies)) {
    const endpoint = await versionEndpoint(model, Number(version), { rate: 10, errorShare: 0, latencySeconds });
    endpoints.push(Object.assign(endpoint, { service }));
  }
  prometheus.setTargets(
    endpoints.map((e) => ({ address: e.address, labels: { namespace: ns, inference_service: e.service } })),
  );
  await prometheus.waitForTargets(endpoints.length);
  await sleep(3 * prometheus.scrapeIntervalMs);
}

async function createService(
  name: string,
  model: string,
  gate: Record<string, unknown>,
  extra: { decisions?: Record<string, unknown>; shadow?: boolean; uri?: string } = {},
): Promise<void> {
  await registerVersion(api, ns, model, 1, ['production']);
  await registerVersion(api, ns, model, 2, ['candidate']);
  await api.create(
    kinds.InferenceService,
    {
      apiVersion: 'loopline.dev/v1alpha1',
      kind: 'InferenceService',
      metadata: { name, namespace: ns },
      spec: {
        model,
        stable: { alias: 'production' },
        canary: { alias: 'candidate' },
        predictor: { image: 'registry.local/predictor-simulated:1', resources: { cpu: '10m', memory: '32Mi' } },
        logging: { enabled: true, uri: extra.uri ?? base },
        // Never on its own schedule: every evaluation here is one the rollout asked for.
        quality: { schedule: '0 0 1 1 *', window: '1h' },
        rollout: {
          steps: [50, 100],
          interval: '3s',
          analysis: {
            maxErrorRate: 0.05,
            maxLatencyP95Ms: 100,
            minRequests: 5,
            failureLimit: 1,
            quality: gate,
            ...(extra.decisions ? { decisions: extra.decisions } : {}),
          },
        },
        ...(extra.shadow ? { shadow: { enabled: true } } : {}),
      },
    } as never,
    'loopline-test',
  );
}

const getIsvc = (name: string) => api.get(kinds.InferenceService, ns, name);
const events = (name: string, reason: string) => eventNotes(api, ns, name, reason);
/** The first Event of that reason, once the operator has written it (after the status). */
const eventOf = (name: string, reason: string) =>
  waitFor(`${name}: a ${reason} Event`, async () => (await events(name, reason))[0], 15_000);
async function evaluationJobs(name: string): Promise<KubeObject[]> {
  return (await api.list(kinds.Job, ns)).items.filter((j: KubeObject) =>
    j.metadata.name.startsWith(`${name}-quality-`),
  );
}
/** The InferenceService once its rollout is in `phase`; on a timeout the error says where the analysis is. */
const untilPhase = (name: string, phase: 'RolledBack' | 'Promoted') =>
  waitFor(
    `${name} ${phase}`,
    async () => {
      const object = await getIsvc(name);
      return object.status?.phase === phase ? object : undefined;
    },
    120_000,
  ).catch(async (error) => {
    const object = await getIsvc(name);
    throw new Error(`${(error as Error).message}; status ${JSON.stringify(object.status?.analysis)}`);
  });
const canaryStarted = (name: string) =>
  waitFor(`${name}: the canary's rollout started`, async () => (await getIsvc(name)).status?.canaryStartedAt, 30_000);

test.before(async () => {
  await installCrds(api);
  await createNamespace(api, ns);
  await api.create(kinds.Secret, s3.secret(SECRET, ns) as never, 'loopline-test');
  prometheus = await startPrometheus({ scrapeIntervalMs: 500 });
  live = await startLiveOperator({
    kubeconfig: kc,
    api,
    namespace: ns,
    env: {
      PROMETHEUS_URL: prometheus.url,
      PROMETHEUS_SCRAPE_INTERVAL: `${prometheus.scrapeIntervalMs}ms`,
      ...s3.operatorEnv(SECRET),
    },
  });
});

test.after(async () => {
  await live?.stop();
  await prometheus?.stop();
  for (const endpoint of endpoints) await endpoint.close();
});

test('a canary with ten times better latency but a worse AUC is rolled back, the reason giving both AUCs, the labels and p', async () => {
  const name = 'fraud-worse';
  // The canary answers in 4 ms, stable in 40 ms; neither errs.
  await serveMetrics(name, 'fraud-a', { 1: 0.04, 2: 0.004 });
  await createService(name, 'fraud-a', { metric: 'auc', maxDrop: 0.05, minLabels: 300, confidence: 0.95 });
  await canaryStarted(name);
  const stable = predictions(1, 800, 1.53, 1, 'fraud-a');
  const canary = predictions(2, 800, 0.78, 2, 'fraud-a');
  await logAndLabel(name, stable, 0);
  await logAndLabel(name, canary, 0);
  const [stableAuc, canaryAuc] = [stable, canary].map((rows) =>
    rocAuc(
      rows.map((r) => r.score),
      rows.map((r) => r.label),
    ),
  ) as [number, number];

  const isvc = await untilPhase(name, 'RolledBack');
  assert.is(isvc.status.canaryWeight, 0);
  assert.is(isvc.status.stableVersion, 1);
  const quality = isvc.status.analysis.quality;
  assert.is(quality.verdict, 'Worse');
  assert.equal([quality.canaryLabels, quality.stableLabels], [800, 800]);
  assert.ok(Math.abs(quality.canary - canaryAuc) < 1e-9, `canary AUC ${quality.canary} vs ${canaryAuc}`);
  assert.ok(Math.abs(quality.stable - stableAuc) < 1e-9, `stable AUC ${quality.stable} vs ${stableAuc}`);
  assert.ok(quality.pValue < 0.05);
  // Prometheus passed it: the check failed on quality alone.
  assert.ok(isvc.status.analysis.latencyP95Ms < 10, `canary p95 ${isvc.status.analysis.latencyP95Ms}`);
  assert.is(isvc.status.analysis.errorRate, 0);
  const comparison = isvc.status.quality.comparison;
  assert.equal([comparison.canaryVersion, comparison.stableVersion], [2, 1]);
  assert.is(comparison.since, isvc.status.canaryStartedAt ?? comparison.since);
  const rolledBack = await eventOf(name, 'RolledBack');
  console.log(`  ${rolledBack}`);
  assert.match(
    rolledBack,
    new RegExp(
      `^canary v2 rolled back: 1 failed checks \\(limit 1\\): auc canary ${canaryAuc.toFixed(4)} vs stable ${stableAuc.toFixed(4)} \\(800 vs 800 labels\\), drop 0\\.\\d{4}: worse by more than maxDrop 0\\.05 at 0\\.95 confidence \\(DeLong's test, z -\\d+\\.\\d{3}, p [\\d.e-]+\\)$`,
    ),
    rolledBack,
  );
  assert.ok((await evaluationJobs(name)).length >= 1, 'the rollout ran its own evaluation Job');
});

test('too few labels hold the canary at its step without a failed check; once they arrive, equal quality is promoted', async () => {
  const name = 'fraud-equal';
  await serveMetrics(name, 'fraud-b', { 1: 0.01, 2: 0.01 });
  await createService(name, 'fraud-b', { metric: 'auc', maxDrop: 0.05, minLabels: 300, confidence: 0.95 });
  await canaryStarted(name);
  // 100 labels a side: a third of minLabels.
  await logAndLabel(name, predictions(1, 100, 1.53, 3, 'fraud-b'), 0);
  await logAndLabel(name, predictions(2, 100, 1.53, 4, 'fraud-b'), 0);
  const waiting = await waitFor(
    `${name}: an AwaitingLabels Event`,
    async () => (await events(name, 'AwaitingLabels'))[0],
    90_000,
  );
  assert.match(
    waiting,
    /^canary v2 held at 50% \(step 0\): auc: 100 canary and 100 stable labels, 300 needed on each side; waiting for labels$/,
  );
  // The Event goes out before the status write with the same words: read until the status has them.
  const held = await waitFor(
    `${name}: status.analysis.message waiting for labels`,
    async () => {
      const object = await getIsvc(name);
      return /^Waiting: auc: 100 canary and 100 stable labels/.test(object.status?.analysis?.message ?? '')
        ? object
        : undefined;
    },
    30_000,
  );
  assert.equal([held.status.phase, held.status.currentStep, held.status.canaryWeight], ['Progressing', 0, 50]);
  assert.is(held.status.analysis.failedChecks, 0);
  // Still held a few intervals later.
  await sleep(8_000);
  const later = await getIsvc(name);
  assert.equal(
    [later.status.phase, later.status.currentStep, later.status.analysis.failedChecks],
    ['Progressing', 0, 0],
  );

  // The labels come in: 700 more a side, of the same quality.
  await logAndLabel(name, predictions(1, 700, 1.53, 5, 'fraud-b-late'), 1);
  await logAndLabel(name, predictions(2, 700, 1.53, 6, 'fraud-b-late'), 1);
  const promoted = await untilPhase(name, 'Promoted');
  assert.is(promoted.status.stableVersion, 2);
  const message = await eventOf(name, 'Promoted');
  console.log(`  ${message}`);
  assert.match(
    message,
    /all 2 steps passed analysis; last: requests \d+.*; auc canary 0\.\d{4} vs stable 0\.\d{4} \(800 vs 800 labels\).*not shown worse by more than maxDrop 0\.05/,
    message,
  );
});

test('in shadow mode, before any label came back, a canary deciding differently on the same requests is rolled back', async () => {
  const name = 'fraud-shadow';
  await serveMetrics(name, 'fraud-c', { 1: 0.01, 2: 0.01 });
  await createService(
    name,
    'fraud-c',
    { metric: 'auc', maxDrop: 0.05, minLabels: 300 },
    { shadow: true, decisions: { maxFlipRate: 0.05, maxScorePsi: 0.25, minPairs: 200 } },
  );
  await canaryStarted(name);
  // Both versions answered the same 600 mirrored requests (one request id); the canary scores them lower.
  const stable = predictions(1, 600, 1.53, 7, 'fraud-c');
  const canary = stable.map((r) => ({ ...r, version: 2, score: r.score * 0.6 }));
  const flipped = stable.filter((r, j) => r.score >= 0.5 !== canary[j]!.score >= 0.5).length;
  for (const rows of [stable, canary]) {
    const logged = inferenceLogPart(ns, name, rows, `predictor-v${rows[0]!.version}`, 0);
    await s3.put(`ground-truth/${logged.key}`, logged.body);
  }
  const isvc = await untilPhase(name, 'RolledBack');
  assert.equal(isvc.status.analysis.decisions.pairs, 600);
  assert.ok(Math.abs(isvc.status.analysis.decisions.flipRate - flipped / 600) < 1e-12);
  // No labels at all: the quality check could not say, the decisions check did.
  assert.is(isvc.status.analysis.quality.verdict, 'Insufficient');
  const rolledBack = await eventOf(name, 'RolledBack');
  console.log(`  ${rolledBack}`);
  assert.match(
    rolledBack,
    new RegExp(
      `^canary v2 rolled back: 1 failed checks \\(limit 1\\): decisions on 600 requests both answered: canary decided ${flipped} differently \\(flip rate [\\d.]+\\), score PSI [\\d.]+: flip rate [\\d.]+ > maxFlipRate 0\\.05`,
    ),
    rolledBack,
  );
});

test('an evaluation Job that fails holds the step and says so in status and a Warning Event, naming the Job', async () => {
  const name = 'fraud-nobucket';
  await serveMetrics(name, 'fraud-d', { 1: 0.01, 2: 0.01 });
  await createService(name, 'fraud-d', { metric: 'auc', maxDrop: 0.05 }, { uri: 's3://no-such-bucket-qgate/gt' });
  const warning = await waitFor(
    `${name}: a QualityEvaluationFailed Event`,
    async () => (await events(name, 'QualityEvaluationFailed'))[0],
    150_000,
  );
  console.log(`  ${warning}`);
  assert.match(
    warning,
    new RegExp(
      `^Waiting: quality evaluation Job ${name}-quality-[0-9a-f]{10} failed \\(BackoffLimitExceeded: .*\\); kubectl logs -n ${ns} job/${name}-quality-[0-9a-f]{10} says why\\. Step 0 holds`,
    ),
  );
  // The Event and the status write are two requests: read until the status says it too.
  const isvc = await waitFor(
    `${name}: status.analysis.message naming the failed Job`,
    async () => {
      const object = await getIsvc(name);
      return /^Waiting: quality evaluation Job .* failed/.test(object.status?.analysis?.message ?? '')
        ? object
        : undefined;
    },
    30_000,
  ).catch(async (error) => {
    const object = await getIsvc(name);
    throw new Error(`${(error as Error).message}; status ${JSON.stringify(object.status?.analysis)}`);
  });
  assert.equal([isvc.status.phase, isvc.status.currentStep, isvc.status.analysis.failedChecks], ['Progressing', 0, 0]);
});

test.run();
