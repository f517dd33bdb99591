// The Open Inference Protocol over gRPC with a real grpc-js client against real onnxruntime sessions:
// every method, every datatype a signature can have (typed contents and raw bytes, answers equal),
// bad requests answered with the status codes the protocol names, the same metrics and drift windows
// as REST, and a hot swap under gRPC load that fails no call.
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fromHalfBits, tensorFromBytes, tensorToBytes, toHalfBits } from '../src/runtime/tensors.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import { InferenceClient, fp32Bytes, fp32Of, status } from './support/grpc.ts';
import { call, ADMIN_TOKEN, swapModel } from './support/http.ts';
import { DATATYPES, VALUES, bytesOf, identityServer, type WholeDatatype } from './support/datatypes.ts';
import { Workspace, logisticModel, referenceProfile, testConfig } from './support/model.ts';

const ws = new Workspace();
const model = logisticModel(ws, 'credit.onnx', [0.8, -0.5, 0.3, 1.2], -0.1);
const v2 = logisticModel(ws, 'credit-v2.onnx', [-2, 0.5, 1, -0.75], 1);
const profile = ws.write('profile.json', JSON.stringify(referenceProfile(3)));
const DRIFT_WINDOW = 50;
const BODY_LIMIT = 64 * 1024;
let server: RunningServer;
let client: InferenceClient;
const close = (a: number, b: number) => Math.abs(a - b) < 1e-6;

const typedRows = (rows: number[][], extra: Record<string, unknown> = {}) => ({
  model_name: 'credit',
  inputs: [
    { name: 'input', datatype: 'FP32', shape: [rows.length, rows[0].length], contents: { fp32_contents: rows.flat() } },
  ],
  ...extra,
});
const rawRows = (rows: number[][], extra: Record<string, unknown> = {}) => ({
  model_name: 'credit',
  inputs: [{ name: 'input', datatype: 'FP32', shape: [rows.length, rows[0].length] }],
  raw_input_contents: [fp32Bytes(rows.flat())],
  ...extra,
});

test.before(async () => {
  server = await startServer(
    testConfig(model, {
      adminToken: ADMIN_TOKEN,
      bodyLimitBytes: BODY_LIMIT,
      model: {
        name: 'credit',
        version: '7',
        artifact: model.artifact,
        signature: model.signature,
        referenceProfile: profile,
      },
      drift: { ...testConfig(model).drift, windowSize: DRIFT_WINDOW, minRows: 10 },
    }),
  );
  assert.ok(await server.loaded, 'model loads');
  assert.type(server.grpcPort, 'number');
  client = new InferenceClient(server.grpcPort!);
});
test.after(async () => {
  client.close();
  await server.close();
  ws.remove();
});

test('ServerLive, ServerReady and ServerMetadata answer as the REST endpoints do', async () => {
  assert.equal((await client.call('ServerLive', {})).response, { live: true });
  assert.equal((await client.call('ServerReady', {})).response, { ready: true });
  const meta = (await client.call('ServerMetadata', {})).response;
  const rest = (await call(server.url, 'GET', '/v2')).body;
  assert.equal({ name: meta.name, version: meta.version, extensions: meta.extensions }, rest);
});

test('ModelReady answers ready for the served model and version, NOT_FOUND for others', async () => {
  assert.equal((await client.call('ModelReady', { name: 'credit' })).response, { ready: true });
  assert.equal((await client.call('ModelReady', { name: 'credit', version: '7' })).response, { ready: true });
  const other = await client.error('ModelReady', { name: 'other' });
  assert.is(other.code, status.NOT_FOUND);
  assert.match(other.details, /model "other" is not served here/);
  assert.is((await client.error('ModelReady', { name: 'credit', version: '8' })).code, status.NOT_FOUND);
});

test('ModelMetadata answers the signature with int64 shapes, as REST does', async () => {
  const { response } = await client.call('ModelMetadata', { name: 'credit', version: '7' });
  assert.equal(response, {
    name: 'credit',
    versions: ['7'],
    platform: 'onnxruntime_onnx',
    inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }],
    outputs: [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }],
  });
});

