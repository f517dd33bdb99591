// The decision to retrain on a quality drop (spec.retrain.onQualityDrop), pure: the bound from below and the
// training metric, minLabels, the snapshot the job trains on, idempotence per quality event, the cooldown shared with
// drift, and the evaluator's --snapshot-* flags the CronJob gets.
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cloudEvent } from '../../events/cloudevents.ts';
import { QUALITY_EVENT_TYPE } from '../../events/quality-event.ts';
import { planRetrain, retrainJobName, TRIGGER_ANNOTATION } from '../drift.ts';
import { nextQualityStatus, qualityCronJob } from '../quality.ts';
import { planQualityRetrain, snapshotCondition } from '../quality-retrain.ts';
import type { InferenceService } from '../resource.ts';
import { inferenceService } from './support/fixtures.ts';

const T0 = Date.parse('2026-12-01T12:00:00Z');
const at = (seconds: number) => new Date(T0 + seconds * 1000);
const sha = `${'c0ffee'.repeat(10)}abcd`;
const snapshot = {
  uri: 's3://gt/snapshots/risk/fraud/20261201T120000000Z-c0ffeec0ffeec0ff.csv',
  sha256: sha,
  rows: 480,
};
const rule = { metric: 'auc' as const, below: 0.7, maxDropFromTraining: 0.05, minLabels: 200 };
const stable = { version: 3, metrics: { auc: 0.9, accuracy: 0.8 } };

function isvc(
  status: InferenceService['status'],
  onQualityDrop: Record<string, unknown> | null = rule,
  cooldown = '1h',
): InferenceService {
  return {
    ...inferenceService({
      logging: { enabled: true, uri: 's3://gt' },
      retrain: {
        cooldown,
        ...(onQualityDrop ? { onQualityDrop: onQualityDrop as never } : {}),
        template: {
          spec: {
            image: 'loopline/trainer:0.1.0',
            dataset: { uri: 's3://data/original/' },
            hyperparameters: { epochs: '300' },
          },
        },
      },
    } as never),
    status,
  };
}

const quality = (auc: number | null, count = 480, extra: Record<string, unknown> = { snapshot }) => ({
  quality: {
    lastEventId: 'q-1',
    lastEventTime: at(0).toISOString(),
    window: { end: at(0).toISOString(), duration: '1h' },
    versions: [
      { version: 2, count: 900, auc: 0.2 },
      { version: 3, count, auc, accuracy: 0.6 },
    ],
    ...extra,
  },
});

const table: Array<{ name: string; isvc: InferenceService; now?: number; create: boolean; reason?: RegExp }> = [
  { name: 'off without onQualityDrop', isvc: isvc(quality(0.3), null), create: false, reason: /is off/ },
  { name: 'no evaluation yet', isvc: isvc({}), create: false, reason: /no quality evaluation yet/ },
  {
    name: 'above the bound from training (0.9 - 0.05) holds',
    isvc: isvc(quality(0.86)),
    create: false,
    reason: /auc 0.86 is not below 0.85/,
  },
  {
    name: 'below training minus the margin while above `below` retrains',
    isvc: isvc(quality(0.84)),
    create: true,
  },
  {
    name: 'too few labels waits',
    isvc: isvc(quality(0.3, 199)),
    create: false,
    reason: /199 labels, fewer than minLabels 200/,
  },
  {
    name: "another version's drop is not the stable version's",
    isvc: isvc({ quality: { ...quality(0.3).quality, versions: [{ version: 2, count: 900, auc: 0.2 }] } }),
    create: false,
    reason: /has no v3/,
  },
  { name: 'no AUC (every label the same) is no drop', isvc: isvc(quality(null)), create: false, reason: /auc n\/a/ },
  {
    name: 'a drop without a snapshot waits for one',
    isvc: isvc(quality(0.3, 480, {})),
    create: false,
    reason: /no snapshot of labelled rows/,
  },
  {
    name: 'while a canary rolls out (maybe the last retrain) nothing starts',
    isvc: isvc({ ...quality(0.3), phase: 'Progressing', canaryVersion: 4 }),
    create: false,
    reason: /v4 is rolling out as the canary/,
  },
  {
    name: 'the same event again starts nothing',
    isvc: isvc({ ...quality(0.3), lastRetrain: { trainingJob: 'x', eventId: 'q-1', time: at(-7200).toISOString() } }),
    create: false,
    reason: /already retrained for event q-1/,
  },
  {
    name: "inside the cooldown of an earlier retrain (drift's or quality's) nothing starts",
    isvc: isvc({ ...quality(0.3), lastRetrain: { trainingJob: 'x', eventId: 'd-9', time: at(-1800).toISOString() } }),
    create: false,
    reason: /cooldown until 2026-12-01T12:30:00.000Z after x/,
  },
  {
    name: 'after the cooldown a new drop retrains',
    isvc: isvc({ ...quality(0.3), lastRetrain: { trainingJob: 'x', eventId: 'q-0', time: at(-3600).toISOString() } }),
    create: true,
  },
  {
    name: 'maxDropFromTraining alone without a training metric has no bound',
    isvc: isvc(quality(0.3), { metric: 'accuracy', maxDropFromTraining: 0.1 }),
    create: false,
    reason: /no training metric accuracy/,
  },
];
for (const row of table) {
  test(row.name, () => {
    const plan = planQualityRetrain(
      row.isvc,
      at(row.now ?? 0),
      row.name.includes('no bound') ? { version: 3 } : stable,
    );
    assert.is(plan.create, row.create, plan.reason);
    if (!plan.create && row.reason) assert.match(plan.reason, row.reason);
  });
}

