// A table of bad inputs: each must get 400 with the protocol's {"error"} naming the
// offending field — never a 422 of another shape, a 5xx, a crash or a hang — and the
// server must keep answering good requests afterwards.
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startServer, type RunningServer } from '../src/server.ts';
import { Workspace, logisticModel, referenceProfile, testConfig } from './support/model.ts';

const ws = new Workspace();
const model = logisticModel(ws, 'credit.onnx', [0.8, -0.5, 0.3, 1.2], -0.1);
const profile = ws.write('profile.json', JSON.stringify(referenceProfile(3)));
const BODY_LIMIT = 16 * 1024;
let server: RunningServer;

const INFER = '/v2/models/credit/infer';
const good = { name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] };
const withInput = (patch: Record<string, unknown>) => JSON.stringify({ inputs: [{ ...good, ...patch }] });

// [description, path, raw body, text the error must contain (the field)]
const CASES: Array<[string, string, string, string]> = [
  ['malformed JSON', INFER, '{"inputs": [', 'body'],
  ['empty body', INFER, '', 'body'],
  ['body is an array', INFER, '[1, 2]', 'body'],
  ['body is a string', INFER, '"inputs"', 'body'],
  ['inputs missing', INFER, '{}', 'inputs'],
  ['inputs empty', INFER, '{"inputs": []}', 'inputs'],
  ['unknown top-level field', INFER, JSON.stringify({ inputs: [good], extra: 1 }), 'extra'],
  ['id not a string', INFER, JSON.stringify({ id: 5, inputs: [good] }), 'id'],
  ['unknown input name', INFER, withInput({ name: 'features' }), 'inputs[0].name'],
  ['wrong datatype', INFER, withInput({ datatype: 'FP64' }), 'inputs[0].datatype'],
  ['unknown datatype', INFER, withInput({ datatype: 'FLOAT' }), 'inputs[0].datatype'],
  ['wrong rank', INFER, withInput({ shape: [4] }), 'inputs[0].shape'],
  ['wrong feature dimension', INFER, withInput({ shape: [1, 5], data: [1, 2, 3, 4, 5] }), 'inputs[0].shape[1]'],
  ['negative dimension', INFER, withInput({ shape: [-1, 4] }), 'inputs[0].shape[0]'],
  ['fractional dimension', INFER, withInput({ shape: [1.5, 4] }), 'inputs[0].shape[0]'],
  ['too few elements', INFER, withInput({ data: [1, 2, 3] }), 'inputs[0].data'],
  ['too many elements', INFER, withInput({ data: [1, 2, 3, 4, 5] }), 'inputs[0].data'],
  ['huge shape, small data', INFER, withInput({ shape: [1000000000, 4] }), 'inputs[0].data'],
  ['string element', INFER, withInput({ data: [1, 2, '3', 4] }), 'inputs[0].data[2]'],
  ['null element', INFER, withInput({ data: [1, null, 3, 4] }), 'inputs[0].data[1]'],
  ['boolean element', INFER, withInput({ data: [true, 2, 3, 4] }), 'inputs[0].data[0]'],
  [
    'non-finite number (1e999)',
    INFER,
    '{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,1e999]}]}',
    'inputs[0].data[3]',
  ],
  ['beyond FP32 range', INFER, withInput({ data: [1e39, 2, 3, 4] }), 'inputs[0].data[0]'],
  [
    'nested rows of the wrong length',
    INFER,
    withInput({
      shape: [2, 4],
      data: [
        [1, 2, 3],
        [4, 5, 6, 7, 8],
      ],
    }),
    'inputs[0].data[0]',
  ],
  ['nested deeper than the shape', INFER, withInput({ data: [[[1, 2, 3, 4]]] }), 'inputs[0].data'],
  ['data is an object', INFER, withInput({ data: { 0: 1 } }), 'inputs[0].data'],
  [
    'data missing',
    INFER,
    JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32' }] }),
    'inputs[0].data',
  ],
  ['input given twice', INFER, JSON.stringify({ inputs: [good, good] }), 'inputs[1].name'],
  [
    'unknown requested output',
    INFER,
    JSON.stringify({ inputs: [good], outputs: [{ name: 'logits' }] }),
    'outputs[0].name',
  ],
  ['prototype pollution attempt', INFER, '{"inputs":[],"__proto__":{"polluted":true}}', 'body'],
  [
    'oversized body',
    INFER,
    JSON.stringify({ inputs: [{ ...good, shape: [5000, 4], data: new Array(20000).fill(1.25) }] }),
    'body',
  ],
  ['/predict: row too short', '/predict', '{"features": [1, 2]}', 'features'],
  ['/predict: string cell', '/predict', '{"features": [1, "2", 3, 4]}', 'features[1]'],
  ['/predict: non-finite cell', '/predict', '{"features": [1, 2, -1e400, 4]}', 'features[2]'],
  ['/predict: both features and instances', '/predict', '{"features": [1,2,3,4], "instances": [[1,2,3,4]]}', 'body'],
  ['/predict: neither features nor instances', '/predict', '{}', 'body'],
  ['/predict: no instances', '/predict', '{"instances": []}', 'instances'],
  [
    '/predict: unknown feature name',
    '/predict',
    '{"instances": [{"x0":1,"x1":2,"x2":3,"region":0,"age":5}]}',
    'instances[0].age',
  ],
  [
    '/predict: missing feature name',
    '/predict',
    '{"instances": [[1,2,3,4], {"x0":1,"x1":2,"region":0}]}',
    'instances[1].x2',
  ],
  ['/predict: unknown field', '/predict', '{"features": [1,2,3,4], "rows": 1}', 'rows'],
];

