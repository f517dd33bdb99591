import { parquetWriteBuffer } from 'hyparquet-writer';
import pg from 'pg';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildLogisticRegressionModel } from '../../../examples/trainer/src/onnx.ts';
import { startPostgres, type TestPostgres } from '../../../test/support/postgres.ts';
import { requireS3 } from '../../../test/support/s3.ts';
import { kinds, KubeApi, type KubeObject } from '../../engine/index.ts';
import { CronJob } from '../batch.ts';
import { waitFor } from '../../../test/support/local.ts';
import { createNamespace, installCrds, registerVersion, requireKubeconfig, uniqueName } from './support/cluster.ts';
import { startLiveOperator, type LiveOperator } from './support/live-operator.ts';

const kc = requireKubeconfig();
const api = new KubeApi(kc);
const s3 = requireS3('batch-scoring');
const ns = uniqueName('isvc-batch');
const MODEL = 'churn';
const ISVC = 'churn';
const TABLE = 'customer_segments';
const STORAGE_SECRET = 'loopline-s3';
if (!process.env.NATS_URL || !process.env.LOOPLINE_POSTGRES_URL)
  throw new Error('NATS_URL and LOOPLINE_POSTGRES_URL are not set: eval "$(bash e2e/cluster/cluster.sh env)"');

let db: TestPostgres;
let live: LiveOperator;
let inputUri: string;
const lifecycle: Array<{ type: string; data: any }> = [];
const WEIGHTS: Record<number, number[]> = { 1: [1.2, -0.7, 0.4], 2: [-0.3, 0.9, 0.1] };
const ROWS = 400;

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
const customer = (i: number) => ({
  customer_id: `cust-${String(i).padStart(5, '0')}`,
  x0: (i % 40) / 10 - 2,
  x1: (i % 23) / 7 - 1.5,
  x2: (i % 11) / 5,
});

async function register(version: number, aliases: string[]): Promise<void> {
  const bytes = buildLogisticRegressionModel({ weights: WEIGHTS[version], bias: 0.1 });
  const uri = await s3.put(`models/${MODEL}/v${version}/model.onnx`, bytes);
  await registerVersion(api, ns, MODEL, version, aliases, { uri, bytes, features: 3 }, { effective: false });
}

const batchEntry = (overrides: Record<string, unknown> = {}) => ({
  name: 'nightly',
  schedule: '* * * * *',
  input: { uri: inputUri },
  features: ['x0', 'x1', 'x2'],
  columns: ['customer_id'],
  segments: [
    { name: 'retain', minScore: 0 },
    { name: 'at-risk', minScore: 0.5 },
    { name: 'churning', minScore: 0.8 },
  ],
  output: { postgres: { table: TABLE, connectionSecret: { name: 'crm-db' } } },
  batchSize: 64,
  ...overrides,
});

const getIsvc = () => api.get(kinds.InferenceService, ns, ISVC);
const cronJob = () => api.get(CronJob, ns, `${ISVC}-batch-nightly`).catch(() => undefined);
const cronJobVersion = (cj: KubeObject | undefined) =>
  cj?.spec.jobTemplate.spec.template.spec.containers[0].env.find((e: any) => e.name === 'MODEL_VERSION')?.value;
const lastRun = async () => (await getIsvc()).status?.batch?.find((b: any) => b.name === 'nightly')?.lastRun;
const tableRows = () =>
  db.query<{ customer_id: string; score: number; segment: string; model_version: number }>(
    `SELECT customer_id, score, segment, model_version FROM ${TABLE} ORDER BY customer_id`,
  );

async function setBatch(entry: Record<string, unknown>): Promise<void> {
  await api.mergePatch(kinds.InferenceService, ns, ISVC, { spec: { batch: [entry] } }, 'loopline-test');
}

/** A run now, as `kubectl create job --from=cronjob/...` starts one: the CronJob's job template as it is. */
async function runNow(name: string): Promise<void> {
  const cj = (await cronJob())!;
  await api.create(
    kinds.Job,
    {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: {
        name,
        namespace: ns,
        labels: cj.spec.jobTemplate.metadata.labels,
        annotations: { 'cronjob.kubernetes.io/instantiate': 'manual' },
        ownerReferences: [
          { apiVersion: 'batch/v1', kind: 'CronJob', name: cj.metadata.name, uid: cj.metadata.uid!, controller: true },
        ],
      },
      spec: cj.spec.jobTemplate.spec,
    } as never,
    'loopline-test',
  );
}

