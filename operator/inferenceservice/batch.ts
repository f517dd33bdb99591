/**
 * Scheduled batch scoring (spec.batch): where a batch entry's CronJob is decided, and how a finished run's Job
 * becomes status.batch[].lastRun. Pure functions; the controller resolves the version and carries them out.
 *
 * The version is resolved by the operator and written into the CronJob's pod template: the CronJob controller
 * copies the template into each run's Job when the run starts, so a promotion after that changes the next run's
 * Job, never the running one, and the batch pod needs no access to the API server.
 */
import { createHash } from 'node:crypto';
import {
  BATCH_ENV,
  BATCH_MODE_ARG,
  inputFormat,
  parseBatchSummary,
  rejectsPrefix,
  type BatchRunConfig,
} from '../api/batch-run.ts';
import { storagePodEnv } from '../api/storage-env.ts';
import type { BatchRun, BatchScoring } from '../api/types.ts';
import type { ResourceKind } from '../engine/kinds.ts';
import type { DesiredObject, KubeObject } from '../engine/types.ts';
import {
  LABELS,
  PREDICTOR_IMAGE,
  SCRATCH,
  ownerReference,
  restrictedContainerSecurity,
  restrictedPodSecurity,
  type ServingConfig,
} from './desired.ts';
import type { InferenceService, ServedModel } from './resource.ts';

export const CronJob: ResourceKind = { apiVersion: 'batch/v1', kind: 'CronJob', plural: 'cronjobs', namespaced: true };

const TERMINATION_MESSAGE_PATH = '/dev/termination-log';
/** A CronJob's name must leave room for the 11 characters the CronJob controller appends to its Jobs' names. */
const MAX_CRONJOB_NAME = 52;

/** `<isvc>-batch-<name>`, or a stable shortened form when that is too long for a CronJob. */
export function batchCronJobName(isvc: InferenceService, batch: Pick<BatchScoring, 'name'>): string {
  const full = `${isvc.metadata.name}-batch-${batch.name}`;
  if (full.length <= MAX_CRONJOB_NAME) return full;
  const hash = createHash('sha256').update(isvc.metadata.name).digest('hex').slice(0, 8);
  const room = MAX_CRONJOB_NAME - `-${hash}-batch-${batch.name}`.length;
  return `${isvc.metadata.name.slice(0, room).replace(/[-.]+$/, '')}-${hash}-batch-${batch.name}`;
}

/** What the batch pod is told to do (BATCH_CONFIG). */
export function batchRunConfig(batch: BatchScoring): BatchRunConfig {
  return {
    name: batch.name,
    input: { uri: batch.input.uri, format: inputFormat(batch.input) },
    ...(batch.features?.length ? { features: batch.features } : {}),
    columns: batch.columns ?? [],
    segments: batch.segments ?? [],
    output: batch.output.postgres ? { postgres: { table: batch.output.postgres.table } } : { uri: batch.output.uri! },
    rejects: rejectsPrefix(batch),
    batchSize: batch.batchSize ?? 1024,
  };
}

/** The CronJob of one spec.batch entry, scoring with `model` (the version resolved now). */
export function batchCronJob(
  isvc: InferenceService,
  batch: BatchScoring,
  model: ServedModel,
  config: ServingConfig = {},
): DesiredObject {
  const labels = {
    'app.kubernetes.io/name': 'loopline-batch',
    'app.kubernetes.io/managed-by': 'loopline',
    [LABELS.inferenceService]: isvc.metadata.name,
    [LABELS.model]: isvc.spec.model,
    [LABELS.batch]: batch.name,
  };
  const podLabels = { ...labels, [LABELS.version]: String(model.version) };
  const env: Array<Record<string, unknown>> = [
    { name: 'MODEL_NAME', value: isvc.spec.model },
    { name: 'MODEL_VERSION', value: String(model.version) },
    { name: 'MODEL_URI', value: model.uri },
    { name: 'MODEL_DIGEST', value: model.digest },
    ...(model.signature !== undefined ? [{ name: 'MODEL_SIGNATURE', value: JSON.stringify(model.signature) }] : []),
    ...(model.referenceProfile
      ? [
          { name: 'REFERENCE_PROFILE_URI', value: model.referenceProfile.uri },
          { name: 'REFERENCE_PROFILE_DIGEST', value: model.referenceProfile.digest },
        ]
      : []),
    { name: 'NAMESPACE', value: isvc.metadata.namespace },
    { name: 'INFERENCE_SERVICE', value: isvc.metadata.name },
    { name: BATCH_ENV.config, value: JSON.stringify(batchRunConfig(batch)) },
    { name: BATCH_ENV.run, valueFrom: { fieldRef: { fieldPath: "metadata.labels['batch.kubernetes.io/job-name']" } } },
    { name: BATCH_ENV.resultPath, value: TERMINATION_MESSAGE_PATH },
    ...storagePodEnv(config.storage),
  ];
  const postgres = batch.output.postgres;
  if (postgres) {
    env.push({
      name: BATCH_ENV.databaseUrl,
      valueFrom: {
        secretKeyRef: { name: postgres.connectionSecret.name, key: postgres.connectionSecret.key ?? 'url' },
      },
    });
  }
  const cpu = String(
    batch.resources?.cpu ?? isvc.spec.predictor?.resources?.cpu ?? config.predictorResources?.cpu ?? '1',
  );
  const memory = String(
    batch.resources?.memory ?? isvc.spec.predictor?.resources?.memory ?? config.predictorResources?.memory ?? '1Gi',
  );
  const podSpec = {
    restartPolicy: 'Never',
    automountServiceAccountToken: false,
    ...(isvc.spec.predictor?.serviceAccountName ? { serviceAccountName: isvc.spec.predictor.serviceAccountName } : {}),
    ...(isvc.spec.predictor?.nodeSelector ? { nodeSelector: isvc.spec.predictor.nodeSelector } : {}),
    securityContext: restrictedPodSecurity(),
    containers: [
      {
        name: 'batch',
        image: isvc.spec.predictor?.image ?? config.predictorImage ?? PREDICTOR_IMAGE,
        args: [BATCH_MODE_ARG],
        env,
        resources: { requests: { cpu, memory }, limits: { cpu, memory } },
        terminationMessagePath: TERMINATION_MESSAGE_PATH,
        terminationMessagePolicy: 'File',
        securityContext: restrictedContainerSecurity(),
        volumeMounts: [SCRATCH.mount],
      },
    ],
    volumes: [SCRATCH.volume],
  };
  return {
    apiVersion: CronJob.apiVersion,
    kind: CronJob.kind,
    metadata: {
      name: batchCronJobName(isvc, batch),
      namespace: isvc.metadata.namespace,
      labels,
      ownerReferences: [ownerReference(isvc)],
    },
    spec: {
      schedule: batch.schedule,
      ...(batch.timeZone ? { timeZone: batch.timeZone } : {}),
      suspend: batch.suspend ?? false,
      // Two runs replacing one table at once would only wait on each other's locks.
      concurrencyPolicy: 'Forbid',
      // A run missed by more than this (the controller manager was down) waits for the next schedule.
      startingDeadlineSeconds: 600,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 3,
      jobTemplate: {
        metadata: { labels: podLabels },
        spec: {
          // A failed run is reported and left for the next schedule: a retry would redo the same work against the same fault.
          backoffLimit: 0,
          activeDeadlineSeconds: batch.activeDeadlineSeconds ?? 3600,
          template: { metadata: { labels: podLabels }, spec: podSpec },
        },
      },
    },
  };
}

