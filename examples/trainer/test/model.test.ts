// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { shardOf, splitRows } from '../src/dataset.ts';
import { accuracy, auc, logLoss } from '../src/evaluation.ts';
import { predictProbabilities, sigmoid, trainLogisticRegression } from '../src/logistic.ts';
import { binIndex, buildReferenceProfile, quantile } from '../src/profile.ts';
import { normalFrom, seededRandom } from '../src/random.ts';

test('auc by ranks equals the brute-force share of correctly ordered pairs, ties counted half', () => {
  const rand = seededRandom(11);
  const labels = Array.from({ length: 300 }, () => (rand() < 0.3 ? 1 : 0));
  // Rounded scores force many ties.
  const scores = labels.map((l) => Math.round((rand() + 0.3 * l) * 20) / 20);
  let wins = 0;
  let pairs = 0;
  labels.forEach((li, i) =>
    labels.forEach((lj, j) => {
      if (li === 1 && lj === 0) {
        pairs++;
        wins += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
      }
    }),
  );
  assert.ok(Math.abs(auc(labels, scores) - wins / pairs) < 1e-12);
  assert.is(auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]), 1);
  assert.throws(() => auc([1, 1], [0.2, 0.3]), /both classes/);
});

test('accuracy and log loss', () => {
  assert.is(accuracy([1, 0, 1, 0], [0.9, 0.2, 0.4, 0.6]), 0.5);
  assert.ok(Math.abs(logLoss([1, 0], [0.8, 0.3]) - -(Math.log(0.8) + Math.log(0.7)) / 2) < 1e-12);
  assert.ok(Number.isFinite(logLoss([1], [0])), 'a certain wrong prediction costs a finite amount');
});

test('gradient descent recovers the weights of a known logistic model on raw-scale features', () => {
  const normal = normalFrom(seededRandom(5));
  const truth = { weights: [0.02, -1.5], bias: 0.5 };
  const x = Array.from({ length: 20000 }, () => [100 + 50 * normal(), normal()]);
  const uniform = seededRandom(6);
  const y = x.map((row) =>
    uniform() < sigmoid(truth.bias + row[0] * truth.weights[0] + row[1] * truth.weights[1]) ? 1 : 0,
  );
  const model = trainLogisticRegression(x, y, { learningRate: 1, epochs: 300, l2: 0 });
  assert.ok(Math.abs(model.weights[0] - 0.02) < 0.003, `w0=${model.weights[0]}`);
  assert.ok(Math.abs(model.weights[1] + 1.5) < 0.1, `w1=${model.weights[1]}`);
  assert.ok(Math.abs(model.bias - 0.5) < 0.3, `b=${model.bias}`);
  const p = predictProbabilities(model, [[100, 0]]);
  assert.ok(Math.abs(p[0] - sigmoid(2.5)) < 0.05);
});

test('a learning rate that diverges is reported, not exported', () => {
  const x = [[1e6], [-1e6], [2e6], [-2e6]];
  assert.throws(
    () => trainLogisticRegression(x, [1, 0, 1, 0], { learningRate: 1e308, epochs: 5, l2: 1e308 }),
    /diverged/,
  );
});

test('quantiles interpolate; bins are open-ended and left-closed', () => {
  assert.is(quantile([1, 2, 3, 4, 5], 0.5), 3);
  assert.is(quantile([1, 2, 3, 4], 0.5), 2.5);
  const edges = [1, 2, 3];
  assert.equal(
    [0.5, 1, 1.5, 2, 2.99, 3, 100].map((v) => binIndex(edges, v)),
    [0, 1, 1, 2, 2, 3, 3],
  );
});

test('profile of a discrete or constant column keeps strictly ascending edges; missing values are counted', () => {
  const x = [
    [1, 0],
    [1, 1],
    [1, NaN],
    [1, 1],
  ];
  const profile = buildReferenceProfile(
    [
      { name: 'constant', type: 'numeric' },
      { name: 'flag', type: 'categorical' },
    ],
    x,
    1,
  );
  const [constant, flag] = profile.features;
  assert.ok(
    constant.type === 'numeric' && constant.binEdges.length === 2 && constant.binEdges[1] > constant.binEdges[0],
  );
  assert.ok(flag.type === 'categorical');
  assert.is(flag.missingRate, 0.25);
  assert.equal(flag.frequencies, { '0': 1 / 3, '1': 2 / 3 });
});

test('held-out split and rank shards are disjoint, complete and seed-dependent', () => {
  const s = splitRows(1000, 0.2, 42);
  assert.is(s.holdout.length, 200);
  assert.is(new Set([...s.train, ...s.holdout]).size, 1000);
  const shards = [0, 1, 2].map((r) => shardOf(s.train, r, 3));
  assert.is(new Set(shards.flat()).size, 800);
  assert.is(shards.flat().length, 800);
  assert.equal(splitRows(1000, 0.2, 42), s);
  assert.not.equal(splitRows(1000, 0.2, 43).holdout, s.holdout);
});

test.run();
