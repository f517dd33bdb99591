// The evaluator's canary comparison (--canary, --stable, --since) on ground-truth files in the documented layout
// (file://), DuckDB doing the sums: DeLong's AUC and variance and the counts equal the independent O(m·n)
// computation of server/test/fixtures/quality.json (make-quality-fixtures.py, scipy) to 1e-9, and the one-sided
// test made from them gives the fixture's z and p. Stable's predictions from before the canary started do not
// count, and the window's per-version quality is unchanged by the comparison.
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { comparePaired, compareSides, comparisonSide, pairedSide } from '../../../server/src/quality/compare.ts';
import { psi } from '../../../server/src/drift/statistics.ts';
import { qualityEventData, qualityCloudEvent } from '../../events/quality-event.ts';
import { evaluateQuality, runEvaluate } from '../evaluate.ts';
import { inferenceLogPart, labelPart, type LoggedRow } from '../../../test/support/ground-truth.ts';

interface Side {
  scores: number[];
  labels: number[];
}
const fixtures = JSON.parse(
  readFileSync(new URL('../../../server/test/fixtures/quality.json', import.meta.url), 'utf8'),
) as {
  comparisons: Array<{
    name: string;
    metric: 'auc' | 'accuracy';
    maxDrop: number;
    canary: Side;
    stable: Side;
    expected: Record<string, number>;
  }>;
  paired: {
    maxDrop: number;
    labels: number[];
    canaryScores: number[];
    stableScores: number[];
    expected: Record<string, number>;
  };
};

const ns = 'risk';
const service = 'fraud';
const end = new Date('2026-12-01T12:00:00Z');
const endMs = end.getTime();
const MINUTE = 60_000;
const since = new Date(endMs - 90 * MINUTE);
let root: string;
let base: string;

function put(file: { key: string; body: Uint8Array }): void {
  const path = join(root, file.key);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, file.body);
}

function close(actual: number | null | undefined, expected: number, what: string, relative = 1e-9) {
  assert.ok(actual !== null && actual !== undefined, `${what}: ${actual}, expected ${expected}`);
  const error = Math.abs(actual! - expected) / Math.max(Math.abs(expected), 1e-300);
  assert.ok(error <= relative, `${what}: ${actual} vs ${expected} (relative error ${error})`);
}

/** Fixture case i as versions 2i+1 (stable) and 2i+2 (canary), logged after `since` and labelled. */
function logCase(i: number): void {
  const c = fixtures.comparisons[i]!;
  for (const [version, side] of [
    [2 * i + 1, c.stable],
    [2 * i + 2, c.canary],
  ] as const) {
    const rows: LoggedRow[] = side.scores.map((score, j) => ({
      requestId: `v${version}-${j}`,
      // Spread over the last 80 minutes: beyond a 1h window, after the canary's start.
      time: endMs - 80 * MINUTE + j * 1000,
      model: service,
      version,
      score,
    }));
    put(inferenceLogPart(ns, service, rows, 'predictor-a', version));
    put(
      labelPart(
        ns,
        service,
        side.labels.map((label, j) => ({ requestId: `v${version}-${j}`, label, time: endMs - MINUTE })),
      ),
    );
  }
}

test.before(() => {
  root = mkdtempSync(join(tmpdir(), 'loopline-compare-test-'));
  base = pathToFileURL(root).href;
  fixtures.comparisons.forEach((_, i) => logCase(i));
  // Stable (version 1) answered these before the canary started: perfectly ranked, they would lift its AUC.
  const before: LoggedRow[] = Array.from({ length: 400 }, (_, j) => ({
    requestId: `v1-before-${j}`,
    time: since.getTime() - 10 * MINUTE + j,
    model: service,
    version: 1,
    score: j % 2 === 0 ? 0.99 : 0.01,
  }));
  put(inferenceLogPart(ns, service, before, 'predictor-a', 99));
  put(
    labelPart(
      ns,
      service,
      before.map((r, j) => ({ requestId: r.requestId, label: j % 2 === 0 ? 1 : 0, time: endMs - MINUTE })),
    ),
  );
});

test.after(() => rmSync(root, { recursive: true, force: true }));

const evaluate = (canary: number, stable: number, window = '1h') =>
  evaluateQuality({
    namespace: ns,
    service,
    uri: base,
    window,
    threshold: 0.5,
    end,
    compare: { canary, stable, since },
  });

