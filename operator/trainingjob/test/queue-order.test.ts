// test: no cluster
// The order queued TrainingJobs go to Kueue in (kueue.ts): a LocalQueue's creation seconds, one after another;
// and the Workload the operator makes of each queued Job.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { KubeObject } from '../../engine/types.ts';
import {
  KUEUE_PREBUILT_WORKLOAD_LABEL,
  KUEUE_QUEUE_LABEL,
  QUEUE_TURN_RECHECK_MS,
  WORKLOAD_WAIT_MS,
  desiredWorkload,
  needsWorkload,
  nextForKueue,
  queueTurn,
  type PriorityClassObject,
  type QueueOrder,
} from '../kueue.ts';
import { planTrainingJob } from '../lifecycle.ts';
import type { TrainingJob, TrainingJobSpec, TrainingJobStatus } from '../resource.ts';
import { trainingJob } from './fixtures.ts';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const iso = (s: number) => new Date(T0 + s * 1000).toISOString().replace('.000', '') as unknown as Date;
const at = (s: number) => new Date(T0 + s * 1000);

function queued(name: string, second: number, spec: Partial<TrainingJobSpec> = {}, status?: TrainingJobStatus) {
  const job = trainingJob({ queueName: 'team-a', ...spec }, status, name);
  job.metadata = { ...job.metadata, uid: `uid-${name}`, creationTimestamp: iso(second) };
  return job;
}

/** What the cache holds: per job name, the second its Job was created and (if Kueue made one) its Workload's. */
type Handed = Record<string, { job: number; workload?: number }>;

function order(peers: TrainingJob[], handed: Handed = {}, stuck: string[] = []): QueueOrder {
  return {
    peers,
    jobsOf: (j) => {
      const h = handed[j.metadata.name];
      return h ? [{ metadata: { name: `${j.metadata.name}-1`, creationTimestamp: iso(h.job) } } as KubeObject] : [];
    },
    workloadOf: (job) => {
      const h = handed[job.metadata.name.replace(/-1$/, '')];
      return h?.workload === undefined
        ? undefined
        : ({ metadata: { creationTimestamp: iso(h.workload) } } as KubeObject);
    },
    stuck: (j) => stuck.includes(j.metadata.name),
  };
}

const a = queued('a', 1);
const b = queued('b', 2);
const c = queued('c', 2);
const d = queued('d', 3);
const peers = [d, c, b, a];

test('the jobs of the first creation second go to Kueue at once, together', () => {
  assert.equal(queueTurn(a, order(peers), at(4)), { go: true });
  assert.equal(
    nextForKueue('team-a', order(peers), at(4)).map((j) => j.metadata.name),
    ['a'],
  );
  assert.equal(
    nextForKueue('team-a', order(peers, { a: { job: 4, workload: 4 } }), at(5)).map((j) => j.metadata.name),
    ['c', 'b'],
    'b and c were created in the same second: no order between them',
  );
});

test('a later second waits for every earlier job to have a Job, then for Kueue to make its Workload', () => {
  const noJob = queueTurn(b, order(peers), at(4));
  assert.equal(noJob, { go: false, why: 'a, created before it, has no Job yet', retryMs: QUEUE_TURN_RECHECK_MS });
  const noWorkload = queueTurn(b, order(peers, { a: { job: 4 } }), at(5));
  assert.equal(noWorkload, {
    go: false,
    why: 'Kueue has no Workload yet of Job a-1 of a, created before it',
    retryMs: WORKLOAD_WAIT_MS - 1000,
  });
  assert.equal(
    queueTurn(d, order(peers, { a: { job: 4, workload: 4 }, b: { job: 5, workload: 5 } }), at(6)).go,
    false,
    'c',
  );
});

test('a job goes to Kueue in a later second than the newest Workload ahead of it: whole seconds cannot order one second', () => {
  const handed = { a: { job: 4, workload: 4 } };
  assert.equal(queueTurn(b, order(peers, handed), new Date(T0 + 4500)), {
    go: false,
    why: 'the jobs created before it went to Kueue this second',
    retryMs: 500,
  });
  assert.equal(queueTurn(b, order(peers, handed), at(5)), { go: true });
  assert.equal(
    nextForKueue('team-a', order(peers, handed), new Date(T0 + 4500)).map((j) => j.metadata.name),
    ['c', 'b'],
    'woken to look again within the second',
  );
});