test('the retrain trains on the snapshot: spec.dataset is its URI and sha256, the rest from the template', () => {
  const plan = planQualityRetrain(isvc(quality(0.3)), at(0), stable);
  assert.ok(plan.create);
  if (!plan.create) return;
  const job = plan.job as any;
  assert.is(job.metadata.name, retrainJobName(isvc({}), 'q-1'));
  assert.equal(job.spec.dataset, { uri: snapshot.uri, hash: `sha256:${sha}`, snapshot: 'quality event q-1' });
  assert.equal(job.spec.hyperparameters, { epochs: '300' });
  assert.is(job.spec.model, 'fraud-detector');
  assert.match(
    job.metadata.annotations[TRIGGER_ANNOTATION],
    /^quality event q-1: v3's live auc 0.3 is below 0.85 over 480 labels/,
  );
  assert.equal(plan.lastRetrain, {
    trainingJob: job.metadata.name,
    eventId: 'q-1',
    time: at(0).toISOString(),
    trigger: 'QualityDrop',
  });
  const replay = planQualityRetrain(isvc(quality(0.3)), at(5), stable);
  assert.ok(replay.create && replay.job.metadata.name === job.metadata.name, 'a replay names the same job');
});

test('drift and quality share one cooldown: a quality retrain blocks a drift retrain and back', () => {
  const both = {
    ...isvc({
      ...quality(0.3),
      drift: { score: 0.5, drifted: true, lastEventId: 'd-1', lastEventTime: at(0).toISOString(), version: 3 },
      lastRetrain: { trainingJob: 'q', eventId: 'q-1', time: at(-60).toISOString(), trigger: 'QualityDrop' },
    }),
  };
  both.spec = { ...both.spec, drift: { enabled: true }, retrain: { ...both.spec.retrain!, onDrift: true } };
  assert.match((planRetrain(both, at(0), 3) as { reason: string }).reason, /cooldown until/);
});

test("the evaluator CronJob is asked for a snapshot at the stable version's bound, and only with onQualityDrop", () => {
  const args = (object: any) => object.spec.jobTemplate.spec.template.spec.containers[0].args as string[];
  const cron = qualityCronJob(isvc({}), {}, snapshotCondition(isvc({}), stable));
  assert.equal(args(cron).slice(-8), [
    '--snapshot-version',
    '3',
    '--snapshot-metric',
    'auc',
    '--snapshot-below',
    String(0.9 - 0.05),
    '--snapshot-min-labels',
    '200',
  ]);
  assert.is(snapshotCondition(isvc({}, null), stable), undefined);
  assert.not.ok(args(qualityCronJob(isvc({}, null), {}, undefined)).includes('--snapshot-version'));
  assert.equal(snapshotCondition(isvc({}, { metric: 'accuracy', below: 0.75 }), stable), {
    version: 3,
    metric: 'accuracy',
    below: 0.75,
    minLabels: 100,
  });
});

test("a quality event's snapshot is recorded in status.quality, and an event without one records none", () => {
  const data = {
    namespace: 'risk',
    inferenceService: 'fraud',
    window: { start: null, end: at(0).toISOString(), duration: 'all' },
    versions: [],
  };
  const withSnapshot = cloudEvent({ type: QUALITY_EVENT_TYPE, source: '/x', id: 'q-1', data: { ...data, snapshot } });
  assert.equal(nextQualityStatus(undefined, withSnapshot)!.quality.snapshot, snapshot);
  const without = cloudEvent({ type: QUALITY_EVENT_TYPE, source: '/x', id: 'q-2', data });
  assert.is(nextQualityStatus(undefined, without)!.quality.snapshot, undefined);
  const bad = cloudEvent({
    type: QUALITY_EVENT_TYPE,
    source: '/x',
    id: 'q-3',
    data: { ...data, snapshot: { ...snapshot, sha256: 'xyz' } },
  });
  assert.throws(() => nextQualityStatus(undefined, bad), /data.snapshot.sha256 is missing or malformed/);
});

test.run();
