/**
 * Snapshots of labelled production rows, the dataset of a retrain on a quality drop (spec.retrain.onQualityDrop):
 * when the evaluator is asked for one and the stable version's live metric is below the bound the operator gave,
 * it writes the window's labelled rows (join.ts) as CSV under `<base>/snapshots/<namespace>/<service>/` with their
 * sha256. What decides is pure and here, so the operator and the evaluator apply the same rule.
 */
import type { VersionQuality } from '../events/quality-event.ts';

export type DropMetric = 'auc' | 'accuracy';
export const DROP_METRICS: readonly DropMetric[] = ['auc', 'accuracy'];

/** The stable version's live `metric` is below `below`, measured on at least `minLabels` labels. */
export interface DropCondition {
  version: number;
  metric: DropMetric;
  below: number;
  minLabels: number;
  /** Rows of the version's training dataset to append to the snapshot (spec.retrain.onQualityDrop.trainingData). */
  mix?: TrainingDataMix;
}

/** The stable version's training dataset: its lineage.dataset uri and hash, and the column holding its label. */
export interface TrainingDataMix {
  uri: string;
  hash?: string;
  labelColumn: string;
}

/** The bound a live metric is held to: `below`, or the training metric minus `maxDropFromTraining`, the higher. */
export function qualityBound(
  rule: { below?: number | undefined; maxDropFromTraining?: number | undefined },
  trainingMetric: number | undefined,
): number | undefined {
  const bounds = [
    ...(rule.below !== undefined ? [rule.below] : []),
    ...(rule.maxDropFromTraining !== undefined && trainingMetric !== undefined && Number.isFinite(trainingMetric)
      ? [trainingMetric - rule.maxDropFromTraining]
      : []),
  ];
  return bounds.length ? Math.max(...bounds) : undefined;
}

/** Whether the evaluation shows the drop: the version measured on enough labels, its metric below the bound. */
export function dropped(versions: readonly VersionQuality[], condition: DropCondition): VersionQuality | undefined {
  const entry = versions.find((v) => v.version === condition.version);
  const value = entry?.[condition.metric];
  if (!entry || entry.count < condition.minLabels || typeof value !== 'number') return undefined;
  return value < condition.below ? entry : undefined;
}

/** `snapshots/<namespace>/<service>/<yyyymmddThhmmssmmmZ>-<sha256 prefix>.csv`, below the ground-truth base. */
export function snapshotKey(namespace: string, service: string, end: Date, sha256: string): string {
  const stamp = end.toISOString().replace(/[-:.]/g, '');
  return `snapshots/${namespace}/${service}/${stamp}-${sha256.slice(0, 16)}.csv`;
}