test('ModelInfer with typed contents returns what the model computes, the id and the request metadata', async () => {
  const rows = [
    [1, 2, 3, 4],
    [0.5, -1, 0, 2],
    [0, 0, 0, 0],
  ];
  const { response, metadata } = await client.call('ModelInfer', typedRows(rows, { id: 'req-42' }), {
    'x-request-id': 'trace-9',
  });
  assert.is(response.model_name, 'credit');
  assert.is(response.model_version, '7');
  assert.is(response.id, 'req-42');
  assert.equal(response.raw_output_contents, []);
  assert.is(response.outputs.length, 1);
  const [out] = response.outputs;
  assert.equal([out.name, out.datatype, out.shape], ['probability', 'FP32', [3, 1]]);
  rows.forEach((row, i) => assert.ok(close(out.contents.fp32_contents[i], model.expected(row)), `row ${i}`));
  assert.equal(metadata.get('x-request-id'), ['trace-9']);
  assert.equal(metadata.get('x-model-version'), ['7']);
});

test('ModelInfer without an id answers the request id, given in metadata or made by the server', async () => {
  const given = await client.call('ModelInfer', typedRows([[1, 1, 1, 1]]), { 'x-request-id': 'trace-10' });
  assert.is(given.response.id, 'trace-10');
  const made = await client.call('ModelInfer', typedRows([[1, 1, 1, 1]]));
  assert.match(made.response.id, /^[0-9a-f-]{36}$/);
  assert.equal(made.metadata.get('x-request-id'), [made.response.id]);
});

test('ModelInfer with raw_input_contents answers raw_output_contents equal to the typed answer and to REST', async () => {
  const rows = Array.from({ length: 40 }, (_, i) => [i / 10, -i / 20, (i % 3) - 1, 0.25]);
  const typed = (await client.call('ModelInfer', typedRows(rows))).response;
  const raw = (await client.call('ModelInfer', rawRows(rows, { outputs: [{ name: 'probability' }] }))).response;
  assert.is(raw.outputs[0].contents, undefined, 'a raw answer carries no typed contents');
  assert.equal(
    raw.outputs.map((o: any) => [o.name, o.datatype, o.shape]),
    [['probability', 'FP32', [40, 1]]],
  );
  assert.equal(fp32Of(raw.raw_output_contents[0]), typed.outputs[0].contents.fp32_contents);
  const rest = await call(server.url, 'POST', '/v2/models/credit/infer', {
    inputs: [{ name: 'input', shape: [40, 4], datatype: 'FP32', data: rows.flat() }],
  });
  assert.equal(rest.body.outputs[0].data, typed.outputs[0].contents.fp32_contents);
});

