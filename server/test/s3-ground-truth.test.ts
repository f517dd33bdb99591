// The inference log and feedback labels on the local cluster's S3 server (versitygw), with the predictor
// running as its image runs it (server/src/main.ts, real onnxruntime) and stopped with SIGTERM as a kubelet
// stops it. Parts are read back with DuckDB: across a restart every row is written exactly once, labels
// posted after the restart join the rows logged before it, and while the storage is unreachable rows beyond
// the buffer are dropped and counted while the rows held are written once it is back.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort } from '../../test/support/local.ts';
import { requireS3 } from '../../test/support/s3.ts';
import { Workspace, logisticModel, referenceProfile } from './support/model.ts';
import { type PredictorProcess, spawnPredictor, waitReady } from './support/predictor-process.ts';
import { downloadPrefix, filesBelow, queryParquet, removeDir } from './support/parquet.ts';

const s3 = requireS3('ground-truth');
const ws = new Workspace();
const model = logisticModel(ws, 'credit.onnx', [0.8, -0.5, 0.3, 1.2], -0.1);
const profile = ws.write('profile.json', JSON.stringify(referenceProfile(3)));
const base = s3.uri('gt');
/** Every predictor started, so a failed test leaves none running. */
const running = new Set<Predictor>();

type Predictor = PredictorProcess;

async function startPredictor(env: Record<string, string>): Promise<Predictor> {
  const predictor = await spawnPredictor({
    MODEL_NAME: 'credit',
    MODEL_VERSION: '4',
    MODEL_URI: model.artifact.uri,
    MODEL_DIGEST: model.artifact.digest,
    REFERENCE_PROFILE_URI: profile.uri,
    REFERENCE_PROFILE_DIGEST: profile.digest,
    NAMESPACE: 'risk',
    INFERENCE_SERVICE: 'credit-svc',
    POD_NAME: 'credit-v4-abcde',
    ...s3.env,
    INFERENCE_LOG_URI: base,
    // Only a full part or the shutdown writes, within these tests.
    INFERENCE_LOG_FLUSH_INTERVAL_MS: '600000',
    ...env,
  });
  running.add(predictor);
  predictor.exited.then(() => running.delete(predictor));
  await waitReady(predictor);
  return predictor;
}

