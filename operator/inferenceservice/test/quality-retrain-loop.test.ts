/**
 * Retraining on a quality drop on the local cluster, every part real: the operator (TrainingJob, ModelVersion and
 * InferenceService controllers and the quality consumer, wired as operator/main.ts wires them) against the API
 * server; the evaluator CronJob's template run by the local kubelet (the operator image's `evaluate` command,
 * DuckDB) reading ground truth from the S3 server (versitygw); its quality event on NATS JetStream; the example
 * trainer run by the local kubelet on the snapshot the evaluator wrote to S3.
 *
 *   v1 (training AUC 0.89) serves → a concept shift: same inputs, another label rule, so no input drifts →
 *   the evaluator measures v1's AUC far below 0.89 - 0.1 and writes the labelled rows as a snapshot →
 *   exactly one retraining TrainingJob on it (a replayed event and a second evaluation inside the cooldown start
 *   none) → v2 registered, its lineage naming the snapshot and its sha256 → on a fresh shifted population (in
 *   onnxruntime) v2's AUC beats v1's.
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { jetstream } from '@nats-io/jetstream';
import ort from 'onnxruntime-node';
import { conceptShiftFiles, conceptShiftRows } from '../../../test/support/concept-shift.ts';
import { requireS3 } from '../../../test/support/s3.ts';
import { qualityMetrics } from '../../../server/src/quality/metrics.ts';
import { parseS3Uri } from '../../api/object-storage.ts';
import { kinds, KubeApi } from '../../engine/index.ts';
import { qualitySubject } from '../../events/quality-event.ts';
import { CronJob } from '../batch.ts';
import { TRIGGER_ANNOTATION } from '../drift.ts';
import {
  createNamespace,
  installCrds,
  registerVersion,
  requireKubeconfig,
  sleep,
  uniqueName,
  waitFor,
} from './support/cluster.ts';
import { eventNotes } from '../../../test/support/events.ts';
import { startLiveOperator, type LiveOperator } from './support/live-operator.ts';
import { requireNatsUrl } from '../../../test/support/nats.ts';

const kc = requireKubeconfig();
const api = new KubeApi(kc);
const s3 = requireS3('quality-retrain');
const ns = uniqueName('isvc-qretrain');
const MODEL = 'credit-risk';
const ISVC = 'credit';
const SECRET = 'ground-truth-keys';
const TRAINER = 'loopline/example-trainer:0.1.0';
const TRAINING_AUC = 0.89;
requireNatsUrl();

let live: LiveOperator;
let outputDir: string;
const base = s3.uri('ground-truth');
const qualityEvents: Array<{ id: string; raw: string }> = [];

const getIsvc = () => api.get(kinds.InferenceService, ns, ISVC);
const retrainJobs = async () =>
  (await api.list(kinds.TrainingJob, ns, { labelSelector: `loopline.dev/inferenceservice=${ISVC}` })).items;
const events = (reason: string) => eventNotes(api, ns, ISVC, reason);

/** What `kubectl create job --from=cronjob/credit-quality` does: one evaluation now. */
async function evaluateNow(name: string): Promise<void> {
  const cron = await api.get(CronJob, ns, `${ISVC}-quality`);
  await api.create(
    kinds.Job,
    {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name, namespace: ns },
      spec: cron.spec.jobTemplate.spec,
    } as never,
    'loopline-test',
  );
}

async function s3Bytes(uri: string): Promise<Buffer> {
  const { bucket, key } = parseS3Uri(uri);
  const object = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await object.Body!.transformToByteArray());
}