// [what, request, status code, the start of the message (the field)]
const BAD: Array<[string, Record<string, unknown>, number, string]> = [
  ['unknown model', { ...typedRows([[1, 2, 3, 4]]), model_name: 'other' }, status.NOT_FOUND, 'model "other"'],
  ['no model name', { ...typedRows([[1, 2, 3, 4]]), model_name: '' }, status.NOT_FOUND, 'model ""'],
  [
    'unknown version',
    typedRows([[1, 2, 3, 4]], { model_version: '8' }),
    status.NOT_FOUND,
    'model "credit" version "8"',
  ],
  ['no inputs', { model_name: 'credit', inputs: [] }, status.INVALID_ARGUMENT, 'inputs'],
  [
    'unknown input name',
    {
      model_name: 'credit',
      inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }],
    },
    status.INVALID_ARGUMENT,
    'inputs[0].name',
  ],
  [
    'wrong datatype',
    {
      model_name: 'credit',
      inputs: [{ name: 'input', datatype: 'FP64', shape: [1, 4], contents: { fp64_contents: [1, 2, 3, 4] } }],
    },
    status.INVALID_ARGUMENT,
    'inputs[0].datatype',
  ],
  [
    'unknown datatype',
    {
      model_name: 'credit',
      inputs: [{ name: 'input', datatype: 'FLOAT', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }],
    },
    status.INVALID_ARGUMENT,
    'inputs[0].datatype',
  ],
  [
    'wrong rank',
    {
      model_name: 'credit',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [4], contents: { fp32_contents: [1, 2, 3, 4] } }],
    },
    status.INVALID_ARGUMENT,
    'inputs[0].shape',
  ],
  ['wrong feature dimension', typedRows([[1, 2, 3, 4, 5]]), status.INVALID_ARGUMENT, 'inputs[0].shape[1]'],
  [
    'negative dimension',
    {
      model_name: 'credit',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }],
    },
    status.INVALID_ARGUMENT,
    'inputs[0].shape[0]',
  ],
  [
    'too few elements',
    {
      model_name: 'credit',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 4], contents: { fp32_contents: [1, 2, 3, 4] } }],
    },
    status.INVALID_ARGUMENT,
    'inputs[0].contents.fp32_contents',
  ],
  [
    'no contents at all',
    { model_name: 'credit', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4] }] },
    status.INVALID_ARGUMENT,
    'inputs[0].contents.fp32_contents',
  ],
  [
    'huge shape, small data',
    {
      model_name: 'credit',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1e9, 4], contents: { fp32_contents: [1, 2, 3, 4] } }],
    },
    status.INVALID_ARGUMENT,
    'inputs[0].contents.fp32_contents',
  ],
  [
    'contents in the field of another datatype',
    {
      model_name: 'credit',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { int_contents: [1, 2, 3, 4] } }],
    },
    status.INVALID_ARGUMENT,
    'inputs[0].contents.int_contents',
  ],
  ['NaN element', typedRows([[1, NaN, 3, 4]]), status.INVALID_ARGUMENT, 'inputs[0].contents.fp32_contents[1]'],
  [
    'infinite element',
    typedRows([[1, 2, 3, -Infinity]]),
    status.INVALID_ARGUMENT,
    'inputs[0].contents.fp32_contents[3]',
  ],
  [
    'raw bytes of the wrong length',
    { ...rawRows([[1, 2, 3, 4]]), raw_input_contents: [Buffer.alloc(12)] },
    status.INVALID_ARGUMENT,
    'raw_input_contents[0]',
  ],
  ['raw NaN element', rawRows([[1, 2, NaN, 4]]), status.INVALID_ARGUMENT, 'raw_input_contents[0][2]'],
  [
    'more raw entries than inputs',
    { ...rawRows([[1, 2, 3, 4]]), raw_input_contents: [fp32Bytes([1, 2, 3, 4]), fp32Bytes([1, 2, 3, 4])] },
    status.INVALID_ARGUMENT,
    'raw_input_contents',
  ],
  [
    'raw and typed contents together',
    {
      ...rawRows([[1, 2, 3, 4]]),
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }],
    },
    status.INVALID_ARGUMENT,
    'inputs[0].contents',
  ],
  [
    'input given twice',
    { model_name: 'credit', inputs: [typedRows([[1, 2, 3, 4]]).inputs[0], typedRows([[1, 2, 3, 4]]).inputs[0]] },
    status.INVALID_ARGUMENT,
    'inputs[1].name',
  ],
  [
    'unknown requested output',
    typedRows([[1, 2, 3, 4]], { outputs: [{ name: 'logits' }] }),
    status.INVALID_ARGUMENT,
    'outputs[0].name',
  ],
];

test(`each of ${BAD.length} bad ModelInfer requests fails with the protocol's status code and names the field`, async () => {
  assert.ok(BAD.length >= 15);
  for (const [what, request, code, field] of BAD) {
    const error = await client.error('ModelInfer', request);
    assert.is(error.code, code, `${what}: ${status[error.code]} ${error.details}`);
    assert.ok(error.details.startsWith(field), `${what}: "${error.details}" should start with "${field}"`);
  }
});

test('a message over the body limit fails RESOURCE_EXHAUSTED, and the server answers after every bad request', async () => {
  const rows = Array.from({ length: BODY_LIMIT / 16 + 1 }, () => [1, 2, 3, 4]);
  assert.is((await client.error('ModelInfer', rawRows(rows))).code, status.RESOURCE_EXHAUSTED);
  assert.is((await client.error('ModelMetadata', { name: 'other' })).code, status.NOT_FOUND);
  const { response } = await client.call('ModelInfer', typedRows([[1, 2, 3, 4]]));
  assert.ok(close(response.outputs[0].contents.fp32_contents[0], model.expected([1, 2, 3, 4])));
});

