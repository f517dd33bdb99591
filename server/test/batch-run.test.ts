// A batch run as the CronJob's pod runs it (`server/src/main.ts batch`, configured by environment), against the
// local cluster's S3 server (versitygw) and a real PostgreSQL: the model fetched from s3:// and checked against
// its digest, every input row validated as /predict validates it, the scores committed to the table in one
// transaction, rejects with their reasons in S3, and nothing written by a run that fails.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { parquetReadObjects } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { BatchRunConfig, BatchRunSummary } from '../../operator/api/batch-run.ts';
import { parseS3Uri } from '../../operator/api/object-storage.ts';
import { startPostgres, type TestPostgres } from '../../test/support/postgres.ts';
import { requireS3 } from '../../test/support/s3.ts';
import { Workspace, logisticModel, referenceProfile, sha256 } from './support/model.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const s3 = requireS3('batch-run');
const ws = new Workspace();
// x0, x1, x2 numeric and region categorical: the profile's feature names are the input columns.
const model = logisticModel(ws, 'credit.onnx', [0.8, -0.5, 0.3, 0.2], -0.1);
const profile = JSON.stringify(referenceProfile(3));
let db: TestPostgres;
let modelUri: string;
let profileUri: string;

const SEGMENTS = [
  { name: 'low', minScore: 0 },
  { name: 'medium', minScore: 0.4 },
  { name: 'high', minScore: 0.6 },
];

interface Run {
  code: number;
  summary: BatchRunSummary;
  output: string;
}

/** One batch run in its own process, as the pod's container; `env` overrides the pod's variables. */
function runBatch(
  config: Partial<BatchRunConfig> & Pick<BatchRunConfig, 'input' | 'output'>,
  env: Record<string, string> = {},
  run = 'run-1',
): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'batch-run-'));
  const resultPath = join(dir, 'termination-log');
  const full: BatchRunConfig = {
    name: 'nightly',
    columns: ['customer_id'],
    segments: SEGMENTS,
    rejects: s3.uri('rejects/'),
    batchSize: 256,
    ...config,
  };
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'server/src/main.ts', 'batch'],
      {
        cwd: ROOT,
        timeout: 120_000,
        env: {
          PATH: process.env.PATH!,
          HOME: process.env.HOME!,
          ...s3.env,
          LOG_LEVEL: 'info',
          MODEL_NAME: 'credit',
          MODEL_VERSION: '7',
          MODEL_URI: modelUri,
          MODEL_DIGEST: model.artifact.digest,
          MODEL_SIGNATURE: JSON.stringify(model.signature),
          REFERENCE_PROFILE_URI: profileUri,
          REFERENCE_PROFILE_DIGEST: sha256(profile),
          BATCH_CONFIG: JSON.stringify(full),
          BATCH_RUN: run,
          DATABASE_URL: db.url,
          LOOPLINE_RESULT_PATH: resultPath,
          ...env,
        },
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, summary: JSON.parse(readFileSync(resultPath, 'utf8')), output: stdout + stderr });
      },
    );
  });
}

interface Customer {
  customer_id: string;
  x0: number | null;
  x1: number;
  x2: number;
  region: number;
}

function customers(n: number, seed = 1): Customer[] {
  return Array.from({ length: n }, (_, i) => ({
    customer_id: `c${String(seed * 100000 + i).padStart(7, '0')}`,
    x0: ((i * 7919) % 200) / 50 - 2,
    x1: ((i * 104729) % 300) / 100 - 1.5,
    x2: ((i * 31) % 17) / 4,
    region: i % 3,
  }));
}

async function putParquet(key: string, rows: Customer[]): Promise<string> {
  const body = parquetWriteBuffer({
    columnData: [
      { name: 'customer_id', data: rows.map((r) => r.customer_id), type: 'STRING' },
      ...(['x0', 'x1', 'x2'] as const).map((name) => ({
        name,
        data: rows.map((r) => r[name]),
        type: 'DOUBLE' as const,
      })),
      // INT64, as pandas writes integers: read as bigint, fed to the model as a number.
      { name: 'region', data: rows.map((r) => BigInt(r.region)), type: 'INT64' },
    ],
    rowGroupSize: 1000,
  });
  return await s3.put(key, new Uint8Array(body));
}

