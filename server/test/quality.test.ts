// Live-quality statistics against independent computations on fixed data (server/test/fixtures/quality.json, made
// by make-quality-fixtures.py with Debian's scikit-learn and scipy): every metric to 1e-9 relative, the canary
// tests' statistics and p-values likewise, and the verdicts they lead to.
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { comparePaired, compareQuality, deLongAuc, pairedSide } from '../src/quality/compare.ts';
import { qualityMetrics, rocAuc } from '../src/quality/metrics.ts';
import { normalCdf, normalQuantile, normalSf } from '../src/quality/normal.ts';

const fixtures = JSON.parse(readFileSync(new URL('./fixtures/quality.json', import.meta.url), 'utf8'));

function close(actual: number | null, expected: number | null, what: string, relative = 1e-9) {
  if (expected === null) return assert.is(actual, null, what);
  assert.ok(actual !== null, `${what}: null, expected ${expected}`);
  const error = Math.abs(actual! - expected) / Math.max(Math.abs(expected), 1e-300);
  assert.ok(
    error <= relative || Math.abs(actual! - expected) < 1e-15,
    `${what}: ${actual} vs ${expected} (relative error ${error})`,
  );
}

test("accuracy, AUC, log loss, Brier, precision, recall and calibration error equal scikit-learn's to 1e-9", () => {
  for (const c of fixtures.metrics) {
    const got = qualityMetrics(c.scores, c.labels, { threshold: c.threshold });
    assert.is(got.count, c.expected.count, c.name);
    assert.is(got.positives, c.expected.positives, c.name);
    for (const key of ['accuracy', 'auc', 'logLoss', 'brier', 'precision', 'recall', 'calibrationError']) {
      close((got as any)[key], c.expected[key], `${c.name}: ${key}`);
    }
  }
});

test('AUC is null while every label is the same, and ties count half (mid-ranks)', () => {
  assert.is(rocAuc([0.1, 0.9, 0.5], [1, 1, 1]), null);
  assert.is(qualityMetrics([0.2, 0.4], [0, 0]).auc, null);
  assert.is(rocAuc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]), 0.5);
  assert.is(rocAuc([0.1, 0.4, 0.4, 0.9], [0, 0, 1, 1]), 0.875);
});

test('bad rows are refused with the row and the value: a label not 0/1, a score outside [0, 1], lengths apart', () => {
  assert.throws(() => qualityMetrics([0.2, 0.3], [0, 2]), /label 2 at row 1 is not 0 or 1/);
  assert.throws(() => qualityMetrics([0.2, 1.3], [0, 1]), /score 1.3 at row 1 is not a probability/);
  assert.throws(() => qualityMetrics([0.2, Number.NaN], [0, 1]), /score NaN at row 1/);
  assert.throws(() => qualityMetrics([0.2], [0, 1]), /1 scores but 2 labels/);
  assert.throws(() => qualityMetrics([], []), /no labelled predictions/);
});

test("the normal tail and quantile equal scipy.stats.norm's cdf, sf and ppf", () => {
  for (const { z, cdf, sf } of fixtures.normal) {
    close(normalCdf(z), cdf, `cdf(${z})`, 1e-12);
    close(normalSf(z), sf, `sf(${z})`, 1e-12);
  }
  for (const { p, z } of fixtures.quantiles) close(normalQuantile(p), z, `ppf(${p})`, 1e-12);
});

test("DeLong's AUC variance and the one-sided tests equal the independent O(m·n) computation and scipy", () => {
  for (const c of fixtures.comparisons) {
    const options = { metric: c.metric, maxDrop: c.maxDrop, minLabels: 100, confidence: 0.95 };
    const got = compareQuality(c.canary, c.stable, options);
    close(got.canary, c.expected.canary, `${c.name}: canary`);
    close(got.stable, c.expected.stable, `${c.name}: stable`);
    close(got.z, c.expected.z, `${c.name}: z`);
    close(got.pValue, c.expected.pValue, `${c.name}: p`);
    if (c.metric === 'auc') {
      close(
        deLongAuc(c.canary.scores, c.canary.labels)!.variance,
        c.expected.canaryVariance,
        `${c.name}: canary variance`,
      );
      close(
        deLongAuc(c.stable.scores, c.stable.labels)!.variance,
        c.expected.stableVariance,
        `${c.name}: stable variance`,
      );
    }
  }
  const p = fixtures.paired;
  const got = comparePaired(pairedSide(p.labels, p.canaryScores, p.stableScores), {
    metric: 'auc',
    maxDrop: p.maxDrop,
    minLabels: 100,
    confidence: 0.95,
  });
  for (const key of ['canary', 'stable', 'z', 'pValue']) close((got as any)[key], p.expected[key], `paired: ${key}`);
});

