// Is the canary worse than stable? One-sided tests on the labels of the same window, asking whether the canary's
// quality is below stable's by more than the tolerated drop, with the stated confidence:
//   AUC: DeLong's test (DeLong, DeLong & Clarke-Pearson 1988; the fast form of Sun & Xu 2014) on the two
//        versions' own requests, or paired on the same requests when shadow mode scored both;
//   accuracy and errorRate: a one-sided two-proportion z-test on the error rates (unpooled, as a margin requires),
//        or the paired z-test on the per-request difference of being right when shadow mode scored both.
// Too few labels is no verdict: the rollout waits, as it does for too few requests.
import { normalCdf } from './normal.ts';

export type QualityVerdict = 'worse' | 'notWorse' | 'insufficient';

/** auc and accuracy must not fall, errorRate (1 - accuracy, the same test) must not rise, by more than maxDrop. */
export type ComparedMetric = 'auc' | 'accuracy' | 'errorRate';

export interface QualityComparison {
  metric: ComparedMetric;
  verdict: QualityVerdict;
  canary: number | null;
  stable: number | null;
  /** Labelled predictions behind each side. */
  canaryCount: number;
  stableCount: number;
  /** The test statistic, and the one-sided p-value of "canary worse by more than maxDrop" (null without a test). */
  z: number | null;
  pValue: number | null;
  /** Why the verdict is what it is, with the numbers, for status and Events. */
  reason: string;
}

export interface CompareOptions {
  metric: ComparedMetric;
  /** How much worse than stable the canary may be (absolute, e.g. 0.02 AUC). */
  maxDrop: number;
  /** Labelled predictions each side needs before a verdict. */
  minLabels: number;
  /** e.g. 0.95: roll back only when p < 1 - confidence. */
  confidence: number;
  threshold?: number;
}

export interface Labelled {
  scores: ArrayLike<number>;
  labels: ArrayLike<number>;
}

/**
 * What the unpaired tests need of one version's labelled predictions: counts, and the AUC with DeLong's variance
 * (null with fewer than two labels of either class). The evaluator forms it in SQL (operator/quality/join.ts)
 * without rows reaching JavaScript; `comparisonSide` forms it from arrays.
 */
export interface ComparisonSide {
  count: number;
  positives: number;
  /** Decisions at the threshold that match the label. */
  correct: number;
  auc: number | null;
  aucVariance: number | null;
}

/** Mid-ranks (1-based, ties share their mean rank) of values. */
function midRanks(values: ArrayLike<number>): Float64Array {
  const n = values.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[a] - values[b]);
  const ranks = new Float64Array(n);
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && values[order[j + 1]] === values[order[i]]) j++;
    for (let k = i; k <= j; k++) ranks[order[k]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return ranks;
}

interface Placements {
  auc: number;
  /** Structural components: per positive, the share of negatives scored below it; per negative, of positives above. */
  v10: Float64Array;
  v01: Float64Array;
}

function placements(scores: ArrayLike<number>, labels: ArrayLike<number>): Placements | undefined {
  const positives: number[] = [];
  const negatives: number[] = [];
  for (let i = 0; i < scores.length; i++) (labels[i] === 1 ? positives : negatives).push(scores[i]);
  const m = positives.length,
    n = negatives.length;
  if (m < 2 || n < 2) return undefined;
  const all = midRanks([...positives, ...negatives]);
  const withinPositives = midRanks(positives);
  const withinNegatives = midRanks(negatives);
  const v10 = new Float64Array(m),
    v01 = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < m; i++) sum += v10[i] = (all[i] - withinPositives[i]) / n;
  for (let j = 0; j < n; j++) v01[j] = 1 - (all[m + j] - withinNegatives[j]) / m;
  return { auc: sum / m, v10, v01 };
}

function covariance(a: Float64Array, b: Float64Array): number {
  const n = a.length;
  let meanA = 0,
    meanB = 0;
  for (let i = 0; i < n; i++) {
    meanA += a[i];
    meanB += b[i];
  }
  meanA /= n;
  meanB /= n;
  let s = 0;
  for (let i = 0; i < n; i++) s += (a[i] - meanA) * (b[i] - meanB);
  return s / (n - 1);
}

