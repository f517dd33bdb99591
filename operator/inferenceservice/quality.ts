/**
 * Live quality from ground truth (docs/ground-truth.md), pure: the evaluator CronJob an InferenceService that logs
 * its predictions gets, what a quality event (operator/events/quality-event.ts) does to status.quality, and which
 * changes are worth a Kubernetes Event. status.quality holds the latest evaluation, one entry per version that had
 * logged predictions in its window; an older event replayed after a newer one changes nothing.
 */
import { createHash } from 'node:crypto';
import { LABELS } from '../api/contracts.ts';
import { storagePodEnv } from '../api/storage-env.ts';
import type { InferenceServiceQualityStatus as QualityStatus } from '../api/types.ts';
import { quantityValue } from '../engine/apply.ts';
import type { DesiredObject } from '../engine/types.ts';
import type { CloudEvent } from '../events/cloudevents.ts';
import { qualityEventData, type QualityEventData, type VersionQuality } from '../events/quality-event.ts';
import {
  SCRATCH,
  ownerReference,
  restrictedContainerSecurity,
  restrictedPodSecurity,
  type ServingConfig,
} from './desired.ts';
import type { DropCondition } from '../quality/snapshot.ts';
import type { RolloutState } from './canary.ts';
import type { InferenceService } from './resource.ts';

/** The operator's own image: the quality evaluator (`operator/main.js evaluate`) ships in it. */
export const EVALUATOR_IMAGE = 'loopline/operator:0.1.0';

/** Whether the InferenceService gets a quality evaluator: it logs its predictions and has not turned quality off. */
export function evaluatesQuality(isvc: InferenceService): boolean {
  return isvc.spec.logging?.enabled === true && !!isvc.spec.logging.uri && isvc.spec.quality?.enabled !== false;
}

export function qualityCronJobName(isvc: InferenceService): string {
  // CronJob names are at most 52 characters (its Jobs append 11).
  return `${isvc.metadata.name.slice(0, 44)}-quality`;
}

/** During a rollout, the versions the evaluator compares and since when: the canary's start. */
export interface ComparedVersions {
  canary: number;
  stable: number;
  since: string;
}

export function comparedVersions(state: RolloutState, now: Date): ComparedVersions | undefined {
  if (state.phase !== 'Progressing' || state.canaryVersion === undefined || state.stableVersion === undefined)
    return undefined;
  return {
    canary: state.canaryVersion,
    stable: state.stableVersion,
    since: state.canaryStartedAt ?? state.analysis.stepStartedAt ?? now.toISOString(),
  };
}

/**
 * The quality evaluator: a CronJob running the operator image's `evaluate` command (operator/quality/evaluate.ts) on
 * spec.quality.schedule. It reads spec.logging.uri with the operator's storage settings and publishes to the
 * operator's NATS; it needs no Kubernetes API access. Its pods carry no InferenceService label, so no Service
 * or PDB of the predictors ever selects them. One run at a time: a slow evaluation is not stacked on.
 */
