// test: no cluster
// The progress contract as pure functions: what a report may say, what it becomes in status, which token may
// speak for which job, what an attempt's Secret, Job and pods carry, and the coalescing of a flood of reports.
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseProgressPath, parseProgressReport, progressPath, progressStatus } from '../../api/training-progress.ts';
import { controllerReference } from '../../engine/keys.ts';
import type { KubeObject } from '../../engine/types.ts';
import { desiredJob } from '../job.ts';
import {
  ANNOTATION_PROGRESS_TOKEN_SHA256,
  authorizeProgress,
  bearerToken,
  desiredTokenSecret,
  drawProgressCredentials,
  progressPodEnv,
  tokenDigest,
} from '../progress.ts';
import { Coalescer } from '../progress-receiver.ts';
import { attemptJob, trainingJob } from './fixtures.ts';

test('a report needs epoch and totalEpochs; every bad field is named with what is wrong', () => {
  assert.equal(parseProgressReport({ epoch: 4, totalEpochs: 10, loss: 0.3, metrics: { accuracy: 0.9 }, eta: 12 }), {
    ok: true,
    report: { epoch: 4, totalEpochs: 10, loss: 0.3, metrics: { accuracy: 0.9 }, eta: 12 },
  });
  const cases: Array<[unknown, string[]]> = [
    [{ epoch: '4' }, ['totalEpochs is required', 'epoch must be integer']],
    [{ epoch: 4, totalEpochs: 0 }, ['totalEpochs must be >= 1']],
    [{ epoch: -1, totalEpochs: 10, eta: -5 }, ['epoch must be >= 0', 'eta must be >= 0']],
    [{ epoch: 11, totalEpochs: 10 }, ['epoch 11 is more than totalEpochs 10']],
    [
      { epoch: 1, totalEpochs: 10, epcoh: 2 },
      ['epcoh is not a field of a progress report (fields: epoch, totalEpochs, loss, metrics, eta)'],
    ],
    [{ epoch: 1, totalEpochs: 10, loss: 'low' }, ['loss must be number']],
    [
      { epoch: 1, totalEpochs: 10, metrics: { 'val acc': 1, f1: 'x' } },
      ['metrics: "val acc" is not a metric name (letters, digits, _ . : / -; at most 63)', 'metrics.f1 must be number'],
    ],
    [[1, 2], ['body must be object']],
    [null, ['body must be object']],
  ];
  for (const [body, errors] of cases)
    assert.equal(parseProgressReport(body), { ok: false, errors }, JSON.stringify(body));
});

test('status.progress: the attempt, epoch/total as text for the PROGRESS column, and eta as a time', () => {
  const at = new Date('2030-01-01T00:00:00.250Z');
  assert.equal(progressStatus({ epoch: 4, totalEpochs: 10, loss: 0.31, metrics: { accuracy: 0.9 }, eta: 90 }, 2, at), {
    attempt: 2,
    epoch: 4,
    totalEpochs: 10,
    epochs: '4/10',
    loss: 0.31,
    metrics: { accuracy: 0.9 },
    eta: '2030-01-01T00:01:30Z',
    updatedAt: '2030-01-01T00:00:00Z',
  });
  assert.equal(progressStatus({ epoch: 0, totalEpochs: 3 }, 1, at), {
    attempt: 1,
    epoch: 0,
    totalEpochs: 3,
    epochs: '0/3',
    updatedAt: '2030-01-01T00:00:00Z',
  });
});

test('the progress path names the job and parses back; anything else is not one', () => {
  assert.is(progressPath('ml', 'credit.v2'), '/v1/namespaces/ml/trainingjobs/credit.v2/progress');
  assert.equal(parseProgressPath(progressPath('ml', 'credit.v2')), { namespace: 'ml', name: 'credit.v2' });
  for (const path of [
    '/v1/namespaces/ml/trainingjobs/credit',
    '/v1/namespaces/ml/trainingjobs/a/b/progress',
    '/metrics',
    '/v1/namespaces/%E0%A4%A/trainingjobs/x/progress',
  ]) {
    assert.is(parseProgressPath(path), undefined, path);
  }
});

