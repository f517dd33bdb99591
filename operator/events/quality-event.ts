/**
 * The quality event: one evaluation of an InferenceService's logged predictions joined with their labels
 * (docs/ground-truth.md), a CloudEvent 1.0 on `loopline.quality.<namespace>.<inferenceservice>`. The evaluator
 * (operator/quality) publishes it, the operator's consumer records it in status; both use what is here.
 */
import { QUALITY_EVENT_TYPE, qualitySubject, qualitySubjects } from '../api/contracts.ts';
import type { ComparisonSide, PairedSide } from '../../server/src/quality/compare.ts';
import { cloudEvent, objectSource, type CloudEvent } from './cloudevents.ts';

export { QUALITY_EVENT_TYPE, qualitySubject };

export const QUALITY_SUBJECTS = qualitySubjects();

/** `loopline.quality.<namespace>.<name>` → its InferenceService. */
export function qualityTarget(subject: string): { namespace: string; inferenceService: string } | undefined {
  const parts = subject.split('.');
  if (parts.length !== 4 || parts[0] !== 'loopline' || parts[1] !== 'quality') return undefined;
  return { namespace: parts[2]!, inferenceService: parts[3]! };
}

/** The metrics a version entry carries, by the names status and the `loopline_model_quality` gauge use. */
export const QUALITY_METRICS = [
  'accuracy',
  'auc',
  'logLoss',
  'brier',
  'precision',
  'recall',
  'calibrationError',
] as const;
export type QualityMetricName = (typeof QUALITY_METRICS)[number];

/**
 * One version's quality over the window, each metric as scikit-learn computes it (server/src/quality/metrics.ts).
 * A metric is null when it is undefined on these labels: every one while nothing is labelled (count 0); auc while
 * every label is the same; precision without a positive decision; recall without a positive label.
 */
export type VersionQuality = {
  model: string;
  version: number;
  /** Logged predictions of the version in the window, labelled or not. */
  predictions: number;
  /** Of them, those with a label (the last one recorded for the request id) that the metrics are computed on. */
  count: number;
  positives: number;
  /** Labelled predictions left out: a score that is not a probability in [0, 1], or a label that is not 0 or 1. */
  excluded: number;
  threshold: number;
} & Record<QualityMetricName, number | null>;

export interface QualityWindow {
  /** Predictions answered after start (exclusive) and up to end (inclusive); start null: all so far. */
  start: string | null;
  end: string;
  /** What was asked for: a duration such as `1h`, or `all`. */
  duration: string;
}

/**
 * During a rollout: the canary and stable on the predictions each answered since the canary started (after
 * `since`, up to the window's end), as the one-sided tests of server/src/quality/compare.ts need them.
 */
export interface QualityComparisonData {
  canaryVersion: number;
  stableVersion: number;
  since: string;
  threshold: number;
  canary: ComparisonSide;
  stable: ComparisonSide;
  /**
   * The requests both versions answered (shadow mode), labelled or not; scorePsi null without pairs. `labelled`:
   * the labelled ones, for the paired tests (compare.ts comparePaired), when there are pairs.
   */
  paired?: { pairs: number; flipped: number; scorePsi: number | null; labelled?: PairedSide };
}

export interface QualityEventData {
  namespace: string;
  inferenceService: string;
  window: QualityWindow;
  /** Ascending by version. */
  versions: VersionQuality[];
  /** The window's labelled rows, written when the evaluation was asked for one and its condition held (a retrain's dataset). */
  snapshot?: QualitySnapshot;
  /** When the evaluator was asked to compare a canary with stable (--canary, --stable, --since). */
  comparison?: QualityComparisonData;
}

/** A snapshot of labelled production rows: CSV with the input features by name and `label`. */
export interface QualitySnapshot {
  uri: string;
  /** Hex sha256 of the object's bytes. */
  sha256: string;
  rows: number;
  /** Of `rows`, those appended from the stable version's training dataset (spec.retrain.onQualityDrop.trainingData). */
  trainingRows?: number;
}

export function qualityCloudEvent(data: QualityEventData, time = new Date()): CloudEvent<QualityEventData> {
  return cloudEvent({
    type: QUALITY_EVENT_TYPE,
    source: objectSource('inferenceservices', data.namespace, data.inferenceService),
    subject: data.inferenceService,
    data,
    time,
  });
}

const isCount = (value: unknown) => typeof value === 'number' && Number.isInteger(value) && value >= 0;
const isMetric = (value: unknown) => value === null || (typeof value === 'number' && Number.isFinite(value));

