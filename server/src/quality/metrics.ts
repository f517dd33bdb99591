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

const LOG_LOSS_EPS = Number.EPSILON;

/** Rank-sum AUC with mid-ranks for ties: the same number as the trapezoidal area under sklearn's ROC curve. */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number | null {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let positives = 0;
  let positiveRankSum = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]] === scores[order[i]]) j++;
    const midRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (labels[order[k]] === 1) {
        positives++;
        positiveRankSum += midRank;
      }
    }
    i = j + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return null;
  return (positiveRankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** The metrics of one version over one window of labelled predictions. */
export function qualityMetrics(scores: ArrayLike<number>, labels: ArrayLike<number>, options: QualityOptions = {}): QualityMetrics {
  const n = scores.length;
  if (labels.length !== n) throw new Error(`quality: ${n} scores but ${labels.length} labels`);
  if (n === 0) throw new Error('quality: no labelled predictions');
  const threshold = options.threshold ?? 0.5;
  const bins = options.calibrationBins ?? 10;
  let positives = 0, truePositive = 0, decidedPositive = 0, correct = 0, logLoss = 0, brier = 0;
  const binCount = new Float64Array(bins), binLabels = new Float64Array(bins), binScores = new Float64Array(bins);
  // Bin edges as numpy.linspace(0, 1, bins + 1) makes them; a score on an inner edge falls in the bin below it.
  const innerEdges = Array.from({ length: bins - 1 }, (_, i) => (i + 1) * (1 / bins));
  for (let i = 0; i < n; i++) {
    const score = scores[i];
    const label = labels[i];
    if (label !== 0 && label !== 1) throw new Error(`quality: label ${label} at row ${i} is not 0 or 1`);
    if (!(score >= 0 && score <= 1)) throw new Error(`quality: score ${score} at row ${i} is not a probability in [0, 1]`);
    const decided = score >= threshold ? 1 : 0;
    positives += label;
    decidedPositive += decided;
    truePositive += decided & label;
    correct += decided === label ? 1 : 0;
    const p = Math.min(Math.max(score, LOG_LOSS_EPS), 1 - LOG_LOSS_EPS);
    logLoss -= label === 1 ? Math.log(p) : Math.log(1 - p);
    brier += (score - label) * (score - label);
    let bin = 0;
    while (bin < innerEdges.length && innerEdges[bin] < score) bin++;
    binCount[bin]++;
    binLabels[bin] += label;
    binScores[bin] += score;
  }
  let calibrationError = 0;
  for (let b = 0; b < bins; b++) {
    if (binCount[b] > 0) calibrationError += (binCount[b] / n) * Math.abs(binLabels[b] / binCount[b] - binScores[b] / binCount[b]);
  }
  return {
    count: n,
    positives,
    threshold,
    accuracy: correct / n,
    auc: rocAuc(scores, labels),
    logLoss: logLoss / n,
    brier: brier / n,
    precision: decidedPositive ? truePositive / decidedPositive : null,
    recall: positives ? truePositive / positives : null,
    calibrationError,
  };
}