test.before(async () => {
  await installCrds(api);
  await createNamespace(api, ns);
  outputDir = mkdtempSync(join(tmpdir(), 'isvc-qretrain-'));
  await api.create(kinds.Secret, s3.secret(SECRET, ns) as never, 'loopline-test');
  // v1 as its training run registered it: its held-out AUC is the reference the live AUC is held to.
  await registerVersion(api, ns, MODEL, 1, ['production'], undefined, {
    effective: false,
    spec: { metrics: { auc: TRAINING_AUC, accuracy: 0.82 }, stage: 'Production' },
  });
  live = await startLiveOperator({
    kubeconfig: kc,
    api,
    namespace: ns,
    env: { PROMETHEUS_URL: 'http://127.0.0.1:9', ...s3.operatorEnv(SECRET) },
    operator: { lifecycle: { retryBaseMs: 300 } },
  });
  const subscription = live.nc.subscribe(`loopline.quality.${ns}.>`);
  void (async () => {
    for await (const message of subscription)
      qualityEvents.push({ id: message.json<{ id: string }>().id, raw: message.string() });
  })();
  await api.create(
    kinds.InferenceService,
    {
      apiVersion: 'loopline.dev/v1alpha1',
      kind: 'InferenceService',
      metadata: { name: ISVC, namespace: ns },
      spec: {
        model: MODEL,
        stable: { alias: 'production' },
        // KWOK plays the predictor pods; the logged predictions are written below as the predictor writes them.
        predictor: { image: 'registry.local/predictor-simulated:1', resources: { cpu: '10m', memory: '32Mi' } },
        logging: { enabled: true, uri: base },
        quality: { schedule: '0 0 1 1 *', window: '1h' },
        retrain: {
          cooldown: '1h',
          onQualityDrop: { metric: 'auc', below: 0.6, maxDropFromTraining: 0.1, minLabels: 200 },
          template: {
            spec: {
              image: TRAINER,
              hyperparameters: { epochs: '150' },
              output: { uri: pathToFileURL(outputDir).href },
              backoffLimit: 0,
              registration: { gates: [{ metric: 'auc', operator: '>=', value: 0.6 }], aliases: ['candidate'] },
            },
          },
        },
      },
    } as never,
    'loopline-test',
  );
});

test.after(async () => {
  await live?.stop();
  rmSync(outputDir, { recursive: true, force: true });
});

test("the evaluator CronJob is asked for a snapshot at v1's bound: its training AUC minus maxDropFromTraining", async () => {
  const cron = await waitFor(
    'the quality CronJob',
    () => api.get(CronJob, ns, `${ISVC}-quality`).catch(() => undefined),
    30_000,
  );
  const args: string[] = cron.spec.jobTemplate.spec.template.spec.containers[0].args;
  assert.equal(args.slice(args.indexOf('--snapshot-version')), [
    '--snapshot-version',
    '1',
    '--snapshot-metric',
    'auc',
    '--snapshot-below',
    String(TRAINING_AUC - 0.1),
    '--snapshot-min-labels',
    '200',
  ]);
});

const shifted = conceptShiftRows(600, 21, 'loan');

