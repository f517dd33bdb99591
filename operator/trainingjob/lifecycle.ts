// The TrainingJob state machine: from the job and the pods it owns, decide what should happen next.
// Pure: the controller feeds it the cache and the clock, then carries out the plan.
import type { Condition, KubeObject } from '../engine/types.ts';
import { LABEL_ATTEMPT, LABEL_RANK, TRAINER_CONTAINER, workersOf } from './pods.ts';
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

/** What one attempt's pods say about it. */
export interface AttemptObservation {
  attempt: number;
  /** Ranks with a live (not terminating) pod. */
  present: Set<number>;
  running: boolean;
  /** The first failed rank with why, if any rank failed. */
  failure?: { rank: number; why: string; finishedAt?: string };
  /** Every rank succeeded; rank 0's termination message. */
  succeeded?: { message: string | undefined; finishedAt?: string };
  /** Pods of this attempt that still run or wait to run. */
  active: string[];
}

export type Plan =
  /** Nothing to change in the pods; write `status`. */
  | { kind: 'hold'; status: TrainingJobStatus; conditions: Condition[]; deletePods: string[]; events: PlannedEvent[]; requeueAfterMs?: number; deleteJob?: boolean }
  /**
   * Create the missing pods of `attempt` (a new attempt, or pods lost while it ran), nothing else:
   * their creation brings the job back, and that reconcile records the attempt in status. Pods
   * first keeps many jobs created at once from waiting on each other's status writes.
   */
  | { kind: 'start'; attempt: number; ranks: number[]; deletePods: string[]; requeueAfterMs?: number }
  /** Every rank of `attempt` succeeded: judge the result, register, then finish. */
  | { kind: 'judge'; attempt: number; message: string | undefined; status: TrainingJobStatus; deletePods: string[] };

type Pod = KubeObject;

const TERMINAL: ReadonlySet<string> = new Set(['Succeeded', 'Failed']);

export function isFinished(job: TrainingJob): boolean {
  return TERMINAL.has(job.status?.phase ?? '');
}

function podActive(pod: Pod): boolean {
  return !pod.metadata.deletionTimestamp && !TERMINAL.has(pod.status?.phase ?? '');
}

function terminatedOf(pod: Pod): { exitCode?: number; reason?: string; message?: string; finishedAt?: string } | undefined {
  const statuses = (pod.status?.containerStatuses ?? []) as Array<{ name: string; state?: { terminated?: any } }>;
  return (statuses.find((s) => s.name === TRAINER_CONTAINER) ?? statuses[0])?.state?.terminated;
}

function attemptOf(pod: Pod): number {
  return Number(pod.metadata.labels?.[LABEL_ATTEMPT] ?? 0);
}

function rankOf(pod: Pod): number {
  return Number(pod.metadata.labels?.[LABEL_RANK] ?? 0);
}

function whyFailed(pod: Pod): string {
  const t = terminatedOf(pod);
  if (t) {
    const detail = t.message?.trim() ? `: ${t.message.trim().slice(0, 300)}` : '';
    return `pod ${pod.metadata.name} exited with code ${t.exitCode ?? '?'} (${t.reason ?? 'Error'})${detail}`;
  }
  const reason = pod.status?.reason ? ` (${pod.status.reason})` : '';
  const message = pod.status?.message ? `: ${pod.status.message}` : '';
  return `pod ${pod.metadata.name} failed${reason}${message}`;
}

export function observeAttempt(job: TrainingJob, pods: readonly Pod[], attempt: number): AttemptObservation {
  const mine = pods.filter((p) => attemptOf(p) === attempt);
  const workers = workersOf(job);
  const obs: AttemptObservation = { attempt, present: new Set(), running: false, active: [] };
  const succeededRanks = new Set<number>();
  let rank0Message: string | undefined;
  let lastFinish: string | undefined;
  for (const pod of [...mine].sort((a, b) => rankOf(a) - rankOf(b))) {
    if (pod.metadata.deletionTimestamp && !TERMINAL.has(pod.status?.phase ?? '')) continue;
    const rank = rankOf(pod);
    obs.present.add(rank);
    const phase = pod.status?.phase;
    if (phase === 'Running') obs.running = true;
    if (podActive(pod)) obs.active.push(pod.metadata.name);
    const t = terminatedOf(pod);
    if (t?.finishedAt && (!lastFinish || t.finishedAt > lastFinish)) lastFinish = t.finishedAt;
    if (phase === 'Failed' && !obs.failure) obs.failure = { rank, why: whyFailed(pod), finishedAt: t?.finishedAt };
    if (phase === 'Succeeded') {
      succeededRanks.add(rank);
      if (rank === 0) rank0Message = t?.message;
    }
  }
  if (!obs.failure && succeededRanks.size === workers) obs.succeeded = { message: rank0Message, finishedAt: lastFinish };
  return obs;
}

