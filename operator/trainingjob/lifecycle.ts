// The TrainingJob state machine: from the job, the Jobs of its attempts, their pods and Kueue's Workloads,
// decide what should happen next. Pure: the controller feeds it the cache and the clock, then carries out the plan.
// Within an attempt the Job controller runs the pods (deadline, disruptions); across attempts this decides:
// a failed attempt's Job is followed, after a backoff, by the next attempt's Job until backoffLimit.
import { rfc3339 } from '../api/contracts.ts';
import { controllerOf } from '../engine/keys.ts';
import type { Condition, KubeObject } from '../engine/types.ts';
import { admittedCondition, queueStatus, unwrittenQueueStateMs } from './kueue.ts';
import { COMPLETION_INDEX, LABEL_ATTEMPT, TRAINER_CONTAINER, workersOf } from './pods.ts';
import type { TrainingJob, TrainingJobPhase, TrainingJobStatus } from './resource.ts';

export interface LifecycleOptions {
  /** Wait before retry n is base * 2^(n-1), capped at retryMaxMs (Kubernetes Jobs: 10 s, 6 min). */
  retryBaseMs: number;
  retryMaxMs: number;
}

export const DEFAULT_LIFECYCLE: LifecycleOptions = { retryBaseMs: 10_000, retryMaxMs: 360_000 };

export interface PlannedEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** What the cache holds of a TrainingJob: the Jobs it owns, their pods and the Workloads Kueue made of them. */
export interface Observed {
  jobs: readonly KubeObject[];
  pods: readonly KubeObject[];
  workloads: readonly KubeObject[];
  /** Not yet this job's turn to go to Kueue (kueue.ts queueTurn): what it waits for, and how long at most. */
  notYourTurn?: { why: string; retryMs: number };
}

/** What one attempt's Job and its pods say about it. */
export interface AttemptObservation {
  attempt: number;
  job: KubeObject;
  /**
   * A pod of the attempt runs, or one has succeeded and the Job is not yet Complete: training started and has not
   * ended, so the phase stays Running (not back to Pending, one status write less) until the Job controller says.
   */
  running: boolean;
  /** Every rank succeeded (the Job is Complete); rank 0's termination message. */
  complete?: { message: string | undefined };
  /** The Job failed: the Job controller's reason, why in words, and when. */
  failed?: { reason: string; why: string; at?: string };
}

export type Plan =
  /** Nothing to create; write `status`, delete `deleteJobs`. */
  | {
      kind: 'hold';
      status: TrainingJobStatus;
      conditions: Condition[];
      deleteJobs: string[];
      events: PlannedEvent[];
      requeueAfterMs?: number;
      deleteTrainingJob?: boolean;
    }
  /**
   * Create the Job of `attempt` (a new attempt, or one whose Job is gone), nothing else: its creation
   * brings the job back, and that reconcile records the attempt in status. The Job first keeps many
   * jobs created at once from waiting on each other's status writes.
   */
  | { kind: 'start'; attempt: number; activeDeadlineSeconds?: number; deleteJobs: string[] }
  /** Every rank of `attempt` succeeded: judge the result, register, then finish. */
  | { kind: 'judge'; attempt: number; message: string | undefined; status: TrainingJobStatus; deleteJobs: string[] }
  /** Nothing to create or write yet (`why`); delete `deleteJobs`, look again after `requeueAfterMs` or on a change. */
  | { kind: 'wait'; why: string; requeueAfterMs: number; deleteJobs: string[] };

const TERMINAL: ReadonlySet<string> = new Set(['Succeeded', 'Failed']);

export function isFinished(job: TrainingJob): boolean {
  return TERMINAL.has(job.status?.phase ?? '');
}

type JobCondition = { type: string; status: string; reason?: string; message?: string; lastTransitionTime?: string };

function jobCondition(job: KubeObject, type: string): JobCondition | undefined {
  return (job.status?.conditions as JobCondition[] | undefined)?.find((c) => c.type === type && c.status === 'True');
}

function jobFinished(job: KubeObject): boolean {
  return Boolean(jobCondition(job, 'Complete') || jobCondition(job, 'Failed'));
}

/** A Job that may still run pods: not finished and not being deleted. */
function jobActive(job: KubeObject): boolean {
  return !job.metadata.deletionTimestamp && !jobFinished(job);
}

export function attemptOf(object: KubeObject): number {
  return Number(object.metadata.labels?.[LABEL_ATTEMPT] ?? 0);
}