test("only the current attempt's token speaks for a job: missing is 401; forged, another job's or an old attempt's is 403", () => {
  const job = trainingJob({}, { attempts: 2 });
  const first = drawProgressCredentials('credit-1');
  const second = drawProgressCredentials('credit-2');
  const other = drawProgressCredentials('other-1');
  const annotated = (attempt: number, sha: string) => {
    const j = attemptJob(job, attempt, { state: 'Active' });
    return {
      ...j,
      metadata: { ...j.metadata, annotations: { [ANNOTATION_PROGRESS_TOKEN_SHA256]: sha } },
    } as KubeObject;
  };
  const jobs = [annotated(1, first.tokenSha256), annotated(2, second.tokenSha256)];
  assert.equal(authorizeProgress(job, jobs, second.token, 'ml/credit'), { ok: true, attempt: 2 });
  assert.equal(authorizeProgress(job, jobs, undefined, 'ml/credit'), {
    ok: false,
    status: 401,
    reason: 'no token: send Authorization: Bearer $LOOPLINE_PROGRESS_TOKEN',
  });
  const refused = { ok: false, status: 403, reason: 'the token is not one of TrainingJob ml/credit' };
  assert.equal(authorizeProgress(job, jobs, 'forged-token', 'ml/credit'), refused);
  assert.equal(authorizeProgress(job, jobs, other.token, 'ml/credit'), refused);
  assert.equal(
    authorizeProgress(undefined, [], second.token, 'ml/credit'),
    refused,
    'a missing job looks like any refused token',
  );
  assert.equal(authorizeProgress(job, jobs, first.token, 'ml/credit'), {
    ok: false,
    status: 403,
    reason: "the token is attempt 1's; TrainingJob ml/credit is on attempt 2",
  });
  assert.equal(
    [
      bearerToken('Bearer abc'),
      bearerToken('bearer abc '),
      bearerToken('Basic abc'),
      bearerToken(undefined),
      bearerToken('Bearer '),
    ],
    ['abc', 'abc', undefined, undefined, undefined],
  );
});

test("an attempt's token: 256 random bits in an immutable Secret the TrainingJob owns; the Job keeps its digest; pods get it only by reference", () => {
  const job = trainingJob();
  const owner = controllerReference(job as KubeObject);
  const credentials = drawProgressCredentials('credit-3');
  assert.match(credentials.token, /^[A-Za-z0-9_-]{43}$/);
  assert.is.not(drawProgressCredentials('credit-3').token, credentials.token);
  assert.match(credentials.secretName, /^credit-3-progress-[0-9a-f]{6}$/);
  assert.is(credentials.tokenSha256, tokenDigest(credentials.token));

  const secret = desiredTokenSecret(job, owner, 3, credentials) as any;
  assert.equal(
    [secret.kind, secret.metadata.name, secret.metadata.namespace, secret.type, secret.immutable],
    ['Secret', credentials.secretName, 'ml', 'Opaque', true],
  );
  assert.equal(secret.metadata.ownerReferences, [owner]);
  assert.is(Buffer.from(secret.data.token, 'base64').toString(), credentials.token);
  assert.is(secret.metadata.labels['loopline.dev/attempt'], '3');

  const env = progressPodEnv('http://loopline-progress.loopline-system.svc:8081/', job, credentials.secretName);
  const attempt = desiredJob(job, owner, 3, { progress: { env, tokenSha256: credentials.tokenSha256 } }) as any;
  assert.is(attempt.metadata.annotations[ANNOTATION_PROGRESS_TOKEN_SHA256], credentials.tokenSha256);
  const podEnv = attempt.spec.template.spec.containers[0].env as Array<{
    name: string;
    value?: string;
    valueFrom?: unknown;
  }>;
  assert.equal(
    podEnv.find((e) => e.name === 'LOOPLINE_PROGRESS_URL'),
    {
      name: 'LOOPLINE_PROGRESS_URL',
      value: 'http://loopline-progress.loopline-system.svc:8081/v1/namespaces/ml/trainingjobs/credit/progress',
    },
  );
  assert.equal(
    podEnv.find((e) => e.name === 'LOOPLINE_PROGRESS_TOKEN'),
    { name: 'LOOPLINE_PROGRESS_TOKEN', valueFrom: { secretKeyRef: { name: credentials.secretName, key: 'token' } } },
  );
  assert.not.ok(JSON.stringify(attempt).includes(credentials.token), 'the token itself is nowhere in the Job');
});