test("the paired tests on shared requests equal the independent computation: DeLong's variance of the difference, the paired z-test", () => {
  const p = fixtures.paired;
  const side = pairedSide(p.labels, p.canaryScores, p.stableScores);
  assert.is(side.count, p.labels.length);
  close(side.canaryAuc, p.expected.canary, 'canary AUC');
  close(side.stableAuc, p.expected.stable, 'stable AUC');
  close(side.aucDifferenceVariance, p.expected.aucDifferenceVariance, 'variance of the AUC difference');
  close(side.canaryCorrect / side.count, p.expected.canaryAccuracy, 'canary accuracy');
  close(side.stableCorrect / side.count, p.expected.stableAccuracy, 'stable accuracy');
  close(side.accuracyDifferenceVariance, p.expected.accuracyDifferenceVariance, 'variance of the right-difference');
  const options = { maxDrop: p.maxDrop, minLabels: 100, confidence: 0.95 };
  const accuracy = comparePaired(side, { ...options, metric: 'accuracy' });
  close(accuracy.z, p.expected.accuracyZ, 'paired accuracy z');
  close(accuracy.pValue, p.expected.accuracyPValue, 'paired accuracy p');
  assert.match(accuracy.reason, /\(paired z-test, z -0\.526, p 0\.2993\)/);
  const auc = comparePaired(side, { ...options, metric: 'auc' });
  assert.is(auc.verdict, 'worse');
  assert.match(auc.reason, /\(600 vs 600 labels\).*\(paired DeLong's test, z -1\.939, p 0\.0263\)/);
  // The same answers judged as if from different requests: the correlation is lost and the drop is not shown.
  const unpaired = compareQuality(
    { scores: p.canaryScores, labels: p.labels },
    { scores: p.stableScores, labels: p.labels },
    { ...options, metric: 'auc' },
  );
  assert.is(unpaired.verdict, 'notWorse', unpaired.reason);
  assert.is(comparePaired(side, { ...options, minLabels: 601, metric: 'auc' }).verdict, 'insufficient');
});

test('a canary worse beyond the tolerated drop is "worse", with the numbers in the reason; within it, not', () => {
  const [noisier, sameModel, miscalibrated] = fixtures.comparisons;
  const gate = { metric: 'auc', maxDrop: 0, minLabels: 100, confidence: 0.95 } as const;
  const auc = compareQuality(noisier.canary, noisier.stable, gate);
  assert.is(auc.verdict, 'worse');
  assert.match(
    auc.reason,
    /auc canary 0\.6110 vs stable 0\.6952 \(800 vs 1200 labels\), drop 0\.0842: worse by more than maxDrop 0 at 0\.95 confidence \(DeLong's test, z -3\.331, p 4\.33e-4\)/,
  );
  assert.is(compareQuality(sameModel.canary, sameModel.stable, { ...gate, maxDrop: 0.02 }).verdict, 'notWorse');
  // The same drop is not enough evidence at 0.9999 confidence.
  assert.is(compareQuality(noisier.canary, noisier.stable, { ...gate, confidence: 0.9999 }).verdict, 'notWorse');
  const accuracy = compareQuality(miscalibrated.canary, miscalibrated.stable, {
    ...gate,
    metric: 'accuracy',
    maxDrop: 0.01,
  });
  assert.is(accuracy.verdict, 'worse');
  assert.match(accuracy.reason, /two-proportion z-test/);
});

test('too few labels, or a single class, is no verdict: the rollout waits', () => {
  const [noisier] = fixtures.comparisons;
  const few = compareQuality(noisier.canary, noisier.stable, {
    metric: 'auc',
    maxDrop: 0,
    minLabels: 1000,
    confidence: 0.95,
  });
  assert.is(few.verdict, 'insufficient');
  assert.match(few.reason, /800 canary and 1200 stable labels, 1000 needed on each side; waiting for labels/);
  const oneClass = compareQuality(
    { scores: [0.1, 0.2, 0.3], labels: [1, 1, 1] },
    { scores: [0.1, 0.7, 0.3], labels: [0, 1, 0] },
    { metric: 'auc', maxDrop: 0, minLabels: 3, confidence: 0.95 },
  );
  assert.is(oneClass.verdict, 'insufficient');
  assert.match(oneClass.reason, /two labels of each class/);
});

test.run();