const expectedScore = (c: Customer) => model.expected([c.x0 as number, c.x1, c.x2, c.region]);
const expectedSegment = (score: number) => [...SEGMENTS].reverse().find((s) => score >= s.minScore)?.name ?? null;

async function tableRows(table: string) {
  return await db.query<{
    customer_id: string;
    score: number;
    segment: string | null;
    model_version: number;
    scored_at: Date;
  }>(`SELECT customer_id::text, score, segment, model_version, scored_at FROM ${table} ORDER BY customer_id`);
}

async function getText(uri: string): Promise<string> {
  const { bucket, key } = parseS3Uri(uri);
  return await (await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();
}

test.before(async () => {
  db = await startPostgres();
  modelUri = await s3.put('models/credit/v7/model.onnx', readFileSync(model.artifact.path));
  profileUri = await s3.put('models/credit/v7/profile.json', profile);
});

test.after(async () => {
  await db?.stop();
  ws.remove();
});

test('a run scores every Parquet row into the table: carried customer_id, score, segment, version and one scored_at', async () => {
  const rows = customers(2500);
  const input = await putParquet('in/customers.parquet', rows);
  const run = await runBatch({
    input: { uri: input, format: 'parquet' },
    output: { postgres: { table: 'crm_scores' } },
  });
  assert.is(run.code, 0, run.output);
  assert.equal(
    [run.summary.succeeded, run.summary.version, run.summary.rows, run.summary.written, run.summary.rejects],
    [true, 7, 2500, 2500, 0],
  );
  const table = await tableRows('crm_scores');
  assert.is(table.length, 2500);
  for (const [i, row] of table.entries()) {
    const want = expectedScore(rows[i]);
    assert.is(row.customer_id, rows[i].customer_id);
    assert.ok(Math.abs(row.score - want) < 1e-5, `${row.customer_id}: score ${row.score}, expected ${want}`);
    assert.is(row.segment, expectedSegment(row.score));
    assert.is(row.model_version, 7);
  }
  assert.is(new Set(table.map((r) => r.scored_at.toISOString())).size, 1, 'one scored_at for the run');
  assert.equal(new Set(table.map((r) => r.segment)), new Set(['low', 'medium', 'high']), 'the input spans every band');
  assert.not.match(run.output, new URL(db.url).password, 'the connection string is not logged');
});

test('rows that fail validation go to the rejects file with the reason; the rest are committed', async () => {
  const csv = [
    'customer_id,x0,x1,x2,region',
    'a1,0.5,0.1,1,0',
    'a2,n/a,0.1,1,1', // text where a number must be
    'a3,,0.2,2,2', // missing: imputed from the reference profile, as /predict does
    'a4,1e39,0.1,1,0', // outside the FP32 range
    'a5,0.1,0.2,0.3,1',
  ].join('\n');
  const input = await s3.put('in/with-bad-rows.csv', csv);
  const run = await runBatch(
    { input: { uri: input, format: 'csv' }, output: { postgres: { table: 'crm_rejects' } } },
    {},
    'run-bad-rows',
  );
  assert.is(run.code, 0, run.output);
  assert.equal([run.summary.rows, run.summary.written, run.summary.rejects], [5, 3, 2]);
  assert.is(run.summary.rejectsUri, s3.uri('rejects/run-bad-rows.ndjson'));
  assert.equal(
    (await tableRows('crm_rejects')).map((r) => r.customer_id),
    ['a1', 'a3', 'a5'],
  );
  const rejects = (await getText(run.summary.rejectsUri!))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  assert.equal(
    rejects.map((r) => [r.row, r.field, r.values.customer_id]),
    [
      [1, 'x0', 'a2'],
      [3, 'x0', 'a4'],
    ],
  );
  assert.match(rejects[0].reason, /^row 1\.x0: must be number or null, got string$/);
  assert.match(rejects[1].reason, /^row 3\.x0: 1e\+39 is outside the FP32 range$/);
});

test('a run that fails mid-COPY (a value the table refuses) rolls back: the previous segments stay', async () => {
  await db.query(
    'CREATE TABLE crm_typed (customer_id bigint, score double precision, segment text, model_version integer, scored_at timestamptz)',
  );
  await db.query("INSERT INTO crm_typed VALUES (1, 0.9, 'high', 6, now()), (2, 0.1, 'low', 6, now())");
  const rows = customers(6000).map((c, i) => ({ ...c, customer_id: i === 5000 ? 'X-5000' : String(10 + i) }));
  const input = await putParquet('in/typed.parquet', rows);
  const run = await runBatch(
    { input: { uri: input, format: 'parquet' }, output: { postgres: { table: 'crm_typed' } } },
    {},
    'run-typed',
  );
  assert.is(run.code, 1, run.output);
  assert.is(run.summary.succeeded, false);
  assert.match(
    run.summary.error!,
    /PostgreSQL COPY of table crm_typed failed: invalid input syntax for type bigint: "X-5000"/,
  );
  assert.equal(
    (await tableRows('crm_typed')).map((r) => [r.customer_id, r.segment, r.model_version]),
    [
      ['1', 'high', 6],
      ['2', 'low', 6],
    ],
  );
});

test('an artifact whose digest does not match fails the run before anything is written', async () => {
  const input = await putParquet('in/digest.parquet', customers(10));
  const first = await runBatch({
    input: { uri: input, format: 'parquet' },
    output: { postgres: { table: 'crm_digest' } },
  });
  assert.is(first.code, 0, first.output);
  const run = await runBatch(
    { input: { uri: input, format: 'parquet' }, output: { postgres: { table: 'crm_digest' } } },
    { MODEL_DIGEST: `sha256:${'0'.repeat(64)}`, MODEL_VERSION: '8' },
  );
  assert.is(run.code, 1);
  assert.match(run.summary.error!, /has digest sha256:[0-9a-f]{64}, expected sha256:0{64}; refusing to serve it/);
  assert.equal(new Set((await tableRows('crm_digest')).map((r) => r.model_version)), new Set([7]));
});

test('an input without a feature column fails the run, naming the column and the fix', async () => {
  const input = await s3.put('in/no-region.csv', 'customer_id,x0,x1,x2\nb1,1,2,3\n');
  const run = await runBatch({ input: { uri: input, format: 'csv' }, output: { postgres: { table: 'crm_missing' } } });
  assert.is(run.code, 1);
  assert.match(
    run.summary.error!,
    /has no column "region" \(it has "customer_id", "x0", "x1", "x2"\): correct spec\.batch\[\]\.features or columns, or the input/,
  );
});

test('a run to s3:// writes one Parquet object with the same columns', async () => {
  const rows = customers(1200, 2);
  const input = await putParquet('in/to-s3.parquet', rows);
  const output = s3.uri('out/scores.parquet');
  const run = await runBatch({ input: { uri: input, format: 'parquet' }, output: { uri: output } });
  assert.is(run.code, 0, run.output);
  const { bucket, key } = parseS3Uri(output);
  const bytes = await (
    await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
  ).Body!.transformToByteArray();
  const written = await parquetReadObjects({
    file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
  });
  assert.is(written.length, 1200);
  assert.equal(Object.keys(written[0]), ['customer_id', 'score', 'segment', 'model_version', 'scored_at']);
  assert.is(written[17].customer_id, rows[17].customer_id);
  assert.ok(Math.abs((written[17].score as number) - expectedScore(rows[17])) < 1e-5);
  assert.is(written[17].model_version, 7);
});

test.run();
