// TrainingJobs queued by the real Kueue that cluster.sh runs beside the control plane: each attempt's Job
// carries the queue-name label and names the Workload the operator makes of it, and Kueue's own batch/Job
// integration admits, preempts and requeues it against a ClusterQueue's GPU quota; the TrainingJob's status
// says where it stands, in Kueue's words.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { controllerOf } from '../../engine/keys.ts';
import { kinds, type Engine, type KubeObject } from '../../engine/index.ts';
import { createOperator } from '../../main.ts';
import { KUEUE_PREBUILT_WORKLOAD_LABEL, KUEUE_QUEUE_LABEL } from '../kueue.ts';
import type { TrainingJob } from '../resource.ts';
import {
  GPU_PRODUCT,
  clusterQueueObject,
  createJob,
  createQueue,
  getJob,
  jobsOf,
  kueueKinds,
  logger,
  podsOf,
  sleep,
  startHarness,
  versionsOf,
  waitFor,
  waitForPhase,
  workloadsOf,
  type Harness,
} from '../../../test/support/operator-harness.ts';

let h: Harness;
let operator: Engine;
const priorityClasses: string[] = [];

async function startOperator(): Promise<Engine> {
  const engine = createOperator({
    kubeconfig: h.kc,
    namespace: h.namespace,
    leaderElection: false,
    httpPort: false,
    logger: logger(),
    lifecycle: { retryBaseMs: 300 },
  });
  await engine.start();
  return engine;
}

test.before(async () => {
  h = await startHarness('kueue', { operator: false });
  operator = await startOperator();
});
test.after(async () => {
  await operator?.stop();
  await h?.stop();
  for (const pc of priorityClasses) await h?.api.delete(kueueKinds.PriorityClass, undefined, pc).catch(() => undefined);
});

const gpuJob = (queueName: string, gpus: number, seconds: number, extra: Record<string, unknown> = {}) => ({
  queueName,
  resources: { gpus, gpuType: GPU_PRODUCT },
  env: [{ name: 'LOOPLINE_FAIL', value: `sleep:${seconds}` }],
  ...extra,
});

async function waitForQueue(
  name: string,
  what: string,
  probe: (job: TrainingJob) => boolean,
  timeoutMs = 40_000,
): Promise<TrainingJob> {
  let last: TrainingJob | undefined;
  return waitFor(
    `TrainingJob ${name} to be ${what}`,
    async () => {
      last = await getJob(h, name);
      return probe(last) ? last : undefined;
    },
    timeoutMs,
  ).catch((err) => {
    throw new Error(`${err.message}; last status: ${JSON.stringify(last?.status)}`);
  });
}

const admitted = (j: TrainingJob) => j.status?.queue?.state === 'Admitted';

test("with 8 GPUs of quota, two 4-GPU jobs run, the third waits saying why in Kueue's words, and runs when one finishes", async () => {
  await createQueue(h, 'eight', 8);
  await createJob(h, 'first', gpuJob('eight', 4, 8, { model: 'quota-model' }));
  await createJob(h, 'second', gpuJob('eight', 4, 8, { model: 'quota-model' }));
  for (const name of ['first', 'second']) await waitForQueue(name, 'admitted', admitted);
  await createJob(h, 'third', gpuJob('eight', 4, 1, { model: 'quota-model' }));

  const waiting = await waitForQueue('third', 'queued for want of quota', (j) =>
    /insufficient unused quota for nvidia\.com\/gpu/.test(j.status?.queue?.message ?? ''),
  );
  assert.equal(
    [waiting.status!.phase, waiting.status!.queue!.state, waiting.status!.queue!.localQueue],
    ['Pending', 'Queued', 'eight'],
  );
  assert.match(
    waiting.status!.message!,
    /^attempt 1: queued in LocalQueue eight: .*insufficient unused quota for nvidia\.com\/gpu in flavor a100-80gb, 4 more needed/,
  );
  assert.ok(waiting.status!.conditions!.some((c) => c.type === 'Admitted' && c.status === 'False'));
  const [held] = await jobsOf(h, 'third');
  assert.equal(
    [held.metadata.labels![KUEUE_QUEUE_LABEL], held.spec.suspend],
    ['eight', true],
    'Kueue holds its Job suspended',
  );
  assert.is((await podsOf(h, 'third')).length, 0, 'a queued job runs no pods');
  const running = await Promise.all(['first', 'second'].map((n) => waitForPhase(h, n, ['Running', 'Succeeded'])));
  assert.ok(running.every((j) => j.status!.queue!.clusterQueue === h.clusterQueues[0]));

  const done = await Promise.all(
    ['first', 'second', 'third'].map((n) => waitForPhase(h, n, ['Succeeded', 'Failed'], 90_000)),
  );
  assert.ok(
    done.every((j) => j.status!.phase === 'Succeeded'),
    JSON.stringify(done.map((j) => j.status!.message)),
  );
  const [a, b, third] = done;
  const firstFreed = Math.min(Date.parse(a.status!.completionTime!), Date.parse(b.status!.completionTime!));
  assert.ok(
    Date.parse(third.status!.startTime!) >= firstFreed - 1000,
    `the third started at ${third.status!.startTime}, after quota was freed at ${new Date(firstFreed).toISOString()}`,
  );
  assert.is(third.status!.queue!.state, 'Admitted');
  assert.equal(
    (await versionsOf(h, 'quota-model')).map((v) => v.spec.version),
    [1, 2, 3],
  );
});