/** The newest attempt: what status says, or a later one whose pods exist (the operator stopped before recording it). */
export function currentAttempt(job: TrainingJob, pods: readonly Pod[]): number {
  return Math.max(job.status?.attempts ?? 0, ...pods.map(attemptOf));
}

function retryDelayMs(failedAttempt: number, options: LifecycleOptions): number {
  return Math.min(options.retryMaxMs, options.retryBaseMs * 2 ** (failedAttempt - 1));
}

function ms(iso: string | undefined): number | undefined {
  return iso ? Date.parse(iso) : undefined;
}

function iso(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function condition(type: string, status: Condition['status'], reason: string, message: string): Condition {
  return { type, status, reason, message };
}

/** Conditions for a job that has not finished. */
function activeConditions(phase: TrainingJobPhase, suspended: boolean, message: string): Condition[] {
  const conditions = [
    phase === 'Running'
      ? condition('Running', 'True', 'PodsRunning', message)
      : condition('Running', 'False', suspended ? 'Suspended' : 'PodsPending', message),
  ];
  conditions.push(
    suspended
      ? condition('Suspended', 'True', 'JobSuspended', 'spec.suspend is true: no pods run until it is false (Kueue sets it when the job is admitted)')
      : condition('Suspended', 'False', 'JobResumed', 'the job is not suspended'),
  );
  return conditions;
}

/** Conditions of a finished job; `registered` is added by the controller for successful jobs. */
export function finishedConditions(phase: 'Succeeded' | 'Failed', reason: string, message: string, registered?: Condition): Condition[] {
  const conditions = [
    condition('Running', 'False', phase === 'Succeeded' ? 'Completed' : reason, message),
    phase === 'Succeeded' ? condition('Succeeded', 'True', reason, message) : condition('Failed', 'True', reason, message),
  ];
  if (registered) conditions.push(registered);
  return conditions;
}

function baseStatus(job: TrainingJob): TrainingJobStatus {
  const s = job.status ?? {};
  const out: TrainingJobStatus = {};
  for (const key of ['phase', 'attempts', 'startTime', 'completionTime', 'metrics', 'modelVersion', 'version', 'message'] as const) {
    if (s[key] !== undefined) (out as Record<string, unknown>)[key] = s[key];
  }
  return out;
}

/** A terminal status for a job that failed now. */
export function failedStatus(job: TrainingJob, attempts: number, now: Date, message: string): TrainingJobStatus {
  return { ...baseStatus(job), phase: 'Failed', attempts, completionTime: iso(now), message };
}

export function planTrainingJob(job: TrainingJob, pods: readonly Pod[], now: Date, options: LifecycleOptions = DEFAULT_LIFECYCLE): Plan {
  const name = job.metadata.name;
  const activePods = pods.filter(podActive).map((p) => p.metadata.name);

  if (isFinished(job)) {
    // Finished: stop anything still running (the other ranks of a failed attempt), keep the rest for logs, honour the TTL.
    const status = baseStatus(job);
    const ttl = job.spec.ttlSecondsAfterFinished;
    const done = ms(job.status?.completionTime);
    const conditions = (job.status?.conditions ?? []).map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message }));
    if (ttl !== undefined && done !== undefined) {
      const left = done + ttl * 1000 - now.getTime();
      if (left <= 0) return { kind: 'hold', status, conditions, deletePods: activePods, events: [], deleteJob: true };
      return { kind: 'hold', status, conditions, deletePods: activePods, events: [], requeueAfterMs: left };
    }
    return { kind: 'hold', status, conditions, deletePods: activePods, events: [] };
  }

  const attempt = currentAttempt(job, pods);
  const startTime = job.status?.startTime ?? earliestCreation(pods);
  const status: TrainingJobStatus = { ...baseStatus(job), attempts: attempt };
  if (startTime) status.startTime = startTime;
  const stale = pods.filter((p) => podActive(p) && attemptOf(p) < attempt).map((p) => p.metadata.name);

  if (job.spec.suspend) {
    const message = `suspended: no pods run until spec.suspend is false${job.spec.queueName ? ` (Kueue admits it from queue ${job.spec.queueName})` : ''}`;
    return {
      kind: 'hold',
      status: { ...status, phase: 'Pending', message },
      conditions: activeConditions('Pending', true, message),
      deletePods: activePods,
      events: activePods.length ? [{ type: 'Normal', reason: 'Suspended', message: `stopped ${activePods.length} pod(s): the job was suspended` }] : [],
    };
  }

  const deadline = job.spec.activeDeadlineSeconds;
  let deadlineLeft: number | undefined;
  if (deadline !== undefined && startTime) {
    deadlineLeft = Date.parse(startTime) + deadline * 1000 - now.getTime();
    if (deadlineLeft <= 0) {
      const message = `DeadlineExceeded: the job ran longer than activeDeadlineSeconds (${deadline}s) in ${attempt} attempt(s); raise spec.activeDeadlineSeconds or make training faster`;
      return {
        kind: 'hold',
        status: failedStatus(job, attempt, now, message),
        conditions: finishedConditions('Failed', 'DeadlineExceeded', message),
        deletePods: activePods,
        events: [{ type: 'Warning', reason: 'DeadlineExceeded', message }],
      };
    }
  }
  const withDeadline = (ms?: number): number | undefined =>
    deadlineLeft === undefined ? ms : ms === undefined ? deadlineLeft : Math.min(ms, deadlineLeft);

  if (attempt === 0) return { kind: 'start', attempt: 1, ranks: allRanks(job), deletePods: stale, requeueAfterMs: withDeadline(undefined) };

  const obs = observeAttempt(job, pods, attempt);
  if (obs.succeeded) {
    return { kind: 'judge', attempt, message: obs.succeeded.message, status, deletePods: [...stale, ...obs.active] };
  }
  if (obs.failure) {
    const backoffLimit = job.spec.backoffLimit ?? 3;
    const failedMsg = `attempt ${attempt} failed: ${obs.failure.why}`;
    if (attempt > backoffLimit) {
      const message = `BackoffLimitExceeded: ${attempt} attempt(s) failed (backoffLimit ${backoffLimit}); last: ${failedMsg}`;
      return {
        kind: 'hold',
        status: failedStatus(job, attempt, now, message),
        conditions: finishedConditions('Failed', 'BackoffLimitExceeded', message),
        deletePods: [...stale, ...obs.active],
        events: [{ type: 'Warning', reason: 'BackoffLimitExceeded', message }],
      };
    }
    const failedAt = ms(obs.failure.finishedAt) ?? now.getTime();
    const wait = failedAt + retryDelayMs(attempt, options) - now.getTime();
    if (wait > 0) {
      const message = `${failedMsg}; retrying in ${Math.ceil(wait / 1000)}s (attempt ${attempt + 1} of ${backoffLimit + 1})`;
      return {
        kind: 'hold',
        status: { ...status, phase: 'Pending', message },
        conditions: activeConditions('Pending', false, message),
        // The other ranks of a failed attempt cannot finish it: stop them now.
        deletePods: [...stale, ...obs.active],
        events: [],
        requeueAfterMs: withDeadline(wait),
      };
    }
    return { kind: 'start', attempt: attempt + 1, ranks: allRanks(job), deletePods: [...stale, ...obs.active], requeueAfterMs: withDeadline(undefined) };
  }

  const missing = allRanks(job).filter((r) => !obs.present.has(r));
  if (missing.length > 0) return { kind: 'start', attempt, ranks: missing, deletePods: stale, requeueAfterMs: withDeadline(undefined) };

  const phase: TrainingJobPhase = obs.running ? 'Running' : 'Pending';
  const workers = workersOf(job);
  const message = obs.running ? `attempt ${attempt}: training on ${workers} pod(s)` : `attempt ${attempt}: waiting for ${workers} pod(s) to be scheduled and started`;
  const events: PlannedEvent[] = [];
  if ((job.status?.attempts ?? 0) < attempt) {
    // Status catches up with an attempt whose pods were just created.
    const previous = attempt > 1 ? observeAttempt(job, pods, attempt - 1).failure : undefined;
    if (previous) events.push({ type: 'Warning', reason: 'AttemptFailed', message: `attempt ${attempt - 1} failed: ${previous.why}` });
    events.push({ type: 'Normal', reason: 'AttemptStarted', message: `attempt ${attempt} of ${(job.spec.backoffLimit ?? 3) + 1}: created ${workers} pod(s)` });
  }
  if (phase === 'Running' && job.status?.phase !== 'Running') events.push({ type: 'Normal', reason: 'Running', message });
  return {
    kind: 'hold',
    status: { ...status, phase, message, ...(status.startTime ? {} : { startTime: iso(now) }) },
    conditions: activeConditions(phase, false, message),
    deletePods: stale,
    events,
    requeueAfterMs: withDeadline(undefined),
  };
}

function allRanks(job: TrainingJob): number[] {
  return Array.from({ length: workersOf(job) }, (_, r) => r);
}

function earliestCreation(pods: readonly Pod[]): string | undefined {
  const times = pods.map((p) => p.metadata.creationTimestamp).filter(Boolean).map((t) => (t instanceof Date ? iso(t) : String(t)));
  return times.sort()[0];
}
