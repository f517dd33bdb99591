// Our drift statistics against Evidently's on a fixed case (server/test/fixtures/evidently-drift.json, made by
// make-evidently-fixtures.py with Evidently 0.7.23 from the drift bench's pinned environment): where both compute a
// method the same way, the same score and the same verdict; where they differ by construction, the exact relation.
// The full comparison on the example model's profile is bench/results/drift-peers.md.
// test: no cluster
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type CategoricalStatistics,
  DEFAULT_DRIFT_OPTIONS,
  DEFAULT_THRESHOLDS,
  type DriftMethod,
  featureDrift,
  type FeatureReference,
  isPValueMethod,
  type NumericStatistics,
} from '../src/drift/detector.ts';
import { binShares } from '../src/drift/statistics.ts';

interface EvidentlyResult {
  method: string;
  threshold: number;
  score: number;
  drifted: boolean;
}
interface Fixture {
  versions: Record<string, string>;
  reference: {
    rows: number;
    numeric: Record<string, { values: number[]; std: number; mean: number; decileEdges: number[] }>;
    categorical: Record<string, Record<string, number>>;
  };
  windows: Array<{
    name: string;
    columns: Record<string, number[]>;
    evidently: Record<string, { default: EvidentlyResult; methods: Record<string, EvidentlyResult> }>;
  }>;
}
const fixture = JSON.parse(
  readFileSync(new URL('./fixtures/evidently-drift.json', import.meta.url), 'utf8'),
) as Fixture;

/** Our profile of the fixture's reference, as the trainer would write it (std: the population std Evidently uses too). */
const reference: Record<string, FeatureReference> = {};
for (const [name, r] of Object.entries(fixture.reference.numeric)) {
  reference[name] = {
    name,
    type: 'numeric',
    missingRate: 0,
    sample: r.values,
    std: r.std,
    mean: r.mean,
    binEdges: r.decileEdges,
    binFrequencies: binShares(r.values, r.decileEdges),
    quantiles: {},
  };
}
for (const [name, counts] of Object.entries(fixture.reference.categorical)) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  reference[name] = {
    name,
    type: 'categorical',
    missingRate: 0,
    frequencies: Object.fromEntries(Object.entries(counts).map(([c, n]) => [c, n / total])),
  };
}
const ours = (window: Fixture['windows'][number], feature: string) =>
  featureDrift(reference[feature], Float64Array.from(window.columns[feature]), 0, DEFAULT_DRIFT_OPTIONS);
const verdict = (method: DriftMethod, score: number) =>
  isPValueMethod(method) ? score < DEFAULT_THRESHOLDS[method] : score >= DEFAULT_THRESHOLDS[method];
function close(actual: number, expected: number, what: string, relative = 1e-9): void {
  assert.ok(
    Math.abs(actual - expected) <= relative * Math.max(Math.abs(expected), 1e-300),
    `${what}: ours ${actual}, Evidently ${expected}`,
  );
}

test('the fixture was made by the pinned Evidently', () => {
  assert.is(fixture.versions.evidently, '0.7.23');
  assert.ok(
    fixture.reference.rows > 1000,
    'a reference above 1 000 rows, where Evidently defaults to Wasserstein and Jensen-Shannon',
  );
});

test("KS p-value, normed Wasserstein, chi-square p-value and categorical PSI equal Evidently's, with the same verdicts", () => {
  for (const window of fixture.windows) {
    for (const feature of ['x', 'k']) {
      const stats = ours(window, feature).statistics as NumericStatistics;
      const theirs = window.evidently[feature].methods;
      close(stats.ksPValue, theirs.ks.score, `${window.name} ${feature} KS p-value`);
      close(stats.wasserstein, theirs.wasserstein.score, `${window.name} ${feature} normed Wasserstein`);
      assert.is(verdict('ks', stats.ksPValue), theirs.ks.drifted, `${window.name} ${feature} KS verdict`);
      assert.is(
        verdict('wasserstein', stats.wasserstein),
        theirs.wasserstein.drifted,
        `${window.name} ${feature} Wasserstein verdict`,
      );
    }
    const stats = ours(window, 'c').statistics as CategoricalStatistics;
    const theirs = window.evidently.c.methods;
    close(stats.chiSquarePValue, theirs.chisquare.score, `${window.name} chi-square p-value`);
    close(stats.psi, theirs.psi.score, `${window.name} categorical PSI`);
    assert.is(
      verdict('chisquare', stats.chiSquarePValue),
      theirs.chisquare.drifted,
      `${window.name} chi-square verdict`,
    );
    assert.is(verdict('psi', stats.psi), theirs.psi.drifted, `${window.name} categorical PSI verdict`);
  }
});

test("categorical Jensen-Shannon: the same distance, ours in bits and Evidently's in nats", () => {
  for (const window of fixture.windows) {
    const stats = ours(window, 'c').statistics as CategoricalStatistics;
    close(
      stats.jensenShannon * Math.sqrt(Math.LN2),
      window.evidently.c.methods.jensenshannon.score,
      `${window.name} Jensen-Shannon x sqrt(ln 2)`,
    );
  }
});

test('the detected drift of the shifted window and none in the unshifted one, by both', () => {
  const [shifted, unshifted] = fixture.windows;
  for (const feature of ['x', 'k', 'c']) {
    assert.ok(
      ours(shifted, feature).drifted && shifted.evidently[feature].default.drifted,
      `${feature} drifted in ${shifted.name}`,
    );
    assert.ok(
      !ours(unshifted, feature).drifted && !unshifted.evidently[feature].default.drifted,
      `${feature} steady in ${unshifted.name}`,
    );
  }
});

test('above 1 000 window rows both pick normed Wasserstein for numbers and Jensen-Shannon for categories; below, ours picks KS and chi-square', () => {
  const [small, large] = fixture.windows;
  assert.ok(
    small.columns.x.length <= DEFAULT_DRIFT_OPTIONS.largeWindow &&
      large.columns.x.length > DEFAULT_DRIFT_OPTIONS.largeWindow,
  );
  for (const window of fixture.windows) {
    assert.is(window.evidently.x.default.method, 'Wasserstein distance (normed)');
    assert.is(window.evidently.c.default.method, 'Jensen-Shannon distance');
  }
  assert.is(ours(large, 'x').method, 'wasserstein');
  assert.is(ours(large, 'c').method, 'jensenshannon');
  close(ours(large, 'x').score, large.evidently.x.default.score, 'default numeric score, large window');
  assert.is(ours(small, 'x').method, 'ks');
  assert.is(ours(small, 'c').method, 'chisquare');
});

test.run();
