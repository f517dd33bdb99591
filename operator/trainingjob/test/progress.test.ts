// Training progress on the local cluster: two operator replicas with leader election, each serving the
// progress endpoint on the pods' bridge address; the example trainer run by the local-kubelet posts to the
// leader with its attempt's token from the Secret the operator made. Values in status while the job runs,
// refused tokens and bodies, the 503 of the standby, a flood coalesced, the token in no log, Event or status,
// and its Secret garbage-collected with the job.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { HttpMethod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort } from '../../../test/support/local.ts';
import { kinds, resourcePath, type Engine, type KubeObject } from '../../engine/index.ts';
import { createOperator } from '../../main.ts';
import { ANNOTATION_PROGRESS_TOKEN_SHA256, tokenDigest } from '../progress.ts';
import type { TrainingJob } from '../resource.ts';
import { flood } from './flood.ts';
import {
  createJob,
  getJob,
  jobsOf,
  podsOf,
  sleep,
  startHarness,
  waitFor,
  waitForPhase,
  type Harness,
} from '../../../test/support/operator-harness.ts';

const INTERVAL_MS = 1000;
let h: Harness;
let leader: Engine;
let standby: Engine;
let leaderUrl: string;
let standbyUrl: string;
/** Every line either replica logged, at debug level. */
const operatorLog: string[] = [];
/** Every token a test handled, to look for afterwards. */
const tokens = new Map<string, string>();

test.before(async () => {
  const host = process.env.LOOPLINE_HOST_ADDRESS;
  if (!host)
    throw new Error(
      'LOOPLINE_HOST_ADDRESS is not set: run through `npm test`, or `eval "$(bash e2e/cluster/cluster.sh env)"` first',
    );
  h = await startHarness('tjp', { operator: false });
  const sink = new Writable({
    write(chunk, _encoding, done) {
      operatorLog.push(String(chunk));
      done();
    },
  });
  const replica = async (identity: string) => {
    const port = await freePort();
    const engine = createOperator({
      kubeconfig: h.kc,
      namespace: h.namespace,
      leaderElection: {
        name: 'progress-test',
        namespace: h.namespace,
        identity,
        leaseDurationMs: 4000,
        renewDeadlineMs: 3000,
        retryPeriodMs: 500,
      },
      httpPort: false,
      logger: pino({ level: 'debug' }, sink),
      lifecycle: { retryBaseMs: 300 },
      progress: { url: `http://${host}:${port}`, port, host, intervalMs: INTERVAL_MS },
    });
    await engine.start();
    return { engine, url: `http://${host}:${port}` };
  };
  ({ engine: leader, url: leaderUrl } = await replica('replica-a'));
  await leader.whenLeader();
  ({ engine: standby, url: standbyUrl } = await replica('replica-b'));
});

test.after(async () => {
  await standby?.stop();
  await leader?.stop();
  await h?.stop();
});

/** The token of the job's current attempt, read from the Secret as the kubelet reads it; and the Secret. */
async function tokenOf(name: string): Promise<{ token: string; secret: KubeObject }> {
  const secret = await waitFor(`the progress Secret of ${name}`, async () => {
    const items = (await h.api.list(kinds.Secret, h.namespace, { labelSelector: `loopline.dev/trainingjob=${name}` }))
      .items;
    return items.length === 1 ? items[0] : undefined;
  });
  const token = Buffer.from((secret.data as Record<string, string>).token, 'base64').toString();
  tokens.set(name, token);
  return { token, secret };
}

async function post(base: string, name: string, body: unknown, token?: string, raw?: string) {
  const response = await fetch(`${base}/v1/namespaces/${h.namespace}/trainingjobs/${name}/progress`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: raw ?? JSON.stringify(body),
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as { error?: string; errors?: string[] },
  };
}

/** A job whose pod is up but sleeps before training (so it reports nothing itself), its token read. */
async function sleepingJob(name: string): Promise<string> {
  await createJob(h, name, { env: [{ name: 'LOOPLINE_FAIL', value: 'sleep:120' }] });
  await waitForPhase(h, name, ['Running']);
  return (await tokenOf(name)).token;
}

