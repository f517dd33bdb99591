// The binary tensor data extension of the REST API over real HTTP: binary requests and answers equal the
// JSON ones for every datatype, the pieces can be mixed (binary in, JSON out and back), and bad binary
// requests answer 400 naming the field.
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startServer, type RunningServer } from '../src/server.ts';
import { call } from './support/http.ts';
import { DATATYPES, VALUES, bytesOf, identityServer } from './support/datatypes.ts';
import { Workspace, identityModel, logisticModel, testConfig } from './support/model.ts';

const ws = new Workspace();
const model = logisticModel(ws, 'credit.onnx', [0.8, -0.5, 0.3, 1.2], -0.1);
let server: RunningServer;
const INFER = '/v2/models/credit/infer';

interface BinaryAnswer {
  status: number;
  headers: Headers;
  json: any;
  /** The bytes after the JSON part, when the answer has the header. */
  binary: Buffer;
}

/** POST a JSON header followed by binary data, as the extension's clients do (no content type by default). */
async function postBinary(
  base: string,
  path: string,
  json: unknown,
  binary: Buffer,
  headers: Record<string, string> = {},
): Promise<BinaryAnswer> {
  const head = Buffer.from(JSON.stringify(json));
  const response = await fetch(base + path, {
    method: 'POST',
    headers: { 'inference-header-content-length': String(head.length), ...headers },
    body: Buffer.concat([head, binary]),
  });
  const body = Buffer.from(await response.arrayBuffer());
  const length = response.headers.get('inference-header-content-length');
  const split = length === null ? body.length : Number(length);
  return {
    status: response.status,
    headers: response.headers,
    json: JSON.parse(body.subarray(0, split).toString()),
    binary: body.subarray(split),
  };
}

const f32 = (values: number[]) => Buffer.from(Float32Array.from(values).buffer);
const f32Of = (bytes: Buffer) => Array.from(new Float32Array(Uint8Array.from(bytes).buffer));
const rows = Array.from({ length: 1000 }, (_, i) => [i / 100, -i / 300, (i % 7) - 3, 0.5]);

test.before(async () => {
  server = await startServer(testConfig(model, { bodyLimitBytes: 256 * 1024 }));
  assert.ok(await server.loaded);
});
test.after(async () => {
  await server.close();
  ws.remove();
});

test('server metadata lists the binary_tensor_data extension', async () => {
  assert.equal((await call(server.url, 'GET', '/v2')).body.extensions, ['binary_tensor_data']);
});

test('a 1000-row binary request with a binary answer equals the JSON answer, value for value', async () => {
  const json = await call(server.url, 'POST', INFER, {
    inputs: [{ name: 'input', shape: [1000, 4], datatype: 'FP32', data: rows.flat() }],
  });
  const binary = await postBinary(
    server.url,
    INFER,
    {
      inputs: [{ name: 'input', shape: [1000, 4], datatype: 'FP32', parameters: { binary_data_size: 16000 } }],
      outputs: [{ name: 'probability', parameters: { binary_data: true } }],
    },
    f32(rows.flat()),
  );
  assert.is(binary.status, 200, JSON.stringify(binary.json));
  assert.is(binary.headers.get('content-type'), 'application/octet-stream');
  assert.equal(binary.json.outputs, [
    { name: 'probability', datatype: 'FP32', shape: [1000, 1], parameters: { binary_data_size: 4000 } },
  ]);
  assert.is(binary.binary.length, 4000);
  assert.equal(f32Of(binary.binary), json.body.outputs[0].data);
  assert.is(binary.json.model_version, '1');
  assert.ok(binary.json.id, 'the request id');
});

test('binary in with JSON out, JSON in with binary out (binary_data_output), and an explicit content type all agree', async () => {
  const expected = (
    await call(server.url, 'POST', INFER, {
      inputs: [{ name: 'input', shape: [3, 4], datatype: 'FP32', data: rows.slice(0, 3).flat() }],
    })
  ).body.outputs[0].data;
  const input = { name: 'input', shape: [3, 4], datatype: 'FP32', parameters: { binary_data_size: 48 } };
  const binaryIn = await postBinary(server.url, INFER, { inputs: [input] }, f32(rows.slice(0, 3).flat()));
  assert.is(binaryIn.headers.get('inference-header-content-length'), null, 'a JSON answer has no binary part');
  assert.equal(binaryIn.json.outputs[0].data, expected);
  const binaryOut = await postBinary(
    server.url,
    INFER,
    {
      parameters: { binary_data_output: true },
      inputs: [{ name: 'input', shape: [3, 4], datatype: 'FP32', data: rows.slice(0, 3).flat() }],
    },
    Buffer.alloc(0),
  );
  assert.equal(f32Of(binaryOut.binary), expected);
  const typed = await postBinary(
    server.url,
    INFER,
    { inputs: [input], outputs: [{ name: 'probability', parameters: { binary_data: false } }] },
    f32(rows.slice(0, 3).flat()),
    { 'content-type': 'application/octet-stream' },
  );
  assert.equal(typed.json.outputs[0].data, expected);
});

