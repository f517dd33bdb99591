// Kueue semantics on the real API server: a TrainingJob created with spec.queueName is held
// (spec.suspend=true, set by the MutatingAdmissionPolicy of crds/admission-policy.yaml, as Kueue's
// webhook does for Jobs) and runs no pods until spec.suspend is set to false, which is how Kueue admits it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { kinds } from '../../engine/index.ts';
import { KUEUE_QUEUE_LABEL } from '../controller.ts';
import { createJob, getJob, podsOf, sleep, startHarness, waitFor, waitForPhase, type Harness } from './cluster.ts';

let h: Harness;

test.before(async () => {
  h = await startHarness('kueue'); // returns once the admission policies are in effect
});
test.after(async () => {
  await h?.stop();
});

test('a TrainingJob with spec.queueName is created suspended, labelled for Kueue, and runs no pods', async () => {
  await createJob(h, 'queued', { queueName: 'gpu-queue' });
  const job = await getJob(h, 'queued');
  assert.is(job.spec.suspend, true, 'the API server stored it suspended');
  const held = await waitFor('the operator to label and report the held job', async () => {
    const j = await getJob(h, 'queued');
    const suspended = j.status?.conditions?.find((c) => c.type === 'Suspended');
    return j.metadata.labels?.[KUEUE_QUEUE_LABEL] === 'gpu-queue' && suspended?.status === 'True' ? j : undefined;
  });
  assert.is(held.status!.phase, 'Pending');
  assert.match(held.status!.message!, /Kueue admits it from queue gpu-queue/);
  // The operator has reconciled it (status above); give it time to (wrongly) start pods anyway.
  await sleep(1500);
  assert.is((await podsOf(h, 'queued')).length, 0, 'a held job runs no pods');
});

test('a TrainingJob without a queue is not suspended and runs at once', async () => {
  await createJob(h, 'unqueued');
  assert.is((await getJob(h, 'unqueued')).spec.suspend, false);
  const done = await waitForPhase(h, 'unqueued', ['Succeeded', 'Failed']);
  assert.is(done.status!.phase, 'Succeeded', done.status!.message);
});

test('setting spec.suspend=false (what Kueue does on admission) starts the job; the update is not suspended again', async () => {
  await h.api.mergePatch(kinds.TrainingJob, h.namespace, 'queued', { spec: { suspend: false } }, 'kueue-admission');
  assert.is((await getJob(h, 'queued')).spec.suspend, false, 'only creates are held');
  await waitFor('the admitted job to get its pod', async () => (await podsOf(h, 'queued')).length === 1 || undefined);
  const done = await waitForPhase(h, 'queued', ['Succeeded', 'Failed']);
  assert.is(done.status!.phase, 'Succeeded', done.status!.message);
  assert.ok(done.status!.modelVersion, 'the admitted job trained and registered its model');
});

test.run();
