// Protocol shapes of every endpoint, over real HTTP against a real onnxruntime session:
// Open Inference Protocol (KServe V2) REST, the simple /predict API, /health and streaming.
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startServer, type RunningServer } from '../src/server.ts';
import { Workspace, logisticModel, referenceProfile, testConfig, type LogisticModel } from './support/model.ts';
import { call, v2Rows } from './support/http.ts';

const ws = new Workspace();
const model: LogisticModel = logisticModel(ws, 'credit.onnx', [0.8, -0.5, 0.3, 1.2], -0.1);
const profile = referenceProfile(3);
const profileArtifact = ws.write('profile.json', JSON.stringify(profile));
let server: RunningServer;
const close = (a: number, b: number) => Math.abs(a - b) < 1e-6;

test.before(async () => {
  server = await startServer(
    testConfig(model, {
      model: {
        name: 'credit',
        version: '7',
        artifact: model.artifact,
        signature: model.signature,
        referenceProfile: profileArtifact,
      },
    }),
  );
  assert.ok(await server.loaded, 'model loads');
});
test.after(async () => {
  await server.close();
  ws.remove();
});

test('GET /v2/health/live answers {live: true}', async () => {
  const r = await call(server.url, 'GET', '/v2/health/live');
  assert.is(r.status, 200);
  assert.equal(r.body, { live: true });
});

test('GET /v2/health/ready answers {ready: true} once the model is loaded', async () => {
  const r = await call(server.url, 'GET', '/v2/health/ready');
  assert.is(r.status, 200);
  assert.equal(r.body, { ready: true });
});

test('GET /v2 answers the server metadata', async () => {
  const r = await call(server.url, 'GET', '/v2');
  assert.is(r.status, 200);
  assert.equal(Object.keys(r.body).sort(), ['extensions', 'name', 'version']);
  assert.is(r.body.name, 'loopline-predictor');
  assert.type(r.body.version, 'string');
  assert.equal(r.body.extensions, ['binary_tensor_data']);
});

test('GET /v2/models/{name}[/versions/{v}] answers the model metadata from the signature', async () => {
  for (const path of ['/v2/models/credit', '/v2/models/credit/versions/7']) {
    const r = await call(server.url, 'GET', path);
    assert.is(r.status, 200, path);
    assert.equal(r.body, {
      name: 'credit',
      versions: ['7'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }],
    });
  }
});

test('GET /v2/models/{name}[/versions/{v}]/ready answers {name, ready}', async () => {
  for (const path of ['/v2/models/credit/ready', '/v2/models/credit/versions/7/ready']) {
    const r = await call(server.url, 'GET', path);
    assert.is(r.status, 200, path);
    assert.equal(r.body, { name: 'credit', ready: true });
  }
});

test('unknown model or version answers 404 with an error body', async () => {
  for (const [method, path] of [
    ['GET', '/v2/models/other'],
    ['GET', '/v2/models/credit/versions/8'],
    ['GET', '/v2/models/other/ready'],
    ['POST', '/v2/models/other/infer'],
  ] as const) {
    const r = await call(server.url, method, path, method === 'POST' ? v2Rows([[1, 2, 3, 4]]) : undefined);
    assert.is(r.status, 404, path);
    assert.type(r.body.error, 'string');
    assert.ok(r.body.error.includes('not served'), r.body.error);
  }
});

test('POST /v2/models/{name}/infer returns the outputs computed by the model', async () => {
  const rows = [
    [1, 2, 3, 4],
    [0.5, -1, 0, 2],
    [0, 0, 0, 0],
  ];
  const r = await call(server.url, 'POST', '/v2/models/credit/infer', v2Rows(rows, { id: 'req-42' }));
  assert.is(r.status, 200, r.text);
  assert.equal(Object.keys(r.body).sort(), ['id', 'model_name', 'model_version', 'outputs']);
  assert.is(r.body.model_name, 'credit');
  assert.is(r.body.model_version, '7');
  assert.is(r.body.id, 'req-42');
  assert.is(r.body.outputs.length, 1);
  const [out] = r.body.outputs;
  assert.is(out.name, 'probability');
  assert.is(out.datatype, 'FP32');
  assert.equal(out.shape, [3, 1]);
  rows.forEach((row, i) =>
    assert.ok(close(out.data[i], model.expected(row)), `row ${i}: ${out.data[i]} vs ${model.expected(row)}`),
  );
});

test('infer accepts nested tensor data and the versioned path', async () => {
  const rows = [
    [1, 2, 3, 4],
    [4, 3, 2, 1],
  ];
  const r = await call(server.url, 'POST', '/v2/models/credit/versions/7/infer', {
    inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: rows }],
  });
  assert.is(r.status, 200, r.text);
  assert.ok(close(r.body.outputs[0].data[1], model.expected(rows[1])));
});

