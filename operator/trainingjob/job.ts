// Each attempt of a TrainingJob is one Indexed batch/v1 Job: completions = parallelism = workers, the
// completion index is the rank. The Job controller runs, times out and cleans up the pods; a failure of any
// rank fails the Job (backoffLimit 0), and the operator starts the whole group again as the next attempt's Job.
// Pure functions of the job; the controller decides when to create one.
import type { PodEnvVar, StorageSettings } from '../api/storage-env.ts';
import type { DesiredObject, OwnerReference } from '../engine/types.ts';
import { KUEUE_PREBUILT_WORKLOAD_LABEL, KUEUE_QUEUE_LABEL } from './kueue.ts';
import { jobLabels, LABEL_ATTEMPT, podTemplate, shortHash, workersOf } from './pods.ts';
import { ANNOTATION_PROGRESS_TOKEN_SHA256 } from './progress.ts';
import type { TrainingJob } from './resource.ts';

/**
 * `<trainingjob>-<attempt>`: deterministic, so a restarted operator finds (and never duplicates) an attempt's Job.
 * The Job controller names each pod's host `<job>-<index>`, a DNS label of at most 63 characters, so a name that
 * is not a short DNS-1035 label is replaced by a stable derived one.
 */
export function jobName(job: TrainingJob, attempt: number): string {
  const name = job.metadata.name;
  const base = /^[a-z]([-a-z0-9]{0,48}[a-z0-9])?$/.test(name) ? name : `tj-${shortHash(name)}`;
  return `${base}-${attempt}`;
}

/**
 * Pod failures the Job controller does not count: a pod evicted or preempted off its node (DisruptionTarget)
 * is replaced within the same attempt. Any other failed pod fails the attempt.
 */
const POD_FAILURE_POLICY = {
  rules: [{ action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] }],
};

export interface JobOptions {
  /** What is left of spec.activeDeadlineSeconds for this attempt. */
  activeDeadlineSeconds?: number;
  /** The operator's object storage configuration, given to every rank. */
  storage?: StorageSettings;
  /** Progress reporting: the pods' env (progressPodEnv) and the digest of the attempt's token, kept on the Job. */
  progress?: { env: PodEnvVar[]; tokenSha256: string };
}

/**
 * The Job of attempt `attempt`. With spec.queueName it carries Kueue's queue-name label and is created
 * suspended, naming the Workload the operator makes of it next: Kueue's Job integration admits that Workload,
 * unsuspends the Job on admission (adding its flavor's node selector), suspends it again on preemption, and
 * requeues it. No TTL on the Job: the result lives in rank 0's termination message, which must outlive the Job
 * until the operator has read it; the TrainingJob's own TTL removes its Jobs and pods with it.
 */
export function desiredJob(
  job: TrainingJob,
  owner: OwnerReference,
  attempt: number,
  options: JobOptions = {},
): DesiredObject {
  const name = jobName(job, attempt);
  const workers = workersOf(job);
  const queue = job.spec.queueName;
  const labels: Record<string, string> = { ...jobLabels(job), [LABEL_ATTEMPT]: String(attempt) };
  // Its Workload, named as the Job, is the operator's (kueue.ts desiredWorkload): Kueue admits that one, makes none.
  if (queue) Object.assign(labels, { [KUEUE_QUEUE_LABEL]: queue, [KUEUE_PREBUILT_WORKLOAD_LABEL]: name });
  const spec: Record<string, unknown> = {
    completionMode: 'Indexed',
    completions: workers,
    parallelism: workers,
    backoffLimit: 0,
    podFailurePolicy: POD_FAILURE_POLICY,
    suspend: Boolean(queue),
    template: podTemplate(job, attempt, name, options.storage, options.progress?.env),
  };
  if (options.activeDeadlineSeconds !== undefined) spec.activeDeadlineSeconds = options.activeDeadlineSeconds;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name,
      namespace: job.metadata.namespace,
      labels,
      ...(options.progress
        ? { annotations: { [ANNOTATION_PROGRESS_TOKEN_SHA256]: options.progress.tokenSha256 } }
        : {}),
      ownerReferences: [owner],
    },
    spec,
  };
}
