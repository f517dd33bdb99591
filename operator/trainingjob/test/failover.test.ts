// Operator processes dying: a second replica takes over through the Lease, and an operator killed
// in the middle of a job and started again creates no second Job and no second ModelVersion.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { kinds, type Engine } from '../../engine/index.ts';
import { createOperator } from '../../main.ts';
import { desiredModelVersion } from '../registration.ts';
import { parseTrainingResult } from '../result.ts';
import {
  REPO_ROOT,
  createJob,
  getJob,
  jobsOf,
  logger,
  podsOf,
  sleep,
  startHarness,
  versionsOf,
  waitFor,
  waitForPhase,
  type Harness,
} from '../../../test/support/operator-harness.ts';

let h: Harness;
const children = new Set<ChildProcess>();
const engines = new Set<Engine>();

test.before(async () => {
  h = await startHarness('tj-failover', { operator: false });
});
test.after(async () => {
  for (const engine of engines) await engine.stop().catch(() => undefined);
  for (const child of children) child.kill('SIGKILL');
  await h?.stop();
});

function replica(name: string): Engine {
  const engine = createOperator({
    kubeconfig: h.kc,
    namespace: h.namespace,
    httpPort: false,
    logger: logger(),
    lifecycle: { retryBaseMs: 300 },
    leaderElection: {
      namespace: h.namespace,
      name: 'loopline-operator',
      identity: name,
      leaseDurationMs: 2000,
      renewDeadlineMs: 1500,
      retryPeriodMs: 250,
    },
  });
  engines.add(engine);
  return engine;
}

test('two replicas: only the leader reconciles; when it dies the other takes over within the lease duration', async () => {
  const a = replica('replica-a');
  const b = replica('replica-b');
  await Promise.all([a.start(), b.start()]);
  const leader = await waitFor('a leader', () => (a.isLeader() ? a : b.isLeader() ? b : undefined), 10_000);
  const follower = leader === a ? b : a;
  assert.not.ok(follower.isLeader());
  await createJob(h, 'before-failover', { model: 'failover-model' });
  assert.is((await waitForPhase(h, 'before-failover', ['Succeeded', 'Failed'])).status!.phase, 'Succeeded');
  // Campaigning for the Lease is the only thing a follower writes.
  assert.is(follower.writes.total({ excludeKinds: ['Lease'] }), 0, 'the follower wrote nothing');
  assert.ok(leader.writes.total({ excludeKinds: ['Lease'] }) > 0);

  // A crash as the other replica sees it: no more renewals, the lease is not released.
  await leader.stop({ releaseLease: false });
  engines.delete(leader);
  const crashedAt = Date.now();
  await createJob(h, 'after-failover', { model: 'failover-model' });
  await waitFor('the follower to take over', () => follower.isLeader() || undefined, 10_000);
  const takeover = Date.now() - crashedAt;
  assert.ok(takeover <= 2000 + 1000, `took over after ${takeover} ms (lease 2000 ms)`);
  const job = await waitForPhase(h, 'after-failover', ['Succeeded', 'Failed']);
  assert.is(job.status!.phase, 'Succeeded');
  assert.equal(
    (await versionsOf(h, 'failover-model')).map((v) => v.spec.version),
    [1, 2],
  );
  await follower.stop();
  engines.delete(follower);
});

function startOperatorProcess(): ChildProcess {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(REPO_ROOT, 'operator/main.ts'),
      '--namespace',
      h.namespace,
      '--no-leader-election',
      '--http-port',
      '0',
      '--retry-base-ms',
      '300',
    ],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

test('an operator killed mid-job and restarted creates no duplicate Job, pod or version', async () => {
  let operator = startOperatorProcess();
  await createJob(h, 'survivor', { model: 'survivor-model', env: [{ name: 'LOOPLINE_FAIL', value: 'sleep:3' }] });
  await waitFor(
    'the training pod to run',
    async () => (await podsOf(h, 'survivor')).find((p) => p.status?.phase === 'Running'),
    30_000,
  );
  await kill(operator);
  await sleep(500);
  operator = startOperatorProcess();
  const job = await waitForPhase(h, 'survivor', ['Succeeded', 'Failed']);
  assert.is(job.status!.phase, 'Succeeded', job.status!.message);
  assert.is(job.status!.attempts, 1);
  assert.equal(
    (await jobsOf(h, 'survivor')).map((j) => j.metadata.name),
    ['survivor-1'],
  );
  assert.is((await podsOf(h, 'survivor')).length, 1);
  assert.equal(
    (await versionsOf(h, 'survivor-model')).map((v) => v.metadata.name),
    ['survivor-model-v1'],
  );
  await kill(operator);
});

test('an operator that registered a version but died before recording it finds that version instead of registering again', async () => {
  const operator = startOperatorProcess();
  await createJob(h, 'half-done', { model: 'half-model', env: [{ name: 'LOOPLINE_FAIL', value: 'sleep:2' }] });
  await waitFor(
    'the training pod to run',
    async () => (await podsOf(h, 'half-done')).find((p) => p.status?.phase === 'Running'),
    30_000,
  );
  await kill(operator);
  // While no operator runs, the trainer finishes; then the state a crash right after registering leaves behind.
  const pod = await waitFor(
    'the pod to succeed',
    async () => (await podsOf(h, 'half-done')).find((p) => p.status?.phase === 'Succeeded'),
    30_000,
  );
  const verdict = parseTrainingResult(pod.status.containerStatuses[0].state.terminated.message);
  assert.ok(verdict.ok);
  const job = await getJob(h, 'half-done');
  await h.api.create(
    kinds.ModelVersion,
    desiredModelVersion(job, verdict.ok ? verdict.result : (undefined as never), 7),
    'loopline-operator',
  );
  assert.is(job.status?.phase === 'Succeeded', false);
  const restarted = startOperatorProcess();
  const done = await waitForPhase(h, 'half-done', ['Succeeded', 'Failed']);
  assert.equal(
    [done.status!.phase, done.status!.modelVersion, done.status!.version],
    ['Succeeded', 'half-model-v7', 7],
  );
  await sleep(500);
  assert.equal(
    (await versionsOf(h, 'half-model')).map((v) => v.metadata.name),
    ['half-model-v7'],
  );
  await kill(restarted);
});

test.run();