test("DuckDB's DeLong AUC, its variance and the counts equal the independent computation to 1e-9", async () => {
  for (const [i, c] of fixtures.comparisons.entries()) {
    if (c.metric !== 'auc') continue;
    const data = await evaluate(2 * i + 2, 2 * i + 1);
    const comparison = data.comparison!;
    assert.equal([comparison.canaryVersion, comparison.stableVersion], [2 * i + 2, 2 * i + 1]);
    assert.is(comparison.since, since.toISOString());
    assert.is(comparison.canary.count, c.canary.scores.length, c.name);
    assert.is(comparison.stable.count, c.stable.scores.length, c.name);
    close(comparison.canary.auc, c.expected.canary!, `${c.name}: canary AUC`);
    close(comparison.stable.auc, c.expected.stable!, `${c.name}: stable AUC`);
    close(comparison.canary.aucVariance, c.expected.canaryVariance!, `${c.name}: canary variance`);
    close(comparison.stable.aucVariance, c.expected.stableVariance!, `${c.name}: stable variance`);
    // And equal to what compare.ts computes from the rows in JavaScript.
    assert.equal(
      { ...comparison.canary, auc: null, aucVariance: null },
      { ...comparisonSide(c.canary), auc: null, aucVariance: null },
    );
    const verdict = compareSides(comparison.canary, comparison.stable, {
      metric: 'auc',
      maxDrop: c.maxDrop,
      minLabels: 100,
      confidence: 0.95,
    });
    close(verdict.z, c.expected.z!, `${c.name}: z`);
    close(verdict.pValue, c.expected.pValue!, `${c.name}: p`);
  }
});

test("the two-proportion test on the evaluator's counts gives the fixture's z and p; errorRate is the same test", async () => {
  const i = fixtures.comparisons.findIndex((c) => c.metric === 'accuracy');
  const c = fixtures.comparisons[i]!;
  const { comparison } = await evaluate(2 * i + 2, 2 * i + 1);
  const options = { maxDrop: c.maxDrop, minLabels: 100, confidence: 0.95 };
  const accuracy = compareSides(comparison!.canary, comparison!.stable, { ...options, metric: 'accuracy' });
  close(accuracy.canary, c.expected.canary!, 'canary accuracy');
  close(accuracy.z, c.expected.z!, 'z');
  close(accuracy.pValue, c.expected.pValue!, 'p');
  const errorRate = compareSides(comparison!.canary, comparison!.stable, { ...options, metric: 'errorRate' });
  close(errorRate.canary, 1 - c.expected.canary!, 'canary error rate');
  close(errorRate.pValue, c.expected.pValue!, 'p of the error rate');
  assert.is(errorRate.verdict, 'worse');
  assert.match(
    errorRate.reason,
    /^errorRate canary 0\.4300 vs stable 0\.3380 \(1500 vs 1500 labels\), drop 0\.0920: worse/,
  );
});

test("stable's predictions before --since are left out of the comparison, not out of the window's quality", async () => {
  const data = await evaluate(2, 1, 'all');
  const stable = fixtures.comparisons[0]!.stable;
  assert.is(data.comparison!.stable.count, stable.scores.length);
  assert.is(data.versions.find((v) => v.version === 1)!.count, stable.scores.length + 400);
  // A 1h window reads the parts since --since too, yet its own quality counts only the last hour.
  const third = fixtures.comparisons[2]!.stable;
  const hour = await evaluate(6, 5, '1h');
  const inHour = third.scores.filter((_, j) => endMs - 80 * MINUTE + j * 1000 > endMs - 60 * MINUTE).length;
  assert.ok(inHour > 0 && inHour < third.scores.length);
  assert.is(hour.versions.find((v) => v.version === 5)!.count, inHour);
  assert.is(hour.comparison!.stable.count, third.scores.length);
  // The event carrying it passes the contract check.
  assert.equal(qualityEventData(qualityCloudEvent(hour)).comparison, hour.comparison);
});

test('a canary with no labelled predictions yet compares as zero labels, not as an error', async () => {
  const data = await evaluate(42, 1);
  assert.equal(data.comparison!.canary, { count: 0, positives: 0, correct: 0, auc: null, aucVariance: null });
  assert.is(
    compareSides(data.comparison!.canary, data.comparison!.stable, {
      metric: 'auc',
      maxDrop: 0.02,
      minLabels: 200,
      confidence: 0.95,
    }).verdict,
    'insufficient',
  );
});

test('in shadow mode the requests both versions answered are paired: flipped decisions and the PSI of their scores', async () => {
  // Versions 90 (stable) and 91 (canary) answered the same 500 requests; 100 more only stable answered.
  const noise = (j: number) => ((j * 7919) % 1000) / 1000;
  const stableRows: LoggedRow[] = Array.from({ length: 600 }, (_, j) => ({
    requestId: `shadow-${j}`,
    time: endMs - 30 * MINUTE + j,
    model: service,
    version: 90,
    score: noise(j),
  }));
  // The canary scores a third of them higher: some cross the threshold.
  const canaryRows: LoggedRow[] = stableRows.slice(0, 500).map((r, j) => ({
    ...r,
    version: 91,
    score: j % 3 === 0 ? Math.min(1, r.score + 0.3) : r.score,
  }));
  put(inferenceLogPart(ns, service, stableRows, 'predictor-a', 90));
  put(inferenceLogPart(ns, service, canaryRows, 'predictor-b', 91));
  const { comparison } = await evaluate(91, 90);
  const paired = comparison!.paired!;
  const flipped = canaryRows.filter((r, j) => r.score >= 0.5 !== stableRows[j]!.score >= 0.5).length;
  const shares = (scores: number[]) => {
    const bins = new Array(10).fill(0);
    for (const x of scores) bins[Math.min(Math.floor(x * 10), 9)]++;
    return bins.map((n) => n / scores.length);
  };
  const expectedPsi = psi(shares(stableRows.slice(0, 500).map((r) => r.score)), shares(canaryRows.map((r) => r.score)));
  assert.equal([paired.pairs, paired.flipped], [500, flipped]);
  assert.ok(flipped > 20, `flipped ${flipped}`);
  close(paired.scorePsi, expectedPsi, 'score PSI');
  // Versions that never answered the same request have no pairs.
  assert.equal((await evaluate(2, 1)).comparison!.paired, { pairs: 0, flipped: 0, scorePsi: null });
});

