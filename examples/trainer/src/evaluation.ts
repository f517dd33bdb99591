// Held-out metrics for a binary classifier.
import { logLossTerm } from './logistic.ts';

/** Area under the ROC curve by the rank statistic (Mann-Whitney U), ties counted half. */
export function auc(labels: number[], scores: number[]): number {
  const order = scores.map((s, i) => [s, i] as const).sort((a, b) => a[0] - b[0]);
  const ranks = new Array<number>(scores.length);
  for (let start = 0; start < order.length; ) {
    let end = start;
    while (end + 1 < order.length && order[end + 1][0] === order[start][0]) end++;
    const averageRank = (start + end) / 2 + 1;
    for (let k = start; k <= end; k++) ranks[order[k][1]] = averageRank;
    start = end + 1;
  }
  const positives = labels.filter((l) => l === 1).length;
  const negatives = labels.length - positives;
  if (positives === 0 || negatives === 0) throw new Error('auc needs both classes in the held-out rows');
  const positiveRankSum = labels.reduce((s, l, i) => s + (l === 1 ? ranks[i] : 0), 0);
  return (positiveRankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

export function accuracy(labels: number[], probabilities: number[], threshold = 0.5): number {
  const correct = labels.filter((l, i) => (probabilities[i] >= threshold ? 1 : 0) === l).length;
  return correct / labels.length;
}

export function logLoss(labels: number[], probabilities: number[]): number {
  return labels.reduce((s, l, i) => s + logLossTerm(l, probabilities[i]), 0) / labels.length;
}