const finishedRun = (job: string, timeoutMs = 90_000) =>
  waitFor(
    `run ${job} recorded in status.batch`,
    async () => {
      const run = await lastRun();
      return run?.job === job ? run : undefined;
    },
    timeoutMs,
    500,
  );

test.before(async () => {
  await installCrds(api);
  await createNamespace(api, ns);
  db = await startPostgres();
  await api.create(kinds.Secret, s3.secret(STORAGE_SECRET, ns) as never, 'loopline-test');
  await api.create(
    kinds.Secret,
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'crm-db', namespace: ns },
      stringData: { url: db.url },
    } as never,
    'loopline-test',
  );
  const rows = Array.from({ length: ROWS }, (_, i) => customer(i));
  // Two rows /predict would refuse: a missing value (no reference profile to impute from) and one outside FP32.
  const x0 = rows.map((r, i) => (i === 7 ? null : i === 9 ? 1e39 : r.x0));
  inputUri = await s3.put(
    'customers/latest.parquet',
    new Uint8Array(
      parquetWriteBuffer({
        columnData: [
          { name: 'customer_id', data: rows.map((r) => r.customer_id), type: 'STRING' },
          { name: 'x0', data: x0, type: 'DOUBLE' },
          { name: 'x1', data: rows.map((r) => r.x1), type: 'DOUBLE' },
          { name: 'x2', data: rows.map((r) => r.x2), type: 'DOUBLE' },
        ],
      }),
    ),
  );
  live = await startLiveOperator({
    kubeconfig: kc,
    api,
    namespace: ns,
    env: { PROMETHEUS_URL: 'http://127.0.0.1:1', ...s3.operatorEnv(STORAGE_SECRET) },
  });
  const events = live.nc.subscribe(`loopline.events.${ns}.inferenceservice.>`);
  void (async () => {
    for await (const message of events) lifecycle.push(message.json<{ type: string; data: any }>());
  })();
  await register(1, ['production']);
  await register(2, []);
  await api.create(
    kinds.InferenceService,
    {
      apiVersion: 'loopline.dev/v1alpha1',
      kind: 'InferenceService',
      metadata: { name: ISVC, namespace: ns },
      spec: {
        model: MODEL,
        stable: { alias: 'production' },
        predictor: { resources: { cpu: '100m', memory: '256Mi' } },
        batch: [batchEntry()],
      },
    } as never,
    'loopline-test',
  );
});

test.after(async () => {
  await live?.stop();
  await db?.query(`DROP TABLE IF EXISTS ${TABLE}`).catch(() => undefined);
  await db?.stop();
});