test("a running job's progress appears in status.progress and the PROGRESS column while it trains, and stays after it succeeds", async () => {
  await createJob(h, 'watched', {
    hyperparameters: { epochs: '60', rows: '800' },
    env: [{ name: 'LOOPLINE_EPOCH_DELAY_MS', value: '100' }],
  });
  const running = await waitFor(
    'progress while the job runs',
    async () => {
      const job = await getJob(h, 'watched');
      const p = job.status?.progress;
      return p && p.epoch < 60 && job.status?.phase === 'Running' ? job : undefined;
    },
    40_000,
  );
  const p = running.status!.progress!;
  assert.is(p.attempt, 1);
  assert.is(p.totalEpochs, 60);
  assert.is(p.epochs, `${p.epoch}/60`);
  assert.ok(p.epoch > 0 && p.epoch % 6 === 0, `epoch ${p.epoch}: the trainer reports every tenth of its 60 epochs`);
  assert.type(p.loss, 'number');
  assert.ok(Date.parse(p.eta!) >= Date.parse(p.updatedAt), `eta ${p.eta} after ${p.updatedAt}`);

  const table = await h.api.request<{ columnDefinitions: Array<{ name: string }>; rows: Array<{ cells: unknown[] }> }>(
    HttpMethod.GET,
    resourcePath(kinds.TrainingJob, h.namespace, 'watched'),
    { accept: 'application/json;as=Table;g=meta.k8s.io;v=v1' },
  );
  const column = table.columnDefinitions.findIndex((c) => c.name === 'Progress');
  assert.ok(column >= 0, `columns: ${table.columnDefinitions.map((c) => c.name)}`);
  assert.match(String(table.rows[0].cells[column]), /^\d+\/60$/);

  const done = await waitForPhase(h, 'watched', ['Succeeded', 'Failed'], 60_000);
  assert.is(done.status!.phase, 'Succeeded', done.status!.message);
  // The report that ends training is written at once, before the pod exits: no interval to wait for.
  assert.is(
    done.status!.progress?.epochs,
    '60/60',
    "the finished job shows its last epoch, kept by the reconcile's status apply",
  );
  assert.ok(done.status!.progress!.loss! < p.loss!, 'loss fell');
  await tokenOf('watched');
});

test("a missing, forged or another job's token, or a bad body, is refused and writes nothing; the standby answers 503 with Retry-After", async () => {
  const token = await sleepingJob('quiet-a');
  const otherToken = await sleepingJob('quiet-b');
  const report = { epoch: 3, totalEpochs: 10, loss: 0.5 };

  const missing = await post(leaderUrl, 'quiet-a', report);
  assert.equal([missing.status, missing.headers.get('www-authenticate')], [401, 'Bearer']);
  const forged = await post(leaderUrl, 'quiet-a', report, 'x'.repeat(43));
  assert.equal([forged.status, forged.body.error], [403, `the token is not one of TrainingJob ${h.namespace}/quiet-a`]);
  const others = await post(leaderUrl, 'quiet-a', report, otherToken);
  assert.is(others.status, 403, "quiet-b's token does not speak for quiet-a");
  const unknown = await post(leaderUrl, 'no-such-job', report, token);
  assert.is(unknown.status, 403, 'an unknown job looks like any refused token');
  const bad = await post(leaderUrl, 'quiet-a', { epoch: 'three', totalEpochs: 10 }, token);
  assert.equal([bad.status, bad.body.errors], [400, ['epoch must be integer']]);
  const notJson = await post(leaderUrl, 'quiet-a', undefined, token, '{"epoch": 3,');
  assert.is(notJson.status, 400);
  assert.match(notJson.body.error!, /^the body is not JSON/);
  const toStandby = await post(standbyUrl, 'quiet-a', report, token);
  assert.equal([toStandby.status, toStandby.headers.get('retry-after')], [503, '1']);

  await sleep(INTERVAL_MS * 1.5);
  assert.is((await getJob(h, 'quiet-a')).status?.progress, undefined, 'nothing was written');

  const accepted = await post(leaderUrl, 'quiet-a', report, token);
  assert.is(accepted.status, 202);
  const written = await waitFor(
    'the accepted report in status',
    async () => (await getJob(h, 'quiet-a')).status?.progress,
  );
  assert.equal([written.attempt, written.epochs, written.loss], [1, '3/10', 0.5]);
});