test('workers: 3 x 2 GPUs is admitted all or nothing: no pod runs on 5 GPUs of quota, all three on 6', async () => {
  const clusterQueue = await createQueue(h, 'five', 5);
  await createJob(h, 'gang', gpuJob('five', 2, 0, { model: 'gang-model', workers: 3 }));
  const waiting = await waitForQueue(
    'gang',
    'held for want of quota',
    (j) => j.status?.queue?.state === 'Queued' && /nvidia\.com\/gpu/.test(j.status.queue.message),
  );
  assert.match(
    waiting.status!.queue!.message,
    /insufficient quota for nvidia\.com\/gpu in flavor a100-80gb, .*request \(6\) > maximum capacity \(5\)/,
  );
  await sleep(1500);
  assert.is((await podsOf(h, 'gang')).length, 0, 'not one rank of three starts on a quota for two');

  await h.api.apply(kueueKinds.ClusterQueue, clusterQueueObject(h, clusterQueue, 6), 'loopline-tests');
  const done = await waitForPhase(h, 'gang', ['Succeeded', 'Failed'], 60_000);
  assert.is(done.status!.phase, 'Succeeded', done.status!.message);
  const pods = await podsOf(h, 'gang');
  assert.equal(
    pods.map((p) => p.metadata.ownerReferences![0].name),
    ['gang-1', 'gang-1', 'gang-1'],
  );
  const [workload] = (await workloadsOf(h)).filter((w) => controllerOf(w)?.name === 'gang-1');
  assert.is(workload.status.admission.podSetAssignments[0].count, 3, 'Kueue admitted the three ranks as one Workload');
});

test('a higher-priority job preempts a lower one: the eviction is counted, the evicted job resumes later and registers one version', async () => {
  for (const [suffix, value] of [
    ['low', 100],
    ['high', 1000],
  ] as const) {
    const name = `${h.namespace}-${suffix}`;
    await h.api.apply(
      kueueKinds.PriorityClass,
      { apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name }, value } as unknown as KubeObject,
      'loopline-tests',
    );
    priorityClasses.push(name);
  }
  await createQueue(h, 'four', 4);
  await createJob(h, 'low', gpuJob('four', 4, 8, { model: 'low-model', priorityClassName: `${h.namespace}-low` }));
  await waitForPhase(h, 'low', ['Running']);
  await createJob(h, 'high', gpuJob('four', 4, 1, { model: 'high-model', priorityClassName: `${h.namespace}-high` }));

  const evicted = await waitForQueue(
    'low',
    'evicted',
    (j) => j.status?.queue?.evictions === 1 && j.status.queue.state === 'Queued',
  );
  assert.match(evicted.status!.queue!.message, /^evicted: Preempted/);
  assert.is(evicted.status!.phase, 'Pending');
  const events = (await h.api.list(kinds.Event, h.namespace)).items.filter(
    (e) => (e.regarding as { name?: string } | undefined)?.name === 'low' && e.reason === 'Evicted',
  );
  assert.is(events.length, 1, 'one Evicted event');

  const high = await waitForPhase(h, 'high', ['Succeeded', 'Failed'], 60_000);
  assert.is(high.status!.phase, 'Succeeded', high.status!.message);
  const low = await waitForPhase(h, 'low', ['Succeeded', 'Failed'], 90_000);
  assert.is(low.status!.phase, 'Succeeded', low.status!.message);
  assert.equal(
    [low.status!.attempts, low.status!.queue!.evictions, low.status!.queue!.state],
    [1, 1, 'Admitted'],
    'the same attempt resumed after its eviction',
  );
  assert.equal(
    (await jobsOf(h, 'low')).map((j) => j.metadata.name),
    ['low-1'],
  );
  assert.equal(
    (await versionsOf(h, 'low-model')).map((v) => v.metadata.name),
    ['low-model-v1'],
    'no duplicate ModelVersion',
  );
  assert.equal(
    (await versionsOf(h, 'high-model')).map((v) => v.metadata.name),
    ['high-model-v1'],
  );
});

test('deleting a queued TrainingJob leaves no Job, Workload or pod behind', async () => {
  await createQueue(h, 'none', 0);
  await createJob(h, 'doomed', gpuJob('none', 1, 0));
  const queued = await waitForQueue('doomed', 'queued with a Workload', (j) => Boolean(j.status?.queue?.workload));
  await h.api.delete(kinds.TrainingJob, h.namespace, 'doomed');
  await waitFor(
    'its Job, Workload and pods to be gone',
    async () => {
      const left = [
        ...(await jobsOf(h, 'doomed')).map((j) => `Job ${j.metadata.name}`),
        ...(await workloadsOf(h))
          .filter((w) => w.metadata.name === queued.status!.queue!.workload)
          .map((w) => `Workload ${w.metadata.name}`),
        ...(await podsOf(h, 'doomed')).map((p) => `pod ${p.metadata.name}`),
      ];
      return left.length === 0 || undefined;
    },
    30_000,
  );
});

