// Drift windows and decisions: windows close by count (splitting a request across two
// windows) and by time, NaN counts as missing, an unchanged distribution does not drift,
// a shifted one does, and the share of drifted features decides the window.
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_DRIFT_OPTIONS, evaluateWindow, featureDrift } from '../src/drift/detector.ts';
import { DriftMonitor, type DriftReport } from '../src/drift/monitor.ts';
import { configFromEnv } from '../src/config.ts';
import type { NumericFeatureProfile } from '../src/drift/profile.ts';
import { normal, random, referenceProfile } from './support/model.ts';

const profile = referenceProfile(3, 21);

function rows(n: number, seed: number, shift = 0, region = () => 0): Float64Array {
  const rand = random(seed);
  const out = new Float64Array(n * 4);
  for (let i = 0; i < n; i++) {
    out[i * 4] = normal(rand, shift);
    out[i * 4 + 1] = normal(rand);
    out[i * 4 + 2] = normal(rand);
    out[i * 4 + 3] = region();
  }
  return out;
}

function monitor(windowSize: number, windowSeconds: number, reports: DriftReport[]): DriftMonitor {
  return new DriftMonitor(profile, {
    model: 'credit',
    modelVersion: '1',
    windowSize,
    windowSeconds,
    drift: DEFAULT_DRIFT_OPTIONS,
    onReport: (r) => reports.push(r),
    onError: (e) => {
      throw e;
    },
  });
}