test('jobs Kueue cannot be given, or that Kueue ignores, hold nobody up', () => {
  const early = (spec: Partial<TrainingJobSpec> = {}, status?: TrainingJobStatus) => queued('x', 0, spec, status);
  const cases: Array<[string, TrainingJob, Handed, string[]]> = [
    ['finished', early({}, { phase: 'Failed' }), {}, []],
    ['suspended', early({ suspend: true }), {}, []],
    ['in another LocalQueue', early({ queueName: 'team-b' }), {}, []],
    ['not queued', early({ queueName: undefined }), {}, []],
    ['its Job creation failed', early(), {}, ['x']],
    ['its Job has waited for a Workload longer than Kueue takes', early(), { x: { job: 0 } }, []],
  ];
  for (const [what, x, handed, stuck] of cases)
    assert.equal(queueTurn(a, order([x, a], handed, stuck), at(20)), { go: true }, what);
  const going = early();
  going.metadata.deletionTimestamp = iso(5);
  assert.equal(queueTurn(a, order([going, a]), at(20)), { go: true }, 'being deleted');
});

test('a job without spec.queueName, or already given to Kueue, never waits for others', () => {
  assert.equal(queueTurn(queued('z', 9, { queueName: undefined }), order(peers), at(10)), { go: true });
  assert.equal(queueTurn(queued('r', 9, {}, { phase: 'Pending', attempts: 1 }), order(peers), at(10)), { go: true });
});

test('the plan of a job whose turn has not come creates and writes nothing, and looks again later', () => {
  const notYourTurn = { why: 'a, created before it, has no Job yet', retryMs: 5000 };
  const plan = planTrainingJob(c, { jobs: [], pods: [], workloads: [], notYourTurn }, at(3));
  assert.equal(plan, { kind: 'wait', why: notYourTurn.why, requeueAfterMs: 5000, deleteJobs: [] });
  assert.is(planTrainingJob(c, { jobs: [], pods: [], workloads: [] }, at(3)).kind, 'start');
});

/** A queued Job as the API server returns it: defaulted template, uid, the labels desiredJob gives it. */
function createdJob(priorityClassName?: string, suspend = true): KubeObject {
  const container = {
    name: 'trainer',
    image: 'registry.local/trainer:1',
    imagePullPolicy: 'IfNotPresent',
    terminationMessagePath: '/dev/termination-log',
    resources: { limits: { 'nvidia.com/gpu': '2' } },
  };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: 'a-1',
      namespace: 'ns',
      uid: 'job-uid',
      labels: { [KUEUE_QUEUE_LABEL]: 'team-a', [KUEUE_PREBUILT_WORKLOAD_LABEL]: 'a-1' },
    },
    spec: {
      parallelism: 3,
      suspend,
      template: {
        metadata: { labels: { 'loopline.dev/trainingjob': 'a' } },
        spec: { containers: [container], restartPolicy: 'Never', ...(priorityClassName ? { priorityClassName } : {}) },
      },
    },
  };
}

const classes = [
  { metadata: { name: 'high' }, value: 1000 },
  { metadata: { name: 'standard' }, value: 10, globalDefault: true },
] as PriorityClassObject[];

test("a queued Job's Workload is what Kueue would make of it: one pod set of its pods, its queue, its priority, owned by it", () => {
  const job = createdJob('high');
  const workload = desiredWorkload(job, classes);
  assert.equal(workload.metadata.name, 'a-1', 'the name the Job gives Kueue in its prebuilt-workload label');
  assert.equal(workload.metadata.ownerReferences, [
    { apiVersion: 'batch/v1', kind: 'Job', name: 'a-1', uid: 'job-uid', controller: true },
  ]);
  const spec = workload.spec as Record<string, unknown>;
  assert.equal(spec.queueName, 'team-a');
  assert.equal(spec.podSets, [
    {
      name: 'main',
      count: 3,
      template: {
        metadata: { labels: { 'loopline.dev/trainingjob': 'a' }, annotations: undefined },
        spec: (job.spec.template as { spec: unknown }).spec,
      },
    },
  ]);
  assert.equal(
    [spec.priorityClassRef, spec.priority],
    [{ group: 'scheduling.k8s.io', kind: 'PriorityClass', name: 'high' }, 1000],
  );
});

test("a Workload takes the cluster's default PriorityClass when the Job names none, and none is made for a class that does not exist", () => {
  const spec = desiredWorkload(createdJob(), classes).spec as Record<string, unknown>;
  assert.equal([(spec.priorityClassRef as { name: string }).name, spec.priority], ['standard', 10]);
  const bare = desiredWorkload(createdJob(), []).spec as Record<string, unknown>;
  assert.equal([bare.priorityClassRef, bare.priority], [undefined, undefined]);
  assert.throws(() => desiredWorkload(createdJob('missing'), classes), /PriorityClass missing of Job a-1 not found/);
});

test('only a suspended queued Job without a Workload needs one made', () => {
  const workload = desiredWorkload(createdJob(), classes) as KubeObject;
  assert.ok(needsWorkload(createdJob(), undefined));
  assert.not.ok(needsWorkload(createdJob(), workload), 'it has one');
  assert.not.ok(needsWorkload(createdJob(undefined, false), undefined), 'admitted and running, or finished');
  const plain = createdJob();
  plain.metadata.labels = {};
  assert.not.ok(needsWorkload(plain, undefined), 'not queued: Kueue ignores it');
});

test.run();
