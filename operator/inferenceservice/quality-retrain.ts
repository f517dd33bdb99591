/**
 * Retraining on a quality drop (spec.retrain.onQualityDrop), pure: the evaluator's snapshot condition for the
 * stable version, and whether the quality status records should start a retraining TrainingJob now. Like drift's
 * (drift.ts), the job's name derives from the quality event's id and the cooldown is the same, so one evaluation
 * starts at most one retrain and a replayed event names the same job. The job trains on the snapshot of labelled
 * production rows the evaluator wrote for that event: its spec.dataset is the snapshot's URI and sha256, which the
 * registered ModelVersion's lineage.dataset then records.
 */
import { qualityBound, type DropCondition, dropped } from '../quality/snapshot.ts';
import { cooldownReason, retrainJob, retrainJobName, type RetrainPlan } from './drift.ts';
import type { InferenceService } from './resource.ts';

export const DEFAULT_MIN_LABELS = 100;

/** The stable version's training metric named by the rule, from its ModelVersion's spec.metrics. */
export function trainingMetric(
  metrics: Record<string, number | string> | undefined,
  metric: string,
): number | undefined {
  const value = metrics?.[metric];
  const number = typeof value === 'string' ? Number(value) : value;
  return typeof number === 'number' && Number.isFinite(number) ? number : undefined;
}

/**
 * What the evaluator is asked to snapshot for (its --snapshot-* flags): the stable version below the rule's bound.
 * Undefined while retraining on a quality drop is off, or no bound can be made (maxDropFromTraining alone and the
 * version has no such training metric).
 */
export function snapshotCondition(
  isvc: InferenceService,
  stable: {
    version: number;
    metrics?: Record<string, number | string> | undefined;
    dataset?: { uri?: string | undefined; hash?: string | undefined } | undefined;
  },
): DropCondition | undefined {
  const rule = isvc.spec.retrain?.onQualityDrop;
  if (!rule || !isvc.spec.retrain?.template) return undefined;
  const below = qualityBound(rule, trainingMetric(stable.metrics, rule.metric));
  if (below === undefined) return undefined;
  // trainingData.include: the version's own training rows go after the production rows; a version whose
  // ModelVersion records no lineage.dataset.uri has none to mix in, and its snapshot holds production rows only.
  const mix =
    rule.trainingData?.include && stable.dataset?.uri
      ? {
          uri: stable.dataset.uri,
          ...(stable.dataset.hash ? { hash: stable.dataset.hash } : {}),
          labelColumn: rule.trainingData.labelColumn ?? 'label',
        }
      : undefined;
  return {
    version: stable.version,
    metric: rule.metric,
    below,
    minLabels: rule.minLabels ?? DEFAULT_MIN_LABELS,
    ...(mix ? { mix } : {}),
  };
}

const shown = (value: number) => Number(value.toFixed(4));

/** "1200 production rows", or with the training data mixed in "1200 production rows and 800 training rows". */
function trainedRows(snapshot: { rows?: number | undefined; trainingRows?: number | undefined }): string {
  if (snapshot.rows === undefined) return '? production rows';
  const training = snapshot.trainingRows ?? 0;
  return `${snapshot.rows - training} production rows${training ? ` and ${training} training rows` : ''}`;
}

/** Whether to start a retrain now on the quality recorded for `servingVersion` (the stable version now served). */
export function planQualityRetrain(
  isvc: InferenceService,
  now: Date,
  stable: { version: number; metrics?: Record<string, number | string> | undefined },
): RetrainPlan {
  const rule = isvc.spec.retrain?.onQualityDrop;
  const condition = snapshotCondition(isvc, stable);
  if (!rule || !isvc.spec.retrain?.template) return { create: false, reason: 'retraining on a quality drop is off' };
  if (!condition)
    return {
      create: false,
      reason: `no bound: v${stable.version}'s ModelVersion has no training metric ${rule.metric} for maxDropFromTraining, and below is not set`,
    };
  const quality = isvc.status?.quality;
  if (!quality?.lastEventId) return { create: false, reason: 'no quality evaluation yet' };
  const entry = dropped(quality.versions as never, condition);
  if (!entry) {
    const measured = quality.versions?.find((v) => v.version === stable.version);
    return {
      create: false,
      reason: !measured
        ? `the latest evaluation has no v${stable.version}`
        : (measured.count ?? 0) < condition.minLabels
          ? `v${stable.version} has ${measured.count ?? 0} labels, fewer than minLabels ${condition.minLabels}`
          : `v${stable.version}'s ${rule.metric} ${measured[rule.metric] ?? 'n/a'} is not below ${shown(condition.below)}`,
    };
  }
  // The canary may be the fix (an earlier retrain's): its outcome first, not another retrain on the same drop.
  if (isvc.status?.phase === 'Progressing' && isvc.status.canaryVersion !== undefined)
    return {
      create: false,
      reason: `v${isvc.status.canaryVersion} is rolling out as the canary; a retrain waits for its outcome`,
    };
  const last = isvc.status?.lastRetrain;
  if (last?.eventId === quality.lastEventId)
    return { create: false, reason: `already retrained for event ${quality.lastEventId} (${last.trainingJob})` };
  const cooling = cooldownReason(isvc, now);
  if (cooling) return { create: false, reason: cooling };
  const snapshot = quality.snapshot;
  if (!snapshot?.uri || !snapshot.sha256)
    return {
      create: false,
      reason: `quality event ${quality.lastEventId} has no snapshot of labelled rows to train on (the next evaluation writes one)`,
    };
  const value = entry[rule.metric] as number;
  const reason = `v${stable.version}'s live ${rule.metric} ${shown(value)} is below ${shown(condition.below)} over ${entry.count} labels (quality event ${quality.lastEventId}); training on ${trainedRows(snapshot)} of ${snapshot.uri}`;
  const name = retrainJobName(isvc, quality.lastEventId);
  const job = retrainJob(isvc, name, `quality event ${quality.lastEventId}: ${reason}`, {
    dataset: {
      uri: snapshot.uri,
      hash: `sha256:${snapshot.sha256}`,
      snapshot: `quality event ${quality.lastEventId}`.slice(0, 256),
    },
  });
  return {
    create: true,
    job,
    lastRetrain: { trainingJob: name, eventId: quality.lastEventId, time: now.toISOString(), trigger: 'QualityDrop' },
    reason,
  };
}
