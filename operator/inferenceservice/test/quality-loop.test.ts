/**
 * Live quality on the local cluster, every part real: the operator (InferenceService controller and its quality
 * consumer, wired as operator/main.ts wires them) against the API server, the evaluator CronJob it owns, a run of
 * that CronJob's job template executed by the local kubelet (the operator image's `evaluate` command) reading
 * ground truth from the S3 server (versitygw) with the keys of a Secret, and its quality event on NATS JetStream
 * landing in status.quality, Kubernetes Events, the loopline_model_quality gauge and `loopline status`.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { jetstream } from '@nats-io/jetstream';
import { inferenceLogPart, labelCsv, labelPart } from '../../../test/support/ground-truth.ts';
import { requireS3 } from '../../../test/support/s3.ts';
import { qualityMetrics } from '../../../server/src/quality/metrics.ts';
import { run } from '../../cli/main.ts';
import { kinds, KubeApi, type KubeObject } from '../../engine/index.ts';
import { cloudEvent } from '../../events/cloudevents.ts';
import { QUALITY_EVENT_TYPE, qualitySubject } from '../../events/quality-event.ts';
import { CronJob } from '../batch.ts';
import {
  createNamespace,
  installCrds,
  registerVersion,
  requireKubeconfig,
  uniqueName,
  waitFor,
} from './support/cluster.ts';
import { eventNotes } from '../../../test/support/events.ts';
import { startLiveOperator, type LiveOperator } from './support/live-operator.ts';
import { requireNatsUrl } from '../../../test/support/nats.ts';

const kc = requireKubeconfig();
const api = new KubeApi(kc);
const s3 = requireS3('quality-loop');
const ns = uniqueName('isvc-quality');
const MODEL = 'fraud-detector';
const ISVC = 'fraud';
const SECRET = 'ground-truth-keys';
requireNatsUrl();

let live: LiveOperator;
const base = s3.uri('ground-truth');
const scores = [0.91, 0.85, 0.3, 0.62, 0.2, 0.12, 0.77, 0.45, 0.55, 0.05];
const truth = [1, 1, 0, 0, 0, 1, 1, 0, 1, 0];

const getIsvc = () => api.get(kinds.InferenceService, ns, ISVC);
const events = (reason: string) => eventNotes(api, ns, ISVC, reason);

test.before(async () => {
  await installCrds(api);
  await createNamespace(api, ns);
  await api.create(kinds.Secret, s3.secret(SECRET, ns) as never, 'loopline-test');
  await registerVersion(api, ns, MODEL, 1, ['production']);
  live = await startLiveOperator({
    kubeconfig: kc,
    api,
    namespace: ns,
    env: { PROMETHEUS_URL: 'http://127.0.0.1:9', ...s3.operatorEnv(SECRET) },
  });
  await api.create(
    kinds.InferenceService,
    {
      apiVersion: 'loopline.dev/v1alpha1',
      kind: 'InferenceService',
      metadata: { name: ISVC, namespace: ns },
      spec: {
        model: MODEL,
        stable: { alias: 'production' },
        // Not a Loopline image: KWOK plays the predictor pods; this suite is about the evaluator.
        predictor: { image: 'registry.local/predictor-simulated:1', resources: { cpu: '10m', memory: '32Mi' } },
        logging: { enabled: true, uri: base },
        quality: { schedule: '0 0 1 1 *', window: '1h', threshold: 0.5 },
      },
    } as never,
    'loopline-test',
  );
});

test.after(async () => {
  await live?.stop();
});

test("the InferenceService owns a quality CronJob that runs the operator image with the evaluator's settings", async () => {
  const isvc = await getIsvc();
  const cron = await waitFor(
    'the quality CronJob',
    () => api.get(CronJob, ns, `${ISVC}-quality`).catch(() => undefined),
    30_000,
  );
  assert.equal(cron.metadata.ownerReferences, [
    {
      apiVersion: 'loopline.dev/v1alpha1',
      kind: 'InferenceService',
      name: ISVC,
      uid: isvc.metadata.uid,
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
  assert.is(cron.spec.schedule, '0 0 1 1 *');
  const container = cron.spec.jobTemplate.spec.template.spec.containers[0];
  assert.is(container.image, 'loopline/operator:0.1.0');
  assert.equal(container.args.slice(0, 11), [
    'evaluate',
    '--namespace',
    ns,
    '--service',
    ISVC,
    '--uri',
    base,
    '--window',
    '1h',
    '--threshold',
    '0.5',
  ]);
  const env = Object.fromEntries(
    container.env.map((e: { name: string; value?: string; valueFrom?: unknown }) => [e.name, e.value ?? e.valueFrom]),
  );
  assert.is(env.NATS_URL, process.env.NATS_URL);
  assert.is(env.AWS_ENDPOINT_URL_S3, s3.operatorEnv(SECRET).STORAGE_S3_ENDPOINT);
  assert.equal(env.AWS_SECRET_ACCESS_KEY, { secretKeyRef: { name: SECRET, key: 'AWS_SECRET_ACCESS_KEY' } });
  assert.not.ok(JSON.stringify(cron).includes(s3.secretAccessKey), 'no key in the CronJob');
});

test("a run of the CronJob's template evaluates the S3 ground truth; the event lands in status, an Event, the gauge and loopline status", async () => {
  const now = Date.now();
  const part = inferenceLogPart(
    ns,
    ISVC,
    scores.map((score, j) => ({ requestId: `req-${j}`, time: now - 120_000 + j, model: MODEL, version: 1, score })),
  );
  await s3.put(`ground-truth/${part.key}`, part.body);
  const feedback = labelPart(
    ns,
    ISVC,
    truth.map((label, j) => ({ requestId: `req-${j}`, label: 1 - label, time: now - 60_000 })),
  );
  await s3.put(`ground-truth/${feedback.key}`, feedback.body);
  // The warehouse's later answer (no time column: recorded at its LastModified) wins over the feedback above.
  const bulk = labelCsv(
    ns,
    ISVC,
    [...truth.map((label, j) => ({ requestId: `req-${j}`, label })), { requestId: 'never-logged', label: 1 }],
    'warehouse/day-1',
  );
  await s3.put(`ground-truth/${bulk.key}`, bulk.body);

  const cron = await api.get(CronJob, ns, `${ISVC}-quality`);
  // What `kubectl create job --from=cronjob/fraud-quality` does: one run now.
  await api.create(
    kinds.Job,
    {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'quality-now', namespace: ns },
      spec: cron.spec.jobTemplate.spec,
    } as never,
    'loopline-test',
  );
  const isvc = await waitFor(
    'status.quality from the evaluator run',
    async () => {
      const object = await getIsvc();
      return object.status?.quality?.versions?.length ? object : undefined;
    },
    120_000,
  ).catch(async (error) => {
    const pods = (await api.list(kinds.Pod, ns)).items.filter((p: KubeObject) =>
      p.metadata.name.startsWith('quality-now'),
    );
    throw new Error(
      `${(error as Error).message}; evaluator pods: ${JSON.stringify(pods.map((p: KubeObject) => p.status?.containerStatuses?.[0]?.state))}`,
    );
  });
  const expected = qualityMetrics(scores, truth);
  const [v1] = isvc.status.quality.versions;
  assert.equal([v1.version, v1.model, v1.predictions, v1.count, v1.positives, v1.excluded], [1, MODEL, 10, 10, 5, 0]);
  for (const metric of ['accuracy', 'auc', 'logLoss', 'brier', 'precision', 'recall', 'calibrationError'] as const) {
    assert.ok(
      Math.abs(v1[metric] - (expected[metric] as number)) < 1e-12,
      `${metric}: ${v1[metric]} vs ${expected[metric]}`,
    );
  }
  assert.is(isvc.status.quality.window.duration, '1h');
  await waitFor(
    'the QualityMeasured Event',
    async () => (await events('QualityMeasured')).length > 0 || undefined,
    10_000,
  );
  assert.match(
    (await events('QualityMeasured'))[0]!,
    new RegExp(
      `^v1: AUC ${expected.auc!.toFixed(3)}, accuracy ${expected.accuracy.toFixed(3)} over 10 labelled of 10 logged predictions`,
    ),
  );

  const series = await waitFor(
    'the gauge from the cache',
    async () => {
      const text = await live.operator.metrics.metrics();
      return text.includes(
        `loopline_model_quality{namespace="${ns}",inferenceservice="${ISVC}",metric="auc",version="1"}`,
      )
        ? text
        : undefined;
    },
    10_000,
  );
  assert.match(
    series,
    new RegExp(
      `loopline_model_quality\\{namespace="${ns}",inferenceservice="${ISVC}",metric="auc",version="1"\\} ${expected.auc}`,
    ),
  );
  assert.match(
    series,
    new RegExp(
      `loopline_model_quality\\{namespace="${ns}",inferenceservice="${ISVC}",metric="count",version="1"\\} 10`,
    ),
  );

  const lines: string[] = [];
  const code = await run(['status', ISVC, '-n', ns], (line) => lines.push(line), {
    env: { PROMETHEUS_URL: 'http://127.0.0.1:9' },
  });
  assert.is(code, 0, lines.join('\n'));
  const text = lines.join('\n');
  assert.match(text, /QUALITY  window 1h, evaluated \d+s, threshold 0\.5/);
  assert.match(
    text,
    new RegExp(
      `v1\\s+stable\\s+10 of 10\\s+${Number(expected.auc!.toPrecision(3))}\\s+${Number(expected.accuracy.toPrecision(3))}`,
    ),
  );
});

test('a later evaluation with a notable drop replaces the entry and is a Warning; a replay of the older one changes nothing', async () => {
  const previous = (await getIsvc()).status.quality;
  const entry = previous.versions[0];
  const dropped = { ...entry, auc: entry.auc - 0.2, accuracy: entry.accuracy - 0.1 };
  const later = cloudEvent({
    type: QUALITY_EVENT_TYPE,
    source: `/apis/loopline.dev/v1alpha1/namespaces/${ns}/inferenceservices/${ISVC}`,
    data: {
      namespace: ns,
      inferenceService: ISVC,
      window: {
        start: null,
        end: new Date(Date.parse(previous.lastEventTime) + 60_000).toISOString(),
        duration: 'all',
      },
      versions: [dropped],
    },
  });
  const js = jetstream(live.nc);
  await js.publish(qualitySubject(ns, ISVC), JSON.stringify(later), { msgID: later.id });
  const replay = cloudEvent({
    type: later.type,
    source: later.source,
    id: `${later.id}-old`,
    data: { ...later.data, window: { ...later.data.window, end: previous.window.end }, versions: [entry] },
  });
  await js.publish(qualitySubject(ns, ISVC), JSON.stringify(replay), { msgID: replay.id });
  await waitFor(
    'the QualityDropped Warning',
    async () => (await events('QualityDropped')).length > 0 || undefined,
    15_000,
  );
  const quality = (await getIsvc()).status.quality;
  assert.is(quality.lastEventId, later.id);
  assert.is(quality.window.duration, 'all');
  assert.ok(Math.abs(quality.versions[0].auc - dropped.auc) < 1e-12);
  assert.match((await events('QualityDropped'))[0]!, /^v1: AUC .* → .* \(-0\.200\), accuracy .* \(-0\.100\)/);
});

test.run();