test('gRPC predictions count in the same metrics as REST: requests by outcome, schema violations, gRPC durations', async () => {
  const metrics = (await call(server.url, 'GET', '/metrics')).text;
  const value = (re: RegExp) => Number(re.exec(metrics)?.[1] ?? NaN);
  assert.ok(
    value(/prediction_requests_total\{model="credit",model_version="7",outcome="success"\} (\d+)/) >= 7,
    'successes',
  );
  const invalid = BAD.filter(([, , code]) => code === status.INVALID_ARGUMENT).length;
  assert.is(
    value(/prediction_requests_total\{model="credit",model_version="7",outcome="invalid_input"\} (\d+)/),
    invalid + 3,
    'every INVALID_ARGUMENT and NOT_FOUND call',
  );
  assert.is(value(/prediction_schema_violations_total\{model="credit",model_version="7"\} (\d+)/), invalid);
  assert.ok(value(/grpc_server_handling_seconds_count\{grpc_method="ModelInfer",grpc_code="OK"\} (\d+)/) >= 6);
  assert.is(value(/grpc_server_handling_seconds_count\{grpc_method="ModelInfer",grpc_code="NOT_FOUND"\} (\d+)/), 3);
});

test('rows inferred over gRPC fill the drift window like REST rows', async () => {
  const before = await call(server.url, 'GET', '/metrics');
  const windows = (text: string) =>
    [...text.matchAll(/drift_windows_total\{model="credit",model_version="7",drifted="\w+"\} (\d+)/g)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    );
  const start = windows(before.text);
  const rows = Array.from({ length: DRIFT_WINDOW * 2 }, (_, i) => [i / 50, 1, -1, i % 3]);
  await client.call('ModelInfer', rawRows(rows));
  const deadline = Date.now() + 5000;
  while (windows((await call(server.url, 'GET', '/metrics')).text) < start + 2) {
    assert.ok(Date.now() < deadline, 'two more windows closed');
    await new Promise((r) => setTimeout(r, 50));
  }
});

/** The typed-contents field that holds each datatype. */
const FIELD: Record<WholeDatatype, string> = {
  BOOL: 'bool_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
};

test('every datatype round-trips through typed contents and raw bytes, and both answers are equal', async () => {
  const other = await identityServer(ws);
  const c = new InferenceClient(other.grpcPort!);
  try {
    const inputs = DATATYPES.map((d) => ({ name: `in_${d}`, datatype: d, shape: [2, 2] }));
    const typed = (
      await c.call('ModelInfer', {
        model_name: 'identity',
        inputs: inputs.map((input, i) => ({
          ...input,
          contents: {
            [FIELD[DATATYPES[i]]]:
              DATATYPES[i] === 'BYTES' ? (VALUES.BYTES as string[]).map((s) => Buffer.from(s)) : VALUES[DATATYPES[i]],
          },
        })),
      })
    ).response;
    const raw = (
      await c.call('ModelInfer', { model_name: 'identity', inputs, raw_input_contents: DATATYPES.map(bytesOf) })
    ).response;
    DATATYPES.forEach((d, i) => {
      const out = typed.outputs[i];
      assert.equal([out.name, out.datatype, out.shape], [`out_${d}`, d, [2, 2]], d);
      const got =
        d === 'BYTES' ? out.contents[FIELD[d]].map((b: Buffer) => b.toString('utf8')) : out.contents[FIELD[d]];
      assert.equal(got, VALUES[d], `${d} typed answer equals the input`);
      assert.ok(Buffer.from(raw.raw_output_contents[i]).equals(bytesOf(d)), `${d} raw answer equals the input bytes`);
    });
  } finally {
    c.close();
    await other.close();
  }
});

