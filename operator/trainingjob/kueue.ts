// Kueue's view of a queued TrainingJob: the Workload of the attempt's Job (made by the operator, admitted by
// Kueue) says whether it is admitted, and if not, why it waits, in Kueue's own words. Pure; the controller
// reads the Workload from the cache. The label and condition names are Kueue's API (kueue.x-k8s.io/v1beta2).
import type { Condition, DesiredObject, KubeObject } from '../engine/types.ts';
import type { TrainingJob, TrainingJobQueueStatus } from './resource.ts';

/** The label Kueue's Job integration reads to queue a Job in a LocalQueue. */
export const KUEUE_QUEUE_LABEL = 'kueue.x-k8s.io/queue-name';
/** The label naming the Workload Kueue is to use for a Job instead of making one (a "prebuilt" Workload). */
export const KUEUE_PREBUILT_WORKLOAD_LABEL = 'kueue.x-k8s.io/prebuilt-workload-name';
/** The label Kueue puts on a Workload with the uid of its Job. */
const KUEUE_JOB_UID_LABEL = 'kueue.x-k8s.io/job-uid';

/** A PriorityClass as the cache holds it. */
export type PriorityClassObject = KubeObject & { value?: number; globalDefault?: boolean };

/**
 * The Workload of a queued Job, made by the operator rather than by Kueue, so that its creation time, which is what
 * Kueue orders a priority's Workloads by, is the operator's to choose (queueTurn). It is what Kueue would make of
 * the Job: one pod set `main` of `parallelism` pods with the Job's pod template as the API server returned it
 * (Kueue compares the containers, init containers and tolerations, and marks a Workload that differs out of sync),
 * the Job's LocalQueue, and the priority of its pods' PriorityClass (or of the cluster's default one). The Job is
 * its controller owner, as Kueue would set: the garbage collector removes it with the Job, and Kueue adopts it
 * without a write. `priorityClasses` are the cluster's; a named class missing throws (Kueue too would not queue it).
 */
export function desiredWorkload(
  createdJob: KubeObject,
  priorityClasses: readonly PriorityClassObject[],
): DesiredObject {
  const { name, namespace, uid, labels } = createdJob.metadata;
  const template = createdJob.spec.template as { metadata?: Record<string, unknown>; spec: Record<string, unknown> };
  const className = template.spec.priorityClassName as string | undefined;
  const priorityClass = className
    ? priorityClasses.find((c) => c.metadata.name === className)
    : priorityClasses.find((c) => c.globalDefault);
  if (className && !priorityClass) throw new Error(`PriorityClass ${className} of Job ${name} not found`);
  return {
    apiVersion: 'kueue.x-k8s.io/v1beta2',
    kind: 'Workload',
    metadata: {
      name,
      namespace,
      labels: { [KUEUE_JOB_UID_LABEL]: uid! },
      ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: name!, uid: uid!, controller: true }],
    },
    spec: {
      queueName: labels?.[KUEUE_QUEUE_LABEL],
      podSets: [
        {
          name: 'main',
          count: createdJob.spec.parallelism ?? 1,
          template: {
            metadata: { labels: template.metadata?.labels, annotations: template.metadata?.annotations },
            spec: template.spec,
          },
        },
      ],
      ...(priorityClass
        ? {
            priorityClassRef: { group: 'scheduling.k8s.io', kind: 'PriorityClass', name: priorityClass.metadata.name },
            priority: priorityClass.value ?? 0,
          }
        : {}),
    },
  };
}

/** Whether a Job of the operator's waits for its Workload to be made: queued, still suspended, none in the cache. */
export function needsWorkload(attemptJob: KubeObject, workload: KubeObject | undefined): boolean {
  return (
    Boolean(attemptJob.metadata.labels?.[KUEUE_PREBUILT_WORKLOAD_LABEL]) &&
    attemptJob.spec?.suspend === true &&
    !attemptJob.metadata.deletionTimestamp &&
    !workload
  );
}

type WorkloadCondition = {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
};