test('a flood of 3000 reports at up to 1000 a second is coalesced to at most one status write per interval, the last report winning', async () => {
  const token = tokens.get('quiet-a')!;
  const statusWrites = () => leader.writes.total({ verb: 'patch-status', kind: 'TrainingJob' });
  const allWrites = () => leader.writes.total({ excludeKinds: ['Lease', 'Event'] });
  const before = { status: statusWrites(), all: allWrites() };
  const { sent, elapsedMs, statuses } = await flood({
    url: `${leaderUrl}/v1/namespaces/${h.namespace}/trainingjobs/quiet-a/progress`,
    token,
    reports: 3000,
    rate: 1000,
    concurrency: 32,
  });
  const elapsed = elapsedMs / 1000;
  await sleep(INTERVAL_MS * 1.5);
  const writes = statusWrites() - before.status;
  console.log(
    `flood: ${sent} reports in ${elapsed.toFixed(2)} s (${Math.round(sent / elapsed)}/s), answers ${JSON.stringify(statuses)}; ${writes} status writes (${allWrites() - before.all} API writes in all) at one per ${INTERVAL_MS} ms`,
  );
  assert.equal(statuses, { 202: sent }, 'every report accepted');
  assert.ok(
    writes >= 2 && writes <= Math.ceil((elapsed * 1000) / INTERVAL_MS) + 1,
    `${writes} status writes for ${sent} reports in ${elapsed.toFixed(1)} s`,
  );
  assert.ok(allWrites() - before.all <= writes + 2, 'the flood causes no other writes');
  // Reports on 32 connections may arrive out of order; one more after the flood must be the one that stays.
  const closing = await post(
    leaderUrl,
    'quiet-a',
    { epoch: sent + 1, totalEpochs: 1_000_000, metrics: { step: sent + 1 } },
    token,
  );
  assert.is(closing.status, 202);
  const last = await waitFor(
    'the last report in status',
    async () => {
      const p = (await getJob(h, 'quiet-a')).status?.progress;
      return p?.epoch === sent + 1 ? p : undefined;
    },
    INTERVAL_MS * 5,
  );
  assert.equal(last.metrics, { step: sent + 1 }, 'the last report won, metrics and all');
});

test('the token Secret is owned by the TrainingJob and garbage-collected with it', async () => {
  const job = await getJob(h, 'quiet-b');
  const { secret } = await tokenOf('quiet-b');
  const [attempt] = await jobsOf(h, 'quiet-b');
  assert.equal(secret.metadata.ownerReferences, [
    {
      apiVersion: 'loopline.dev/v1alpha1',
      kind: 'TrainingJob',
      name: 'quiet-b',
      uid: job.metadata.uid,
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
  assert.equal([secret.type, secret.immutable], ['Opaque', true]);
  assert.is(
    attempt.metadata.annotations![ANNOTATION_PROGRESS_TOKEN_SHA256],
    tokenDigest(tokens.get('quiet-b')!),
    'the Job holds the digest the receiver checks',
  );
  await h.api.delete(kinds.TrainingJob, h.namespace, 'quiet-b', { propagationPolicy: 'Background' });
  await waitFor(
    'the garbage collector to delete the Secret',
    async () => {
      const items = (await h.api.list(kinds.Secret, h.namespace, { labelSelector: 'loopline.dev/trainingjob=quiet-b' }))
        .items;
      return items.length === 0 || undefined;
    },
    30_000,
  );
});

test("no token appears in the operator's logs, Events, TrainingJob status, Jobs, pods or the trainer's log", async () => {
  assert.ok(tokens.size >= 3, `tokens seen: ${[...tokens.keys()]}`);
  assert.ok(
    operatorLog.some((line) => line.includes('progress endpoint listening')),
    `the replicas' log was captured: ${operatorLog.length} lines`,
  );
  const events = (await h.api.list(kinds.Event, h.namespace)).items;
  const trainingJobs = (await h.api.list<TrainingJob>(kinds.TrainingJob, h.namespace)).items;
  const jobs = (await h.api.list(kinds.Job, h.namespace)).items;
  const pods = (await h.api.list(kinds.Pod, h.namespace)).items;
  const [pod] = await podsOf(h, 'watched');
  const dir = h.kubelet!.logDir(h.namespace, pod.metadata.name, pod.metadata.uid!, 'trainer');
  const trainerLog = readdirSync(dir)
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('');
  assert.match(trainerLog, /"msg":"epoch"/);
  const places: Record<string, string> = {
    'operator log': operatorLog.join(''),
    Events: JSON.stringify(events),
    'TrainingJob status': JSON.stringify(trainingJobs.map((j) => j.status)),
    Jobs: JSON.stringify(jobs),
    pods: JSON.stringify(pods),
    'trainer log': trainerLog,
  };
  assert.ok(events.length > 0 && jobs.length >= 2 && pods.length >= 2);
  for (const [job, token] of tokens) {
    // As it is, and as it is in a Secret's data.
    for (const form of [token, Buffer.from(token).toString('base64')]) {
      for (const [where, text] of Object.entries(places))
        assert.not.ok(text.includes(form), `the token of ${job} is in the ${where}`);
    }
  }
});

test.run();
