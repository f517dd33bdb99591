// TrainingJobs on the local cluster with the real example trainer run by the local-kubelet, each
// attempt a batch/v1 Job run by the real Job controller: success and registration, retries,
// deadlines, bad results, distributed ranks, gates, versions.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateCreditRisk, toCsv } from '../../../examples/trainer/src/dataset.ts';
import { kinds, type KubeObject } from '../../engine/index.ts';
import {
  createJob,
  jobsOf,
  podsOf,
  sleep,
  startHarness,
  versionsOf,
  waitFor,
  waitForPhase,
  type Harness,
} from '../../../test/support/operator-harness.ts';

let h: Harness;
const sha256 = (path: string) => `sha256:${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
const envOf = (pod: KubeObject) =>
  Object.fromEntries(
    (pod.spec.containers[0].env as Array<{ name: string; value: string }>).map((e) => [e.name, e.value]),
  );

test.before(async () => {
  h = await startHarness('tj');
});
test.after(async () => {
  await h?.stop();
});

test('a TrainingJob trains on a GPU node, Succeeds, and registers a ModelVersion with the metrics, digest and lineage; the version outlives the job', async () => {
  const csv = join(h.outputDir, 'credit.csv');
  writeFileSync(csv, toCsv(generateCreditRisk({ rows: 800, seed: 7, shift: 0 })));
  const dataset = { uri: pathToFileURL(csv).href, snapshot: '2030-01-01', hash: sha256(csv) };
  const code = { repo: 'https://github.com/loopline/loopline', commit: '0123abcd' };
  await createJob(h, 'happy', {
    model: 'happy-model',
    dataset,
    code,
    hyperparameters: { epochs: '40', learning_rate: '0.3' },
    registration: { gates: [{ metric: 'auc', operator: '>=', value: 0.6 }], stage: 'Staging', aliases: ['candidate'] },
    ttlSecondsAfterFinished: 3,
  });
  const job = await waitForPhase(h, 'happy', ['Succeeded', 'Failed']);
  assert.is(job.status!.phase, 'Succeeded', job.status!.message);
  assert.is(job.status!.attempts, 1);
  assert.is(job.status!.modelVersion, 'happy-model-v1');
  assert.is(job.status!.version, 1);
  assert.ok(job.status!.conditions!.some((c) => c.type === 'Registered' && c.status === 'True'));

  const [attempt] = await jobsOf(h, 'happy');
  assert.equal(
    [attempt.metadata.name, attempt.spec.completionMode, attempt.metadata.ownerReferences![0].uid],
    ['happy-1', 'Indexed', job.metadata.uid],
  );
  assert.ok(
    attempt.status.conditions.some(
      (c: { type: string; status: string }) => c.type === 'Complete' && c.status === 'True',
    ),
    'the Job controller completed the Job',
  );
  const [pod] = await podsOf(h, 'happy');
  assert.is(pod.metadata.ownerReferences![0].name, 'happy-1', "the pod is the Job's");
  assert.match(pod.spec.nodeName, /^gpu-node-/);
  assert.equal(pod.spec.containers[0].resources.limits, { 'nvidia.com/gpu': '1' });
  assert.is(envOf(pod).HP_LEARNING_RATE, '0.3');
  assert.is(pod.status.containerStatuses[0].state.terminated.exitCode, 0);

  const [mv] = await versionsOf(h, 'happy-model');
  assert.is(mv.metadata.name, 'happy-model-v1');
  const result = JSON.parse(pod.status.containerStatuses[0].state.terminated.message);
  assert.equal(mv.spec.metrics, result.metrics);
  assert.equal(job.status!.metrics, result.metrics);
  assert.ok(mv.spec.metrics!.auc >= 0.6);
  assert.is(
    mv.spec.artifact.digest,
    sha256(fileURLToPath(mv.spec.artifact.uri)),
    'the digest is the sha256 of the artifact on disk',
  );
  assert.match(mv.spec.artifact.uri, new RegExp(`/${h.namespace}/happy/attempt-1/model.onnx$`));
  assert.equal(mv.spec.lineage, {
    trainingJob: 'happy',
    dataset,
    code,
    hyperparameters: { epochs: '40', learning_rate: '0.3' },
  });
  assert.is(mv.spec.referenceProfile!.digest, sha256(fileURLToPath(mv.spec.referenceProfile!.uri)));
  assert.is(mv.spec.primaryMetric, 'auc');
  assert.is(mv.metadata.ownerReferences, undefined, 'no owner reference: the version outlives the job');
  const registered = await waitFor('the registry to put the version in Staging', async () => {
    const [v] = await versionsOf(h, 'happy-model');
    return v.status?.stage === 'Staging' ? v : undefined;
  });
  assert.equal(registered.status!.aliases, ['candidate']);

  await waitFor('the TTL to delete the job', async () =>
    h.api.get(kinds.TrainingJob, h.namespace, 'happy').then(
      () => false,
      (e) => e.statusCode === 404,
    ),
  );
  assert.is((await versionsOf(h, 'happy-model')).length, 1, 'the ModelVersion stays after the TrainingJob is gone');
});

test('a crashing trainer is retried with a new Job per attempt, then Failed after backoffLimit', async () => {
  await createJob(h, 'crash', { backoffLimit: 1, env: [{ name: 'LOOPLINE_FAIL', value: 'crash' }] });
  const job = await waitForPhase(h, 'crash', ['Failed', 'Succeeded']);
  assert.is(job.status!.phase, 'Failed');
  assert.is(job.status!.attempts, 2);
  assert.match(
    job.status!.message!,
    /^BackoffLimitExceeded: 2 attempt\(s\) failed \(backoffLimit 1\); last: attempt 2 failed: pod crash-2-0-\w+ \(rank 0\) exited with code 1/,
  );
  const jobs = await jobsOf(h, 'crash');
  assert.equal(jobs.map((j) => j.metadata.name).sort(), ['crash-1', 'crash-2']);
  assert.ok(
    jobs.every((j) =>
      j.status.conditions.some(
        (c: { type: string; status: string; reason: string }) => c.type === 'Failed' && c.status === 'True',
      ),
    ),
    "the Job controller failed each attempt's Job",
  );
  const pods = await podsOf(h, 'crash');
  assert.equal(
    pods.map((p) => p.metadata.ownerReferences![0].name).sort(),
    ['crash-1', 'crash-2'],
    'one pod per attempt: the Job controller does not retry within an attempt',
  );
  assert.ok(pods.every((p) => p.status.phase === 'Failed'));
  assert.is((await versionsOf(h, 'credit-risk')).length, 0);
});

test('a job past activeDeadlineSeconds is Failed with DeadlineExceeded by the Job controller and its pod stopped', async () => {
  await createJob(h, 'slow', {
    activeDeadlineSeconds: 3,
    backoffLimit: 2,
    env: [{ name: 'LOOPLINE_FAIL', value: 'sleep:60' }],
  });
  const job = await waitForPhase(h, 'slow', ['Failed', 'Succeeded'], 20_000);
  assert.match(job.status!.message!, /^DeadlineExceeded/);
  assert.ok(job.status!.conditions!.some((c) => c.type === 'Failed' && c.reason === 'DeadlineExceeded'));
  assert.is(job.status!.attempts, 1, 'a deadline is not retried');
  const [attempt] = await jobsOf(h, 'slow');
  assert.is(attempt.spec.activeDeadlineSeconds, 3);
  assert.ok(
    attempt.status.conditions.some(
      (c: { type: string; reason: string }) => c.type === 'Failed' && c.reason === 'DeadlineExceeded',
    ),
    'the Job controller enforced it',
  );
  const elapsed = Date.parse(job.status!.completionTime!) - Date.parse(job.status!.startTime!);
  assert.ok(elapsed >= 3000 && elapsed <= 8000, `failed ${elapsed} ms after start`);
  await waitFor(
    'the pod to be stopped',
    async () =>
      (await podsOf(h, 'slow')).every((p) => p.metadata.deletionTimestamp || p.status.phase === 'Failed') || undefined,
    15_000,
  );
});

test('a malformed result or one without a digest fails the job with a message saying what was wrong', async () => {
  await createJob(h, 'bad-json', { backoffLimit: 2, env: [{ name: 'LOOPLINE_FAIL', value: 'bad-result' }] });
  await createJob(h, 'no-digest', { backoffLimit: 2, env: [{ name: 'LOOPLINE_FAIL', value: 'no-digest' }] });
  const bad = await waitForPhase(h, 'bad-json', ['Failed', 'Succeeded']);
  assert.is(bad.status!.phase, 'Failed');
  assert.match(bad.status!.message!, /^InvalidResult: attempt 1 exited 0 but the training result is not valid JSON/);
  assert.is(bad.status!.attempts, 1, 'a bad result is not retried');
  const noDigest = await waitForPhase(h, 'no-digest', ['Failed', 'Succeeded']);
  assert.match(noDigest.status!.message!, /has no artifact\.digest/);
  assert.is((await versionsOf(h, 'credit-risk')).length, 0);
});

test('workers=3 run as one Indexed Job, the rank of each pod its completion index, with consistent torchrun env and a headless Service for rank 0', async () => {
  await createJob(h, 'dist', {
    model: 'dist-model',
    workers: 3,
    masterPort: 29400,
    resources: { gpus: 2, gpuType: 'NVIDIA-A100-SXM4-80GB' },
  });
  const job = await waitForPhase(h, 'dist', ['Succeeded', 'Failed']);
  assert.is(job.status!.phase, 'Succeeded', job.status!.message);
  const [attempt] = await jobsOf(h, 'dist');
  assert.equal(
    [attempt.metadata.name, attempt.spec.completions, attempt.spec.parallelism, attempt.status.succeeded],
    ['dist-1', 3, 3, 3],
  );
  const index = (p: KubeObject) => p.metadata.annotations!['batch.kubernetes.io/job-completion-index'];
  const pods = (await podsOf(h, 'dist')).sort((a, b) => index(a).localeCompare(index(b)));
  assert.equal(
    pods.map((p) => [index(p), p.spec.hostname, p.spec.subdomain]),
    [
      ['0', 'dist-1-0', 'dist'],
      ['1', 'dist-1-1', 'dist'],
      ['2', 'dist-1-2', 'dist'],
    ],
  );
  const rows = pods.map((p) => {
    const e = envOf(p);
    return [
      e.WORLD_SIZE,
      e.PET_NNODES,
      e.PET_NPROC_PER_NODE,
      e.MASTER_ADDR,
      e.PET_MASTER_ADDR,
      e.MASTER_PORT,
      e.PET_MASTER_PORT,
    ];
  });
  assert.equal(
    rows,
    [0, 1, 2].map(() => ['3', '3', '2', 'dist-1-0.dist', 'dist-1-0.dist', '29400', '29400']),
  );
  const svc = await h.api.get(kinds.Service, h.namespace, 'dist');
  assert.is(svc.spec.clusterIP, 'None');
  assert.equal(svc.spec.selector, {
    'loopline.dev/trainingjob': 'dist',
    'batch.kubernetes.io/job-completion-index': '0',
  });
  assert.is(svc.metadata.ownerReferences![0].uid, job.metadata.uid);
  // The trainer processes themselves read their rank from the completion index: ranks 1 and 2 only train their shard.
  for (const [rank, pod] of pods.entries()) {
    const log = readFileSync(
      join(h.kubelet!.logDir(h.namespace, pod.metadata.name, pod.metadata.uid!, 'trainer'), '0.log'),
      'utf8',
    );
    assert.match(log, new RegExp(`"rank":${rank},"worldSize":3`));
    if (rank > 0) assert.match(log, /shard trained; rank 0 writes the result/);
  }
  assert.is((await versionsOf(h, 'dist-model')).length, 1);
});

test('a result below the registration gates registers no ModelVersion', async () => {
  await createJob(h, 'gated', {
    model: 'gated-model',
    registration: { gates: [{ metric: 'auc', operator: '>=', value: 0.999 }] },
  });
  const job = await waitForPhase(h, 'gated', ['Succeeded', 'Failed']);
  assert.is(job.status!.phase, 'Succeeded');
  const registered = job.status!.conditions!.find((c) => c.type === 'Registered')!;
  assert.equal([registered.status, registered.reason], ['False', 'GatesNotMet']);
  assert.match(registered.message, /auc = 0\.\d+ fails auc >= 0\.999/);
  assert.is(job.status!.modelVersion, undefined);
  await sleep(500);
  assert.is((await versionsOf(h, 'gated-model')).length, 0);
});

test('jobs of one model finishing together get distinct, consecutive versions', async () => {
  const names = ['race-a', 'race-b', 'race-c'];
  await Promise.all(names.map((n) => createJob(h, n, { model: 'race-model' })));
  const jobs = await Promise.all(names.map((n) => waitForPhase(h, n, ['Succeeded', 'Failed'])));
  assert.ok(
    jobs.every((j) => j.status!.phase === 'Succeeded'),
    JSON.stringify(jobs.map((j) => j.status!.message)),
  );
  assert.equal(jobs.map((j) => j.status!.version).sort(), [1, 2, 3]);
  const versions = await versionsOf(h, 'race-model');
  assert.equal(
    versions.map((v) => [v.spec.version, v.spec.lineage!.trainingJob]).sort(),
    jobs.map((j) => [j.status!.version, j.metadata.name]).sort(),
  );
});

test('the API server refuses changes to immutable fields', async () => {
  await createJob(h, 'immutable', { model: 'first-model', suspend: true });
  await h.api
    .mergePatch(kinds.TrainingJob, h.namespace, 'immutable', { spec: { model: 'other-model' } }, 'loopline-tests')
    .then(
      () => assert.unreachable('spec.model changed'),
      (err) => assert.match(err.message, /spec\.model is immutable/),
    );
  const [mv] = await versionsOf(h, 'happy-model');
  await h.api
    .mergePatch(
      kinds.ModelVersion,
      h.namespace,
      mv.metadata.name,
      { spec: { artifact: { digest: `sha256:${'f'.repeat(64)}` } } },
      'loopline-tests',
    )
    .then(
      () => assert.unreachable('artifact digest changed'),
      (err) => assert.match(err.message, /spec\.artifact\.digest is immutable/),
    );
  await h.api
    .mergePatch(kinds.ModelVersion, h.namespace, mv.metadata.name, { spec: { metrics: { auc: 1 } } }, 'loopline-tests')
    .then(
      () => assert.unreachable('metrics changed'),
      (err) => assert.match(err.message, /spec\.metrics is immutable/),
    );
  const held = (await h.api.get(kinds.TrainingJob, h.namespace, 'immutable')) as KubeObject;
  assert.is(held.status?.phase, 'Pending');
  assert.is((await jobsOf(h, 'immutable')).length, 0, 'a suspended job has no Job');
  assert.is((await podsOf(h, 'immutable')).length, 0, 'a suspended job runs no pods');
});

test.run();
