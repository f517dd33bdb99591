// Kueue's view of a queued TrainingJob: the Workload Kueue made of the attempt's Job says whether it is
// admitted, and if not, why it waits, in Kueue's own words. Pure; the controller reads the Workload from
// the cache. The label and condition names are Kueue's API (kueue.x-k8s.io/v1beta2).
import type { Condition, KubeObject } from '../engine/types.ts';
import type { TrainingJob, TrainingJobQueueStatus } from './resource.ts';

/** The label Kueue's Job integration reads to queue a Job in a LocalQueue. */
export const KUEUE_QUEUE_LABEL = 'kueue.x-k8s.io/queue-name';

function conditionOf(
  object: KubeObject | undefined,
  type: string,
): { status: string; reason?: string; message?: string } | undefined {
  return (
    object?.status?.conditions as Array<{ type: string; status: string; reason?: string; message?: string }> | undefined
  )?.find((c) => c.type === type);
}

/** Evictions of the Workload so far (preemption, a stopped ClusterQueue, ...), as Kueue counts them. */
function evictionsOf(workload: KubeObject): number {
  const stats = (workload.status?.schedulingStats?.evictions ?? []) as Array<{ count?: number }>;
  return stats.reduce((sum, e) => sum + (e.count ?? 0), 0);
}

/** The queue part of the status of a TrainingJob with spec.queueName, from its current attempt's Job and that Job's Workload. */
export function queueStatus(
  job: TrainingJob,
  attemptJob: string | undefined,
  workload: KubeObject | undefined,
): TrainingJobQueueStatus | undefined {
  const localQueue = job.spec.queueName;
  if (!localQueue) return undefined;
  // No Workload, or one Kueue has not decided on yet: one state, so a job is not written twice before Kueue says anything.
  if (!workload?.status?.conditions?.length) {
    const what = attemptJob ? `Job ${attemptJob}` : 'the next attempt';
    return {
      localQueue,
      state: 'Queued',
      reason: 'WaitingForWorkload',
      message: `waiting for Kueue to queue ${what}: no Workload of it yet, or none Kueue has decided on (is Kueue running with the batch/job integration?)`,
      ...(job.status?.queue?.evictions ? { evictions: job.status.queue.evictions } : {}),
    };
  }
  const evictions = Math.max(evictionsOf(workload), job.status?.queue?.evictions ?? 0);
  const base = { localQueue, workload: workload.metadata.name, ...(evictions ? { evictions } : {}) };
  const admitted = conditionOf(workload, 'Admitted');
  const clusterQueue = workload.status?.admission?.clusterQueue as string | undefined;
  if (admitted?.status === 'True') {
    return {
      ...base,
      state: 'Admitted',
      ...(clusterQueue ? { clusterQueue } : {}),
      reason: 'Admitted',
      message: admitted.message || `admitted by ClusterQueue ${clusterQueue}`,
    };
  }
  const reserved = conditionOf(workload, 'QuotaReserved');
  const evicted = conditionOf(workload, 'Evicted');
  const waiting = reserved?.status === 'False' && reserved.message ? reserved.message : undefined;
  if (evicted?.status === 'True') {
    return {
      ...base,
      state: 'Queued',
      reason: evicted.reason ?? 'Evicted',
      message: `evicted: ${evicted.message ?? evicted.reason}; waiting to be admitted again${waiting ? `: ${waiting}` : ''}`,
    };
  }
  if (reserved?.status === 'True') {
    return {
      ...base,
      state: 'Queued',
      reason: 'QuotaReserved',
      message: reserved.message || 'quota reserved; waiting for admission checks',
    };
  }
  return {
    ...base,
    state: 'Queued',
    reason: reserved?.reason ?? 'Pending',
    message: waiting ?? `waiting for Kueue to consider it in LocalQueue ${localQueue}`,
  };
}

/** The Admitted condition of a queued TrainingJob, mirroring its queue status. */
export function admittedCondition(queue: TrainingJobQueueStatus): Condition {
  return {
    type: 'Admitted',
    status: queue.state === 'Admitted' ? 'True' : 'False',
    reason: queue.reason,
    message: queue.message,
  };
}
