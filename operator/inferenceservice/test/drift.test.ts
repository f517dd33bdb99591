// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cloudEvent } from '../../events/cloudevents.ts';
import {
  driftObservation,
  driftOfVersion,
  nextDriftStatus,
  planRetrain,
  retrainJobName,
  TRIGGER_ANNOTATION,
} from '../drift.ts';
import type { InferenceService } from '../resource.ts';
import { inferenceService } from './support/fixtures.ts';

const T0 = Date.parse('2025-03-01T12:00:00Z');
const iso = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();
const retrainSpec = {
  onDrift: true,
  cooldown: '1h',
  template: {
    metadata: { labels: { team: 'risk' } },
    spec: { image: 'loopline/trainer:0.1.0', dataset: { uri: 'file:///data/fraud.csv' } },
  },
};

function withStatus(
  status: InferenceService['status'],
  spec: Partial<InferenceService['spec']> = {},
): InferenceService {
  return { ...inferenceService({ drift: { enabled: true, threshold: 0.3 }, retrain: retrainSpec, ...spec }), status };
}

const drifted = {
  score: 0.5,
  driftedFeatures: ['amount', 'age'],
  lastEventId: 'evt-1',
  lastEventTime: iso(0),
  drifted: true,
};

test('a drift CloudEvent from the predictor becomes an observation', () => {
  const event = cloudEvent({
    id: 'evt-9',
    type: 'dev.loopline.drift.window.v1',
    source: '/x',
    time: new Date(T0),
    data: { score: 0.4, driftedFeatures: ['amount'], drifted: true, modelVersion: '3', features: [] },
  });
  assert.equal(driftObservation(event), {
    id: 'evt-9',
    time: iso(0),
    score: 0.4,
    driftedFeatures: ['amount'],
    drifted: true,
    modelVersion: '3',
  });
  assert.throws(() => driftObservation({ ...event, data: { score: 'high' } }), /numeric data.score/);
});

const statusTable = [
  {
    name: 'a first event is recorded, drifted by the spec threshold',
    previous: undefined,
    observation: { id: 'a', time: iso(0), score: 0.5, driftedFeatures: ['x'], drifted: false },
    drifted: true,
  },
  {
    name: 'a score below the spec threshold is not drifted whatever the predictor said',
    previous: undefined,
    observation: { id: 'a', time: iso(0), score: 0.1, driftedFeatures: [], drifted: true },
    drifted: false,
  },
  {
    name: 'the same event again changes nothing',
    previous: drifted,
    observation: { id: 'evt-1', time: iso(0), score: 0.5, driftedFeatures: [], drifted: true },
    drifted: undefined,
  },
  {
    name: 'an older event replayed after a newer one changes nothing',
    previous: drifted,
    observation: { id: 'old', time: iso(-60), score: 0.9, driftedFeatures: [], drifted: true },
    drifted: undefined,
  },
  {
    name: 'a newer calm window clears the drift',
    previous: drifted,
    observation: { id: 'b', time: iso(60), score: 0, driftedFeatures: [], drifted: false },
    drifted: false,
  },
];
for (const row of statusTable) {
  test(row.name, () => {
    const next = nextDriftStatus(withStatus({}), row.previous, row.observation);
    assert.is(next?.drifted, row.drifted);
    if (next) assert.is(next.lastEventId, row.observation.id);
  });
}

const versionTable = [
  {
    name: "a window of the stable version is recorded as that version's",
    previous: undefined,
    modelVersion: '3',
    time: iso(0),
    recorded: 3,
  },
  {
    name: 'a window of another version (the canary, or the stable one before a promotion) changes nothing',
    previous: undefined,
    modelVersion: '2',
    time: iso(0),
    recorded: undefined,
  },
  {
    name: "the first window of a promoted version replaces the previous version's summary, even when older",
    previous: { ...drifted, version: 2, lastEventTime: iso(30) },
    modelVersion: '3',
    time: iso(0),
    recorded: 3,
  },
  {
    name: 'a window naming no version counts as the stable version',
    previous: undefined,
    modelVersion: undefined,
    time: iso(0),
    recorded: 3,
  },
];
for (const row of versionTable) {
  test(row.name, () => {
    const observation = {
      id: 'w',
      time: row.time,
      score: 0.5,
      driftedFeatures: [],
      drifted: true,
      ...(row.modelVersion ? { modelVersion: row.modelVersion } : {}),
    };
    assert.is(nextDriftStatus(withStatus({ stableVersion: 3 }), row.previous, observation)?.version, row.recorded);
  });
}