test('every datatype round-trips binary, and the binary answer holds what the JSON answer says', async () => {
  const other = await identityServer(ws);
  try {
    const path = '/v2/models/identity/infer';
    const json = await call(other.url, 'POST', path, {
      inputs: DATATYPES.map((d) => ({ name: `in_${d}`, datatype: d, shape: [2, 2], data: VALUES[d] })),
    });
    assert.is(json.status, 200, json.text);
    const parts = DATATYPES.map(bytesOf);
    const binary = await postBinary(
      other.url,
      path,
      {
        inputs: DATATYPES.map((d, i) => ({
          name: `in_${d}`,
          datatype: d,
          shape: [2, 2],
          parameters: { binary_data_size: parts[i].length },
        })),
        parameters: { binary_data_output: true },
      },
      Buffer.concat(parts),
    );
    assert.is(binary.status, 200, JSON.stringify(binary.json));
    let offset = 0;
    DATATYPES.forEach((d, i) => {
      assert.equal(json.body.outputs[i].data, VALUES[d], `${d}: the JSON answer is the input`);
      const out = binary.json.outputs[i];
      assert.equal(
        [out.name, out.datatype, out.shape, out.parameters.binary_data_size],
        [`out_${d}`, d, [2, 2], parts[i].length],
        d,
      );
      assert.ok(
        binary.binary.subarray(offset, offset + parts[i].length).equals(parts[i]),
        `${d}: the binary answer is the input's bytes`,
      );
      offset += parts[i].length;
    });
    assert.is(offset, binary.binary.length);
  } finally {
    await other.close();
  }
});

const input = (size: unknown, extra: Record<string, unknown> = {}) => ({
  inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: size }, ...extra }],
});
const good = f32([1, 2, 3, 4]);

// [what, header value (undefined: the JSON's length), JSON, binary part, the start of the error]
const BAD: Array<[string, string | undefined, unknown, Buffer, string]> = [
  ['header not a number', 'twelve', input(16), good, 'inference-header-content-length'],
  ['header beyond the body', '100000', input(16), good, 'inference-header-content-length'],
  ['negative header', '-1', input(16), good, 'inference-header-content-length'],
  ['JSON part cut short by the header', '10', input(16), good, 'body'],
  ['binary_data_size not a number', undefined, input('16'), good, 'inputs[0].parameters.binary_data_size'],
  ['binary_data_size fractional', undefined, input(15.5), good, 'inputs[0].parameters.binary_data_size'],
  ['binary_data_size beyond the data', undefined, input(32), good, 'inputs[0].parameters.binary_data_size'],
  ['bytes no input claims', undefined, input(12), good, 'body'],
  ["byte count not the shape's", undefined, input(12), good.subarray(0, 12), 'inputs[0].binary_data'],
  ['NaN element', undefined, input(16), f32([1, NaN, 3, 4]), 'inputs[0].binary_data[1]'],
  ['data and binary_data_size together', undefined, input(16, { data: [1, 2, 3, 4] }), good, 'inputs[0].data'],
  [
    'binary_data not a boolean',
    undefined,
    { ...input(16), outputs: [{ name: 'probability', parameters: { binary_data: 'yes' } }] },
    good,
    'outputs[0].parameters.binary_data',
  ],
  [
    'binary_data_output not a boolean',
    undefined,
    { ...input(16), parameters: { binary_data_output: 1 } },
    good,
    'parameters.binary_data_output',
  ],
];

test(`each of ${BAD.length} bad binary requests answers 400 {error} naming the field`, async () => {
  for (const [what, header, json, binary, field] of BAD) {
    const head = Buffer.from(JSON.stringify(json));
    const response = await fetch(server.url + INFER, {
      method: 'POST',
      headers: { 'inference-header-content-length': header ?? String(head.length) },
      body: Buffer.concat([head, binary]),
    });
    const text = await response.text();
    assert.is(response.status, 400, `${what}: ${response.status} ${text}`);
    const error = JSON.parse(text).error as string;
    assert.ok(error.startsWith(field), `${what}: "${error}" should start with "${field}"`);
  }
  const noHeader = await call(server.url, 'POST', INFER, input(16));
  assert.is(noHeader.status, 400);
  assert.match(
    noHeader.body.error,
    /^inputs\[0\]\.parameters\.binary_data_size: binary data needs the inference-header-content-length header/,
  );
});

test('binary BYTES and BOOL data are checked element by element', async () => {
  const identity = identityModel(ws, 'strings.onnx', ['BYTES', 'BOOL']);
  const other = await startServer(
    testConfig(identity, {
      model: { name: 'strings', version: '1', artifact: identity.artifact, signature: identity.signature },
    }),
  );
  try {
    assert.ok(await other.loaded);
    const send = (strings: Buffer, flags: Buffer) =>
      postBinary(
        other.url,
        '/v2/models/strings/infer',
        {
          inputs: [
            { name: 'in_BYTES', datatype: 'BYTES', shape: [1, 2], parameters: { binary_data_size: strings.length } },
            { name: 'in_BOOL', datatype: 'BOOL', shape: [1, 2], parameters: { binary_data_size: flags.length } },
          ],
        },
        Buffer.concat([strings, flags]),
      );
    const overlong = Buffer.from([200, 0, 0, 0, 65]);
    assert.match(
      (await send(overlong, Buffer.from([0, 1]))).json.error,
      /^inputs\[0\]\.binary_data\[0\]: says 200 bytes but only 1 remain/,
    );
    const two = Buffer.from([1, 0, 0, 0, 65, 1, 0, 0, 0, 66]);
    assert.match(
      (await send(two, Buffer.from([0, 2]))).json.error,
      /^inputs\[1\]\.binary_data\[1\]: must be 0 or 1 for BOOL, got 2/,
    );
    const ok = await send(two, Buffer.from([0, 1]));
    assert.equal(
      ok.json.outputs.map((o: any) => o.data),
      [
        ['A', 'B'],
        [false, true],
      ],
    );
  } finally {
    await other.close();
  }
});

test.run();
