/**
 * The closed loop's decisions, pure: what a drift event does to status.drift, and whether the drift the status
 * records should start a retraining TrainingJob now. The job's name derives from the triggering event's id, so a
 * duplicated or replayed event can only ever name the same job.
 */
import { createHash } from 'node:crypto';
import type { CloudEvent } from '../events/cloudevents.ts';
import type { DesiredObject } from '../engine/types.ts';
import { ownerReference } from './desired.ts';
import { TRIGGER_ANNOTATION } from '../trainingjob/registration.ts';
import { durationOr } from '../api/contracts.ts';
import type { DriftStatus, InferenceService, RetrainStatus } from './resource.ts';

export { TRIGGER_ANNOTATION };

export const DEFAULT_COOLDOWN_MS = 3_600_000;

/** What the operator keeps of one drift window report (server/src/events/drift-event.ts). */
export interface DriftObservation {
  id: string;
  time: string;
  score: number;
  driftedFeatures: string[];
  /** The predictor's own verdict with its configured share. */
  drifted: boolean;
  modelVersion?: string;
}

export function driftObservation(event: CloudEvent): DriftObservation {
  const data = (event.data ?? {}) as {
    score?: unknown;
    driftedFeatures?: unknown;
    drifted?: unknown;
    modelVersion?: unknown;
  };
  if (typeof data.score !== 'number' || !Number.isFinite(data.score))
    throw new Error(`drift event ${event.id} has no numeric data.score`);
  return {
    id: event.id,
    time: event.time ?? new Date().toISOString(),
    score: data.score,
    driftedFeatures: Array.isArray(data.driftedFeatures)
      ? data.driftedFeatures.filter((f): f is string => typeof f === 'string').slice(0, 256)
      : [],
    drifted: data.drifted === true,
    ...(data.modelVersion !== undefined ? { modelVersion: String(data.modelVersion) } : {}),
  };
}

/**
 * status.drift after an observation, or undefined when it changes nothing: the same event again, an older one
 * replayed after a newer one of the same version was recorded, or a window of a version that is not the stable
 * one (the canary's, or the previous stable's pods still draining after a promotion). A window that names no
 * version is taken as the stable version's.
 */
export function nextDriftStatus(
  isvc: InferenceService,
  previous: DriftStatus | undefined,
  observation: DriftObservation,
): DriftStatus | undefined {
  const stable = isvc.status?.stableVersion;
  const version = observation.modelVersion !== undefined ? Number(observation.modelVersion) : stable;
  if (stable !== undefined && version !== stable) return undefined;
  if (previous?.lastEventId === observation.id) return undefined;
  if (
    previous?.version === version &&
    previous?.lastEventTime &&
    Date.parse(previous.lastEventTime) > Date.parse(observation.time)
  )
    return undefined;
  const threshold = isvc.spec.drift?.threshold;
  return {
    score: observation.score,
    driftedFeatures: observation.driftedFeatures,
    lastEventId: observation.id,
    lastEventTime: observation.time,
    drifted: threshold !== undefined ? observation.score >= threshold && observation.score > 0 : observation.drifted,
    ...(version !== undefined && Number.isInteger(version) && version > 0 ? { version } : {}),
  };
}

/** The drift summary when it is about `servingVersion` (or names no version); a summary of another version is stale. */
export function driftOfVersion(drift: DriftStatus | undefined, servingVersion: number): DriftStatus | undefined {
  return drift && (drift.version === undefined || drift.version === servingVersion) ? drift : undefined;
}

export type RetrainPlan =
  | { create: true; job: DesiredObject; lastRetrain: RetrainStatus; reason: string }
  | { create: false; reason: string };

/** Kubernetes names are ≤ 63 characters here (the job's pods derive from it): a short hash of the event id. */
export function retrainJobName(isvc: InferenceService, eventId: string): string {
  const hash = createHash('sha256').update(eventId).digest('hex').slice(0, 10);
  return `${isvc.metadata.name.slice(0, 40)}-retrain-${hash}`;
}

/** Whether to start a retrain now, on the drift status records for `servingVersion` (the stable version now served). */
export function planRetrain(isvc: InferenceService, now: Date, servingVersion: number): RetrainPlan {
  const retrain = isvc.spec.retrain;
  const recorded = isvc.status?.drift;
  const drift = driftOfVersion(recorded, servingVersion);
  const last = isvc.status?.lastRetrain;
  if (!retrain?.onDrift || !retrain.template) return { create: false, reason: 'retraining on drift is off' };
  if (recorded && !drift)
    return { create: false, reason: `the drift recorded is v${recorded.version}'s, not v${servingVersion}'s` };
  if (!drift?.drifted || !drift.lastEventId) return { create: false, reason: 'not drifted' };
  if (last?.eventId === drift.lastEventId)
    return { create: false, reason: `already retrained for event ${drift.lastEventId} (${last.trainingJob})` };
  const cooling = cooldownReason(isvc, now);
  if (cooling) return { create: false, reason: cooling };
  const name = retrainJobName(isvc, drift.lastEventId);
  const job = retrainJob(
    isvc,
    name,
    `drift event ${drift.lastEventId} (score ${drift.score}; drifted: ${(drift.driftedFeatures ?? []).join(', ') || 'none'})`,
  );
  return {
    create: true,
    job,
    lastRetrain: { trainingJob: name, eventId: drift.lastEventId, time: now.toISOString(), trigger: 'Drift' },
    reason: `drift score ${drift.score} (features: ${(drift.driftedFeatures ?? []).join(', ') || 'none'}) from event ${drift.lastEventId}`,
  };
}

/** Whether the last retrain's cooldown still runs at `now`: the reason to wait, or undefined. */
export function cooldownReason(isvc: InferenceService, now: Date): string | undefined {
  const last = isvc.status?.lastRetrain;
  const cooldownMs = durationOr('spec.retrain.cooldown', isvc.spec.retrain?.cooldown, DEFAULT_COOLDOWN_MS);
  if (!last?.time) return undefined;
  const readyAt = Date.parse(last.time) + cooldownMs;
  return now.getTime() < readyAt
    ? `cooldown until ${new Date(readyAt).toISOString()} after ${last.trainingJob}`
    : undefined;
}

/** The retraining TrainingJob from spec.retrain.template, named `name`, its trigger annotated; `spec` overrides. */
export function retrainJob(
  isvc: InferenceService,
  name: string,
  trigger: string,
  spec: Record<string, unknown> = {},
): DesiredObject {
  const template = isvc.spec.retrain!.template!;
  return {
    apiVersion: 'loopline.dev/v1alpha1',
    kind: 'TrainingJob',
    metadata: {
      name,
      namespace: isvc.metadata.namespace,
      labels: {
        ...template.metadata?.labels,
        'loopline.dev/inferenceservice': isvc.metadata.name,
        'loopline.dev/model': isvc.spec.model,
      },
      annotations: {
        ...template.metadata?.annotations,
        [TRIGGER_ANNOTATION]: trigger.slice(0, 512),
      },
      ownerReferences: [{ ...ownerReference(isvc), controller: false, blockOwnerDeletion: false }],
    },
    spec: { ...template.spec, ...spec, model: isvc.spec.model },
  };
}