const until = async (check: () => boolean, ms = 5000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

test('windows close by count, a request spanning two windows is split between them', async () => {
  const reports: DriftReport[] = [];
  const m = monitor(100, 60, reports);
  m.record(rows(70, 1), 70);
  m.record(rows(70, 2), 70);
  await until(() => reports.length === 1);
  assert.is(reports[0].window.rows, 100);
  assert.is(reports[0].window.closedBy, 'count');
  await m.stop('shutdown');
  assert.is(reports.length, 2);
  assert.is(reports[1].window.rows, 40);
  assert.is(reports[1].window.closedBy, 'shutdown');
});

test('windows closed in every turn are evaluated as fast as they close, not one feature per turn', async () => {
  // 20 turns each closing 5 windows of 100 rows: evaluating one feature per turn (4 features here) would have
  // reported about 6 windows by the end; evaluated in slices of up to SLICE_MS per turn, nearly all are.
  const reports: DriftReport[] = [];
  const m = monitor(100, 60, reports);
  const data = rows(500, 9);
  const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
  for (let t = 0; t < 20; t++) {
    m.record(data, 500);
    await turn();
  }
  for (let t = 0; t < 5; t++) await turn();
  assert.ok(reports.length >= 50, `reported ${reports.length} of 100 windows 25 turns after the first closed`);
  await m.stop('shutdown');
  assert.is(reports.length, 100);
  assert.ok(
    reports.every(
      (r, i) =>
        r.window.rows === 100 && r.features.length === 4 && (i === 0 || r.window.start >= reports[i - 1].window.start),
    ),
    'every window reported once, in order, with every feature',
  );
  assert.equal(reports[99].features, reports[4].features, 'the same rows give the same statistics in a reused buffer');
});

test('windows close by time when they have rows', async () => {
  const reports: DriftReport[] = [];
  const m = monitor(1000, 1, reports);
  m.record(rows(10, 3), 10);
  await until(() => reports.length === 1, 3000);
  assert.is(reports[0].window.closedBy, 'time');
  assert.is(reports[0].window.rows, 10);
  await m.stop('shutdown');
  assert.is(reports.length, 1, 'an empty window is not reported');
});

test('a window with fewer than minRows rows is reported with its statistics but never judged drifted', () => {
  const columns = (data: Float64Array, n: number) =>
    [0, 1, 2, 3].map((j) => Float64Array.from({ length: n }, (_, i) => data[i * 4 + j]));
  const small = columns(
    rows(40, 6, 3, () => 2),
    40,
  );
  const unjudged = evaluateWindow(profile, small, DEFAULT_DRIFT_OPTIONS);
  assert.is(unjudged.judged, false);
  assert.is(unjudged.drifted, false);
  assert.ok(unjudged.driftedFeatures.includes('x0'), 'the per-feature results are still there');
  const judged = evaluateWindow(profile, small, { ...DEFAULT_DRIFT_OPTIONS, minRows: 40 });
  assert.is(judged.judged, true);
  assert.is(judged.drifted, true);
});

test('configuration: DRIFT_MIN_ROWS defaults to min(100, DRIFT_WINDOW_SIZE) and can be set', () => {
  const base = {
    MODEL_NAME: 'm',
    MODEL_VERSION: '1',
    MODEL_URI: 'file:///m.onnx',
    MODEL_DIGEST: `sha256:${'a'.repeat(64)}`,
  };
  assert.is(configFromEnv(base).drift.minRows, 100);
  assert.is(configFromEnv({ ...base, DRIFT_WINDOW_SIZE: '50' }).drift.minRows, 50);
  assert.is(configFromEnv({ ...base, DRIFT_MIN_ROWS: '10' }).drift.minRows, 10);
});

test('the same distribution does not drift; a shifted feature and a tilted category do', () => {
  const columns = (data: Float64Array, n: number) =>
    [0, 1, 2, 3].map((j) => Float64Array.from({ length: n }, (_, i) => data[i * 4 + j]));
  const calm = evaluateWindow(
    profile,
    columns(
      rows(
        500,
        4,
        0,
        (() => {
          let i = 0;
          return () => [0, 0, 0, 0, 0, 1, 1, 1, 2, 2][i++ % 10];
        })(),
      ),
      500,
    ),
    DEFAULT_DRIFT_OPTIONS,
  );
  assert.is(calm.drifted, false, JSON.stringify(calm.driftedFeatures));
  assert.equal(calm.driftedFeatures, []);
  const moved = evaluateWindow(
    profile,
    columns(
      rows(500, 5, 1.5, () => 2),
      500,
    ),
    DEFAULT_DRIFT_OPTIONS,
  );
  assert.equal(moved.driftedFeatures, ['x0', 'region']);
  assert.is(moved.score, 0.5);
  assert.is(moved.drifted, true, 'half the features drifted: the default share');
  assert.is(
    evaluateWindow(
      profile,
      columns(
        rows(500, 5, 1.5, () => 2),
        500,
      ),
      { ...DEFAULT_DRIFT_OPTIONS, driftShare: 0.75 },
    ).drifted,
    false,
  );
});

test('large windows switch numeric features to normed Wasserstein and categorical to Jensen–Shannon', () => {
  const data = rows(1500, 6);
  const x1 = Float64Array.from({ length: 1500 }, (_, i) => data[i * 4 + 1]);
  const numeric = featureDrift(profile.features[1], x1, 0, DEFAULT_DRIFT_OPTIONS);
  assert.is(numeric.method, 'wasserstein');
  assert.is(numeric.threshold, 0.1);
  assert.is(numeric.drifted, numeric.score >= 0.1);
  const categorical = featureDrift(profile.features[3], new Float64Array(1500).fill(1), 0, DEFAULT_DRIFT_OPTIONS);
  assert.is(categorical.method, 'jensenshannon');
  assert.ok(categorical.drifted);
});

test('NaN cells count as missing and a missing-rate change of 0.1 or more drifts the feature', () => {
  const values = Float64Array.from({ length: 80 }, (_, i) => (profile.features[0] as NumericFeatureProfile).sample[i]);
  const fine = featureDrift(profile.features[0], values, 5, DEFAULT_DRIFT_OPTIONS);
  assert.ok(Math.abs(fine.missingRate.current - 5 / 85) < 1e-12);
  assert.is(fine.drifted, false);
  const missing = featureDrift(profile.features[0], values, 20, DEFAULT_DRIFT_OPTIONS);
  assert.is(missing.missingRate.current, 0.2);
  assert.is(missing.drifted, true);
});

test.run();