export function qualityCronJob(
  isvc: InferenceService,
  config: ServingConfig,
  snapshot?: DropCondition,
  compared?: ComparedVersions,
): DesiredObject {
  const quality = isvc.spec.quality ?? {};
  const cpu = String(quality.resources?.cpu ?? '500m');
  const memory = String(quality.resources?.memory ?? '1Gi');
  // The engine keeps to three quarters of the pod's memory and spills the rest to /tmp, below the limit.
  const engineMiB = Math.max(64, Math.floor((quantityValue(memory) * 0.75) / 2 ** 20));
  const args = [
    'evaluate',
    '--namespace',
    isvc.metadata.namespace,
    '--service',
    isvc.metadata.name,
    '--uri',
    isvc.spec.logging!.uri!,
    '--window',
    quality.window ?? '1h',
    '--threshold',
    String(quality.threshold ?? 0.5),
    '--memory-limit',
    `${engineMiB}MiB`,
    // spec.retrain.onQualityDrop: the labelled rows are written for a retrain when the stable version is below it.
    ...(snapshot
      ? [
          '--snapshot-version',
          String(snapshot.version),
          '--snapshot-metric',
          snapshot.metric,
          '--snapshot-below',
          String(snapshot.below),
          '--snapshot-min-labels',
          String(snapshot.minLabels),
          ...(snapshot.mix
            ? [
                '--snapshot-mix-uri',
                snapshot.mix.uri,
                '--snapshot-mix-label',
                snapshot.mix.labelColumn,
                ...(snapshot.mix.hash ? ['--snapshot-mix-hash', snapshot.mix.hash] : []),
              ]
            : []),
        ]
      : []),
    // A rollout's canary is compared with stable on every run while it lasts.
    ...(compared
      ? ['--canary', String(compared.canary), '--stable', String(compared.stable), '--since', compared.since]
      : []),
  ];
  const env: Array<Record<string, unknown>> = [
    ...(config.natsUrl ? [{ name: 'NATS_URL', value: config.natsUrl }] : []),
    ...storagePodEnv(config.storage),
  ];
  const podLabels = {
    'app.kubernetes.io/name': 'loopline-quality-evaluator',
    'app.kubernetes.io/managed-by': 'loopline',
    'loopline.dev/quality-of': isvc.metadata.name,
  };
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: {
      name: qualityCronJobName(isvc),
      namespace: isvc.metadata.namespace,
      labels: {
        'app.kubernetes.io/name': 'loopline-quality-evaluator',
        'app.kubernetes.io/managed-by': 'loopline',
        [LABELS.inferenceService]: isvc.metadata.name,
        [LABELS.model]: isvc.spec.model,
      },
      ownerReferences: [ownerReference(isvc)],
    },
    spec: {
      schedule: quality.schedule ?? '*/5 * * * *',
      timeZone: 'Etc/UTC',
      concurrencyPolicy: 'Forbid',
      startingDeadlineSeconds: 300,
      successfulJobsHistoryLimit: 1,
      failedJobsHistoryLimit: 3,
      jobTemplate: {
        metadata: { labels: podLabels },
        spec: {
          backoffLimit: 2,
          activeDeadlineSeconds: 3600,
          template: {
            metadata: { labels: podLabels },
            spec: {
              restartPolicy: 'Never',
              automountServiceAccountToken: false,
              securityContext: restrictedPodSecurity(),
              containers: [
                {
                  name: 'evaluator',
                  image: config.evaluatorImage ?? EVALUATOR_IMAGE,
                  // The image's entrypoint (node operator/main.js) with the evaluate command.
                  args,
                  env,
                  resources: { requests: { cpu, memory }, limits: { cpu, memory } },
                  securityContext: restrictedContainerSecurity(),
                  // Downloaded parts and the engine's spill files.
                  volumeMounts: [SCRATCH.mount],
                },
              ],
              volumes: [SCRATCH.volume],
            },
          },
        },
      },
    },
  };
}

/**
 * One run of the quality CronJob's template now, for a rollout step that is due for its quality check: what
 * `kubectl create job --from=cronjob/<name>-quality` does, named after the step and its due time so each step asks
 * once. Owned by the InferenceService; deleted ten minutes after it finishes.
 */
export function qualityEvaluationJob(
  isvc: InferenceService,
  cron: DesiredObject,
  due: { step: number; dueAt: string },
): DesiredObject {
  const spec = (cron.spec as { jobTemplate: { spec: Record<string, unknown> } }).jobTemplate;
  // The template's arguments name the compared versions and their start, so a new rollout gets new names.
  const id = createHash('sha256')
    .update(`${JSON.stringify(spec)}/${due.step}/${due.dueAt}`)
    .digest('hex')
    .slice(0, 10);
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      // Job names become a label value: at most 63 characters.
      name: `${isvc.metadata.name.slice(0, 40)}-quality-${id}`,
      namespace: isvc.metadata.namespace,
      labels: { ...(cron.metadata.labels as Record<string, string>), 'loopline.dev/quality-step': String(due.step) },
      annotations: { 'loopline.dev/quality-due': due.dueAt },
      ownerReferences: [ownerReference(isvc)],
    },
    spec: { ...spec.spec, ttlSecondsAfterFinished: 600 },
  };
}

/** Why an evaluation Job failed (its Failed condition), or undefined while it runs or after it succeeded. */
export function evaluationFailure(job: { status?: Record<string, any> } | undefined): string | undefined {
  const failed = (job?.status?.conditions ?? []).find(
    (c: { type: string; status: string }) => c.type === 'Failed' && c.status === 'True',
  );
  return failed ? `${failed.reason ?? 'Failed'}: ${failed.message ?? 'no message'}` : undefined;
}