function rankOf(pod: KubeObject): number {
  return Number(pod.metadata.labels?.[COMPLETION_INDEX] ?? pod.metadata.annotations?.[COMPLETION_INDEX] ?? 0);
}

function terminatedOf(
  pod: KubeObject,
): { exitCode?: number; reason?: string; message?: string; finishedAt?: string } | undefined {
  const statuses = (pod.status?.containerStatuses ?? []) as Array<{ name: string; state?: { terminated?: any } }>;
  return (statuses.find((s) => s.name === TRAINER_CONTAINER) ?? statuses[0])?.state?.terminated;
}

function whyFailed(pod: KubeObject): string {
  const t = terminatedOf(pod);
  if (t) {
    const detail = t.message?.trim() ? `: ${t.message.trim().slice(0, 300)}` : '';
    return `pod ${pod.metadata.name} (rank ${rankOf(pod)}) exited with code ${t.exitCode ?? '?'} (${t.reason ?? 'Error'})${detail}`;
  }
  const reason = pod.status?.reason ? ` (${pod.status.reason})` : '';
  const message = pod.status?.message ? `: ${pod.status.message}` : '';
  return `pod ${pod.metadata.name} (rank ${rankOf(pod)}) failed${reason}${message}`;
}

export function observeAttempt(job: KubeObject, pods: readonly KubeObject[]): AttemptObservation {
  const mine = pods.filter((p) => controllerOf(p)?.uid === job.metadata.uid).sort((a, b) => rankOf(a) - rankOf(b));
  const obs: AttemptObservation = {
    attempt: attemptOf(job),
    job,
    running: mine.some(
      (p) => !p.metadata.deletionTimestamp && (p.status?.phase === 'Running' || p.status?.phase === 'Succeeded'),
    ),
  };
  if (jobCondition(job, 'Complete')) {
    const rank0 = mine.find((p) => rankOf(p) === 0 && p.status?.phase === 'Succeeded');
    obs.complete = { message: rank0 ? terminatedOf(rank0)?.message : undefined };
    return obs;
  }
  const failed = jobCondition(job, 'Failed');
  if (failed) {
    const pod = mine.find((p) => p.status?.phase === 'Failed');
    const reason = failed.reason ?? 'Failed';
    obs.failed = {
      reason,
      why: pod
        ? whyFailed(pod)
        : `Job ${job.metadata.name} failed (${reason})${failed.message ? `: ${failed.message}` : ''}`,
      at: failed.lastTransitionTime,
    };
  }
  return obs;
}

/** The newest attempt: what status says, or a later one whose Job exists (the operator stopped before recording it). */
export function currentAttempt(job: TrainingJob, jobs: readonly KubeObject[]): number {
  return Math.max(job.status?.attempts ?? 0, ...jobs.map(attemptOf));
}

function retryDelayMs(failedAttempt: number, options: LifecycleOptions): number {
  return Math.min(options.retryMaxMs, options.retryBaseMs * 2 ** (failedAttempt - 1));
}

function ms(iso: string | undefined): number | undefined {
  return iso ? Date.parse(iso) : undefined;
}

const iso = rfc3339;

function condition(type: string, status: Condition['status'], reason: string, message: string): Condition {
  return { type, status, reason, message };
}

/** Conditions for a job that has not finished. */
function activeConditions(phase: TrainingJobPhase, suspended: boolean, message: string): Condition[] {
  return [
    phase === 'Running'
      ? condition('Running', 'True', 'PodsRunning', message)
      : condition('Running', 'False', suspended ? 'Suspended' : 'PodsPending', message),
    suspended
      ? condition('Suspended', 'True', 'JobSuspended', 'spec.suspend is true: no pods run until it is false')
      : condition('Suspended', 'False', 'JobResumed', 'the job is not suspended'),
  ];
}

/** Conditions of a finished job; `registered` is added by the controller for successful jobs. */
export function finishedConditions(
  phase: 'Succeeded' | 'Failed',
  reason: string,
  message: string,
  registered?: Condition,
): Condition[] {
  const conditions = [
    condition('Running', 'False', phase === 'Succeeded' ? 'Completed' : reason, message),
    phase === 'Succeeded'
      ? condition('Succeeded', 'True', reason, message)
      : condition('Failed', 'True', reason, message),
  ];
  if (registered) conditions.push(registered);
  return conditions;
}

