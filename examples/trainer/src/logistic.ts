// Logistic regression trained by full-batch gradient descent on standardized features.
// The standardization is folded into the exported weights, so the model takes raw feature values.
import type { Feature } from './dataset.ts';

export interface LogisticModel {
  /** Weights on raw (unstandardized) feature values, in input column order. */
  weights: number[];
  bias: number;
}

export interface TrainOptions {
  learningRate: number;
  epochs: number;
  l2: number;
  /** Called after every epoch with the training log loss (including the L2 term). */
  onEpoch?: (epoch: number, loss: number) => void;
}

export function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/**
 * Values that stand in for missing cells: the training mean of a numeric feature, the most
 * frequent code of a categorical one. The exported model cannot impute, so callers fill rows first.
 */
export function imputationValues(features: readonly Feature[], x: number[][]): number[] {
  return features.map((feature, j) => {
    const present = x.map((row) => row[j]).filter((v) => !Number.isNaN(v));
    if (present.length === 0) throw new Error(`feature ${feature.name} has no values in the training rows`);
    if (feature.type === 'numeric') return present.reduce((a, b) => a + b, 0) / present.length;
    const counts = new Map<number, number>();
    for (const v of present) counts.set(v, (counts.get(v) ?? 0) + 1);
    return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0][0];
  });
}

export function impute(x: number[][], fill: number[]): number[][] {
  return x.map((row) => row.map((v, j) => (Number.isNaN(v) ? fill[j] : v)));
}

export function trainLogisticRegression(x: number[][], y: number[], opts: TrainOptions): LogisticModel {
  const steps = logisticRegressionEpochs(x, y, opts);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    opts.onEpoch?.(step.value.epoch, step.value.loss);
  }
}

/**
 * The same training one epoch at a time: yields each epoch's number and training log loss (including the L2 term),
 * returns the model. A caller can pause between epochs (to report progress) without changing the result.
 */
export function* logisticRegressionEpochs(
  x: number[][],
  y: number[],
  opts: Omit<TrainOptions, 'onEpoch'>,
): Generator<{ epoch: number; loss: number }, LogisticModel, void> {
  const n = x.length;
  const f = x[0].length;
  const mean = Array.from({ length: f }, (_, j) => x.reduce((s, row) => s + row[j], 0) / n);
  // A constant column gets scale 1: its standardized value is 0 and its weight stays at 0.
  const scale = mean.map((m, j) => Math.sqrt(x.reduce((s, row) => s + (row[j] - m) ** 2, 0) / n) || 1);
  const z = x.map((row) => row.map((v, j) => (v - mean[j]) / scale[j]));

  const w = new Array<number>(f).fill(0);
  let b = 0;
  const gradW = new Array<number>(f);
  for (let epoch = 1; epoch <= opts.epochs; epoch++) {
    gradW.fill(0);
    let gradB = 0;
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const row = z[i];
      let logit = b;
      for (let j = 0; j < f; j++) logit += w[j] * row[j];
      const p = sigmoid(logit);
      const err = p - y[i];
      for (let j = 0; j < f; j++) gradW[j] += err * row[j];
      gradB += err;
      loss += logLossTerm(y[i], p);
    }
    for (let j = 0; j < f; j++) w[j] -= opts.learningRate * (gradW[j] / n + opts.l2 * w[j]);
    b -= opts.learningRate * (gradB / n);
    const penalty = (opts.l2 / 2) * w.reduce((s, v) => s + v * v, 0);
    yield { epoch, loss: loss / n + penalty };
  }
  if (![...w, b].every(Number.isFinite)) {
    throw new Error(`training diverged (learning_rate ${opts.learningRate} is too large)`);
  }
  const weights = w.map((wj, j) => wj / scale[j]);
  const bias = b - w.reduce((s, wj, j) => s + (wj * mean[j]) / scale[j], 0);
  return { weights, bias };
}

export function predictProbabilities(model: LogisticModel, x: number[][]): number[] {
  return x.map((row) => sigmoid(row.reduce((s, v, j) => s + v * model.weights[j], model.bias)));
}

/** Clipped so a confident wrong prediction costs a lot, not infinity. */
export function logLossTerm(label: number, p: number): number {
  const q = Math.min(1 - 1e-15, Math.max(1e-15, p));
  return -(label * Math.log(q) + (1 - label) * Math.log(1 - q));
}
