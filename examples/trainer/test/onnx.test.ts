// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import ort from 'onnxruntime-node';
import { buildLogisticRegressionModel } from '../src/onnx.ts';
import { seededRandom } from '../src/random.ts';

// The trainer's seeded generator, so failures are reproducible.
const mulberry32 = seededRandom;

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

async function runModel(bytes: Uint8Array, rows: number[][], inputName = 'input', outputName = 'probability') {
  const session = await ort.InferenceSession.create(bytes);
  const features = rows[0].length;
  const input = new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, features]);
  const out = await session.run({ [inputName]: input });
  const probability = out[outputName];
  return { session, probability };
}

test('logistic regression model reproduces sigmoid(X·w + b) in onnxruntime to 1e-6', async () => {
  const rand = mulberry32(7);
  const weights = [0.8, -1.3, 0.05, 2.1, -0.4];
  const bias = -0.25;
  const rows = Array.from({ length: 64 }, () => weights.map(() => (rand() - 0.5) * 4));
  const { probability } = await runModel(buildLogisticRegressionModel({ weights, bias }), rows);
  assert.equal(probability.type, 'float32');
  assert.equal(probability.dims, [64, 1]);
  const got = probability.data as Float32Array;
  rows.forEach((row, i) => {
    const expected = sigmoid(row.reduce((s, x, j) => s + x * weights[j], bias));
    assert.ok(Math.abs(got[i] - expected) < 1e-6, `row ${i}: onnx ${got[i]} vs js ${expected}`);
  });
});

test('batch dimension is dynamic: one model serves batches of 1 and 300', async () => {
  const weights = [0.5, -0.5];
  const bytes = buildLogisticRegressionModel({ weights, bias: 0.1 });
  for (const n of [1, 300]) {
    const rows = Array.from({ length: n }, (_, i) => [i / n, 1 - i / n]);
    const { probability } = await runModel(bytes, rows);
    assert.equal(probability.dims, [n, 1]);
    const expected = sigmoid(0.5 * rows[n - 1][0] - 0.5 * rows[n - 1][1] + 0.1);
    assert.ok(Math.abs((probability.data as Float32Array)[n - 1] - expected) < 1e-6);
  }
});

test('custom tensor names appear in the session signature', async () => {
  const bytes = buildLogisticRegressionModel({
    weights: [1],
    bias: 0,
    inputName: 'features',
    outputName: 'score',
    opset: 17,
  });
  const { session, probability } = await runModel(bytes, [[0]], 'features', 'score');
  assert.equal(session.inputNames, ['features']);
  assert.equal(session.outputNames, ['score']);
  assert.ok(Math.abs((probability.data as Float32Array)[0] - 0.5) < 1e-7);
});

test('rejects a model without weights or with non-finite parameters', () => {
  assert.throws(() => buildLogisticRegressionModel({ weights: [], bias: 0 }), /at least one weight/);
  assert.throws(() => buildLogisticRegressionModel({ weights: [NaN], bias: 0 }), /finite/);
  assert.throws(() => buildLogisticRegressionModel({ weights: [1], bias: Infinity }), /finite/);
});

test.run();