test.before(async () => {
  server = await startServer(
    testConfig(model, {
      bodyLimitBytes: BODY_LIMIT,
      model: {
        name: 'credit',
        version: '1',
        artifact: model.artifact,
        signature: model.signature,
        referenceProfile: profile,
      },
    }),
  );
  assert.ok(await server.loaded);
});
test.after(async () => {
  await server.close();
  ws.remove();
});

test(`each of ${CASES.length} bad inputs answers 400 {error} naming the field`, async () => {
  assert.ok(CASES.length >= 20);
  for (const [what, path, body, field] of CASES) {
    const response = await fetch(server.url + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(5000),
    });
    const text = await response.text();
    assert.is(response.status, 400, `${what}: status ${response.status} ${text}`);
    const json = JSON.parse(text);
    assert.equal(Object.keys(json), ['error'], `${what}: ${text}`);
    assert.type(json.error, 'string');
    assert.ok(json.error.startsWith(field), `${what}: error "${json.error}" should start with "${field}"`);
  }
});

test('after the bad inputs the server is ready, predicts, and never answered 5xx', async () => {
  const ready = await fetch(`${server.url}/v2/health/ready`);
  assert.is(ready.status, 200);
  const ok = await fetch(server.url + INFER, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: withInput({}),
  });
  assert.is(ok.status, 200);
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.not.match(metrics, /http_request_duration_seconds_count\{[^}]*status="5\d\d"/);
  const violations = /prediction_schema_violations_total\{model="credit",model_version="1"\} (\d+)/.exec(metrics);
  assert.ok(violations, 'schema violations are counted');
  assert.is(Number(violations![1]), CASES.length);
});

test('a client that stops sending mid-body does not hang or crash the server', async () => {
  const { request } = await import('node:http');
  const url = new URL(server.url + INFER);
  await new Promise<void>((resolve) => {
    const req = request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': '1000' },
    });
    req.on('error', () => resolve());
    req.write('{"inputs": [');
    setTimeout(() => {
      req.destroy();
      resolve();
    }, 100);
  });
  const live = await fetch(`${server.url}/v2/health/live`);
  assert.is(live.status, 200);
});

test.run();
