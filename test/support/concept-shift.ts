/**
 * A concept shift on the example trainer's credit-risk population (examples/trainer/src/dataset.ts): the inputs are
 * drawn as before, the labels from another rule (riskLogit concept 1), and version 1 scores with the original rule.
 * As inference-log parts and a label file in the layout of docs/ground-truth.md, for the retrain-on-quality tests.
 */
import { generateCreditRisk, riskLogit } from '../../examples/trainer/src/dataset.ts';
import { inferenceLogPart, labelPart } from './ground-truth.ts';

export const CREDIT_FEATURES = ['income', 'debt_ratio', 'age', 'utilization', 'region'] as const;

export interface ConceptShiftRows {
  requestIds: string[];
  /** Inputs as the predictor logs them: FP32, read back as doubles. */
  inputs: number[][];
  /** Version 1's scores: the original rule. */
  scores: number[];
  /** Labels of the shifted rule. */
  labels: number[];
}

export function conceptShiftRows(rows: number, seed: number, prefix = 'loan'): ConceptShiftRows {
  const data = generateCreditRisk({ rows, seed, shift: 0, concept: 1 });
  const inputs = data.x.map((row) => row.map((v) => Math.fround(v)));
  return {
    requestIds: inputs.map((_, i) => `${prefix}-${i}`),
    inputs,
    scores: inputs.map((row) => Math.fround(1 / (1 + Math.exp(-riskLogit(row, 0))))),
    labels: data.y,
  };
}

/** One inference-log part of version `version` answered `atMs`, and one feedback label part recorded `labelledMs`. */
export function conceptShiftFiles(
  namespace: string,
  service: string,
  model: string,
  version: number,
  rows: ConceptShiftRows,
  atMs: number,
  labelledMs: number,
): Array<{ key: string; body: Uint8Array }> {
  return [
    inferenceLogPart(
      namespace,
      service,
      rows.requestIds.map((requestId, i) => ({
        requestId,
        time: atMs + i,
        model,
        version,
        score: rows.scores[i]!,
        inputs: Object.fromEntries(CREDIT_FEATURES.map((f, j) => [f, rows.inputs[i]![j]!])),
      })),
    ),
    labelPart(
      namespace,
      service,
      rows.requestIds.map((requestId, i) => ({ requestId, label: rows.labels[i]!, time: labelledMs })),
    ),
  ];
}
