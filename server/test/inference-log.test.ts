// The inference log on local storage (file://), read back with DuckDB: every protocol path that predicts logs
// its rows under the documented layout and columns, with the request ids the client saw; parts hold at most
// maxRowsPerPart rows; the sample rate is honoured, by a hash of the request id so that every version picks the
// same requests; a storage that fails drops rows beyond maxBufferedRows and counts them; a shutdown flushes what
// is buffered and leaves no timer running.
// test: no cluster
import { createHook } from 'node:async_hooks';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type InferenceLogOptions, sampled } from '../src/ground-truth/inference-log.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import { InferenceClient } from './support/grpc.ts';
import { call, v2Rows } from './support/http.ts';
import { Workspace, logisticModel, referenceProfile, testConfig } from './support/model.ts';
import { filesBelow, queryParquet } from './support/parquet.ts';

const ws = new Workspace();
const model = logisticModel(ws, 'credit.onnx', [0.8, -0.5, 0.3, 1.2], -0.1);
const profile = ws.write('profile.json', JSON.stringify(referenceProfile(3)));
const servers: RunningServer[] = [];

function logging(dir: string, overrides: Partial<InferenceLogOptions> = {}): InferenceLogOptions {
  return {
    uri: pathToFileURL(join(ws.dir, dir)).href,
    sampleRate: 1,
    flushIntervalMs: 60_000,
    maxRowsPerPart: 10_000,
    maxBufferedRows: 50_000,
    pod: 'credit-v7-pod',
    ...overrides,
  };
}

async function serve(log: InferenceLogOptions, version = '7'): Promise<RunningServer> {
  const server = await startServer(
    testConfig(model, {
      logging: log,
      namespace: 'risk',
      inferenceService: 'credit-svc',
      model: {
        name: 'credit',
        version,
        artifact: model.artifact,
        signature: model.signature,
        referenceProfile: profile,
      },
    }),
  );
  assert.ok(await server.loaded);
  servers.push(server);
  return server;
}

const parts = (dir: string) =>
  filesBelow(join(ws.dir, dir))
    .filter((f) => f.endsWith('.parquet'))
    .map((f) => join(ws.dir, dir, f));

async function metric(server: RunningServer, name: string): Promise<number> {
  const text = await server.metrics.registry.metrics();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name) && !l.startsWith('#'))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

test.after(async () => {
  for (const s of servers) await s.close();
  ws.remove();
});

