// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { KubeObject } from '../../engine/types.ts';
import { planTrainingJob, type Observed, type Plan } from '../lifecycle.ts';
import { attemptJob, pod, trainingJob, workload } from './fixtures.ts';

const T0 = '2030-01-01T00:00:00Z';
const at = (seconds: number) => new Date(Date.parse(T0) + seconds * 1000);
const opts = { retryBaseMs: 1000, retryMaxMs: 8000 };
const observed = (jobs: KubeObject[], pods: KubeObject[] = [], workloads: KubeObject[] = []): Observed => ({
  jobs,
  pods,
  workloads,
});

interface Row {
  name: string;
  plan: () => Plan;
  expect: (plan: Plan) => void;
}

const hold = (p: Plan) => {
  if (p.kind !== 'hold') throw new Error(`expected hold, got ${p.kind}`);
  return p;
};
const start = (p: Plan) => {
  if (p.kind !== 'start') throw new Error(`expected start, got ${p.kind}`);
  return p;
};

/** The first attempt's Job of `job`, running, and Kueue's Workload admitting it at T0 + 2 s. */
const admittedAtTwoSeconds = (job: ReturnType<typeof trainingJob>) => {
  const j = attemptJob(job, 1, { state: 'Active' });
  const wl = workload(j, [
    {
      type: 'Admitted',
      status: 'True',
      reason: 'Admitted',
      message: 'admitted',
      lastTransitionTime: '2030-01-01T00:00:02Z',
    },
  ]);
  return { j, wl };
};