/** The event's data, checked; throws naming the first field that is not what the contract says. */
export function qualityEventData(event: CloudEvent): QualityEventData {
  if (event.type !== QUALITY_EVENT_TYPE)
    throw new Error(`quality event ${event.id}: type is ${event.type}, not ${QUALITY_EVENT_TYPE}`);
  const data = event.data as Partial<QualityEventData> | null;
  const fail = (field: string) => new Error(`quality event ${event.id}: data.${field} is missing or malformed`);
  if (!data || typeof data !== 'object') throw fail('');
  if (typeof data.namespace !== 'string') throw fail('namespace');
  if (typeof data.inferenceService !== 'string') throw fail('inferenceService');
  const window = data.window;
  if (!window || typeof window.end !== 'string' || Number.isNaN(Date.parse(window.end))) throw fail('window.end');
  if (window.start !== null && (typeof window.start !== 'string' || Number.isNaN(Date.parse(window.start))))
    throw fail('window.start');
  if (!Array.isArray(data.versions)) throw fail('versions');
  data.versions.forEach((entry, i) => {
    if (!entry || typeof entry !== 'object') throw fail(`versions[${i}]`);
    if (typeof entry.model !== 'string') throw fail(`versions[${i}].model`);
    if (!Number.isInteger(entry.version) || entry.version < 1) throw fail(`versions[${i}].version`);
    for (const field of ['predictions', 'count', 'positives', 'excluded'] as const)
      if (!isCount(entry[field])) throw fail(`versions[${i}].${field}`);
    if (typeof entry.threshold !== 'number') throw fail(`versions[${i}].threshold`);
    for (const metric of QUALITY_METRICS) if (!isMetric(entry[metric])) throw fail(`versions[${i}].${metric}`);
  });
  if (data.snapshot !== undefined) {
    const snapshot = data.snapshot;
    if (!snapshot || typeof snapshot !== 'object') throw fail('snapshot');
    if (typeof snapshot.uri !== 'string' || snapshot.uri === '') throw fail('snapshot.uri');
    if (typeof snapshot.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(snapshot.sha256)) throw fail('snapshot.sha256');
    if (!isCount(snapshot.rows)) throw fail('snapshot.rows');
    if (
      snapshot.trainingRows !== undefined &&
      !(isCount(snapshot.trainingRows) && snapshot.trainingRows <= snapshot.rows)
    )
      throw fail('snapshot.trainingRows');
  }
  const comparison = data.comparison;
  if (comparison !== undefined) {
    if (!comparison || typeof comparison !== 'object') throw fail('comparison');
    for (const field of ['canaryVersion', 'stableVersion'] as const)
      if (!Number.isInteger(comparison[field]) || comparison[field] < 1) throw fail(`comparison.${field}`);
    if (typeof comparison.since !== 'string' || Number.isNaN(Date.parse(comparison.since)))
      throw fail('comparison.since');
    if (typeof comparison.threshold !== 'number') throw fail('comparison.threshold');
    for (const side of ['canary', 'stable'] as const) {
      const entry = comparison[side];
      if (!entry || typeof entry !== 'object') throw fail(`comparison.${side}`);
      for (const field of ['count', 'positives', 'correct'] as const)
        if (!isCount(entry[field])) throw fail(`comparison.${side}.${field}`);
      for (const field of ['auc', 'aucVariance'] as const)
        if (!isMetric(entry[field])) throw fail(`comparison.${side}.${field}`);
    }
    const paired = comparison.paired;
    if (paired !== undefined) {
      if (!paired || typeof paired !== 'object') throw fail('comparison.paired');
      for (const field of ['pairs', 'flipped'] as const)
        if (!isCount(paired[field])) throw fail(`comparison.paired.${field}`);
      if (!isMetric(paired.scorePsi)) throw fail('comparison.paired.scorePsi');
      const labelled = paired.labelled;
      if (labelled !== undefined) {
        if (!labelled || typeof labelled !== 'object') throw fail('comparison.paired.labelled');
        for (const field of ['count', 'canaryCorrect', 'stableCorrect'] as const)
          if (!isCount(labelled[field]) || labelled[field] > paired.pairs)
            throw fail(`comparison.paired.labelled.${field}`);
        for (const field of ['accuracyDifferenceVariance', 'canaryAuc', 'stableAuc', 'aucDifferenceVariance'] as const)
          if (!isMetric(labelled[field])) throw fail(`comparison.paired.labelled.${field}`);
      }
    }
  }
  return data as QualityEventData;
}