function baseStatus(job: TrainingJob): TrainingJobStatus {
  const s = job.status ?? {};
  const out: TrainingJobStatus = {};
  for (const key of [
    'phase',
    'attempts',
    'startTime',
    'completionTime',
    'metrics',
    'modelVersion',
    'version',
    'message',
    'queue',
  ] as const) {
    if (s[key] !== undefined) (out as Record<string, unknown>)[key] = s[key];
  }
  return out;
}

/** A terminal status for a job that failed now. */
export function failedStatus(job: TrainingJob, attempts: number, now: Date, message: string): TrainingJobStatus {
  return { ...baseStatus(job), phase: 'Failed', attempts, completionTime: iso(now), message };
}

function failedPlan(
  job: TrainingJob,
  status: TrainingJobStatus,
  attempt: number,
  now: Date,
  reason: string,
  message: string,
  deleteJobs: string[],
): Plan {
  return {
    kind: 'hold',
    status: { ...failedStatus(job, attempt, now, message), ...(status.queue ? { queue: status.queue } : {}) },
    conditions: finishedConditions('Failed', reason, message),
    deleteJobs,
    events: [{ type: 'Warning', reason, message }],
  };
}

export function planTrainingJob(
  job: TrainingJob,
  observed: Observed,
  now: Date,
  options: LifecycleOptions = DEFAULT_LIFECYCLE,
): Plan {
  const activeJobs = observed.jobs.filter(jobActive).map((j) => j.metadata.name);

  if (isFinished(job)) {
    // Finished: stop anything still running, keep the rest (pods hold the logs), honour the TTL.
    const status = baseStatus(job);
    const ttl = job.spec.ttlSecondsAfterFinished;
    const done = ms(job.status?.completionTime);
    const conditions = (job.status?.conditions ?? []).map((c) => ({
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message,
    }));
    if (ttl !== undefined && done !== undefined) {
      const left = done + ttl * 1000 - now.getTime();
      if (left <= 0)
        return { kind: 'hold', status, conditions, deleteJobs: activeJobs, events: [], deleteTrainingJob: true };
      return { kind: 'hold', status, conditions, deleteJobs: activeJobs, events: [], requeueAfterMs: left };
    }
    return { kind: 'hold', status, conditions, deleteJobs: activeJobs, events: [] };
  }

  const attempt = currentAttempt(job, observed.jobs);
  const current = observed.jobs.find((j) => attemptOf(j) === attempt && !j.metadata.deletionTimestamp);
  const stale = observed.jobs.filter((j) => jobActive(j) && attemptOf(j) < attempt).map((j) => j.metadata.name);
  const startTime = job.status?.startTime ?? earliest(observed.jobs.map((j) => j.status?.startTime));
  const status: TrainingJobStatus = { ...baseStatus(job), attempts: attempt };
  delete status.queue;

  if (job.spec.suspend) {
    const stopping = current && jobActive(current) ? [current.metadata.name] : [];
    const message = 'suspended: no pods run until spec.suspend is false';
    return {
      kind: 'hold',
      status: { ...status, phase: 'Pending', message },
      conditions: activeConditions('Pending', true, message),
      deleteJobs: [...stale, ...stopping],
      events: stopping.length
        ? [{ type: 'Normal', reason: 'Suspended', message: `deleted Job ${stopping[0]}: the job was suspended` }]
        : [],
    };
  }

  const deadline = job.spec.activeDeadlineSeconds;
  const deadlineLeftMs =
    deadline !== undefined && startTime ? Date.parse(startTime) + deadline * 1000 - now.getTime() : undefined;
  const deadlineMessage = `DeadlineExceeded: the job ran longer than activeDeadlineSeconds (${deadline}s) in ${attempt} attempt(s); raise spec.activeDeadlineSeconds or make training faster`;
  /** Starts `next`, its Job limited to what is left of the deadline; or fails the job when nothing is left. */
  const startOrExpire = (next: number, deleteJobs: string[]): Plan => {
    const wait = observed.notYourTurn;
    if (wait && !(deadlineLeftMs !== undefined && deadlineLeftMs <= 0))
      return { kind: 'wait', why: wait.why, requeueAfterMs: wait.retryMs, deleteJobs };
    if (deadline === undefined) return { kind: 'start', attempt: next, deleteJobs };
    if (deadlineLeftMs === undefined)
      return { kind: 'start', attempt: next, activeDeadlineSeconds: deadline, deleteJobs };
    if (deadlineLeftMs <= 0)
      return failedPlan(job, status, attempt, now, 'DeadlineExceeded', deadlineMessage, deleteJobs);
    return { kind: 'start', attempt: next, activeDeadlineSeconds: Math.ceil(deadlineLeftMs / 1000), deleteJobs };
  };

  // No Job yet, or the current attempt's is gone (deleted while suspended, or by hand): make it.
  if (attempt === 0) return startOrExpire(1, stale);
  if (!current) return startOrExpire(attempt, stale);

  const obs = observeAttempt(current, observed.pods);
  const workload = observed.workloads.find((w) => controllerOf(w)?.uid === current.metadata.uid);
  const queue = queueStatus(job, current.metadata.name, workload);
  if (queue) status.queue = queue;
  // Recorded once a pod ran or the attempt ended, not when the Job controller starts the Job: one status write less per job.
  if (startTime && (job.status?.startTime || obs.running || obs.complete || obs.failed)) status.startTime = startTime;

  if (obs.complete) return { kind: 'judge', attempt, message: obs.complete.message, status, deleteJobs: stale };
  if (obs.failed) {
    if (obs.failed.reason === 'DeadlineExceeded')
      return failedPlan(job, status, attempt, now, 'DeadlineExceeded', deadlineMessage, stale);
    const backoffLimit = job.spec.backoffLimit ?? 3;
    const failedMsg = `attempt ${attempt} failed: ${obs.failed.why}`;
    if (attempt > backoffLimit) {
      const message = `BackoffLimitExceeded: ${attempt} attempt(s) failed (backoffLimit ${backoffLimit}); last: ${failedMsg}`;
      return failedPlan(job, status, attempt, now, 'BackoffLimitExceeded', message, stale);
    }
    const wait = (ms(obs.failed.at) ?? now.getTime()) + retryDelayMs(attempt, options) - now.getTime();
    if (wait > 0) {
      const message = `${failedMsg}; retrying in ${Math.ceil(wait / 1000)}s (attempt ${attempt + 1} of ${backoffLimit + 1})`;
      return {
        kind: 'hold',
        status: { ...status, phase: 'Pending', message },
        conditions: activeConditions('Pending', false, message),
        deleteJobs: stale,
        events: [],
        requeueAfterMs: wait,
      };
    }
    return startOrExpire(attempt + 1, stale);
  }

  const unwritten = queue && !obs.running ? unwrittenQueueStateMs(current, workload, queue, now) : undefined;
  if (unwritten) return { kind: 'wait', why: unwritten.why, requeueAfterMs: unwritten.ms, deleteJobs: stale };

  const workers = workersOf(job);
  const phase: TrainingJobPhase = obs.running ? 'Running' : 'Pending';
  const message = obs.running
    ? `attempt ${attempt}: training on ${workers} pod(s)`
    : queue?.state === 'Queued'
      ? `attempt ${attempt}: queued in LocalQueue ${queue.localQueue}: ${queue.message}`
      : `attempt ${attempt}: waiting for ${workers} pod(s) to be scheduled and started`;
  const events: PlannedEvent[] = [];
  if ((job.status?.attempts ?? 0) < attempt) {
    // Status catches up with an attempt whose Job was just created.
    const previous = observed.jobs.find((j) => attemptOf(j) === attempt - 1);
    const failure = previous ? observeAttempt(previous, observed.pods).failed : undefined;
    if (failure)
      events.push({
        type: 'Warning',
        reason: 'AttemptFailed',
        message: `attempt ${attempt - 1} failed: ${failure.why}`,
      });
    events.push({
      type: 'Normal',
      reason: 'AttemptStarted',
      message: `attempt ${attempt} of ${(job.spec.backoffLimit ?? 3) + 1}: created Job ${current.metadata.name} (${workers} pod(s))`,
    });
  }
  const before = job.status?.queue;
  if (queue && (queue.evictions ?? 0) > (before?.evictions ?? 0))
    events.push({ type: 'Warning', reason: 'Evicted', message: `Kueue evicted attempt ${attempt}: ${queue.message}` });
  if (queue?.state === 'Admitted' && before?.state !== 'Admitted')
    events.push({ type: 'Normal', reason: 'Admitted', message: `attempt ${attempt}: ${queue.message}` });
  if (phase === 'Running' && job.status?.phase !== 'Running')
    events.push({ type: 'Normal', reason: 'Running', message });
  return {
    kind: 'hold',
    status: { ...status, phase, message },
    conditions: [...activeConditions(phase, false, message), ...(queue ? [admittedCondition(queue)] : [])],
    deleteJobs: stale,
    events,
  };
}

function earliest(times: ReadonlyArray<string | undefined>): string | undefined {
  return times.filter((t): t is string => Boolean(t)).sort()[0];
}