const rows: Row[] = [
  {
    name: 'a new job starts attempt 1 as a Job, its deadline the whole activeDeadlineSeconds',
    plan: () => planTrainingJob(trainingJob({ workers: 2, activeDeadlineSeconds: 60 }), observed([]), at(0), opts),
    expect: (p) => assert.equal([start(p).attempt, start(p).activeDeadlineSeconds], [1, 60]),
  },
  {
    name: 'status catches up with a new attempt: Pending, attempts, AttemptStarted; no start time before a pod runs',
    plan: () => {
      const job = trainingJob({ workers: 2 });
      const j = attemptJob(job, 1, { state: 'Active', startTime: T0 });
      return planTrainingJob(
        job,
        observed([j], [pod(j, 0, { phase: 'Pending' }), pod(j, 1, { phase: 'Pending' })]),
        at(1),
        opts,
      );
    },
    expect: (p) => {
      const h = hold(p);
      assert.equal([h.status.phase, h.status.attempts, h.status.startTime], ['Pending', 1, undefined]);
      assert.equal(
        h.events.map((e) => `${e.reason}: ${e.message}`),
        ['AttemptStarted: attempt 1 of 4: created Job credit-1 (2 pod(s))'],
      );
      assert.equal(h.deleteJobs, []);
    },
  },
  {
    name: 'status catching up with a retry also reports why the previous attempt failed',
    plan: () => {
      const job = trainingJob({ backoffLimit: 2 }, { phase: 'Pending', attempts: 1, startTime: T0 });
      const first = attemptJob(job, 1, { state: 'Failed' });
      const second = attemptJob(job, 2, { state: 'Active', startTime: T0 });
      return planTrainingJob(
        job,
        observed(
          [first, second],
          [pod(first, 0, { phase: 'Failed', exitCode: 2 }), pod(second, 0, { phase: 'Running' })],
        ),
        at(3),
        opts,
      );
    },
    expect: (p) => {
      const h = hold(p);
      assert.equal([h.status.phase, h.status.attempts], ['Running', 2]);
      assert.equal(
        h.events.map((e) => `${e.reason}: ${e.message}`),
        [
          'AttemptFailed: attempt 1 failed: pod credit-1-0-abcde (rank 0) exited with code 2 (Error)',
          'AttemptStarted: attempt 2 of 3: created Job credit-2 (1 pod(s))',
          'Running: attempt 2: training on 1 pod(s)',
        ],
      );
    },
  },
  {
    name: "a suspended job deletes its running attempt's Job and reports Suspended",
    plan: () => {
      const job = trainingJob({ suspend: true }, { phase: 'Running', attempts: 1, startTime: T0 });
      const j = attemptJob(job, 1, { state: 'Active', startTime: T0 });
      return planTrainingJob(job, observed([j], [pod(j, 0, { phase: 'Running' })]), at(5), opts);
    },
    expect: (p) => {
      const h = hold(p);
      assert.equal(h.deleteJobs, ['credit-1']);
      assert.is(h.status.phase, 'Pending');
      assert.ok(h.conditions.some((c) => c.type === 'Suspended' && c.status === 'True'));
    },
  },
  {
    name: 'resumed after a suspension, the same attempt gets its Job again',
    plan: () =>
      planTrainingJob(trainingJob({}, { phase: 'Pending', attempts: 1, startTime: T0 }), observed([]), at(9), opts),
    expect: (p) => assert.is(start(p).attempt, 1),
  },
  {
    name: "pending pods keep the job Pending; a running pod makes it Running, its start time the Job's",
    plan: () => {
      const job = trainingJob({}, { phase: 'Pending', attempts: 1 });
      const j = attemptJob(job, 1, { state: 'Active', startTime: T0 });
      return planTrainingJob(job, observed([j], [pod(j, 0, { phase: 'Running' })]), at(1), opts);
    },
    expect: (p) => {
      assert.equal([hold(p).status.phase, hold(p).status.startTime], ['Running', T0]);
      assert.equal(
        hold(p).events.map((e) => e.reason),
        ['Running'],
      );
    },
  },
  {
    name: 'a pod that succeeded before its Job is marked Complete keeps the job Running: no flap back to Pending',
    plan: () => {
      const job = trainingJob({}, { phase: 'Running', attempts: 1, startTime: T0 });
      const j = attemptJob(job, 1, { state: 'Active', startTime: T0 });
      return planTrainingJob(job, observed([j], [pod(j, 0, { phase: 'Succeeded', message: '{}' })]), at(5), opts);
    },
    expect: (p) => {
      assert.equal([hold(p).status.phase, hold(p).status.message], ['Running', 'attempt 1: training on 1 pod(s)']);
      assert.equal(hold(p).events, [], 'nothing new to announce');
    },
  },
  {
    name: 'a failed attempt waits out its backoff, counted from when its Job failed',
    plan: () => {
      const job = trainingJob({ backoffLimit: 2 }, { phase: 'Running', attempts: 1, startTime: T0 });
      const j = attemptJob(job, 1, { state: 'Failed', at: T0 });
      return planTrainingJob(job, observed([j], [pod(j, 0, { phase: 'Failed', exitCode: 1 })]), at(0.4), opts);
    },
    expect: (p) => {
      assert.is(hold(p).requeueAfterMs, 600);
      assert.match(hold(p).status.message!, /attempt 1 failed: pod credit-1-0-abcde \(rank 0\) exited with code 1/);
    },
  },
  {
    name: 'after the backoff the retry is a new attempt: a new Job, given what is left of the deadline',
    plan: () => {
      const job = trainingJob(
        { backoffLimit: 2, activeDeadlineSeconds: 60 },
        { phase: 'Pending', attempts: 1, startTime: T0 },
      );
      return planTrainingJob(job, observed([attemptJob(job, 1, { state: 'Failed', at: T0 })]), at(20.5), opts);
    },
    expect: (p) => assert.equal([start(p).attempt, start(p).activeDeadlineSeconds], [2, 40]),
  },
  {
    name: 'the second retry waits twice as long',
    plan: () => {
      const job = trainingJob({ backoffLimit: 2 }, { phase: 'Pending', attempts: 2, startTime: T0 });
      return planTrainingJob(
        job,
        observed([attemptJob(job, 1, { state: 'Failed' }), attemptJob(job, 2, { state: 'Failed', at: T0 })]),
        at(1),
        opts,
      );
    },
    expect: (p) => assert.is(hold(p).requeueAfterMs, 1000),
  },
  {
    name: 'a failure after backoffLimit retries fails the job with the last reason',
    plan: () => {
      const job = trainingJob({ backoffLimit: 1 }, { phase: 'Running', attempts: 2, startTime: T0 });
      const second = attemptJob(job, 2, { state: 'Failed' });
      return planTrainingJob(
        job,
        observed(
          [attemptJob(job, 1, { state: 'Failed' }), second],
          [pod(second, 0, { phase: 'Failed', exitCode: 3, message: 'CUDA error' })],
        ),
        at(30),
        opts,
      );
    },
    expect: (p) => {
      const h = hold(p);
      assert.is(h.status.phase, 'Failed');
      assert.is(h.status.completionTime, '2030-01-01T00:00:30Z');
      assert.match(
        h.status.message!,
        /^BackoffLimitExceeded: 2 attempt\(s\) failed \(backoffLimit 1\); last: attempt 2 failed: pod credit-2-0-abcde \(rank 0\) exited with code 3 \(Error\): CUDA error/,
      );
      assert.ok(h.conditions.some((c) => c.type === 'Failed' && c.reason === 'BackoffLimitExceeded'));
    },
  },
  {
    name: 'a Job failed by its deadline fails the job with DeadlineExceeded, not retried',
    plan: () => {
      const job = trainingJob(
        { activeDeadlineSeconds: 5, backoffLimit: 3 },
        { phase: 'Running', attempts: 1, startTime: T0 },
      );
      return planTrainingJob(
        job,
        observed([
          attemptJob(job, 1, {
            state: 'Failed',
            reason: 'DeadlineExceeded',
            message: 'Job was active longer than specified deadline',
          }),
        ]),
        at(6),
        opts,
      );
    },
    expect: (p) => {
      const h = hold(p);
      assert.is(h.status.phase, 'Failed');
      assert.match(h.status.message!, /^DeadlineExceeded: the job ran longer than activeDeadlineSeconds \(5s\)/);
    },
  },
  {
    name: 'no retry starts once the deadline has passed',
    plan: () => {
      const job = trainingJob(
        { activeDeadlineSeconds: 5, backoffLimit: 3 },
        { phase: 'Pending', attempts: 1, startTime: T0 },
      );
      return planTrainingJob(job, observed([attemptJob(job, 1, { state: 'Failed', at: T0 })]), at(9), opts);
    },
    expect: (p) => assert.match(hold(p).status.message!, /^DeadlineExceeded/),
  },
  {
    name: 'a Complete Job is judged on the result of rank 0',
    plan: () => {
      const job = trainingJob({ workers: 2 }, { phase: 'Running', attempts: 1, startTime: T0 });
      const j = attemptJob(job, 1, { state: 'Complete' });
      return planTrainingJob(
        job,
        observed(
          [j],
          [pod(j, 1, { phase: 'Succeeded', message: 'rank1' }), pod(j, 0, { phase: 'Succeeded', message: '{"r":0}' })],
        ),
        at(9),
        opts,
      );
    },
    expect: (p) => {
      if (p.kind !== 'judge') return assert.unreachable(p.kind);
      assert.is(p.message, '{"r":0}');
    },
  },
  {
    name: 'rank 0 done while rank 1 still trains: keep waiting',
    plan: () => {
      const job = trainingJob({ workers: 2 }, { phase: 'Running', attempts: 1, startTime: T0 });
      const j = attemptJob(job, 1, { state: 'Active', startTime: T0 });
      return planTrainingJob(
        job,
        observed([j], [pod(j, 0, { phase: 'Succeeded' }), pod(j, 1, { phase: 'Running' })]),
        at(9),
        opts,
      );
    },
    expect: (p) => assert.is(hold(p).status.phase, 'Running'),
  },
  {
    name: 'a Job of a newer attempt than status records is adopted, and an older one still running stopped',
    plan: () => {
      const job = trainingJob({ workers: 2 }, { phase: 'Pending', attempts: 1, startTime: T0 });
      return planTrainingJob(
        job,
        observed([attemptJob(job, 1, { state: 'Active', startTime: T0 }), attemptJob(job, 2, { state: 'Active' })]),
        at(60),
        opts,
      );
    },
    expect: (p) => {
      assert.is(hold(p).status.attempts, 2);
      assert.equal(hold(p).deleteJobs, ['credit-1']);
    },
  },
  {
    name: "a queued job waits in Pending with Kueue's reason, its Admitted condition False",
    plan: () => {
      const job = trainingJob({ queueName: 'team-a' }, { phase: 'Pending', attempts: 1 });
      const j = attemptJob(job, 1, { state: 'Active' });
      const message =
        "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in flavor a100-80gb, 4 more needed";
      return planTrainingJob(
        job,
        observed([j], [], [workload(j, [{ type: 'QuotaReserved', status: 'False', reason: 'Pending', message }])]),
        at(1),
        opts,
      );
    },
    expect: (p) => {
      const h = hold(p);
      assert.is(h.status.phase, 'Pending');
      assert.equal(
        [h.status.queue?.state, h.status.queue?.reason, h.status.queue?.workload],
        ['Queued', 'Pending', 'job-credit-1-1a2b3'],
      );
      assert.match(
        h.status.message!,
        /^attempt 1: queued in LocalQueue team-a: couldn't assign flavors .* 4 more needed$/,
      );
      const admitted = h.conditions.find((c) => c.type === 'Admitted')!;
      assert.equal([admitted.status, admitted.reason], ['False', 'Pending']);
    },
  },
  {
    name: 'a queued job whose Job has had no Workload for 10 s says Kueue has not seen it',
    plan: () => {
      const job = trainingJob({ queueName: 'team-a' }, { phase: 'Pending', attempts: 1 });
      return planTrainingJob(job, observed([attemptJob(job, 1, { state: 'Active' })]), at(10), opts);
    },
    expect: (p) =>
      assert.match(hold(p).status.queue!.message, /waiting for Kueue to queue Job credit-1: no Workload of it yet/),
  },
  {
    name: 'a Job Kueue has not decided on within 10 s is not written about: its next state is due',
    plan: () => {
      const job = trainingJob({ queueName: 'team-a' });
      const j = attemptJob(job, 1, { state: 'Active' });
      return planTrainingJob(job, observed([j], [], [workload(j, [])]), at(3), opts);
    },
    expect: (p) =>
      assert.equal(p, {
        kind: 'wait',
        why: 'Kueue has not decided on Job credit-1 yet',
        requeueAfterMs: 7000,
        deleteJobs: [],
      }),
  },
  {
    name: 'an admitted Job whose pods have not run for 5 s is not written about; after that, status says it waits for pods',
    plan: () => {
      const job = trainingJob(
        { queueName: 'team-a' },
        {
          phase: 'Pending',
          attempts: 1,
          queue: { localQueue: 'team-a', state: 'Queued', reason: 'Pending', message: 'x' },
        },
      );
      const { j, wl } = admittedAtTwoSeconds(job);
      return planTrainingJob(job, observed([j], [pod(j, 0, { phase: 'Pending' })], [wl]), at(4), opts);
    },
    expect: (p) => {
      assert.equal(p, {
        kind: 'wait',
        why: 'Job credit-1 is admitted; its pods are starting',
        requeueAfterMs: 3000,
        deleteJobs: [],
      });
    },
  },
  {
    name: 'an admitted Job whose pods have not run 5 s after admission is written as Admitted, waiting for pods',
    plan: () => {
      const job = trainingJob({ queueName: 'team-a' }, { phase: 'Pending', attempts: 1 });
      const { j, wl } = admittedAtTwoSeconds(job);
      return planTrainingJob(job, observed([j], [pod(j, 0, { phase: 'Pending' })], [wl]), at(7), opts);
    },
    expect: (p) => {
      const h = hold(p);
      assert.equal([h.status.phase, h.status.queue?.state], ['Pending', 'Admitted']);
      assert.match(h.status.message!, /waiting for 1 pod\(s\) to be scheduled and started/);
    },
  },
  {
    name: 'admission is recorded with its ClusterQueue and announced once',
    plan: () => {
      const job = trainingJob(
        { queueName: 'team-a' },
        {
          phase: 'Pending',
          attempts: 1,
          queue: { localQueue: 'team-a', state: 'Queued', reason: 'Pending', message: 'x' },
        },
      );
      const j = attemptJob(job, 1, { state: 'Active' });
      return planTrainingJob(
        job,
        observed(
          [j],
          [],
          [
            workload(
              j,
              [
                {
                  type: 'QuotaReserved',
                  status: 'True',
                  reason: 'QuotaReserved',
                  message: 'Quota reserved in ClusterQueue training',
                },
                { type: 'Admitted', status: 'True', reason: 'Admitted', message: 'The workload is admitted' },
              ],
              { clusterQueue: 'training' },
            ),
          ],
        ),
        at(1),
        opts,
      );
    },
    expect: (p) => {
      const h = hold(p);
      assert.equal([h.status.queue?.state, h.status.queue?.clusterQueue], ['Admitted', 'training']);
      assert.equal(
        h.events.map((e) => e.reason),
        ['Admitted'],
      );
      assert.ok(h.conditions.some((c) => c.type === 'Admitted' && c.status === 'True'));
    },
  },
  {
    name: 'an eviction by Kueue is counted and announced; the attempt stays the same, waiting to be admitted again',
    plan: () => {
      const job = trainingJob(
        { queueName: 'team-a' },
        {
          phase: 'Running',
          attempts: 1,
          startTime: T0,
          queue: { localQueue: 'team-a', state: 'Admitted', reason: 'Admitted', message: 'x' },
        },
      );
      const j = attemptJob(job, 1, { state: 'Active', startTime: T0 });
      const wl = workload(
        j,
        [
          {
            type: 'Evicted',
            status: 'True',
            reason: 'Preempted',
            message: 'Preempted to accommodate a workload (UID: 1) due to prioritization in the ClusterQueue',
          },
          { type: 'QuotaReserved', status: 'False', reason: 'Pending', message: 'insufficient unused quota' },
        ],
        { evictions: 1 },
      );
      return planTrainingJob(job, observed([j], [], [wl]), at(5), opts);
    },
    expect: (p) => {
      const h = hold(p);
      assert.equal(
        [h.status.phase, h.status.attempts, h.status.queue?.state, h.status.queue?.evictions],
        ['Pending', 1, 'Queued', 1],
      );
      assert.match(
        h.status.queue!.message,
        /^evicted: Preempted to accommodate .*; waiting to be admitted again: insufficient unused quota$/,
      );
      assert.equal(
        h.events.map((e) => e.reason),
        ['Evicted'],
      );
    },
  },
  {
    name: 'a finished job past its TTL is deleted',
    plan: () =>
      planTrainingJob(
        trainingJob({ ttlSecondsAfterFinished: 10 }, { phase: 'Succeeded', attempts: 1, completionTime: T0 }),
        observed([]),
        at(10),
        opts,
      ),
    expect: (p) => assert.is(hold(p).deleteTrainingJob, true),
  },
  {
    name: 'a finished job within its TTL is looked at again when it expires',
    plan: () =>
      planTrainingJob(
        trainingJob({ ttlSecondsAfterFinished: 10 }, { phase: 'Failed', attempts: 1, completionTime: T0 }),
        observed([]),
        at(4),
        opts,
      ),
    expect: (p) => {
      assert.is(hold(p).deleteTrainingJob, undefined);
      assert.is(hold(p).requeueAfterMs, 6000);
    },
  },
];

for (const row of rows) test(row.name, () => row.expect(row.plan()));

test.run();