// onnxruntime-node 1.30 cannot run FP16 tensors on Node 24 (its binding reads a Float16Array as 0 bytes:
// microsoft/onnxruntime PR #32323), so no FP16 model loads; the FP16 layout is checked on its own here.
test('FP16 raw bytes decode to half floats and back, and non-finite halves are refused naming the element', () => {
  const values = [1, -2, 0.5, 65504];
  const bytes = Buffer.from(Uint16Array.from(values.map(toHalfBits)).buffer);
  const data = tensorFromBytes(bytes.subarray(0), [2, 2], 'FP16', 'raw_input_contents[0]');
  assert.equal(Array.from(data as Uint16Array, fromHalfBits), values);
  assert.ok(Buffer.from(tensorToBytes(data, 'FP16')).equals(bytes));
  const infinite = Buffer.from(Uint16Array.from([0, 0x7c00, 0, 0]).buffer);
  assert.throws(
    () => tensorFromBytes(infinite, [2, 2], 'FP16', 'raw_input_contents[0]'),
    (e: Error) => e.message === 'raw_input_contents[0][1]: must be a finite number',
  );
  // Unaligned bytes (a protobuf field inside a larger buffer) are copied, not misread.
  const unaligned = Buffer.concat([Buffer.from([9]), bytes]).subarray(1);
  assert.equal(Array.from(tensorFromBytes(unaligned, [4], 'FP16', 'x') as Uint16Array, fromHalfBits), values);
});

test('while no version is ready, readiness is false and ModelInfer and ModelMetadata fail UNAVAILABLE', async () => {
  const broken = await startServer(
    testConfig({ artifact: { uri: model.artifact.uri, digest: `sha256:${'0'.repeat(64)}` } }),
  );
  const c = new InferenceClient(broken.grpcPort!);
  try {
    assert.is(await broken.loaded, false);
    assert.equal((await c.call('ServerLive', {})).response, { live: true });
    assert.equal((await c.call('ServerReady', {})).response, { ready: false });
    assert.equal((await c.call('ModelReady', { name: 'credit' })).response, { ready: false });
    const infer = await c.error('ModelInfer', typedRows([[1, 2, 3, 4]]));
    assert.is(infer.code, status.UNAVAILABLE);
    assert.match(infer.details, /model credit is not ready \(failed: .*digest/);
    assert.is((await c.error('ModelMetadata', { name: 'credit' })).code, status.UNAVAILABLE);
  } finally {
    c.close();
    await broken.close();
  }
});

test('hot swap under gRPC load fails no call and moves new calls to the new version', async () => {
  let running = true;
  const versions: string[] = [];
  const failures: string[] = [];
  let wrong = 0;
  const clients = Array.from({ length: 4 }, () => new InferenceClient(server.grpcPort!));
  const loops = Array.from({ length: 16 }, async (_, k) => {
    for (let i = 0; running; i++) {
      const row = [k / 10, (i % 7) / 3, 1, -(i % 5)];
      try {
        const { response, metadata } = await clients[k % 4].call(
          'ModelInfer',
          i % 2 ? rawRows([row]) : typedRows([row]),
        );
        versions.push(response.model_version);
        const p = i % 2 ? fp32Of(response.raw_output_contents[0])[0] : response.outputs[0].contents.fp32_contents[0];
        const expected = (response.model_version === '7' ? model : v2).expected(row);
        if (!close(p, expected) || metadata.get('x-model-version')[0] !== response.model_version) wrong++;
      } catch (error) {
        failures.push(String(error));
      }
    }
  });
  try {
    await new Promise((r) => setTimeout(r, 400));
    const swapped = await swapModel(server.url, {
      version: '8',
      uri: v2.artifact.uri,
      digest: v2.artifact.digest,
      signature: v2.signature,
    });
    assert.is(swapped.status, 200, swapped.text);
    await new Promise((r) => setTimeout(r, 400));
  } finally {
    running = false;
    await Promise.all(loops);
    for (const c of clients) c.close();
  }
  assert.equal(failures, [], 'no failed call');
  assert.is(wrong, 0, 'every answer matches the version that gave it');
  assert.ok(
    versions.includes('7') && versions.filter((v) => v === '8').length > 20,
    'both versions answered, the new one took the traffic',
  );
  assert.ok(versions.lastIndexOf('7') < versions.length - 20, 'no old version after the swap settled');
  assert.equal((await client.call('ModelMetadata', { name: 'credit' })).response.versions, ['8']);
});

test.run();