/** A change of AUC or accuracy by this much (absolute) between two evaluations of a version is reported. */
export const NOTABLE_CHANGE = 0.05;
/** The status keeps the newest versions (CRD maxItems). */
export const MAX_VERSIONS = 16;

export interface QualityNotice {
  type: 'Normal' | 'Warning';
  reason: 'QualityMeasured' | 'QualityImproved' | 'QualityDropped';
  message: string;
}

export interface QualityUpdate {
  quality: QualityStatus;
  notices: QualityNotice[];
}

type VersionEntry = NonNullable<QualityStatus['versions']>[number];

function entry(v: VersionQuality): VersionEntry {
  return {
    version: v.version,
    model: v.model,
    predictions: v.predictions,
    count: v.count,
    positives: v.positives,
    excluded: v.excluded,
    threshold: v.threshold,
    accuracy: v.accuracy,
    auc: v.auc,
    logLoss: v.logLoss,
    brier: v.brier,
    precision: v.precision,
    recall: v.recall,
    calibrationError: v.calibrationError,
  };
}

const shown = (value: number | null | undefined) => (value === null || value === undefined ? 'n/a' : value.toFixed(3));

function describe(data: QualityEventData, v: VersionQuality): string {
  return `over ${v.count} labelled of ${v.predictions} logged predictions (window ${data.window.duration} to ${data.window.end})`;
}

/** Notices for one version: its first labelled evaluation, or AUC or accuracy moved by NOTABLE_CHANGE or more. */
function noticesFor(data: QualityEventData, before: VersionEntry | undefined, now: VersionQuality): QualityNotice[] {
  if (now.count === 0) return [];
  if (!before?.count) {
    return [
      {
        type: 'Normal',
        reason: 'QualityMeasured',
        message: `v${now.version}: AUC ${shown(now.auc)}, accuracy ${shown(now.accuracy)} ${describe(data, now)}`,
      },
    ];
  }
  const moves = (['auc', 'accuracy'] as const)
    .map((metric) => ({ metric, from: before[metric] as number | null | undefined, to: now[metric] }))
    .filter(
      (m): m is { metric: 'auc' | 'accuracy'; from: number; to: number } =>
        typeof m.from === 'number' && typeof m.to === 'number' && Math.abs(m.to - m.from) >= NOTABLE_CHANGE,
    );
  if (moves.length === 0) return [];
  const dropped = moves.some((m) => m.to < m.from);
  const text = moves
    .map(
      (m) =>
        `${m.metric === 'auc' ? 'AUC' : 'accuracy'} ${shown(m.from)} → ${shown(m.to)} (${m.to >= m.from ? '+' : ''}${(m.to - m.from).toFixed(3)})`,
    )
    .join(', ');
  return [
    {
      type: dropped ? 'Warning' : 'Normal',
      reason: dropped ? 'QualityDropped' : 'QualityImproved',
      message: `v${now.version}: ${text} ${describe(data, now)}`,
    },
  ];
}

/**
 * status.quality after `event`, with the notices it deserves; undefined when it changes nothing (the same event
 * again, or an evaluation older than the one recorded). Throws when the event's data breaks the contract.
 */
export function nextQualityStatus(previous: QualityStatus | undefined, event: CloudEvent): QualityUpdate | undefined {
  const data = qualityEventData(event);
  if (previous?.lastEventId === event.id) return undefined;
  if (previous?.lastEventTime && Date.parse(previous.lastEventTime) > Date.parse(data.window.end)) return undefined;
  const versions = [...data.versions].sort((a, b) => a.version - b.version).slice(-MAX_VERSIONS);
  const before = new Map((previous?.versions ?? []).map((v) => [v.version, v]));
  return {
    quality: {
      lastEventId: event.id,
      lastEventTime: data.window.end,
      window: {
        ...(data.window.start !== null ? { start: data.window.start } : {}),
        end: data.window.end,
        duration: data.window.duration,
      },
      versions: versions.map(entry),
      ...(data.snapshot ? { snapshot: data.snapshot } : {}),
      ...(data.comparison ? { comparison: { ...data.comparison, end: data.window.end } } : {}),
    },
    notices: versions.flatMap((v) => noticesFor(data, before.get(v.version), v)),
  };
}