test("shadow mode's labelled pairs: DuckDB's paired DeLong variance and right-counts equal the independent computation to 1e-9", async () => {
  // Versions 80 (stable) and 81 (canary) answered the same 600 labelled requests; 50 more only stable answered.
  const p = fixtures.paired;
  const rows = (version: number, scores: number[]): LoggedRow[] =>
    scores.map((score, j) => ({
      requestId: `pair-${j}`,
      time: endMs - 40 * MINUTE + j,
      model: service,
      version,
      score,
    }));
  const extra = Array.from({ length: 50 }, (_, j) => ({
    requestId: `stable-only-${j}`,
    time: endMs - 40 * MINUTE + j,
    model: service,
    version: 80,
    score: j % 2 === 0 ? 0.95 : 0.05,
  }));
  put(inferenceLogPart(ns, service, [...rows(80, p.stableScores), ...extra], 'predictor-a', 80));
  put(inferenceLogPart(ns, service, rows(81, p.canaryScores), 'predictor-b', 81));
  put(
    labelPart(ns, service, [
      ...p.labels.map((label, j) => ({ requestId: `pair-${j}`, label, time: endMs - MINUTE })),
      ...extra.map((r, j) => ({ requestId: r.requestId, label: j % 2 === 0 ? 1 : 0, time: endMs - MINUTE })),
    ]),
  );
  const data = await evaluate(81, 80);
  const labelled = data.comparison!.paired!.labelled!;
  assert.is(data.comparison!.paired!.pairs, p.labels.length);
  assert.is(data.comparison!.stable.count, p.labels.length + extra.length, 'the unpaired side counts every request');
  assert.is(labelled.count, p.labels.length, 'the paired side only the shared ones');
  close(labelled.canaryAuc, p.expected.canary!, 'canary AUC');
  close(labelled.stableAuc, p.expected.stable!, 'stable AUC');
  close(labelled.aucDifferenceVariance, p.expected.aucDifferenceVariance!, 'variance of the AUC difference');
  close(
    labelled.accuracyDifferenceVariance,
    p.expected.accuracyDifferenceVariance!,
    'variance of the right-difference',
  );
  const fromArrays = pairedSide(p.labels, p.canaryScores, p.stableScores);
  assert.equal([labelled.canaryCorrect, labelled.stableCorrect], [fromArrays.canaryCorrect, fromArrays.stableCorrect]);
  const verdict = comparePaired(labelled, { metric: 'auc', maxDrop: p.maxDrop, minLabels: 100, confidence: 0.95 });
  close(verdict.z, p.expected.z!, 'paired z');
  close(verdict.pValue, p.expected.pValue!, 'paired p');
  // The event carrying it passes the contract check.
  assert.equal(qualityEventData(qualityCloudEvent(data)).comparison, data.comparison);
  // Unlabelled pairs (the earlier shadow test's) give a paired side of zero labels.
  assert.equal((await evaluate(91, 90)).comparison!.paired!.labelled, {
    count: 0,
    canaryCorrect: 0,
    stableCorrect: 0,
    accuracyDifferenceVariance: null,
    canaryAuc: null,
    stableAuc: null,
    aucDifferenceVariance: null,
  });
});

test('--canary, --stable and --since go together and are checked, naming the option', async () => {
  const lines: string[] = [];
  const out = (line: string) => lines.push(line);
  const args = ['--namespace', ns, '--service', service, '--uri', base];
  assert.is(await runEvaluate([...args, '--canary', '2'], out, {}), 2);
  assert.match(lines.at(-1)!, /--canary, --stable and --since go together; --canary given/);
  assert.is(
    await runEvaluate([...args, '--canary', 'two', '--stable', '1', '--since', since.toISOString()], out, {}),
    2,
  );
  assert.match(lines.at(-1)!, /--canary "two" is not a version number/);
  assert.is(await runEvaluate([...args, '--canary', '2', '--stable', '1', '--since', 'yesterday'], out, {}), 2);
  assert.match(lines.at(-1)!, /--since "yesterday" is not a time/);
  assert.is(
    await runEvaluate(
      [...args, '--canary', '2', '--stable', '1', '--since', since.toISOString(), '--end', end.toISOString()],
      out,
      {},
    ),
    0,
  );
  const printed = JSON.parse(lines.at(-1)!);
  assert.is(printed.comparison.canary.count, fixtures.comparisons[0]!.canary.scores.length);
});

test.run();