/** DeLong's AUC and its variance for one version's labelled predictions (undefined with < 2 of either class). */
export function deLongAuc(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
): { auc: number; variance: number } | undefined {
  const p = placements(scores, labels);
  if (!p) return undefined;
  return { auc: p.auc, variance: covariance(p.v10, p.v10) / p.v10.length + covariance(p.v01, p.v01) / p.v01.length };
}

const fmt = (x: number) => (Math.abs(x) >= 0.001 || x === 0 ? x.toFixed(4) : x.toExponential(2));

/** `canary` and `stable` in the metric's own direction; `se` the standard error of their difference. */
function judge(
  options: Omit<CompareOptions, 'threshold'>,
  canary: number,
  stable: number,
  se: number,
  counts: { canaryCount: number; stableCount: number },
  test = options.metric === 'auc' ? "DeLong's test" : 'two-proportion z-test',
): QualityComparison {
  // How much worse the canary is: a fall of AUC or accuracy, a rise of the error rate.
  const drop = options.metric === 'errorRate' ? canary - stable : stable - canary;
  // H0: the canary is at most maxDrop worse. A small p means it is worse by more than that.
  const z = se > 0 ? (options.maxDrop - drop) / se : drop > options.maxDrop ? -Infinity : Infinity;
  const pValue = normalCdf(z);
  const alpha = 1 - options.confidence;
  const verdict: QualityVerdict = pValue < alpha ? 'worse' : 'notWorse';
  const reason =
    `${options.metric} canary ${fmt(canary)} vs stable ${fmt(stable)} (${counts.canaryCount} vs ${counts.stableCount} labels), drop ${fmt(drop)}: ` +
    `${verdict === 'worse' ? 'worse' : 'not shown worse'} by more than maxDrop ${options.maxDrop} at ${options.confidence} confidence (${test}, z ${z.toFixed(3)}, p ${fmt(pValue)})`;
  return { metric: options.metric, verdict, canary, stable, ...counts, z, pValue, reason };
}

function insufficient(
  options: Pick<CompareOptions, 'metric'>,
  counts: { canaryCount: number; stableCount: number },
  why: string,
  canary: number | null = null,
  stable: number | null = null,
): QualityComparison {
  return {
    metric: options.metric,
    verdict: 'insufficient',
    canary,
    stable,
    ...counts,
    z: null,
    pValue: null,
    reason: `${options.metric}: ${why}; waiting for labels`,
  };
}

/** One version's side of the comparison from its labelled predictions. */
export function comparisonSide(side: Labelled, threshold = 0.5): ComparisonSide {
  const n = side.scores.length;
  let positives = 0,
    correct = 0;
  for (let i = 0; i < n; i++) {
    positives += side.labels[i] === 1 ? 1 : 0;
    correct += (side.scores[i] >= threshold ? 1 : 0) === side.labels[i] ? 1 : 0;
  }
  const d = n > 0 ? deLongAuc(side.scores, side.labels) : undefined;
  return { count: n, positives, correct, auc: d?.auc ?? null, aucVariance: d?.variance ?? null };
}

/** The canary against stable, each on its own requests of the window, from what each side's labels sum to. */
export function compareSides(
  canary: ComparisonSide,
  stable: ComparisonSide,
  options: Omit<CompareOptions, 'threshold'>,
): QualityComparison {
  const counts = { canaryCount: canary.count, stableCount: stable.count };
  if (counts.canaryCount < options.minLabels || counts.stableCount < options.minLabels) {
    return insufficient(
      options,
      counts,
      `${counts.canaryCount} canary and ${counts.stableCount} stable labels, ${options.minLabels} needed on each side`,
    );
  }
  if (options.metric === 'auc') {
    if (canary.auc === null || stable.auc === null || canary.aucVariance === null || stable.aucVariance === null)
      return insufficient(
        options,
        counts,
        'AUC needs at least two labels of each class on each side',
        canary.auc,
        stable.auc,
      );
    return judge(options, canary.auc, stable.auc, Math.sqrt(canary.aucVariance + stable.aucVariance), counts);
  }
  const ac = canary.correct / canary.count,
    as = stable.correct / stable.count;
  // Unpooled: under H0 the two rates differ by maxDrop, so no common rate exists to pool.
  const se = Math.sqrt((ac * (1 - ac)) / canary.count + (as * (1 - as)) / stable.count);
  return options.metric === 'errorRate'
    ? judge(options, 1 - ac, 1 - as, se, counts)
    : judge(options, ac, as, se, counts);
}

