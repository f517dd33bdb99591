// A version's live quality from predictions joined with the labels that arrived later: the numbers a quality
// event carries and a canary is judged by. Each is computed as scikit-learn computes it (the fixtures in
// server/test/fixtures/quality.json come from sklearn; make-quality-fixtures.py says how), on binary labels
// (1 = the positive class) and the model's score for that class.

export interface QualityOptions {
  /** A score at or above it is a positive decision (precision, recall, accuracy). Default 0.5. */
  threshold?: number;
  /** Equal-width bins of [0, 1] for the expected calibration error. Default 10. */
  calibrationBins?: number;
}

export interface QualityMetrics {
  /** Labelled predictions the metrics are computed on, and how many of them are positive. */
  count: number;
  positives: number;
  threshold: number;
  accuracy: number;
  /** Area under the ROC curve; null while every label is the same (sklearn raises there). */
  auc: number | null;
  /** Mean negative log-likelihood, scores clipped to [ε, 1 - ε] with ε the float64 machine epsilon (sklearn's "auto"). */
  logLoss: number;
  /** Mean squared error of the score against the label. */
  brier: number;
  /** Of the positive decisions, the share that were positive; null when there were none. */
  precision: number | null;
  /** Of the positives, the share decided positive; null when there were none. */
  recall: number | null;
  /** Expected calibration error: |observed rate - mean score| per bin, weighted by the bin's share. */
  calibrationError: number;
}

/** sklearn's "auto" clipping of scores for the log loss: the float64 machine epsilon. */
export const LOG_LOSS_EPS = Number.EPSILON;

/** The inner edges of `bins` equal-width calibration bins, as numpy.linspace(0, 1, bins + 1) makes them. */
export function calibrationEdges(bins: number): number[] {
  return Array.from({ length: bins - 1 }, (_, i) => (i + 1) * (1 / bins));
}

/**
 * What the metrics are made of: sums over the labelled predictions of one version. Any engine that forms these
 * sums (a loop here, SQL in operator/quality) gets the same metrics from `qualityFromSums`.
 */
export interface QualitySums {
  count: number;
  positives: number;
  /** Scores at or above the threshold, and how many of them were positive. */
  decidedPositive: number;
  truePositive: number;
  correct: number;
  /** Σ -log(p) of the true class, scores clipped to [LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]. */
  logLossSum: number;
  /** Σ (score - label)². */
  brierSum: number;
  /** Twice the sum of the positives' mid-ranks among all scores (ties share the mean rank): an integer. */
  positiveRankSum2: number;
  /** Per calibration bin (a score on an inner edge falls in the bin below it): rows, positives, Σ score. */
  bins: Array<{ count: number; positives: number; scoreSum: number }>;
}

/** Rank-sum AUC from twice the positives' rank sum; null while every label is the same (sklearn raises there). */
export function aucFromRankSum(positives: number, negatives: number, positiveRankSum2: number): number | null {
  if (positives === 0 || negatives === 0) return null;
  return (positiveRankSum2 / 2 - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** Twice the sum of the positives' mid-ranks (1-based, ties sharing the mean of their ranks). */
function positiveRankSum2(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let sum2 = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]] === scores[order[i]]) j++;
    // Twice the mid-rank of positions i..j (ranks i+1..j+1), an integer.
    const midRank2 = i + j + 2;
    for (let k = i; k <= j; k++) if (labels[order[k]] === 1) sum2 += midRank2;
    i = j + 1;
  }
  return sum2;
}

/** Rank-sum AUC with mid-ranks for ties: the same number as the trapezoidal area under sklearn's ROC curve. */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number | null {
  let positives = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] === 1) positives++;
  return aucFromRankSum(positives, scores.length - positives, positiveRankSum2(scores, labels));
}

/** Sums of no prediction yet, with `bins` calibration bins, to add to. */
export function emptySums(bins: number): QualitySums {
  return {
    count: 0,
    positives: 0,
    decidedPositive: 0,
    truePositive: 0,
    correct: 0,
    logLossSum: 0,
    brierSum: 0,
    positiveRankSum2: 0,
    bins: Array.from({ length: bins }, () => ({ count: 0, positives: 0, scoreSum: 0 })),
  };
}

/** The metrics from their sums (see QualitySums); throws when there is no labelled prediction. */
export function qualityFromSums(sums: QualitySums, threshold: number): QualityMetrics {
  const n = sums.count;
  if (n === 0) throw new Error('quality: no labelled predictions');
  let calibrationError = 0;
  for (const bin of sums.bins) {
    if (bin.count > 0)
      calibrationError += (bin.count / n) * Math.abs(bin.positives / bin.count - bin.scoreSum / bin.count);
  }
  return {
    count: n,
    positives: sums.positives,
    threshold,
    accuracy: sums.correct / n,
    auc: aucFromRankSum(sums.positives, n - sums.positives, sums.positiveRankSum2),
    logLoss: sums.logLossSum / n,
    brier: sums.brierSum / n,
    precision: sums.decidedPositive ? sums.truePositive / sums.decidedPositive : null,
    recall: sums.positives ? sums.truePositive / sums.positives : null,
    calibrationError,
  };
}

/** The metrics of one version over one window of labelled predictions. */
export function qualityMetrics(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  options: QualityOptions = {},
): QualityMetrics {
  const n = scores.length;
  if (labels.length !== n) throw new Error(`quality: ${n} scores but ${labels.length} labels`);
  if (n === 0) throw new Error('quality: no labelled predictions');
  const threshold = options.threshold ?? 0.5;
  const innerEdges = calibrationEdges(options.calibrationBins ?? 10);
  const sums = emptySums(innerEdges.length + 1);
  sums.count = n;
  for (let i = 0; i < n; i++) {
    const score = scores[i];
    const label = labels[i];
    if (label !== 0 && label !== 1) throw new Error(`quality: label ${label} at row ${i} is not 0 or 1`);
    if (!(score >= 0 && score <= 1))
      throw new Error(`quality: score ${score} at row ${i} is not a probability in [0, 1]`);
    const decided = score >= threshold ? 1 : 0;
    sums.positives += label;
    sums.decidedPositive += decided;
    sums.truePositive += decided & label;
    sums.correct += decided === label ? 1 : 0;
    const p = Math.min(Math.max(score, LOG_LOSS_EPS), 1 - LOG_LOSS_EPS);
    sums.logLossSum -= label === 1 ? Math.log(p) : Math.log(1 - p);
    sums.brierSum += (score - label) * (score - label);
    let bin = 0;
    while (bin < innerEdges.length && innerEdges[bin] < score) bin++;
    sums.bins[bin].count++;
    sums.bins[bin].positives += label;
    sums.bins[bin].scoreSum += score;
  }
  sums.positiveRankSum2 = positiveRankSum2(scores, labels);
  return qualityFromSums(sums, threshold);
}