test('a user env var cannot replace the progress URL or token', () => {
  const job = trainingJob({
    env: [
      { name: 'LOOPLINE_PROGRESS_URL', value: 'http://evil' },
      { name: 'LOOPLINE_PROGRESS_TOKEN', value: 'mine' },
    ],
  });
  const env = desiredJob(job, controllerReference(job as KubeObject), 1).spec as any;
  const names = (env.template.spec.containers[0].env as Array<{ name: string }>).map((e) => e.name);
  assert.not.ok(names.includes('LOOPLINE_PROGRESS_URL') || names.includes('LOOPLINE_PROGRESS_TOKEN'));
});

test('a flood of values is coalesced: at most one write per key per interval, each the latest, the last value always written', async () => {
  const writes: Array<{ key: string; value: number; at: number }> = [];
  const coalescer = new Coalescer<number>(100, async (key, value) => {
    writes.push({ key, value, at: performance.now() });
    await sleep(5);
  });
  const started = performance.now();
  let last = 0;
  while (performance.now() - started < 500) {
    coalescer.offer('ml/a', ++last);
    if (last % 10 === 0) coalescer.offer('ml/b', last);
    await sleep(1);
  }
  await sleep(250);
  const a = writes.filter((w) => w.key === 'ml/a');
  assert.ok(a.length >= 3 && a.length <= 7, `${a.length} writes of ml/a for ${last} values in 500 ms at 100 ms`);
  for (let i = 1; i < a.length; i++)
    assert.ok(a[i].at - a[i - 1].at >= 99.5, `writes ${i - 1} and ${i} ${a[i].at - a[i - 1].at} ms apart`);
  assert.is(a[0].value, 1, 'the first value of a quiet key is written at once');
  assert.is(a.at(-1)!.value, last, 'the latest value wins');
  assert.ok(a.every((w, i) => i === 0 || w.value > a[i - 1].value));
  assert.ok(
    writes.some((w) => w.key === 'ml/b'),
    'keys are coalesced independently',
  );
  assert.is(coalescer.size, 0, 'quiet keys are forgotten');
  coalescer.stop();
});

test('an immediate value skips the wait but never overlaps a write in flight', async () => {
  const writes: Array<{ value: number; at: number }> = [];
  let writing = 0;
  const coalescer = new Coalescer<number>(300, async (_key, value) => {
    assert.is(writing++, 0, 'one write at a time');
    writes.push({ value, at: performance.now() });
    await sleep(20);
    writing--;
  });
  const started = performance.now();
  coalescer.offer('ml/a', 1);
  await sleep(5);
  coalescer.offer('ml/a', 2, true);
  await sleep(60);
  coalescer.offer('ml/a', 3);
  coalescer.offer('ml/a', 4, true);
  await sleep(100);
  assert.equal(
    writes.map((w) => w.value),
    [1, 2, 4],
    'the immediate values went out without waiting 300 ms',
  );
  assert.ok(writes[1].at - writes[0].at >= 19, 'the second waited for the first write to finish');
  assert.ok(writes[2].at - started < 250);
  coalescer.stop();
});

test.run();