/** The canary against stable, each on its own requests of the window. */
export function compareQuality(canary: Labelled, stable: Labelled, options: CompareOptions): QualityComparison {
  return compareSides(comparisonSide(canary, options.threshold), comparisonSide(stable, options.threshold), options);
}

/**
 * What the paired tests need of the labelled requests both versions answered (shadow mode mirrors each request to
 * the canary, so the two answers share a request id and a label): the variance of the difference, which the
 * correlation of the two versions' answers on the same requests makes far smaller than the unpaired sum. The
 * evaluator forms it in SQL (operator/quality/join.ts); `pairedSide` forms it from arrays.
 */
export interface PairedSide {
  /** Labelled requests both versions answered. */
  count: number;
  /** Of them, those each version decided right at the threshold. */
  canaryCorrect: number;
  stableCorrect: number;
  /** The sample variance of (canary right) - (stable right) over them, per request; null with fewer than 2. */
  accuracyDifferenceVariance: number | null;
  /** Each one's AUC over them and DeLong's variance of the difference; null with < 2 labels of either class. */
  canaryAuc: number | null;
  stableAuc: number | null;
  aucDifferenceVariance: number | null;
}

/** The paired side from the shared requests' labels and each version's scores of them. */
export function pairedSide(
  labels: ArrayLike<number>,
  canaryScores: ArrayLike<number>,
  stableScores: ArrayLike<number>,
  threshold = 0.5,
): PairedSide {
  const n = labels.length;
  const difference = new Float64Array(n);
  let canaryCorrect = 0,
    stableCorrect = 0;
  for (let i = 0; i < n; i++) {
    const c = (canaryScores[i] >= threshold ? 1 : 0) === labels[i] ? 1 : 0;
    const s = (stableScores[i] >= threshold ? 1 : 0) === labels[i] ? 1 : 0;
    canaryCorrect += c;
    stableCorrect += s;
    difference[i] = c - s;
  }
  const c = placements(canaryScores, labels);
  const s = placements(stableScores, labels);
  let aucDifferenceVariance: number | null = null;
  if (c && s) {
    const d10 = c.v10.map((v, i) => v - s.v10[i]);
    const d01 = c.v01.map((v, i) => v - s.v01[i]);
    aucDifferenceVariance = covariance(d10, d10) / d10.length + covariance(d01, d01) / d01.length;
  }
  return {
    count: n,
    canaryCorrect,
    stableCorrect,
    accuracyDifferenceVariance: n >= 2 ? covariance(difference, difference) : null,
    canaryAuc: c?.auc ?? null,
    stableAuc: s?.auc ?? null,
    aucDifferenceVariance,
  };
}

/**
 * The canary against stable on the same labelled requests: for AUC, paired DeLong (the variance of the difference
 * of the two versions' structural components); for accuracy and errorRate, the paired z-test on the per-request
 * difference of being right. The same one-sided question as compareSides.
 */
export function comparePaired(paired: PairedSide, options: Omit<CompareOptions, 'threshold'>): QualityComparison {
  const counts = { canaryCount: paired.count, stableCount: paired.count };
  if (paired.count < options.minLabels)
    return insufficient(options, counts, `${paired.count} labels on shared requests, ${options.minLabels} needed`);
  if (options.metric === 'auc') {
    if (paired.canaryAuc === null || paired.stableAuc === null || paired.aucDifferenceVariance === null)
      return insufficient(options, counts, 'AUC needs at least two labels of each class on the shared requests');
    return judge(
      options,
      paired.canaryAuc,
      paired.stableAuc,
      Math.sqrt(Math.max(paired.aucDifferenceVariance, 0)),
      counts,
      "paired DeLong's test",
    );
  }
  const ac = paired.canaryCorrect / paired.count,
    as = paired.stableCorrect / paired.count;
  const se = Math.sqrt(Math.max(paired.accuracyDifferenceVariance ?? 0, 0) / paired.count);
  const test = 'paired z-test';
  return options.metric === 'errorRate'
    ? judge(options, 1 - ac, 1 - as, se, counts, test)
    : judge(options, ac, as, se, counts, test);
}