test('every predicting protocol logs its rows with the request id the client saw, readable by DuckDB', async () => {
  const server = await serve(logging('all'));
  const rowsOf = new Map<string, number[]>();
  // REST V2 with its own id, and without (the x-request-id header then names it).
  await call(server.url, 'POST', '/v2/models/credit/infer', v2Rows([[1, 2, 3, 0]], { id: 'v2-json' }));
  rowsOf.set('v2-json', [1, 2, 3, 0]);
  const headerOnly = await call(server.url, 'POST', '/v2/models/credit/infer', v2Rows([[0.5, 0.5, 0.5, 1]]), {
    'x-request-id': 'v2-header',
  });
  assert.is(headerOnly.headers.get('x-request-id'), 'v2-header');
  rowsOf.set('v2-header', [0.5, 0.5, 0.5, 1]);
  // Two rows in one request: <id>:<row>.
  await call(
    server.url,
    'POST',
    '/v2/models/credit/infer',
    v2Rows(
      [
        [1, 0, 0, 2],
        [0, 1, 0, 0],
      ],
      { id: 'v2-two' },
    ),
  );
  rowsOf.set('v2-two:0', [1, 0, 0, 2]).set('v2-two:1', [0, 1, 0, 0]);
  // The binary tensor data extension.
  const head = Buffer.from(
    JSON.stringify({
      id: 'v2-binary',
      inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: 16 } }],
    }),
  );
  const binary = await fetch(`${server.url}/v2/models/credit/infer`, {
    method: 'POST',
    headers: { 'inference-header-content-length': String(head.length) },
    body: Buffer.concat([head, Buffer.from(Float32Array.from([2, 1, 0, 1]).buffer)]),
  });
  assert.is(binary.status, 200);
  rowsOf.set('v2-binary', [2, 1, 0, 1]);
  // The simple API: one row, several rows, generated id returned in x-request-id.
  const single = await call(server.url, 'POST', '/predict', { features: [3, 2, 1, 0] });
  rowsOf.set(single.body.request_id, [3, 2, 1, 0]);
  assert.is(single.headers.get('x-request-id'), single.body.request_id);
  const many = await call(
    server.url,
    'POST',
    '/predict',
    {
      instances: [
        [0, 0, 1, 1],
        [1, 1, 0, 2],
      ],
    },
    { 'x-request-id': 'rows-many' },
  );
  assert.is(many.body.request_id, 'rows-many');
  rowsOf.set('rows-many:0', [0, 0, 1, 1]).set('rows-many:1', [1, 1, 0, 2]);
  // The NDJSON stream: <id>:<line>.
  const stream = await fetch(`${server.url}/predict/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson', 'x-request-id': 'stream' },
    body: '[1,1,1,1]\n[2,2,2,2]\n',
  });
  await stream.text();
  rowsOf.set('stream:0', [1, 1, 1, 1]).set('stream:1', [2, 2, 2, 2]);
  // gRPC ModelInfer with its own id.
  const grpc = new InferenceClient(server.grpcPort!);
  await grpc.call('ModelInfer', {
    model_name: 'credit',
    id: 'grpc-typed',
    inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [0, 2, 0, 1] } }],
  });
  rowsOf.set('grpc-typed', [0, 2, 0, 1]);
  grpc.close();
  // Refused requests log nothing.
  assert.is((await call(server.url, 'POST', '/predict', { features: [1, 2] })).status, 400);

  server.inferenceLog!.flush();
  await waitFor(() => parts('all').length === 1);
  const files = parts('all');
  assert.match(
    files[0],
    /\/all\/inference-log\/risk\/credit-svc\/v7\/date=\d{4}-\d{2}-\d{2}\/\d{8}T\d{9}Z-credit-v7-pod-000001-[0-9a-f]{8}\.parquet$/,
  );
  const rows = await queryParquet(files, 'SELECT * FROM $parts ORDER BY request_id');
  assert.equal(rows.map((r) => r.request_id).sort(), [...rowsOf.keys()].sort());
  const columns = await queryParquet(files, 'SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM $parts)');
  assert.equal(Object.fromEntries(columns.map((c) => [c.column_name, c.column_type])), {
    request_id: 'VARCHAR',
    time: 'TIMESTAMP WITH TIME ZONE',
    model: 'VARCHAR',
    version: 'INTEGER',
    pod: 'VARCHAR',
    score: 'DOUBLE',
    input_x0: 'DOUBLE',
    input_x1: 'DOUBLE',
    input_x2: 'DOUBLE',
    input_region: 'DOUBLE',
    output_probability: 'DOUBLE',
  });
  for (const row of rows) {
    const input = rowsOf.get(row.request_id as string)!;
    assert.equal([row.input_x0, row.input_x1, row.input_x2, row.input_region], input, `inputs of ${row.request_id}`);
    assert.ok(
      Math.abs((row.score as number) - model.expected(input)) < 1e-6,
      `score of ${row.request_id}: ${row.score} vs ${model.expected(input)}`,
    );
    assert.is(row.output_probability, row.score);
    assert.is(row.model, 'credit');
    assert.is(row.version, 7);
    assert.is(row.pod, 'credit-v7-pod');
    assert.ok(Math.abs(Date.now() - (row.time as Date).getTime()) < 60_000, `time of ${row.request_id}: ${row.time}`);
  }
  assert.is(await metric(server, 'inference_log_rows_total'), rowsOf.size);
  assert.is(await metric(server, 'inference_log_parts_total'), 1);
});

test('a part holds at most maxRowsPerPart rows; a full part is written without waiting for the interval', async () => {
  const server = await serve(logging('split', { maxRowsPerPart: 100 }));
  for (let i = 0; i < 5; i++)
    await call(server.url, 'POST', '/predict', { instances: Array.from({ length: 50 }, (_, r) => [i, r, 0, 1]) });
  await waitFor(() => parts('split').length === 2);
  const perPart = await Promise.all(
    parts('split').map(async (f) => (await queryParquet([f], 'SELECT count(*)::INTEGER AS n FROM $parts'))[0].n),
  );
  assert.equal(perPart, [100, 100], `rows per part: ${perPart}`);
  await server.close();
  const after = await Promise.all(
    parts('split').map(async (f) => (await queryParquet([f], 'SELECT count(*)::INTEGER AS n FROM $parts'))[0].n),
  );
  assert.equal(after.sort(), [100, 100, 50], 'the last 50 rows are written on shutdown');
  const distinct = await queryParquet(
    parts('split'),
    'SELECT count(DISTINCT request_id)::INTEGER AS n, count(*)::INTEGER AS total FROM $parts',
  );
  assert.equal(distinct[0], { n: 250, total: 250 });
});

test('ids outside ASCII and row numbers past 9 are logged as given; a part grows past its first buffers', async () => {
  const server = await serve(logging('ids', { maxRowsPerPart: 1000 }));
  const id = 'résumé-✓-😀';
  await call(
    server.url,
    'POST',
    '/v2/models/credit/infer',
    v2Rows(
      Array.from({ length: 12 }, (_, r) => [r, 0, 0, 1]),
      { id },
    ),
  );
  // 600 more rows: more than a batch holds before it first grows.
  for (let i = 0; i < 6; i++)
    await call(
      server.url,
      'POST',
      '/predict',
      {
        instances: Array.from({ length: 100 }, (_, r) => [i, r, 0, 0]),
      },
      { 'x-request-id': `bulk-${i}` },
    );
  server.inferenceLog!.flush();
  await waitFor(() => parts('ids').length === 1);
  const rows = await queryParquet(parts('ids'), 'SELECT request_id, input_x0, input_x1 FROM $parts');
  assert.is(rows.length, 612);
  const byId = new Map(rows.map((r) => [r.request_id as string, r]));
  for (let r = 0; r < 12; r++) assert.is(byId.get(`${id}:${r}`)?.input_x0, r, `row ${r} of ${id}`);
  for (let i = 0; i < 6; i++)
    for (const r of [0, 9, 10, 99]) assert.is(byId.get(`bulk-${i}:${r}`)?.input_x1, r, `bulk-${i}:${r}`);
});

test('the sample rate is honoured: about 30% of 2000 requests logged, within 5 standard deviations', async () => {
  const server = await serve(logging('sampled', { sampleRate: 0.3 }));
  // 16 clients of 125 requests each: the rate applies to each request, whichever connection it came on.
  await Promise.all(
    Array.from({ length: 16 }, async (_, c) => {
      for (let i = c; i < 2000; i += 16) await call(server.url, 'POST', '/predict', { features: [i / 1000, 0, 1, 0] });
    }),
  );
  server.inferenceLog!.flush();
  await waitFor(async () => parts('sampled').length === 1);
  const [{ n }] = await queryParquet(parts('sampled'), 'SELECT count(*)::INTEGER AS n FROM $parts');
  const sd = Math.sqrt(2000 * 0.3 * 0.7);
  assert.ok(
    Math.abs((n as number) - 600) < 5 * sd,
    `${n} logged of 2000 at rate 0.3 (expected 600 ± ${(5 * sd).toFixed(0)})`,
  );
  assert.ok((n as number) < 2000 && (n as number) > 0);
});

test('while storage fails, rows beyond maxBufferedRows are dropped and counted, and nothing is written', async () => {
  // A file where the log's directory should be: every write fails (ENOTDIR), as with a storage that is down.
  writeFileSync(join(ws.dir, 'blocked'), 'not a directory');
  // Shutdown waits for storage until its flush deadline, shortened from 10 s here.
  const server = await serve(logging('blocked', { maxRowsPerPart: 10, maxBufferedRows: 40, shutdownFlushMs: 1000 }));
  for (let i = 0; i < 10; i++)
    await call(server.url, 'POST', '/predict', { instances: Array.from({ length: 10 }, (_, r) => [i, r, 0, 0]) });
  await waitFor(async () => (await metric(server, 'inference_log_write_failures_total')) >= 1);
  assert.is(await metric(server, 'inference_log_rows_dropped_total'), 60, '100 rows sampled, 40 held');
  assert.is(await metric(server, 'inference_log_buffered_rows'), 40);
  assert.is(await metric(server, 'inference_log_rows_total'), 0);
  // Predictions are answered all the same.
  assert.is((await call(server.url, 'POST', '/predict', { features: [1, 1, 1, 1] })).status, 200);
  assert.is(await metric(server, 'inference_log_rows_dropped_total'), 61);
  await server.close();
  assert.is(
    await metric(server, 'inference_log_rows_dropped_total'),
    61 + 40,
    'the held rows count as dropped at shutdown',
  );
  assert.is(parts('blocked').length, 0);
});

test('a shutdown that has written every part leaves no timer behind to hold the process open', async () => {
  const timers = new Map<number, NodeJS.Timeout>();
  const hook = createHook({
    init(id, type, _trigger, resource) {
      if (type === 'Timeout') timers.set(id, resource as NodeJS.Timeout);
    },
    destroy(id) {
      timers.delete(id);
    },
  }).enable();
  try {
    const server = await serve(logging('timers'));
    await call(server.url, 'POST', '/predict', { features: [1, 2, 3, 0] });
    await server.close();
    assert.is(parts('timers').length, 1, 'the row was written on shutdown');
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    hook.disable();
  }
  const holding = [...timers.values()].filter((t) => t.hasRef());
  assert.is(holding.length, 0, 'timers still running after close');
});

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    assert.ok(Date.now() < deadline, 'timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('sampling is by a hash of the request id: about the rate, and the same choice for every version', async () => {
  const ids = Array.from({ length: 20_000 }, (_, i) => `req-${i}`);
  const chosen = ids.filter((id) => sampled(id, 0.3));
  const sd = Math.sqrt(20_000 * 0.3 * 0.7);
  assert.ok(Math.abs(chosen.length - 6000) < 5 * sd, `${chosen.length} of 20000 sequential ids at rate 0.3`);
  assert.equal(
    ids.filter((id) => sampled(id, 0.3)),
    chosen,
    'the same ids every time',
  );
  assert.ok(
    chosen.every((id) => sampled(id, 0.5)),
    'a higher rate keeps every id a lower one chose',
  );
  assert.is(ids.filter((id) => sampled(id, 0)).length, 0);
  assert.is(ids.filter((id) => sampled(id, 1)).length, 20_000);
  // Stable and its shadow (another version, another pod) answer the same requests: they log the same ones.
  const stable = await serve(logging('shadow-stable', { sampleRate: 0.5 }), '7');
  const canary = await serve(logging('shadow-canary', { sampleRate: 0.5, pod: 'credit-v8-pod' }), '8');
  for (let i = 0; i < 200; i++)
    for (const server of [stable, canary])
      await call(server.url, 'POST', '/v2/models/credit/infer', v2Rows([[i / 100, 0, 1, 0]], { id: `mirrored-${i}` }));
  const logged = async (server: RunningServer, dir: string) => {
    server.inferenceLog!.flush();
    await waitFor(async () => parts(dir).length === 1);
    const rows = await queryParquet(parts(dir), 'SELECT request_id FROM $parts ORDER BY request_id');
    return rows.map((r) => r.request_id as string);
  };
  const fromStable = await logged(stable, 'shadow-stable');
  assert.ok(fromStable.length > 60 && fromStable.length < 140, `${fromStable.length} of 200 at rate 0.5`);
  assert.equal(await logged(canary, 'shadow-canary'), fromStable);
});

test.run();
