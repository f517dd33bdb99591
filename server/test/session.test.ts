// The runtime path: the synchronous session (onnxruntime-node's native binding) computes
// what the package's public InferenceSession computes, and the batcher answers a batch in
// the event-loop turn that read its requests, holding one open no longer than maxWaitMs.
// test: no cluster
import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Batcher, type Feeds } from '../src/runtime/batcher.ts';
import { LoadedModel } from '../src/runtime/model.ts';
import { Session } from '../src/runtime/session.ts';
import { Workspace, logisticModel, random } from './support/model.ts';

const ws = new Workspace();
const model = logisticModel(ws, 'session.onnx', [0.7, -1.1, 0.4], 0.3);
const served = {
  name: 'credit',
  version: '1',
  uri: model.artifact.uri,
  digest: model.artifact.digest,
  signature: model.signature,
};
const bytes = readFileSync(model.artifact.path);

test('the synchronous session reads the signature and gives the outputs of the public InferenceSession, bit for bit', async () => {
  const session = Session.create(bytes, { intraOpThreads: 1 });
  const reference = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  try {
    assert.equal(
      session.inputs.map((t) => [t.name, t.datatype, t.shape]),
      [['input', 'FP32', [-1, 3]]],
    );
    assert.equal(
      session.outputs.map((t) => t.name),
      reference.outputNames,
    );
    const rand = random(7);
    for (const rows of [1, 5, 64]) {
      const data = Float32Array.from({ length: rows * 3 }, () => rand() * 10 - 5);
      const ours = session.run({ input: new ort.Tensor('float32', data, [rows, 3]) });
      const theirs = await reference.run({ input: new ort.Tensor('float32', data, [rows, 3]) });
      for (const name of reference.outputNames) {
        assert.equal(ours[name].dims, theirs[name].dims, `${name} dims for ${rows} rows`);
        assert.equal(
          Array.from(ours[name].data as Float32Array),
          Array.from(theirs[name].data as Float32Array),
          `${name} for ${rows} rows`,
        );
      }
    }
    for (let i = 0; i < 3; i++)
      assert.ok(
        Math.abs(
          (
            session.run({ input: new ort.Tensor('float32', Float32Array.from([i, 1, 2]), [1, 3]) })[
              reference.outputNames[0]
            ].data as Float32Array
          )[0] - model.expected([i, 1, 2]),
        ) < 1e-6,
      );
  } finally {
    session.release();
    await reference.release();
  }
});

test('a released session refuses to run instead of touching freed memory; a missing input is named', () => {
  const session = Session.create(bytes, { intraOpThreads: 1 });
  assert.throws(() => session.run({}), /input 'input' is missing/);
  session.release();
  session.release();
  assert.throws(() => session.run({ input: new ort.Tensor('float32', new Float32Array(3), [1, 3]) }), /released/);
});

test('bytes that are not an ONNX model are refused when the session is created', () => {
  assert.throws(() => Session.create(new TextEncoder().encode('not a model'), { intraOpThreads: 1 }));
});

/** A run that doubles every value and records the rows it was given. */
function doubling(runs: number[]): (feeds: Feeds) => Feeds {
  return (feeds) => {
    const x = feeds.x;
    runs.push(x.shape[0]);
    return { y: { datatype: 'FP32', shape: x.shape.slice(), data: (x.data as Float32Array).map((v) => v * 2) } };
  };
}
const row = (v: number): Feeds => ({ x: { datatype: 'FP32', shape: [1, 2], data: Float32Array.from([v, v + 1]) } });

test('requests that arrive in one event-loop turn share one run and are all answered before the next turn', async () => {
  const runs: number[] = [];
  const batcher = new Batcher(doubling(runs), { maxBatchSize: 64, maxWaitMs: 5 });
  const answered: number[] = [];
  const answers = [1, 2, 3].map((v) =>
    batcher.infer(row(v), 1).then((out) => {
      answered.push(v);
      return Array.from(out.y.data as Float32Array);
    }),
  );
  // Scheduled after the batcher's end-of-turn check: it must find every request answered.
  const nextTurn = new Promise<number[]>((resolve) => setImmediate(() => resolve(answered.slice())));
  assert.equal(await nextTurn, [1, 2, 3]);
  assert.equal(await Promise.all(answers), [
    [2, 4],
    [4, 6],
    [6, 8],
  ]);
  assert.equal(runs, [3]);
  assert.is(batcher.activeRequests, 0);
});

