// Builders for TrainingJobs, their attempts' Jobs, those Jobs' pods and Kueue Workloads as the API server
// would return them, for the pure tests.
import { controllerReference } from '../../engine/keys.ts';
import type { KubeObject } from '../../engine/types.ts';
import { desiredJob } from '../job.ts';
import { COMPLETION_INDEX } from '../pods.ts';
import type { TrainingJob, TrainingJobSpec, TrainingJobStatus } from '../resource.ts';

export function trainingJob(
  spec: Partial<TrainingJobSpec> = {},
  status?: TrainingJobStatus,
  name = 'credit',
): TrainingJob {
  return {
    apiVersion: 'loopline.dev/v1alpha1',
    kind: 'TrainingJob',
    metadata: { name, namespace: 'ml', uid: 'uid-1', generation: 1 },
    spec: { model: 'credit-risk', image: 'loopline/example-trainer', ...spec },
    status,
  };
}

type JobState =
  | { state: 'Active'; startTime?: string }
  | { state: 'Complete' }
  | { state: 'Failed'; reason?: string; message?: string; at?: string };

/** The Job the operator would have created for `attempt`, as the Job controller reports it. */
export function attemptJob(
  job: TrainingJob,
  attempt: number,
  state: JobState,
  extra: { deleting?: boolean } = {},
): KubeObject {
  const desired = desiredJob(job, controllerReference(job as KubeObject), attempt) as KubeObject;
  const conditions =
    state.state === 'Complete'
      ? [{ type: 'Complete', status: 'True', lastTransitionTime: '2030-01-01T00:00:10Z' }]
      : state.state === 'Failed'
        ? [
            {
              type: 'Failed',
              status: 'True',
              reason: state.reason ?? 'BackoffLimitExceeded',
              message: state.message ?? 'Job has reached the specified backoff limit',
              lastTransitionTime: state.at ?? '2030-01-01T00:00:10Z',
            },
          ]
        : [];
  return {
    ...desired,
    metadata: {
      ...desired.metadata,
      uid: `job-${attempt}`,
      creationTimestamp: '2030-01-01T00:00:00Z' as unknown as Date,
      ...(extra.deleting ? { deletionTimestamp: '2030-01-01T00:00:20Z' as unknown as Date } : {}),
    },
    status: { startTime: state.state === 'Active' ? state.startTime : '2030-01-01T00:00:00Z', conditions },
  };
}

type PodState =
  | { phase: 'Pending' }
  | { phase: 'Running' }
  | { phase: 'Succeeded'; message?: string; finishedAt?: string }
  | { phase: 'Failed'; exitCode?: number; message?: string; finishedAt?: string };

/** The pod of rank `rank` that the Job controller made from `attemptJob`'s template, in the given state. */
export function pod(attemptJob: KubeObject, rank: number, state: PodState): KubeObject {
  const template = attemptJob.spec.template;
  const container: Record<string, unknown> = { name: 'trainer' };
  if (state.phase === 'Running') container.state = { running: { startedAt: '2030-01-01T00:00:00Z' } };
  if (state.phase === 'Succeeded' || state.phase === 'Failed') {
    container.state = {
      terminated: {
        exitCode: state.phase === 'Succeeded' ? 0 : (state.exitCode ?? 1),
        reason: state.phase === 'Succeeded' ? 'Completed' : 'Error',
        message: state.message,
        finishedAt: state.finishedAt ?? '2030-01-01T00:00:10Z',
      },
    };
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${attemptJob.metadata.name}-${rank}-abcde`,
      namespace: attemptJob.metadata.namespace,
      uid: `pod-${attemptJob.metadata.name}-${rank}`,
      labels: { ...template.metadata.labels, [COMPLETION_INDEX]: String(rank) },
      annotations: { ...template.metadata.annotations, [COMPLETION_INDEX]: String(rank) },
      ownerReferences: [controllerReference(attemptJob)],
    },
    spec: template.spec,
    status: { phase: state.phase, containerStatuses: container.state ? [container] : [] },
  };
}

/** The Workload Kueue made of `attemptJob`, with the given conditions. */
export function workload(
  attemptJob: KubeObject,
  conditions: Array<{
    type: string;
    status: 'True' | 'False';
    reason: string;
    message: string;
    lastTransitionTime?: string;
  }>,
  extra: { clusterQueue?: string; evictions?: number } = {},
): KubeObject {
  return {
    apiVersion: 'kueue.x-k8s.io/v1beta2',
    kind: 'Workload',
    metadata: {
      name: `job-${attemptJob.metadata.name}-1a2b3`,
      namespace: attemptJob.metadata.namespace,
      uid: `wl-${attemptJob.metadata.name}`,
      ownerReferences: [controllerReference(attemptJob)],
    },
    spec: {},
    status: {
      conditions,
      ...(extra.clusterQueue ? { admission: { clusterQueue: extra.clusterQueue } } : {}),
      ...(extra.evictions
        ? { schedulingStats: { evictions: [{ reason: 'Preempted', underlyingCause: '', count: extra.evictions }] } }
        : {}),
    },
  };
}
