// test: no cluster
// spec.batch as CronJobs, and finished runs' Jobs as status.batch[].lastRun: pure functions, table-tested.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BATCH_ENV, parseBatchSummary, segmentOf, type BatchRunSummary } from '../../api/batch-run.ts';
import type { BatchScoring } from '../../api/types.ts';
import type { KubeObject } from '../../engine/types.ts';
import { batchCronJob, batchCronJobName, batchRunOf, latestRun } from '../batch.ts';
import { inferenceService, servedModel } from './support/fixtures.ts';

const nightly: BatchScoring = {
  name: 'nightly',
  schedule: '0 2 * * *',
  input: { uri: 's3://loopline/customers/2026-12-01.parquet' },
  columns: ['customer_id'],
  segments: [
    { name: 'low', minScore: 0 },
    { name: 'high', minScore: 0.7 },
  ],
  output: { postgres: { table: 'crm.customer_scores', connectionSecret: { name: 'crm-db' } } },
};

const container = (cronJob: any) => cronJob.spec.jobTemplate.spec.template.spec.containers[0];
const envOf = (cronJob: any) =>
  Object.fromEntries(container(cronJob).env.map((e: any) => [e.name, e.value ?? e.valueFrom]));

test('a batch entry becomes a CronJob owned by the InferenceService, running the predictor image in batch mode', () => {
  const isvc = inferenceService({ batch: [nightly] });
  const cronJob = batchCronJob(isvc, nightly, servedModel(3)) as any;
  assert.is(cronJob.kind, 'CronJob');
  assert.is(cronJob.metadata.name, 'fraud-batch-nightly');
  assert.equal(cronJob.metadata.ownerReferences, [
    {
      apiVersion: 'loopline.dev/v1alpha1',
      kind: 'InferenceService',
      name: 'fraud',
      uid: '0000-1111',
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
  assert.is(cronJob.spec.schedule, '0 2 * * *');
  assert.is(cronJob.spec.concurrencyPolicy, 'Forbid');
  assert.is(cronJob.spec.jobTemplate.spec.backoffLimit, 0);
  assert.is(cronJob.spec.jobTemplate.spec.activeDeadlineSeconds, 3600);
  assert.is(cronJob.spec.jobTemplate.spec.template.spec.restartPolicy, 'Never');
  assert.is(container(cronJob).image, 'loopline/predictor:0.1.0');
  assert.equal(container(cronJob).args, ['batch']);
  assert.is(container(cronJob).terminationMessagePath, '/dev/termination-log');
});

test('the CronJob carries the resolved version: its digest, signature and profile, and the version label of its runs', () => {
  const cronJob = batchCronJob(inferenceService({ batch: [nightly] }), nightly, servedModel(3)) as any;
  const env = envOf(cronJob);
  assert.is(env.MODEL_VERSION, '3');
  assert.is(env.MODEL_URI, 'file:///models/fraud/v3/model.onnx');
  assert.is(env.MODEL_DIGEST, servedModel(3).digest);
  assert.is(env.REFERENCE_PROFILE_URI, 'file:///models/fraud/v3/profile.json');
  assert.ok(env.MODEL_SIGNATURE);
  assert.is(cronJob.spec.jobTemplate.metadata.labels['loopline.dev/model-version'], '3');
  assert.is(cronJob.spec.jobTemplate.spec.template.metadata.labels['loopline.dev/batch'], 'nightly');
});

test('the connection string comes from the named Secret key (default "url"), never as a value', () => {
  const env = envOf(batchCronJob(inferenceService({ batch: [nightly] }), nightly, servedModel(1)));
  assert.equal(env[BATCH_ENV.databaseUrl], { secretKeyRef: { name: 'crm-db', key: 'url' } });
  const custom = { ...nightly, output: { postgres: { table: 't', connectionSecret: { name: 'db', key: 'dsn' } } } };
  assert.equal(envOf(batchCronJob(inferenceService(), custom, servedModel(1)))[BATCH_ENV.databaseUrl], {
    secretKeyRef: { name: 'db', key: 'dsn' },
  });
  const toS3 = { ...nightly, output: { uri: 's3://loopline/scores/latest.parquet' } };
  assert.is(envOf(batchCronJob(inferenceService(), toS3, servedModel(1)))[BATCH_ENV.databaseUrl], undefined);
});

test('the batch config names input format, columns, segments, output and the default rejects prefix', () => {
  const config = JSON.parse(envOf(batchCronJob(inferenceService(), nightly, servedModel(1)))[BATCH_ENV.config]);
  assert.equal(config, {
    name: 'nightly',
    input: { uri: 's3://loopline/customers/2026-12-01.parquet', format: 'parquet' },
    columns: ['customer_id'],
    segments: [
      { name: 'low', minScore: 0 },
      { name: 'high', minScore: 0.7 },
    ],
    output: { postgres: { table: 'crm.customer_scores' } },
    rejects: 's3://loopline/customers/2026-12-01.parquet.rejects/',
    batchSize: 1024,
  });
  const csv = JSON.parse(
    envOf(
      batchCronJob(
        inferenceService(),
        { ...nightly, input: { uri: 's3://b/in.csv' }, rejects: 's3://b/rejects' },
        servedModel(1),
      ),
    )[BATCH_ENV.config],
  );
  assert.equal(csv.input, { uri: 's3://b/in.csv', format: 'csv' });
  assert.is(csv.rejects, 's3://b/rejects/');
});

test('a CronJob name too long for the Jobs the CronJob controller names after it is shortened, stably', () => {
  const long = inferenceService({}, 'a-very-long-inference-service-name-for-the-credit-team');
  const name = batchCronJobName(long, nightly);
  assert.ok(name.length <= 52, name);
  assert.ok(name.endsWith('-batch-nightly'), name);
  assert.is(batchCronJobName(long, nightly), name);
});

test('scores fall into the band with the greatest minScore at or below them', () => {
  const bands = [
    { name: 'low', minScore: 0.2 },
    { name: 'mid', minScore: 0.5 },
    { name: 'high', minScore: 0.8 },
  ];
  const cases: Array<[number, string | null]> = [
    [0.1, null],
    [0.2, 'low'],
    [0.49, 'low'],
    [0.5, 'mid'],
    [0.8, 'high'],
    [1, 'high'],
  ];
  for (const [score, segment] of cases) assert.is(segmentOf(bands, score), segment, `score ${score}`);
  assert.is(segmentOf([], 0.9), null);
});

const summary: BatchRunSummary = {
  succeeded: true,
  version: 3,
  rows: 1000,
  written: 990,
  rejects: 10,
  rejectsUri: 's3://b/in.parquet.rejects/run-1.ndjson',
  durationSeconds: 4.2,
  startTime: '2026-12-01T02:00:01Z',
  completionTime: '2026-12-01T02:00:05Z',
};

function job(name: string, condition: 'Complete' | 'Failed' | undefined, completionTime?: string): KubeObject {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: 'risk', labels: { 'loopline.dev/model-version': '3' } },
    status: {
      startTime: '2026-12-01T02:00:00Z',
      ...(completionTime ? { completionTime } : {}),
      conditions: condition
        ? [
            {
              type: condition,
              status: 'True',
              lastTransitionTime: completionTime ?? '2026-12-01T02:00:06Z',
              message: condition === 'Failed' ? 'Job has reached the specified backoff limit' : undefined,
            },
          ]
        : [],
    },
  };
}
function pod(message: string | undefined, exitCode = 0): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p' },
    status: {
      containerStatuses: [
        {
          name: 'batch',
          state: {
            terminated: {
              exitCode,
              reason: exitCode ? 'Error' : 'Completed',
              finishedAt: '2026-12-01T02:00:05Z',
              ...(message ? { message } : {}),
            },
          },
        },
      ],
    },
  };
}