test('a concept shift drops live AUC below the bound: exactly one retraining TrainingJob, on the snapshot of labelled rows', async () => {
  const now = Date.now();
  for (const file of conceptShiftFiles(ns, ISVC, MODEL, 1, shifted, now - 20 * 60_000, now - 60_000))
    await s3.put(`ground-truth/${file.key}`, file.body);
  await evaluateNow('quality-1');
  const [job] = await waitFor(
    'the retraining TrainingJob',
    async () => {
      const jobs = await retrainJobs();
      return jobs.length > 0 ? jobs : undefined;
    },
    120_000,
  ).catch(async (error) => {
    const isvc = await getIsvc();
    throw new Error(`${(error as Error).message}; status.quality: ${JSON.stringify(isvc.status?.quality)}`);
  });
  // The controller creates the TrainingJob before it records status.lastRetrain: wait for the record too.
  const isvc = await waitFor(
    'status.lastRetrain',
    async () => {
      const current = await getIsvc();
      return current.status?.lastRetrain?.eventId ? current : undefined;
    },
    30_000,
  );
  // The evaluation that started it (the status may already hold a later one): as the evaluator published it.
  const eventId = isvc.status.lastRetrain.eventId;
  const published = await waitFor(
    'the quality event on NATS',
    async () => qualityEvents.find((e) => e.id === eventId),
    10_000,
  );
  const quality = { lastEventId: eventId, ...JSON.parse(published.raw).data };
  const v1 = quality.versions.find((v: { version: number }) => v.version === 1);
  const expected = qualityMetrics(shifted.scores, shifted.labels).auc!;
  assert.ok(Math.abs(v1.auc - expected) < 1e-9, `live AUC ${v1.auc} vs ${expected}`);
  assert.ok(v1.auc < TRAINING_AUC - 0.1, `v1's live AUC ${v1.auc}`);
  assert.is(v1.count, 600);
  console.log(
    `v1: training AUC ${TRAINING_AUC}, live AUC on the shifted population ${v1.auc.toFixed(4)} over ${v1.count} labels`,
  );

  const snapshot = quality.snapshot;
  assert.match(
    snapshot.uri,
    new RegExp(`^${base}/snapshots/${ns}/${ISVC}/\\d{8}T\\d{9}Z-${snapshot.sha256.slice(0, 16)}\\.csv$`),
  );
  assert.is(
    createHash('sha256')
      .update(await s3Bytes(snapshot.uri))
      .digest('hex'),
    snapshot.sha256,
  );
  assert.is(snapshot.rows, 600);
  assert.equal(job.spec.dataset, {
    uri: snapshot.uri,
    hash: `sha256:${snapshot.sha256}`,
    snapshot: `quality event ${quality.lastEventId}`,
  });
  assert.match(
    job.metadata.annotations![TRIGGER_ANNOTATION],
    new RegExp(`^quality event ${quality.lastEventId}: v1's live auc`),
  );
  assert.equal(
    [isvc.status.lastRetrain.trainingJob, isvc.status.lastRetrain.eventId, isvc.status.lastRetrain.trigger],
    [job.metadata.name, quality.lastEventId, 'QualityDrop'],
  );
  await waitFor(
    'the RetrainStarted Event',
    async () => (await events('RetrainStarted')).length > 0 || undefined,
    10_000,
  );
  assert.match(
    (await events('RetrainStarted'))[0]!,
    new RegExp(`TrainingJob ${job.metadata.name} created: v1's live auc`),
  );

  // The same event delivered again (a new JetStream message, as a redelivery after a crash would be): nothing new.
  const first = published;
  await jetstream(live.nc).publish(qualitySubject(ns, ISVC), first.raw, { msgID: `${first.id}-replayed` });
  // A second evaluation: the same drop, a new event, inside the cooldown.
  await evaluateNow('quality-2');
  await waitFor(
    'the second evaluation in status',
    async () => {
      const ids = new Set(qualityEvents.map((e) => e.id));
      ids.delete(first.id);
      return ids.has((await getIsvc()).status.quality.lastEventId) && qualityEvents.length >= 2 ? true : undefined;
    },
    120_000,
  );
  await sleep(2000);
  const after = await getIsvc();
  assert.is((await retrainJobs()).length, 1, 'one quality drop, one retrain');
  assert.is(after.status.lastRetrain.eventId, first.id, 'the cooldown kept the first retrain');
  assert.is((await events('RetrainStarted')).length, 1);
});

test("the retrain trains on the snapshot: v2's lineage names it and its sha256, and v2 beats v1 on the shifted population", async () => {
  const [job] = await retrainJobs();
  const v2 = await waitFor(
    'ModelVersion v2 from the retrain',
    () => api.get(kinds.ModelVersion, ns, `${MODEL}-v2`).catch(() => undefined),
    180_000,
  ).catch(async (error) => {
    const current = await api.get(kinds.TrainingJob, ns, job.metadata.name);
    throw new Error(`${(error as Error).message}; TrainingJob status: ${JSON.stringify(current.status)}`);
  });
  assert.equal(v2.spec.lineage.dataset, job.spec.dataset);
  assert.match(v2.spec.lineage.dataset.hash, /^sha256:[0-9a-f]{64}$/);
  assert.equal(v2.spec.aliases, ['candidate']);
  // Both versions scored on rows of the shifted population neither has seen: v1 by its rule, v2 in onnxruntime.
  const fresh = conceptShiftRows(2000, 99, 'fresh');
  const session = await ort.InferenceSession.create(fileURLToPath(v2.spec.artifact.uri));
  const input = new ort.Tensor('float32', Float32Array.from(fresh.inputs.flat()), [fresh.inputs.length, 5]);
  const v2Scores = Array.from((await session.run({ input })).probability!.data as Float32Array);
  const oldAuc = qualityMetrics(fresh.scores, fresh.labels).auc!;
  const newAuc = qualityMetrics(v2Scores, fresh.labels).auc!;
  console.log(
    `shifted population (2000 fresh rows): v1 AUC ${oldAuc.toFixed(4)}, v2 (trained on ${job.spec.dataset.uri}) AUC ${newAuc.toFixed(4)}; v2's held-out AUC ${v2.spec.metrics.auc}`,
  );
  assert.ok(newAuc > oldAuc + 0.2, `v2 ${newAuc} vs v1 ${oldAuc}`);
});

test.run();
