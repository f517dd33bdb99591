// Model artifacts: fetched from file:// and http://, sha256-verified before the server
// says ready; a mismatching artifact is refused with a clear log line and readiness false.
// test: no cluster
import { createServer, type Server } from 'node:http';
import { Writable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pino from 'pino';
import { startServer } from '../src/server.ts';
import { fetchVerified, sha256Digest, DigestMismatchError } from '../src/runtime/artifact.ts';
import { Workspace, logisticModel, testConfig } from './support/model.ts';
import { call, v2Rows } from './support/http.ts';

const ws = new Workspace();
const model = logisticModel(ws, 'credit.onnx', [1, 2, 3], 0.5);
let http: Server;
let httpBase: string;

/** A pino logger whose lines the test can read. */
function capturingLogger(): { log: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return {
    log: pino({ level: 'info' }, sink),
    lines: () =>
      chunks
        .join('')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
  };
}

test.before(async () => {
  const { readFileSync } = await import('node:fs');
  const bytes = readFileSync(model.artifact.path);
  http = createServer((req, res) => {
    if (req.url === '/models/credit.onnx') res.end(bytes);
    else res.writeHead(404).end('not found');
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  httpBase = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
});
test.after(async () => {
  await new Promise((resolve) => http.close(resolve));
  ws.remove();
});

test('fetchVerified returns the bytes of a file:// artifact whose digest matches', async () => {
  const bytes = await fetchVerified(model.artifact.uri, model.artifact.digest);
  assert.is(sha256Digest(bytes), model.artifact.digest);
});

test('fetchVerified rejects a digest mismatch, an unknown scheme and a malformed digest', async () => {
  const wrong = `sha256:${'0'.repeat(64)}`;
  try {
    await fetchVerified(model.artifact.uri, wrong);
    assert.unreachable('mismatch accepted');
  } catch (error) {
    assert.instance(error, DigestMismatchError);
    assert.is((error as DigestMismatchError).actual, model.artifact.digest);
  }
  await fetchVerified('ftp://host/model.onnx', model.artifact.digest).then(
    () => assert.unreachable(),
    (e) => assert.match(e.message, /scheme ftp: is not supported/),
  );
  await fetchVerified(model.artifact.uri, 'md5:abc').then(
    () => assert.unreachable(),
    (e) => assert.match(e.message, /sha256:<64 hex>/),
  );
});

test('a model served over http:// loads and predicts', async () => {
  const server = await startServer(
    testConfig({ artifact: { ...model.artifact, uri: `${httpBase}/models/credit.onnx` }, signature: model.signature }),
  );
  try {
    assert.ok(await server.loaded);
    const r = await call(server.url, 'POST', '/v2/models/credit/infer', {
      inputs: [{ name: 'input', shape: [1, 3], datatype: 'FP32', data: [1, 0, -1] }],
    });
    assert.is(r.status, 200, r.text);
    assert.ok(Math.abs(r.body.outputs[0].data[0] - model.expected([1, 0, -1])) < 1e-6);
  } finally {
    await server.close();
  }
});

test('an http:// artifact answering 404 leaves the server unready with the reason', async () => {
  const server = await startServer(
    testConfig({ artifact: { ...model.artifact, uri: `${httpBase}/models/missing.onnx` }, signature: model.signature }),
  );
  try {
    assert.is(await server.loaded, false);
    const health = await call(server.url, 'GET', '/health');
    assert.is(health.status, 503);
    assert.match(health.body.error, /HTTP 404/);
  } finally {
    await server.close();
  }
});

test('a digest mismatch is refused: clear log line, readiness false, predictions 503', async () => {
  const tampered = ws.write(
    'tampered.onnx',
    new Uint8Array([...(await fetchVerified(model.artifact.uri, model.artifact.digest)), 0]),
  );
  const { log, lines } = capturingLogger();
  const server = await startServer(
    testConfig({ artifact: { uri: tampered.uri, digest: model.artifact.digest }, signature: model.signature }),
    log,
  );
  try {
    assert.is(await server.loaded, false);
    const refusal = lines().find((l) => String(l.msg).startsWith('refusing to serve'));
    assert.ok(refusal, 'a refusal is logged');
    assert.is(refusal!.level, 50);
    assert.is(refusal!.expected, model.artifact.digest);
    assert.is(refusal!.actual, tampered.digest);
    assert.match(String(refusal!.msg), tampered.uri);
    assert.is((await call(server.url, 'GET', '/v2/health/ready')).status, 503);
    assert.equal((await call(server.url, 'GET', '/v2/models/credit/ready')).body, { name: 'credit', ready: false });
    assert.is((await call(server.url, 'GET', '/v2/health/live')).status, 200);
    const health = await call(server.url, 'GET', '/health');
    assert.is(health.body.model_loaded, false);
    const infer = await call(server.url, 'POST', '/v2/models/credit/infer', v2Rows([[1, 2, 3]]));
    assert.is(infer.status, 503);
    assert.match(infer.body.error, /not ready/);
    const metrics = (await call(server.url, 'GET', '/metrics')).text;
    assert.not.match(metrics, /model_loaded\{[^}]*\} 1/);
  } finally {
    await server.close();
  }
});

test('a signature that does not describe the model is refused', async () => {
  const wrong = {
    inputs: [{ name: 'input', datatype: 'FP32' as const, shape: [-1, 4] }],
    outputs: model.signature.outputs,
  };
  const server = await startServer(testConfig({ artifact: model.artifact, signature: wrong }));
  try {
    assert.is(await server.loaded, false);
    assert.match((await call(server.url, 'GET', '/health')).body.error, /signature does not match the model/);
  } finally {
    await server.close();
  }
});

test('without a signature the server reads it from the ONNX graph', async () => {
  const server = await startServer(testConfig({ artifact: model.artifact }));
  try {
    assert.ok(await server.loaded);
    const meta = await call(server.url, 'GET', '/v2/models/credit');
    assert.equal(meta.body.inputs, [{ name: 'input', datatype: 'FP32', shape: [-1, 3] }]);
  } finally {
    await server.close();
  }
});

test.run();