test('a summary belongs to the version serving, or to whichever serves when it names none', () => {
  assert.is(driftOfVersion({ ...drifted, version: 2 }, 3), undefined);
  assert.equal(driftOfVersion({ ...drifted, version: 3 }, 3), { ...drifted, version: 3 });
  assert.equal(driftOfVersion(drifted, 3), drifted);
});

const retrainTable = [
  { name: 'drift with retraining on creates a job', isvc: withStatus({ drift: drifted }), now: 10, create: true },
  {
    name: 'retraining off creates nothing',
    isvc: withStatus({ drift: drifted }, { retrain: { ...retrainSpec, onDrift: false } }),
    now: 10,
    create: false,
    reason: /off/,
  },
  {
    name: 'no drift creates nothing',
    isvc: withStatus({ drift: { ...drifted, drifted: false } }),
    now: 10,
    create: false,
    reason: /not drifted/,
  },
  {
    name: 'the event already retrained for creates nothing',
    isvc: withStatus({ drift: drifted, lastRetrain: { eventId: 'evt-1', trainingJob: 'j', time: iso(-7200) } }),
    now: 10,
    create: false,
    reason: /already retrained/,
  },
  {
    name: 'a new drift inside the cooldown creates nothing',
    isvc: withStatus({
      drift: { ...drifted, lastEventId: 'evt-2' },
      lastRetrain: { eventId: 'evt-1', trainingJob: 'j', time: iso(-600) },
    }),
    now: 10,
    create: false,
    reason: /cooldown until/,
  },
  {
    name: 'a new drift after the cooldown creates a job',
    isvc: withStatus({
      drift: { ...drifted, lastEventId: 'evt-2' },
      lastRetrain: { eventId: 'evt-1', trainingJob: 'j', time: iso(-3601) },
    }),
    now: 10,
    create: true,
  },
  {
    name: 'drift of the version promotion replaced creates nothing',
    isvc: withStatus({ drift: { ...drifted, version: 2 } }),
    now: 10,
    create: false,
    reason: /v2's, not v3's/,
  },
  {
    name: 'drift of the version serving creates a job',
    isvc: withStatus({ drift: { ...drifted, version: 3 } }),
    now: 10,
    create: true,
  },
];
for (const row of retrainTable) {
  test(row.name, () => {
    const plan = planRetrain(row.isvc, new Date(T0 + row.now * 1000), 3);
    assert.is(plan.create, row.create);
    if (!plan.create && row.reason) assert.match(plan.reason, row.reason);
  });
}

test('the retrain TrainingJob comes from the template, names its trigger and is owned without cascading control', () => {
  const plan = planRetrain(withStatus({ drift: drifted }), new Date(T0), 3);
  assert.ok(plan.create);
  if (!plan.create) return;
  const job: any = plan.job;
  assert.is(job.kind, 'TrainingJob');
  assert.is(job.metadata.name, retrainJobName(withStatus({}), 'evt-1'));
  assert.is(job.spec.model, 'fraud-detector');
  assert.is(job.spec.image, 'loopline/trainer:0.1.0');
  assert.is(job.metadata.labels.team, 'risk');
  assert.match(job.metadata.annotations[TRIGGER_ANNOTATION], /drift event evt-1/);
  assert.is(job.metadata.ownerReferences[0].controller, false);
  assert.equal(plan.lastRetrain, { trainingJob: job.metadata.name, eventId: 'evt-1', time: iso(0), trigger: 'Drift' });
});

test('duplicate events name the same job; different events different jobs', () => {
  const isvc = withStatus({});
  assert.is(retrainJobName(isvc, 'evt-1'), retrainJobName(isvc, 'evt-1'));
  assert.is.not(retrainJobName(isvc, 'evt-1'), retrainJobName(isvc, 'evt-2'));
  assert.ok(retrainJobName({ ...isvc, metadata: { ...isvc.metadata, name: 'x'.repeat(63) } }, 'e').length <= 63);
});

test.run();