function finishedCondition(
  job: KubeObject,
): { type: 'Complete' | 'Failed'; time?: string; message?: string } | undefined {
  const condition = (job.status?.conditions ?? []).find(
    (c: { type: string; status: string }) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
  );
  return condition
    ? { type: condition.type, time: condition.lastTransitionTime, message: condition.message }
    : undefined;
}

/** The finished run of `job` as status records it, from its pod's termination message; undefined while it runs. */
export function batchRunOf(job: KubeObject, pods: KubeObject[]): BatchRun | undefined {
  const finished = finishedCondition(job);
  if (!finished) return undefined;
  const labelled = Number(job.metadata.labels?.[LABELS.version]);
  const terminated = pods
    .map((pod) => pod.status?.containerStatuses?.find((c: { name: string }) => c.name === 'batch')?.state?.terminated)
    .filter(Boolean)
    .sort((a: { finishedAt?: string }, b: { finishedAt?: string }) =>
      String(a.finishedAt).localeCompare(String(b.finishedAt)),
    )
    .at(-1) as { message?: string; exitCode?: number; reason?: string } | undefined;
  const summary = parseBatchSummary(terminated?.message);
  const startTime = job.status?.startTime as string | undefined;
  const completionTime = (job.status?.completionTime as string | undefined) ?? finished.time;
  const base: BatchRun = {
    job: job.metadata.name,
    ...(Number.isInteger(labelled) && labelled > 0 ? { version: labelled } : {}),
    ...(startTime ? { startTime } : {}),
    ...(completionTime ? { completionTime } : {}),
  };
  if (typeof summary === 'string') {
    const why = terminated
      ? `exit code ${terminated.exitCode}${terminated.reason ? ` (${terminated.reason})` : ''}`
      : (finished.message ?? 'its pod did not run');
    return {
      ...base,
      succeeded: false,
      message: `run ${job.metadata.name} failed: ${why}; ${summary}. See kubectl logs job/${job.metadata.name} -n ${job.metadata.namespace}`,
    };
  }
  const run: BatchRun = {
    ...base,
    succeeded: summary.succeeded && finished.type === 'Complete',
    ...(summary.version !== undefined ? { version: summary.version } : {}),
    rows: summary.rows,
    written: summary.written,
    rejects: summary.rejects,
    ...(summary.rejectsUri ? { rejectsUri: summary.rejectsUri } : {}),
    durationSeconds: summary.durationSeconds,
    startTime: summary.startTime,
    completionTime: summary.completionTime,
  };
  run.message = run.succeeded
    ? `v${run.version} scored ${summary.written} of ${summary.rows} rows in ${summary.durationSeconds}s${summary.rejects ? `; ${summary.rejects} rejected, see ${summary.rejectsUri}` : ''}`
    : `run ${job.metadata.name} of v${run.version} failed after ${summary.durationSeconds}s, nothing written: ${summary.error ?? finished.message ?? 'unknown error'}`;
  return run;
}

/** The latest finished run among a batch entry's Jobs (by completion, then name). */
export function latestRun(jobs: KubeObject[], podsOf: (job: KubeObject) => KubeObject[]): BatchRun | undefined {
  const runs = jobs.map((job) => batchRunOf(job, podsOf(job))).filter((run): run is BatchRun => run !== undefined);
  runs.sort(
    (a, b) =>
      String(a.completionTime).localeCompare(String(b.completionTime)) || String(a.job).localeCompare(String(b.job)),
  );
  return runs.at(-1);
}