test('infer returns only the requested outputs and the request id when the body has none', async () => {
  const r = await call(
    server.url,
    'POST',
    '/v2/models/credit/infer',
    v2Rows([[1, 1, 1, 1]], { outputs: [{ name: 'probability' }] }),
    { 'x-request-id': 'trace-1' },
  );
  assert.is(r.status, 200);
  assert.is(r.body.id, 'trace-1');
  assert.equal(
    r.body.outputs.map((o: { name: string }) => o.name),
    ['probability'],
  );
});

test('every response carries the model version and a request id (given or generated)', async () => {
  const given = await call(server.url, 'GET', '/v2/health/live', undefined, { 'x-request-id': 'abc-123' });
  assert.is(given.headers.get('x-request-id'), 'abc-123');
  assert.is(given.headers.get('x-model-version'), '7');
  const generated = await call(server.url, 'POST', '/predict', { features: [1, 2, 3, 4] });
  assert.match(generated.headers.get('x-request-id')!, /^[0-9a-f-]{36}$/);
  assert.is(generated.body.request_id, generated.headers.get('x-request-id'));
  const failed = await call(server.url, 'POST', '/predict', { features: [1, 2] });
  assert.is(failed.status, 400);
  assert.ok(failed.headers.get('x-request-id'));
  assert.is(failed.headers.get('x-model-version'), '7');
});

test('POST /predict with one row answers prediction, model_version, request_id, latency_ms', async () => {
  const r = await call(server.url, 'POST', '/predict', { features: [1, 2, 3, 4] }, { 'x-request-id': 'one-row' });
  assert.is(r.status, 200, r.text);
  assert.equal(Object.keys(r.body).sort(), ['latency_ms', 'model_name', 'model_version', 'prediction', 'request_id']);
  assert.ok(close(r.body.prediction, model.expected([1, 2, 3, 4])));
  assert.is(r.body.model_version, '7');
  assert.is(r.body.request_id, 'one-row');
  assert.ok(r.body.latency_ms > 0 && r.body.latency_ms < 1000);
});

test('POST /predict with many rows, as arrays or by feature name, answers predictions in order', async () => {
  const rows = [
    [1, 2, 3, 4],
    [-1, 0, 1, 2],
  ];
  const r = await call(server.url, 'POST', '/predict', { instances: [rows[0], { x0: -1, x1: 0, x2: 1, region: 2 }] });
  assert.is(r.status, 200, r.text);
  assert.is(r.body.predictions.length, 2);
  rows.forEach((row, i) => assert.ok(close(r.body.predictions[i], model.expected(row))));
});

test('POST /predict imputes null cells from the reference profile (mean, most frequent category)', async () => {
  const r = await call(server.url, 'POST', '/predict', { features: { x0: null, x1: 1, x2: 0, region: null } });
  assert.is(r.status, 200, r.text);
  const x0 = profile.features[0].type === 'numeric' ? profile.features[0].mean : 0;
  assert.ok(close(r.body.prediction, model.expected([Math.fround(x0), 1, 0, 0])), `${r.body.prediction}`);
});

test('GET /health answers model_loaded and the version', async () => {
  const r = await call(server.url, 'GET', '/health');
  assert.is(r.status, 200);
  assert.equal(r.body, { status: 'ok', model_loaded: true, model_name: 'credit', model_version: '7' });
});

test('POST /predict/stream scores NDJSON rows chunk by chunk, isolating bad rows', async () => {
  const rows = Array.from({ length: 700 }, (_, i) => [i / 100, 1, -1, (i % 3) - 1]);
  const lines = rows.map((row) => JSON.stringify(row));
  lines.splice(300, 0, '[1, 2]', 'not json');
  const response = await fetch(`${server.url}/predict/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body: `${lines.join('\n')}\n`,
  });
  assert.is(response.status, 200);
  assert.is(response.headers.get('content-type'), 'application/x-ndjson');
  assert.is(response.headers.get('x-model-version'), '7');
  const out = (await response.text())
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const summary = out.pop();
  assert.is(summary.summary.rows, 702);
  assert.is(summary.summary.errors, 2);
  assert.is(out.length, 702);
  assert.ok(out[300].error.includes('row 300'), out[300].error);
  assert.ok(out[301].error.includes('malformed JSON'), out[301].error);
  const scored = out.filter((l) => 'prediction' in l);
  assert.is(scored.length, 700);
  scored.forEach((line, i) => assert.ok(close(line.prediction, model.expected(rows[i])), `row ${line.row}`));
});

test('GET /metrics exposes the Prometheus text format', async () => {
  const r = await call(server.url, 'GET', '/metrics');
  assert.is(r.status, 200);
  assert.ok(r.headers.get('content-type')!.startsWith('text/plain'));
  assert.ok(r.text.includes('prediction_requests_total{model="credit",model_version="7",outcome="success"}'));
});

test.run();
