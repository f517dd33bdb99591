// Dynamic batching: concurrent requests are coalesced into one session.run up to the
// maximum batch size, each caller gets exactly its own rows back, and BATCHING=off runs
// one session.run per request.
// test: no cluster
import { connect, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startServer, type RunningServer } from '../src/server.ts';
import { Workspace, logisticModel, testConfig } from './support/model.ts';
import { call, v2Rows } from './support/http.ts';

const ws = new Workspace();
const model = logisticModel(ws, 'credit.onnx', [0.7, -1.1, 0.4], 0.3);

/** Runs and rows per run from the batch-size histogram. */
async function batchStats(server: RunningServer): Promise<{ runs: number; rows: number; largest: number }> {
  const text = (await call(server.url, 'GET', '/metrics')).text;
  // The histogram appears with the first run.
  const runs = Number(/prediction_batch_size_rows_count\{[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
  const rows = Number(/prediction_batch_size_rows_sum\{[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
  let largest = 0;
  for (const m of text.matchAll(/prediction_batch_size_rows_bucket\{le="([^"]+)"[^}]*\} (\d+)/g)) {
    if (Number(m[2]) < runs) largest = Math.max(largest, m[1] === '+Inf' ? Infinity : Number(m[1]));
  }
  return { runs, rows, largest };
}

/** One HTTP/1.1 request on a raw socket; resolves with the JSON body. */
function rawRequest(socket: Socket, path: string, body: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    let data = '';
    const onData = (chunk: Buffer) => {
      data += chunk;
      const head = data.indexOf('\r\n\r\n');
      if (head < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(data.slice(0, head))![1]);
      if (Buffer.byteLength(data.slice(head + 4)) < length) return;
      socket.off('data', onData);
      resolve({ status: Number(data.slice(9, 12)), json: JSON.parse(data.slice(head + 4)) });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(
      `POST ${path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  });
}

/**
 * `requests` requests written at the same instant on already-open connections, as many
 * independent clients would: the server sees them arrive together.
 */
async function burst(server: RunningServer, requests: number): Promise<void> {
  const { port } = new URL(server.url);
  const sockets = await Promise.all(
    Array.from(
      { length: requests },
      () =>
        new Promise<Socket>((resolve, reject) => {
          const socket = connect({ host: '127.0.0.1', port: Number(port) }, () => resolve(socket));
          socket.once('error', reject);
        }),
    ),
  );
  // Let the server accept every connection first, as with long-lived client connections.
  await new Promise((r) => setTimeout(r, 100));
  try {
    const rows = Array.from({ length: requests }, (_, i) => [i / 10, (i % 7) - 3, i % 2]);
    const answers = await Promise.all(
      rows.map((row, i) => rawRequest(sockets[i], '/v2/models/credit/infer', JSON.stringify(v2Rows([row])))),
    );
    answers.forEach((a, i) => {
      assert.is(a.status, 200, JSON.stringify(a.json));
      assert.equal(a.json.outputs[0].shape, [1, 1]);
      assert.ok(
        Math.abs(a.json.outputs[0].data[0] - model.expected(rows[i])) < 1e-6,
        `request ${i} got another request's row`,
      );
    });
  } finally {
    for (const socket of sockets) socket.destroy();
  }
}

test('concurrent requests share session runs, never above the maximum batch size, each answered with its own row', async () => {
  const server = await startServer(testConfig(model, { batchMaxSize: 8, batchMaxWaitMs: 5 }));
  try {
    assert.ok(await server.loaded);
    const before = await batchStats(server);
    await burst(server, 200);
    const after = await batchStats(server);
    const runs = after.runs - before.runs;
    assert.is(after.rows - before.rows, 200);
    assert.ok(runs < 200, `200 concurrent requests took ${runs} runs; expected coalescing`);
    assert.ok(after.largest > 1, 'some run had more than one row');
    // Buckets are 1,2,4,8,16...: a run above 8 rows would leave the le="8" bucket short.
    const text = (await call(server.url, 'GET', '/metrics')).text;
    const le8 = Number(/prediction_batch_size_rows_bucket\{le="8"[^}]*\} (\d+)/.exec(text)![1]);
    assert.is(le8, after.runs, 'no run exceeded BATCH_MAX_SIZE=8');
  } finally {
    await server.close();
  }
});

test('a request with more rows than the maximum batch size runs on its own and is answered whole', async () => {
  const server = await startServer(testConfig(model, { batchMaxSize: 4 }));
  try {
    assert.ok(await server.loaded);
    const rows = Array.from({ length: 10 }, (_, i) => [i, -i, 1]);
    const r = await call(server.url, 'POST', '/v2/models/credit/infer', v2Rows(rows));
    assert.is(r.status, 200);
    assert.equal(r.body.outputs[0].shape, [10, 1]);
    rows.forEach((row, i) => assert.ok(Math.abs(r.body.outputs[0].data[i] - model.expected(row)) < 1e-6));
  } finally {
    await server.close();
  }
});

test('with BATCHING off every request is its own session run', async () => {
  const server = await startServer(testConfig(model, { batching: false }));
  try {
    assert.ok(await server.loaded);
    const before = await batchStats(server);
    await burst(server, 100);
    const after = await batchStats(server);
    assert.is(after.runs - before.runs, 100);
    assert.is(after.rows - before.rows, 100);
  } finally {
    await server.close();
  }
});

test.after(() => ws.remove());
test.run();