async function predict(url: string, id: string, row: number[]): Promise<void> {
  const r = await fetch(`${url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': id },
    body: JSON.stringify({ features: row }),
  });
  const text = await r.text();
  assert.is(r.status, 200, text);
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name) && !l.startsWith('#'))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

/** The inference log and labels below `prefix`, copied out of S3 and read with DuckDB. */
async function read<T = Record<string, unknown>>(prefix: string, sql: string): Promise<T[]> {
  const dir = await downloadPrefix(s3.client, prefix);
  try {
    const files = filesBelow(dir)
      .filter((f) => f.endsWith('.parquet'))
      .map((f) => join(dir, f));
    if (files.length === 0) return [];
    return (await queryParquet(files, sql)) as T[];
  } finally {
    removeDir(dir);
  }
}

const rowOf = (i: number) => [i / 10, (i % 7) - 3, 1, i % 3];
const logPrefix = `${base}/inference-log/risk/credit-svc/v4/`;
const labelPrefix = `${base}/labels/risk/credit-svc/`;

test.after(async () => {
  await Promise.all([...running].map((p) => p.stop()));
  ws.remove();
});

test('across a restart every logged row is in S3 exactly once, the rows before SIGTERM included', async () => {
  const first = await startPredictor({});
  for (let i = 0; i < 120; i++) await predict(first.url, `before-${i}`, rowOf(i));
  // Nothing is written before a part fills or the predictor stops.
  assert.is((await read(logPrefix, 'SELECT 1 FROM $parts')).length, 0);
  assert.is(await first.stop(), 0, first.output());
  const second = await startPredictor({});
  for (let i = 0; i < 80; i++) await predict(second.url, `after-${i}`, rowOf(i));
  assert.is(await second.stop(), 0, second.output());

  const [counts] = await read<{ rows: number; ids: number; before: number; after: number }>(
    logPrefix,
    `
    SELECT count(*)::INTEGER AS rows, count(DISTINCT request_id)::INTEGER AS ids,
           count(*) FILTER (WHERE request_id LIKE 'before-%')::INTEGER AS before,
           count(*) FILTER (WHERE request_id LIKE 'after-%')::INTEGER AS after FROM $parts`,
  );
  assert.equal(counts, { rows: 200, ids: 200, before: 120, after: 80 });
  // One part per process: each wrote its rows once, at shutdown, under a name of its own.
  const dir = await downloadPrefix(s3.client, logPrefix);
  const names = filesBelow(dir);
  removeDir(dir);
  assert.is(names.length, 2, names.join(', '));
  for (const name of names)
    assert.match(name, /^date=\d{4}-\d{2}-\d{2}\/\d{8}T\d{9}Z-credit-v4-abcde-000001-[0-9a-f]{8}\.parquet$/);
  const scores = await read<{
    request_id: string;
    score: number;
    input_x0: number;
    input_x1: number;
    input_x2: number;
    input_region: number;
  }>(logPrefix, "SELECT * FROM $parts WHERE request_id IN ('before-7', 'after-7')");
  for (const row of scores) {
    assert.ok(Math.abs(row.score - model.expected(rowOf(7))) < 1e-6, `${row.request_id}: ${row.score}`);
    // The inputs as the model saw them: FP32.
    assert.equal([row.input_x0, row.input_x1, row.input_x2, row.input_region], rowOf(7).map(Math.fround));
  }
});

test('labels posted to a restarted predictor are durable and join the predictions logged before the restart', async () => {
  const predictor = await startPredictor({});
  const labels = Array.from({ length: 120 }, (_, i) => ({ request_id: `before-${i}`, label: i % 2 }));
  const answer = await fetch(`${predictor.url}/v2/models/credit/feedback`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(labels),
  });
  assert.is(answer.status, 200, await answer.clone().text());
  assert.is(((await answer.json()) as any).accepted, 120);
  // Durable when answered: readable while the predictor still runs.
  const stored = await read<{ n: number; positives: number }>(
    labelPrefix,
    'SELECT count(*)::INTEGER AS n, sum(label)::INTEGER AS positives FROM $parts',
  );
  assert.equal(stored, [{ n: 120, positives: 60 }]);
  assert.is(await predictor.stop(), 0);

  // The join an evaluator makes: every prediction logged before the first restart has its label.
  const logDir = await downloadPrefix(s3.client, logPrefix);
  const labelDir = await downloadPrefix(s3.client, labelPrefix);
  try {
    const list = (dir: string) =>
      filesBelow(dir)
        .filter((f) => f.endsWith('.parquet'))
        .map((f) => `'${join(dir, f)}'`)
        .join(', ');
    const rows = await queryParquet(
      [],
      `
      SELECT count(*)::INTEGER AS n, count(l.label)::INTEGER AS labelled
      FROM read_parquet([${list(logDir)}]) p LEFT JOIN read_parquet([${list(labelDir)}]) l USING (request_id)
      WHERE p.request_id LIKE 'before-%'`,
    );
    assert.equal(rows, [{ n: 120, labelled: 120 }]);
  } finally {
    removeDir(logDir);
    removeDir(labelDir);
  }
});

/** A TCP relay to the S3 server that can be cut and restored: storage going away and coming back. */
class Relay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  constructor(
    readonly port: number,
    private readonly target: URL,
  ) {}
  async up(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(Number(this.target.port), this.target.hostname);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }
  async down(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise((resolve) => server.close(resolve));
  }
}

test('while S3 is unreachable rows beyond the buffer are dropped and counted; the rows held are written once it is back', async () => {
  const relay = new Relay(await freePort(), new URL(s3.endpoint));
  const prefix = s3.uri('outage');
  const predictor = await startPredictor({
    AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${relay.port}`,
    INFERENCE_LOG_URI: prefix,
    INFERENCE_LOG_MAX_ROWS_PER_PART: '20',
    INFERENCE_LOG_MAX_BUFFERED_ROWS: '50',
  });
  try {
    for (let i = 0; i < 100; i++) await predict(predictor.url, `outage-${i}`, rowOf(i));
    const deadline = Date.now() + 20_000;
    while ((await metric(predictor.url, 'inference_log_write_failures_total')) < 1) {
      assert.ok(Date.now() < deadline, predictor.output());
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.is(await metric(predictor.url, 'inference_log_rows_dropped_total'), 50, '100 rows sampled, 50 held');
    assert.is(await metric(predictor.url, 'inference_log_buffered_rows'), 50);
    // Labels cannot be made durable either: refused with the storage error, and the caller told to retry.
    const refused = await fetch(`${predictor.url}/feedback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ request_id: 'outage-1', label: 1 }),
    });
    assert.is(refused.status, 503);
    const body = (await refused.json()) as any;
    assert.match(body.error, /labels not stored, send them again: PUT s3:.* failed: ECONNREFUSED/);
    assert.not.ok(JSON.stringify(body).includes(s3.secretAccessKey));

    await relay.up();
    // The parts are retried (backing off, at most 30 s apart) under their names until written.
    const back = Date.now() + 45_000;
    // 50 rows held: two full parts of 20 waiting to be written, 10 in the buffer until the interval or shutdown.
    while ((await metric(predictor.url, 'inference_log_rows_total')) < 40) {
      assert.ok(Date.now() < back, `the held parts were not written after storage came back:\n${predictor.output()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.is(await metric(predictor.url, 'inference_log_parts_total'), 2);
    assert.is(await metric(predictor.url, 'inference_log_buffered_rows'), 10);
    assert.is(await predictor.stop(), 0);
    const [stored] = await read<{ n: number; ids: number }>(
      prefix,
      'SELECT count(*)::INTEGER AS n, count(DISTINCT request_id)::INTEGER AS ids FROM $parts',
    );
    assert.equal(stored, { n: 50, ids: 50 });
    assert.not.ok(predictor.output().includes(s3.secretAccessKey), 'the log shows the secret access key');
  } finally {
    await relay.down();
  }
});

test.run();
