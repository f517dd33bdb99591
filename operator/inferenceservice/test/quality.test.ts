// test: no cluster
// The quality evaluator CronJob the operator owns, and what a quality event does to status.quality and Events.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cloudEvent } from '../../events/cloudevents.ts';
import { QUALITY_EVENT_TYPE, type QualityEventData, type VersionQuality } from '../../events/quality-event.ts';
import { evaluatesQuality, nextQualityStatus, qualityCronJob } from '../quality.ts';
import { inferenceService } from './support/fixtures.ts';

const logging = { logging: { enabled: true, uri: 's3://ground-truth/risk' } };
const storage = {
  endpoint: 'http://s3.local:7070',
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: {
    secretName: 's3-keys',
    accessKeyIdKey: 'AWS_ACCESS_KEY_ID',
    secretAccessKeyKey: 'AWS_SECRET_ACCESS_KEY',
  },
};

test('logging on gives a quality CronJob owned by the InferenceService; quality off or no logging gives none', () => {
  assert.ok(evaluatesQuality(inferenceService(logging)));
  assert.not.ok(evaluatesQuality(inferenceService({})));
  assert.not.ok(evaluatesQuality(inferenceService({ ...logging, quality: { enabled: false } })));
  assert.not.ok(evaluatesQuality(inferenceService({ logging: { enabled: false, uri: 's3://ground-truth/risk' } })));
  const job: any = qualityCronJob(inferenceService(logging), {});
  assert.is(job.metadata.name, 'fraud-quality');
  assert.equal(job.metadata.ownerReferences, [
    {
      apiVersion: 'loopline.dev/v1alpha1',
      kind: 'InferenceService',
      name: 'fraud',
      uid: '0000-1111',
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
  assert.is(job.spec.schedule, '*/5 * * * *');
  assert.is(job.spec.concurrencyPolicy, 'Forbid');
});

test("the evaluator runs the operator image with the spec's window and threshold, NATS and the storage settings, keys by reference", () => {
  const isvc = inferenceService({
    ...logging,
    quality: { schedule: '*/2 * * * *', window: 'all', threshold: 0.3, resources: { cpu: '1', memory: '2Gi' } },
  });
  const job: any = qualityCronJob(isvc, {
    natsUrl: 'nats://nats:4222',
    storage,
    evaluatorImage: 'registry/loopline/operator:1.2.3',
  });
  const pod = job.spec.jobTemplate.spec.template.spec;
  const container = pod.containers[0];
  assert.is(job.spec.schedule, '*/2 * * * *');
  assert.is(container.image, 'registry/loopline/operator:1.2.3');
  assert.is(container.command, undefined, "the image's entrypoint, node operator/main.js");
  assert.equal(container.args, [
    'evaluate',
    '--namespace',
    'risk',
    '--service',
    'fraud',
    '--uri',
    's3://ground-truth/risk',
    '--window',
    'all',
    '--threshold',
    '0.3',
    '--memory-limit',
    '1536MiB',
  ]);
  const env = Object.fromEntries(container.env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
  assert.equal(env, {
    NATS_URL: 'nats://nats:4222',
    AWS_ENDPOINT_URL_S3: 'http://s3.local:7070',
    AWS_REGION: 'us-east-1',
    S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: { secretKeyRef: { name: 's3-keys', key: 'AWS_ACCESS_KEY_ID' } },
    AWS_SECRET_ACCESS_KEY: { secretKeyRef: { name: 's3-keys', key: 'AWS_SECRET_ACCESS_KEY' } },
  });
  assert.equal(container.resources, { requests: { cpu: '1', memory: '2Gi' }, limits: { cpu: '1', memory: '2Gi' } });
  assert.is(pod.restartPolicy, 'Never');
  assert.is(pod.automountServiceAccountToken, false);
  assert.is(pod.securityContext.runAsNonRoot, true);
  assert.is(container.securityContext.readOnlyRootFilesystem, true);
  assert.equal(container.volumeMounts, [{ name: 'tmp', mountPath: '/tmp' }]);
  // No predictor Service or PDB selects the evaluator's pods.
  assert.not.ok('loopline.dev/inferenceservice' in job.spec.jobTemplate.spec.template.metadata.labels);
});

function versionQuality(version: number, auc: number | null, accuracy: number | null, count = 500): VersionQuality {
  return {
    model: 'fraud-detector',
    version,
    predictions: count + 20,
    count,
    positives: Math.round(count / 3),
    excluded: 0,
    threshold: 0.5,
    accuracy,
    auc,
    logLoss: 0.4,
    brier: 0.12,
    precision: 0.7,
    recall: 0.6,
    calibrationError: 0.03,
  };
}

function qualityEvent(end: string, versions: VersionQuality[], id?: string) {
  const data: QualityEventData = {
    namespace: 'risk',
    inferenceService: 'fraud',
    window: { start: null, end, duration: 'all' },
    versions,
  };
  return cloudEvent({
    type: QUALITY_EVENT_TYPE,
    source: '/apis/loopline.dev/v1alpha1/namespaces/risk/inferenceservices/fraud',
    data,
    ...(id ? { id } : {}),
  });
}

test('a quality event becomes status.quality per version; the first labelled evaluation of a version is announced', () => {
  const update = nextQualityStatus(
    undefined,
    qualityEvent(
      '2026-12-01T12:00:00.000Z',
      [versionQuality(2, 0.9, 0.85), versionQuality(1, 0.88, 0.84), versionQuality(3, null, null, 0)],
      'e1',
    ),
  )!;
  assert.is(update.quality.lastEventId, 'e1');
  assert.is(update.quality.lastEventTime, '2026-12-01T12:00:00.000Z');
  assert.equal(update.quality.window, { end: '2026-12-01T12:00:00.000Z', duration: 'all' });
  assert.equal(
    update.quality.versions!.map((v) => v.version),
    [1, 2, 3],
  );
  assert.equal(update.quality.versions![1], {
    version: 2,
    model: 'fraud-detector',
    predictions: 520,
    count: 500,
    positives: 167,
    excluded: 0,
    threshold: 0.5,
    accuracy: 0.85,
    auc: 0.9,
    logLoss: 0.4,
    brier: 0.12,
    precision: 0.7,
    recall: 0.6,
    calibrationError: 0.03,
  });
  assert.equal(
    update.notices.map((n) => `${n.type} ${n.reason} ${n.message.split(':')[0]}`),
    ['Normal QualityMeasured v1', 'Normal QualityMeasured v2'],
  );
});

test('a drop of AUC or accuracy by 0.05 or more is a Warning naming both numbers; a small move is no Event', () => {
  const first = nextQualityStatus(
    undefined,
    qualityEvent('2026-12-01T12:00:00Z', [versionQuality(2, 0.9, 0.85)], 'e1'),
  )!.quality;
  const dropped = nextQualityStatus(
    first,
    qualityEvent('2026-12-01T12:05:00Z', [versionQuality(2, 0.78, 0.84)], 'e2'),
  )!;
  assert.equal(
    dropped.notices.map((n) => [n.type, n.reason]),
    [['Warning', 'QualityDropped']],
  );
  assert.match(
    dropped.notices[0]!.message,
    /^v2: AUC 0\.900 → 0\.780 \(-0\.120\) over 500 labelled of 520 logged predictions \(window all to 2026-12-01T12:05:00Z\)$/,
  );
  const improved = nextQualityStatus(
    dropped.quality,
    qualityEvent('2026-12-01T12:10:00Z', [versionQuality(2, 0.79, 0.95)], 'e3'),
  )!;
  assert.equal(
    improved.notices.map((n) => [n.type, n.reason]),
    [['Normal', 'QualityImproved']],
  );
  const small = nextQualityStatus(
    improved.quality,
    qualityEvent('2026-12-01T12:15:00Z', [versionQuality(2, 0.8, 0.93)], 'e4'),
  )!;
  assert.equal(small.notices, []);
  assert.is(small.quality.versions![0]!.auc, 0.8);
});

test('the same event again, or an older evaluation replayed after a newer one, changes nothing', () => {
  const event = qualityEvent('2026-12-01T12:05:00Z', [versionQuality(2, 0.9, 0.85)], 'e2');
  const recorded = nextQualityStatus(undefined, event)!.quality;
  assert.is(nextQualityStatus(recorded, event), undefined);
  assert.is(
    nextQualityStatus(recorded, qualityEvent('2026-12-01T12:00:00Z', [versionQuality(2, 0.5, 0.5)], 'e1')),
    undefined,
  );
});

test('an event that breaks the contract is refused naming the field', () => {
  const bad = qualityEvent('2026-12-01T12:05:00Z', [
    { ...versionQuality(2, 0.9, 0.85), auc: 'high' as unknown as number },
  ]);
  assert.throws(() => nextQualityStatus(undefined, bad), /data\.versions\[0\]\.auc is missing or malformed/);
  assert.throws(
    () => nextQualityStatus(undefined, { ...bad, type: 'dev.loopline.drift.window.v1' }),
    /not dev\.loopline\.inferenceservice\.quality/,
  );
});

test.run();