test('a running Job is no finished run', () => {
  assert.is(batchRunOf(job('r', undefined), []), undefined);
});

test("a completed Job's run is its pod's summary", () => {
  const run = batchRunOf(job('nightly-1', 'Complete', '2026-12-01T02:00:06Z'), [pod(JSON.stringify(summary))])!;
  assert.equal(
    { ...run, message: undefined },
    {
      job: 'nightly-1',
      version: 3,
      startTime: summary.startTime,
      completionTime: summary.completionTime,
      succeeded: true,
      rows: 1000,
      written: 990,
      rejects: 10,
      rejectsUri: summary.rejectsUri,
      durationSeconds: 4.2,
      message: undefined,
    },
  );
  assert.is(run.message, `v3 scored 990 of 1000 rows in 4.2s; 10 rejected, see ${summary.rejectsUri}`);
});

test('a failed run says why, from its summary', () => {
  const failed = {
    ...summary,
    succeeded: false,
    rows: 0,
    written: 0,
    rejects: 0,
    error: 'PostgreSQL COPY of table t failed: disk full',
  };
  const run = batchRunOf(job('nightly-2', 'Failed'), [pod(JSON.stringify(failed), 1)])!;
  assert.is(run.succeeded, false);
  assert.match(
    run.message!,
    /nightly-2 of v3 failed after 4.2s, nothing written: PostgreSQL COPY of table t failed: disk full/,
  );
});

test('a run whose pod left no summary (killed, never started) is failed with the version of its Job and the fix', () => {
  const run = batchRunOf(job('nightly-3', 'Failed'), [pod(undefined, 137)])!;
  assert.is(run.succeeded, false);
  assert.is(run.version, 3);
  assert.match(
    run.message!,
    /exit code 137 \(Error\); the batch pod left no summary in its termination message\. See kubectl logs job\/nightly-3 -n risk/,
  );
  const neverRan = batchRunOf(job('nightly-4', 'Failed'), [])!;
  assert.match(neverRan.message!, /Job has reached the specified backoff limit/);
});

test('the latest finished run is the one completed last', () => {
  const jobs = [
    job('b', 'Complete', '2026-12-02T02:00:06Z'),
    job('a', 'Complete', '2026-12-01T02:00:06Z'),
    job('c', undefined),
  ];
  const later = { ...summary, completionTime: '2026-12-02T02:00:05Z' };
  const run = latestRun(jobs, (j) => [pod(JSON.stringify(j.metadata.name === 'b' ? later : summary))]);
  assert.is(run?.job, 'b');
});

test('a termination message that is no summary is named as such', () => {
  assert.match(parseBatchSummary('not json') as string, /not JSON/);
  assert.match(parseBatchSummary('{"rows": -1}') as string, /not a batch run summary/);
  assert.equal(parseBatchSummary(JSON.stringify(summary)), summary);
});

test.run();