test("a queued Job's Workload is the operator's, named by the Job: Kueue makes none, and one deleted is made again", async () => {
  await createQueue(h, 'prebuilt', 0);
  await createJob(h, 'prebuilt', gpuJob('prebuilt', 1, 0));
  await waitForQueue('prebuilt', 'queued with a Workload', (j) => Boolean(j.status?.queue?.workload));
  const [attempt] = await jobsOf(h, 'prebuilt');
  const ofJob = async () => (await workloadsOf(h)).filter((w) => controllerOf(w)?.uid === attempt.metadata.uid);
  const [first, ...more] = await ofJob();
  assert.equal(
    [first.metadata.name, more.length, attempt.metadata.labels![KUEUE_PREBUILT_WORKLOAD_LABEL]],
    ['prebuilt-1', 0, 'prebuilt-1'],
  );
  await h.api.delete(kinds.Workload, h.namespace, first.metadata.name);
  const again = await waitFor(
    'the Workload to be made again',
    async () => (await ofJob()).find((w) => w.metadata.uid !== first.metadata.uid && !w.metadata.deletionTimestamp),
    20_000,
  );
  assert.is(again.metadata.name, 'prebuilt-1');
  await sleep(1000);
  assert.is((await ofJob()).length, 1);
});

test('an operator restarted while jobs wait in the queue creates no second Job', async () => {
  await createQueue(h, 'restart', 4);
  await createJob(h, 'hog', gpuJob('restart', 4, 5, { model: 'restart-model' }));
  await waitForQueue('hog', 'admitted', admitted);
  await createJob(h, 'waiter', gpuJob('restart', 4, 0, { model: 'restart-model' }));
  await waitForQueue(
    'waiter',
    'queued',
    (j) => j.status?.queue?.state === 'Queued' && Boolean(j.status.queue.workload),
  );
  await operator.stop();
  operator = await startOperator();
  await sleep(1000);
  for (const name of ['hog', 'waiter'])
    assert.equal(
      (await jobsOf(h, name)).map((j) => j.metadata.name),
      [`${name}-1`],
    );
  const done = await Promise.all(['hog', 'waiter'].map((n) => waitForPhase(h, n, ['Succeeded', 'Failed'], 60_000)));
  assert.ok(
    done.every((j) => j.status!.phase === 'Succeeded' && j.status!.attempts === 1),
    JSON.stringify(done.map((j) => j.status)),
  );
  for (const name of ['hog', 'waiter']) assert.is((await jobsOf(h, name)).length, 1);
  assert.equal(
    (await versionsOf(h, 'restart-model')).map((v) => v.spec.version),
    [1, 2],
  );
});

test('TrainingJobs created a second apart while the operator was down start in that order on a 1-GPU queue', async () => {
  // StrictFIFO: Kueue then admits strictly in its Workloads' order, which is what the operator controls. With
  // BestEffortFIFO (Kueue's default) Workloads found inadmissible are parked, and one arriving later can be
  // admitted first when the GPU frees up (CI saw a, e, b, c, d), whatever order the Jobs were made in.
  await createQueue(h, 'fifo', 1, 'StrictFIFO');
  await operator.stop();
  const names = ['fifo-a', 'fifo-b', 'fifo-c', 'fifo-d', 'fifo-e'];
  for (const name of names) {
    await createJob(h, name, gpuJob('fifo', 1, 2, { model: 'fifo-model' }));
    await sleep(1100);
  }
  // All five wait at once: reconciled together, their Jobs (and so Kueue's Workloads) would be made in one second.
  operator = await startOperator();
  const done = await Promise.all(names.map((n) => waitForPhase(h, n, ['Succeeded', 'Failed'], 120_000)));
  assert.ok(
    done.every((j) => j.status!.phase === 'Succeeded'),
    JSON.stringify(done.map((j) => j.status!.message)),
  );
  const byStart = [...done]
    .sort((x, y) => Date.parse(x.status!.startTime!) - Date.parse(y.status!.startTime!))
    .map((j) => `${j.metadata.name} ${j.status!.startTime}`);
  assert.equal(
    byStart.map((s) => s.split(' ')[0]),
    names,
    `started: ${byStart.join(', ')}`,
  );
});

test('a TrainingJob without spec.queueName runs at once: its Job is not suspended and Kueue makes no Workload of it', async () => {
  await createJob(h, 'unqueued', { model: 'unqueued-model' });
  const done = await waitForPhase(h, 'unqueued', ['Succeeded', 'Failed']);
  assert.is(done.status!.phase, 'Succeeded', done.status!.message);
  assert.is(done.status!.queue, undefined);
  const [attempt] = await jobsOf(h, 'unqueued');
  assert.equal([attempt.spec.suspend, attempt.metadata.labels![KUEUE_QUEUE_LABEL]], [false, undefined]);
  assert.not.ok((await workloadsOf(h)).some((w) => controllerOf(w)?.uid === attempt.metadata.uid));
});

test.run();