test('a scheduled run scores the input into the table with segments, rejects the invalid rows, and reports in status and on NATS', async () => {
  const cj = await waitFor('the CronJob of spec.batch nightly', cronJob);
  assert.is(cj.spec.schedule, '* * * * *');
  assert.is(cj.metadata.ownerReferences?.[0]?.name, ISVC);
  assert.is(cronJobVersion(cj), '1', 'scores with the stable version by default');
  // The CronJob controller starts it at the next full minute.
  const run = await waitFor('the first scheduled run recorded', lastRun, 150_000, 1000);
  assert.ok(run.succeeded, JSON.stringify(run));
  assert.equal([run.version, run.rows, run.written, run.rejects], [1, ROWS, ROWS - 2, 2]);
  assert.match(run.rejectsUri, /^s3:\/\/.*customers\/latest\.parquet\.rejects\/churn-batch-nightly-\d+\.ndjson$/);
  // No more scheduled runs while the next tests start theirs.
  await setBatch(batchEntry({ suspend: true }));

  const table = await tableRows();
  assert.is(table.length, ROWS - 2);
  assert.not.ok(
    table.some((r) => r.customer_id === customer(7).customer_id || r.customer_id === customer(9).customer_id),
    'the rejected rows are not in the table',
  );
  const sample = table.find((r) => r.customer_id === customer(3).customer_id)!;
  const c = customer(3);
  const expected = sigmoid(WEIGHTS[1][0] * c.x0 + WEIGHTS[1][1] * c.x1 + WEIGHTS[1][2] * c.x2 + 0.1);
  assert.ok(Math.abs(sample.score - expected) < 1e-5, `score ${sample.score}, expected ${expected}`);
  assert.is(sample.segment, expected >= 0.8 ? 'churning' : expected >= 0.5 ? 'at-risk' : 'retain');
  assert.ok(table.every((r) => r.model_version === 1));

  const event = await waitFor('the batchsucceeded lifecycle event', async () =>
    lifecycle.find((e) => e.type === 'dev.loopline.inferenceservice.batchsucceeded'),
  );
  assert.equal(
    [event.data.batch, event.data.job, event.data.rows, event.data.rejects, event.data.version],
    ['nightly', run.job, ROWS, 2, 1],
  );
  const isvc = await getIsvc();
  assert.ok(
    isvc.status.conditions.some((c: any) => c.type === 'BatchReady' && c.status === 'True'),
    JSON.stringify(isvc.status.conditions),
  );
});

test('a run keeps the version it started with when a promotion happens mid-run; the next run takes the new one', async () => {
  // The run waits on the table while the test holds it locked: it has started with v1 when v2 is promoted.
  const lock = new pg.Client({ connectionString: db.url });
  await lock.connect();
  await lock.query('BEGIN');
  await lock.query(`LOCK TABLE ${TABLE} IN EXCLUSIVE MODE`);
  try {
    await runNow('nightly-during-promotion');
    await waitFor(
      'the run waiting on the table',
      async () => {
        const waiting = await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'loopline-batch' AND wait_event_type = 'Lock'`,
        );
        return waiting[0].n > 0 ? true : undefined;
      },
      60_000,
      250,
    );
    await api.mergePatch(kinds.ModelVersion, ns, `${MODEL}-v2`, { spec: { aliases: ['production'] } }, 'loopline-test');
    await waitFor(
      'the CronJob to score with v2',
      async () => (cronJobVersion(await cronJob()) === '2' ? true : undefined),
      30_000,
    );
    await waitFor(
      'status.batch to say v2',
      async () => ((await getIsvc()).status?.batch?.[0]?.version === 2 ? true : undefined),
      30_000,
    );
  } finally {
    await lock.query('COMMIT');
    await lock.end();
  }
  const during = await finishedRun('nightly-during-promotion');
  assert.ok(during.succeeded, JSON.stringify(during));
  assert.is(during.version, 1, 'the run scored with the version it started with');
  assert.ok((await tableRows()).every((r) => r.model_version === 1));

  await runNow('nightly-after-promotion');
  const after = await finishedRun('nightly-after-promotion');
  assert.is(after.version, 2);
  assert.ok((await tableRows()).every((r) => r.model_version === 2));
});

test('a run that fails writes nothing: the table keeps the previous segments and status says why', async () => {
  const before = await tableRows();
  await setBatch(batchEntry({ suspend: true, input: { uri: s3.uri('customers/missing.parquet') } }));
  await waitFor(
    'the CronJob to read the new input',
    async () =>
      (await cronJob())?.spec.jobTemplate.spec.template.spec.containers[0].env
        .find((e: any) => e.name === 'BATCH_CONFIG')
        ?.value.includes('missing.parquet')
        ? true
        : undefined,
    30_000,
  );
  await runNow('nightly-missing-input');
  const run = await finishedRun('nightly-missing-input');
  assert.is(run.succeeded, false);
  assert.match(
    run.message,
    /nightly-missing-input of v2 failed .* nothing written: HEAD s3:\/\/.*customers\/missing\.parquet failed: NotFound/,
  );
  assert.equal(await tableRows(), before);
  await waitFor('the batchfailed lifecycle event', async () =>
    lifecycle.find(
      (e) => e.type === 'dev.loopline.inferenceservice.batchfailed' && e.data.job === 'nightly-missing-input',
    ),
  );
});

test.run();