test('a served model answers the requests of one turn in that turn (no extra event-loop turn inside onnxruntime)', async () => {
  const rowsPerRun: number[] = [];
  const loaded = await LoadedModel.load(served, {
    batching: true,
    maxBatchSize: 64,
    maxWaitMs: 5,
    intraOpThreads: 1,
    onRun: (rows) => rowsPerRun.push(rows),
  });
  try {
    const rows = [
      [1, 2, 3],
      [0, -1, 0.5],
      [4, 4, 4],
    ];
    const answered: number[] = [];
    const answers = rows.map((r, i) =>
      loaded.infer({ input: { datatype: 'FP32', shape: [1, 3], data: Float32Array.from(r) } }, 1).then((out) => {
        answered.push(i);
        return (out.probability.data as Float32Array)[0];
      }),
    );
    const nextTurn = new Promise<number[]>((resolve) => setImmediate(() => resolve(answered.slice())));
    assert.equal(await nextTurn, [0, 1, 2]);
    const values = await Promise.all(answers);
    rows.forEach((r, i) => assert.ok(Math.abs(values[i] - model.expected(r)) < 1e-6));
    assert.equal(rowsPerRun, [3], 'one run for the three');
  } finally {
    await loaded.retire();
  }
});

test('with batching off a request accepted before retire() is still answered, and the session is freed after it', async () => {
  const loaded = await LoadedModel.load(served, { batching: false, maxBatchSize: 64, maxWaitMs: 0, intraOpThreads: 1 });
  const row = [1, 2, 3];
  const answer = loaded.infer({ input: { datatype: 'FP32', shape: [1, 3], data: Float32Array.from(row) } }, 1);
  let retired = false;
  const retiring = loaded.retire().then(() => (retired = true));
  const value = (await answer).probability.data as Float32Array;
  assert.ok(Math.abs(value[0] - model.expected(row)) < 1e-6);
  await retiring;
  assert.ok(retired);
  const late = await loaded.infer({ input: { datatype: 'FP32', shape: [1, 3], data: Float32Array.from(row) } }, 1).then(
    () => 'answered',
    (e) => String(e),
  );
  assert.match(late, /released/, 'a retired model refuses instead of touching freed memory');
});

test('a full batch runs at once; the rest of the turn goes into the next batch', async () => {
  const runs: number[] = [];
  const batcher = new Batcher(doubling(runs), { maxBatchSize: 2, maxWaitMs: 0 });
  const answers = [1, 2, 3, 4, 5].map((v) => batcher.infer(row(v), 1));
  assert.equal(runs, [2, 2], 'two full batches ran during the turn');
  await Promise.all(answers);
  assert.equal(runs, [2, 2, 1]);
});

test('in a turn that runs long, a batch whose oldest request has waited maxWaitMs runs before another request joins it', async () => {
  const runs: number[] = [];
  const batcher = new Batcher(doubling(runs), { maxBatchSize: 64, maxWaitMs: 20 });
  const first = batcher.infer(row(1), 1);
  const busyUntil = performance.now() + 30;
  while (performance.now() < busyUntil) {
    /* a long synchronous stretch, as parsing a huge body would be */
  }
  const second = batcher.infer(row(2), 1);
  await Promise.all([first, second]);
  assert.equal(runs, [1, 1]);
});

test('a run that throws fails every request of its batch and leaves the batcher idle', async () => {
  const batcher = new Batcher(
    () => {
      throw new Error('boom');
    },
    { maxBatchSize: 8, maxWaitMs: 0 },
  );
  const results = await Promise.allSettled([batcher.infer(row(1), 1), batcher.infer(row(2), 1)]);
  assert.equal(
    results.map((r) => r.status),
    ['rejected', 'rejected'],
  );
  assert.is(batcher.activeRequests, 0);
  await batcher.idle();
});

test('a model whose output is not batched along rows fails the whole batch, not some of it', async () => {
  const batcher = new Batcher(() => ({ y: { datatype: 'FP32', shape: [1], data: Float32Array.from([0]) } }), {
    maxBatchSize: 8,
    maxWaitMs: 0,
  });
  const results = await Promise.allSettled([batcher.infer(row(1), 1), batcher.infer(row(2), 1)]);
  assert.equal(
    results.map((r) => r.status),
    ['rejected', 'rejected'],
  );
  assert.match(String((results[0] as PromiseRejectedResult).reason), /cannot be batched/);
  assert.is(batcher.activeRequests, 0);
});

test.after(() => ws.remove());
test.run();
