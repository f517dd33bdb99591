// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { planTrainingJob, type Plan } from '../lifecycle.ts';
import { pod, trainingJob } from './fixtures.ts';

const T0 = '2030-01-01T00:00:00Z';
const at = (seconds: number) => new Date(Date.parse(T0) + seconds * 1000);
const opts = { retryBaseMs: 1000, retryMaxMs: 8000 };

interface Row {
  name: string;
  plan: () => Plan;
  expect: (plan: Plan) => void;
}

const rows: Row[] = [
  {
    name: 'a new job starts attempt 1 with every rank',
    plan: () => planTrainingJob(trainingJob({ workers: 2 }), [], at(0), opts),
    expect: (p) => {
      assert.is(p.kind, 'start');
      if (p.kind !== 'start') return;
      assert.is(p.attempt, 1);
      assert.equal(p.ranks, [0, 1]);
    },
  },
  {
    name: 'status catches up with a new attempt: Pending, attempts, start time, AttemptStarted',
    plan: () => {
      const job = trainingJob({ workers: 2 });
      return planTrainingJob(job, [pod(job, 1, 0, { phase: 'Pending' }), pod(job, 1, 1, { phase: 'Pending' })], at(1), opts);
    },
    expect: (p) => {
      assert.is(p.kind, 'hold');
      if (p.kind !== 'hold') return;
      assert.equal([p.status.phase, p.status.attempts, p.status.startTime], ['Pending', 1, T0]);
      assert.equal(p.events.map((e) => e.reason), ['AttemptStarted']);
      assert.equal(p.deletePods, []);
    },
  },
  {
    name: 'status catching up with a retry also reports why the previous attempt failed',
    plan: () => {
      const job = trainingJob({ backoffLimit: 2 }, { phase: 'Pending', attempts: 1, startTime: T0 });
      return planTrainingJob(job, [pod(job, 1, 0, { phase: 'Failed', exitCode: 2 }), pod(job, 2, 0, { phase: 'Running' })], at(3), opts);
    },
    expect: (p) => {
      if (p.kind !== 'hold') return assert.unreachable(p.kind);
      assert.is(p.status.phase, 'Running');
      assert.is(p.status.attempts, 2);
      assert.equal(p.kind === 'hold' && p.events.map((e) => `${e.reason}: ${e.message}`), [
        'AttemptFailed: attempt 1 failed: pod credit-1-0 exited with code 2 (Error)',
        'AttemptStarted: attempt 2 of 3: created 1 pod(s)',
        'Running: attempt 2: training on 1 pod(s)',
      ]);
    },
  },
  {
    name: 'a suspended job creates no pods and stops running ones',
    plan: () => {
      const job = trainingJob({ suspend: true, queueName: 'gpu' }, { phase: 'Running', attempts: 1, startTime: T0 });
      return planTrainingJob(job, [pod(job, 1, 0, { phase: 'Running' })], at(5), opts);
    },
    expect: (p) => {
      assert.is(p.kind, 'hold');
      assert.equal(p.deletePods, ['credit-1-0']);
      if (p.kind !== 'hold') return;
      assert.is(p.status.phase, 'Pending');
      assert.ok(p.conditions.some((c) => c.type === 'Suspended' && c.status === 'True'));
    },
  },
  {
    name: 'pending pods keep the job Pending; a running pod makes it Running',
    plan: () => {
      const job = trainingJob({}, { phase: 'Pending', attempts: 1, startTime: T0 });
      return planTrainingJob(job, [pod(job, 1, 0, { phase: 'Running' })], at(1), opts);
    },
    expect: (p) => {
      assert.is(p.kind, 'hold');
      assert.is(p.kind === 'hold' && p.status.phase, 'Running');
      assert.equal(p.kind === 'hold' && p.events.map((e) => e.reason), ['Running']);
    },
  },
  {
    name: 'a failed attempt waits out its backoff before the retry',
    plan: () => {
      const job = trainingJob({ backoffLimit: 2 }, { phase: 'Running', attempts: 1, startTime: T0 });
      return planTrainingJob(job, [pod(job, 1, 0, { phase: 'Failed', exitCode: 1, finishedAt: T0 })], at(0.4), opts);
    },
    expect: (p) => {
      assert.is(p.kind, 'hold');
      if (p.kind !== 'hold') return;
      assert.is(p.requeueAfterMs, 600);
      assert.match(p.status.message!, /attempt 1 failed: pod credit-1-0 exited with code 1/);
    },
  },
  {
    name: 'after the backoff the retry is a new attempt with new pods',
    plan: () => {
      const job = trainingJob({ backoffLimit: 2 }, { phase: 'Pending', attempts: 1, startTime: T0 });
      return planTrainingJob(job, [pod(job, 1, 0, { phase: 'Failed', finishedAt: T0 })], at(1), opts);
    },
    expect: (p) => {
      assert.is(p.kind, 'start');
      if (p.kind !== 'start') return;
      assert.is(p.attempt, 2);
      assert.equal(p.ranks, [0]);
    },
  },
  {
    name: 'the second retry waits twice as long',
    plan: () => {
      const job = trainingJob({ backoffLimit: 2 }, { phase: 'Pending', attempts: 2, startTime: T0 });
      return planTrainingJob(job, [pod(job, 1, 0, { phase: 'Failed' }), pod(job, 2, 0, { phase: 'Failed', finishedAt: T0 })], at(1), opts);
    },
    expect: (p) => assert.is(p.kind === 'hold' && p.requeueAfterMs, 1000),
  },
  {
    name: 'a failure after backoffLimit retries fails the job with the last reason',
    plan: () => {
      const job = trainingJob({ backoffLimit: 1 }, { phase: 'Running', attempts: 2, startTime: T0 });
      return planTrainingJob(job, [pod(job, 1, 0, { phase: 'Failed' }), pod(job, 2, 0, { phase: 'Failed', exitCode: 3, message: 'CUDA error' })], at(30), opts);
    },
    expect: (p) => {
      assert.is(p.kind, 'hold');
      if (p.kind !== 'hold') return;
      assert.is(p.status.phase, 'Failed');
      assert.is(p.status.completionTime, '2030-01-01T00:00:30Z');
      assert.match(p.status.message!, /^BackoffLimitExceeded: 2 attempt\(s\) failed \(backoffLimit 1\); last: attempt 2 failed: pod credit-2-0 exited with code 3 \(Error\): CUDA error/);
      assert.ok(p.conditions.some((c) => c.type === 'Failed' && c.reason === 'BackoffLimitExceeded'));
    },
  },
  {
    name: 'past activeDeadlineSeconds the job fails and its pods are stopped',
    plan: () => {
      const job = trainingJob({ activeDeadlineSeconds: 5 }, { phase: 'Running', attempts: 1, startTime: T0 });
      return planTrainingJob(job, [pod(job, 1, 0, { phase: 'Running' })], at(5), opts);
    },
    expect: (p) => {
      assert.is(p.kind, 'hold');
      assert.equal(p.deletePods, ['credit-1-0']);
      if (p.kind !== 'hold') return;
      assert.is(p.status.phase, 'Failed');
      assert.match(p.status.message!, /^DeadlineExceeded/);
    },
  },
  {
    name: 'before the deadline the job is looked at again when it expires',
    plan: () => {
      const job = trainingJob({ activeDeadlineSeconds: 5 }, { phase: 'Running', attempts: 1, startTime: T0 });
      return planTrainingJob(job, [pod(job, 1, 0, { phase: 'Running' })], at(2), opts);
    },
    expect: (p) => assert.is(p.kind === 'hold' && p.requeueAfterMs, 3000),
  },
  {
    name: 'when every rank succeeded the result of rank 0 is judged',
    plan: () => {
      const job = trainingJob({ workers: 2 }, { phase: 'Running', attempts: 1, startTime: T0 });
      return planTrainingJob(job, [pod(job, 1, 0, { phase: 'Succeeded', message: '{"r":0}' }), pod(job, 1, 1, { phase: 'Succeeded', message: 'rank1' })], at(9), opts);
    },
    expect: (p) => {
      assert.is(p.kind, 'judge');
      if (p.kind === 'judge') assert.is(p.message, '{"r":0}');
    },
  },
  {
    name: 'rank 0 done while rank 1 still trains: keep waiting',
    plan: () => {
      const job = trainingJob({ workers: 2 }, { phase: 'Running', attempts: 1, startTime: T0 });
      return planTrainingJob(job, [pod(job, 1, 0, { phase: 'Succeeded' }), pod(job, 1, 1, { phase: 'Running' })], at(9), opts);
    },
    expect: (p) => assert.is(p.kind === 'hold' && p.status.phase, 'Running'),
  },
  {
    name: 'one failed rank fails the attempt and stops the other ranks',
    plan: () => {
      const job = trainingJob({ workers: 3, backoffLimit: 3 }, { phase: 'Running', attempts: 1, startTime: T0 });
      return planTrainingJob(job, [pod(job, 1, 0, { phase: 'Running' }), pod(job, 1, 1, { phase: 'Failed', finishedAt: T0 }), pod(job, 1, 2, { phase: 'Running' })], at(0.1), opts);
    },
    expect: (p) => {
      assert.is(p.kind, 'hold');
      assert.equal(p.deletePods, ['credit-1-0', 'credit-1-2']);
    },
  },
  {
    name: 'pods of a newer attempt than status records are adopted, and its missing ranks created',
    plan: () => {
      const job = trainingJob({ workers: 2 }, { phase: 'Pending', attempts: 1, startTime: T0 });
      return planTrainingJob(job, [pod(job, 1, 0, { phase: 'Failed' }), pod(job, 1, 1, { phase: 'Failed' }), pod(job, 2, 0, { phase: 'Pending' })], at(60), opts);
    },
    expect: (p) => {
      assert.is(p.kind, 'start');
      if (p.kind !== 'start') return;
      assert.is(p.attempt, 2);
      assert.equal(p.ranks, [1]);
    },
  },
  {
    name: 'a terminating pod is not counted as a result; the rank is created again once it is gone',
    plan: () => {
      const job = trainingJob({}, { phase: 'Running', attempts: 1, startTime: T0 });
      return planTrainingJob(job, [pod(job, 1, 0, { phase: 'Running' }, { deleting: true })], at(3), opts);
    },
    expect: (p) => {
      assert.is(p.kind, 'start');
      if (p.kind === 'start') assert.equal([p.attempt, p.ranks], [1, [0]]);
    },
  },
  {
    name: 'a finished job past its TTL is deleted',
    plan: () => planTrainingJob(trainingJob({ ttlSecondsAfterFinished: 10 }, { phase: 'Succeeded', attempts: 1, completionTime: T0 }), [], at(10), opts),
    expect: (p) => assert.is(p.kind === 'hold' && p.deleteJob, true),
  },
  {
    name: 'a finished job within its TTL is looked at again when it expires',
    plan: () => planTrainingJob(trainingJob({ ttlSecondsAfterFinished: 10 }, { phase: 'Failed', attempts: 1, completionTime: T0 }), [], at(4), opts),
    expect: (p) => {
      assert.is(p.kind === 'hold' && p.deleteJob, undefined);
      assert.is(p.kind === 'hold' && p.requeueAfterMs, 6000);
    },
  },
];

for (const row of rows) test(row.name, () => row.expect(row.plan()));

test.run();