function conditionOf(object: KubeObject | undefined, type: string): WorkloadCondition | undefined {
  return (object?.status?.conditions as WorkloadCondition[] | undefined)?.find((c) => c.type === type);
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

/**
 * First in, first out as Kueue counts it: of one priority, Kueue admits the Workload created first (its creation
 * time, to the second, then its uid). So the order Kueue keeps is the order the Workloads were made in, not the
 * order the TrainingJobs were created in; many reconciles at once would scramble it. The operator makes each
 * queued Job's Workload itself right after the Job (desiredWorkload: were Kueue to make them, at its own pace, a
 * queue of hundreds would trickle into Kueue), and hands a LocalQueue's TrainingJobs to Kueue a creation second at
 * a time: the first Job of a job created in second S is created once every job of the queue created before S has
 * a Job with a Workload, and the newest of those Workloads is from an earlier second than now, so S's Workloads
 * come after all earlier ones. Jobs of the same second go together: the API server's timestamps cannot order
 * them, nor can Kueue's.
 */
export interface QueueOrder {
  /** The TrainingJobs of the job's namespace. */
  peers: readonly TrainingJob[];
  jobsOf(job: TrainingJob): readonly KubeObject[];
  workloadOf(job: KubeObject): KubeObject | undefined;
  /** Whether the creation of a TrainingJob's Job failed last time: it does not hold up the jobs behind it. */
  stuck(job: TrainingJob): boolean;
}

/** How long a Job may wait for Kueue to make its Workload before the jobs behind it stop waiting (Kueue down?). */
export const WORKLOAD_WAIT_MS = 10_000;
/** How soon a job waiting for its turn looks again if nothing wakes it (its turn comes with a Job or Workload event). */
export const QUEUE_TURN_RECHECK_MS = 5_000;

export type QueueTurn = { go: true } | { go: false; why: string; retryMs: number };

const timeOf = (object: KubeObject) => new Date(object.metadata.creationTimestamp ?? 0).getTime();

/** A job of `queue` not given to Kueue yet: no Job, no attempt, not finished, suspended or going, not stuck. */
function awaitingKueue(job: TrainingJob, queue: string, order: QueueOrder): boolean {
  return (
    job.spec.queueName === queue &&
    !job.metadata.deletionTimestamp &&
    !job.spec.suspend &&
    !job.status?.attempts &&
    !['Succeeded', 'Failed'].includes(job.status?.phase ?? '') &&
    order.jobsOf(job).length === 0 &&
    !order.stuck(job)
  );
}

/** Whether `job`, not yet given to Kueue, may get its first Job now; if not, what it waits for and how long at most. */
export function queueTurn(job: TrainingJob, order: QueueOrder, now: Date): QueueTurn {
  const queue = job.spec.queueName;
  if (!queue || !awaitingKueue(job, queue, order)) return { go: true };
  const second = timeOf(job);
  let latest = Number.NEGATIVE_INFINITY;
  for (const peer of order.peers) {
    if (peer.spec.queueName !== queue || timeOf(peer) >= second || peer.metadata.deletionTimestamp) continue;
    const jobs = order.jobsOf(peer);
    if (jobs.length === 0) {
      if (awaitingKueue(peer, queue, order))
        return {
          go: false,
          why: `${peer.metadata.name}, created before it, has no Job yet`,
          retryMs: QUEUE_TURN_RECHECK_MS,
        };
      continue;
    }
    for (const attemptJob of jobs) {
      const workload = order.workloadOf(attemptJob);
      if (workload) latest = Math.max(latest, timeOf(workload));
      else {
        const waited = now.getTime() - timeOf(attemptJob);
        if (waited < WORKLOAD_WAIT_MS)
          return {
            go: false,
            why: `Kueue has no Workload yet of Job ${attemptJob.metadata.name} of ${peer.metadata.name}, created before it`,
            retryMs: WORKLOAD_WAIT_MS - waited,
          };
        latest = Math.max(latest, timeOf(attemptJob));
      }
    }
  }
  // Timestamps are whole seconds: a Workload made before the next second could tie with the newest one.
  const nextSecond = latest + 1000 - now.getTime();
  if (nextSecond > 0)
    return { go: false, why: 'the jobs created before it went to Kueue this second', retryMs: nextSecond };
  return { go: true };
}

/** The jobs of `queue` whose turn has come (or comes within a second): those to look at when a Job or Workload of the queue changes. */
export function nextForKueue(queue: string, order: QueueOrder, now: Date): TrainingJob[] {
  const waiting = order.peers.filter((peer) => awaitingKueue(peer, queue, order));
  if (waiting.length === 0) return [];
  const first = Math.min(...waiting.map(timeOf));
  const group = waiting.filter((peer) => timeOf(peer) === first);
  const turn = queueTurn(group[0]!, order, now);
  return turn.go || turn.retryMs <= 1000 ? group : [];
}

/** How long after Kueue admits a Job its pods may take to run before status says Admitted and waiting for pods. */
export const ADMITTED_WAIT_MS = 5_000;

/**
 * A queue state about to pass is not written, one status write less for each job: a Job Kueue has made no decision
 * on yet (no Workload, or one without conditions) for WORKLOAD_WAIT_MS, after which status says Kueue has not seen it;
 * and an admitted Job whose pods are not running yet for ADMITTED_WAIT_MS after admission. Returns how long the
 * state may stay unwritten, or undefined when it is to be written now.
 */
export function unwrittenQueueStateMs(
  attemptJob: KubeObject,
  workload: KubeObject | undefined,
  queue: TrainingJobQueueStatus,
  now: Date,
): { why: string; ms: number } | undefined {
  const left = (since: string | Date | undefined, wait: number) =>
    since === undefined ? 0 : new Date(since).getTime() + wait - now.getTime();
  if (queue.reason === 'WaitingForWorkload') {
    const ms = left(attemptJob.metadata.creationTimestamp, WORKLOAD_WAIT_MS);
    return ms > 0 ? { why: `Kueue has not decided on Job ${attemptJob.metadata.name} yet`, ms } : undefined;
  }
  if (queue.state === 'Admitted') {
    const ms = left(conditionOf(workload, 'Admitted')?.lastTransitionTime, ADMITTED_WAIT_MS);
    return ms > 0 ? { why: `Job ${attemptJob.metadata.name} is admitted; its pods are starting`, ms } : undefined;
  }
  return undefined;
}
