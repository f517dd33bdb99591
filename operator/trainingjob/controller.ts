// The TrainingJob controller: carries out the plan of lifecycle.ts — creates each attempt's Job (job.ts)
// and deletes Jobs that must stop, keeps the headless Service, judges the result, registers the
// ModelVersion, writes status (with Kueue's queue state) and Events.
import { rfc3339 } from '../api/contracts.ts';
import type { StorageSettings } from '../api/storage-env.ts';
import { publishLifecycle, type LifecyclePublisher } from '../events/publisher.ts';
import {
  controllerReference,
  kinds,
  type ClusterCache,
  type ControllerDefinition,
  type KubeApi,
  type KubeObject,
  type OwnerReference,
  type ReconcileContext,
} from '../engine/index.ts';
import { controllerOf, keyOf } from '../engine/keys.ts';
import { registeredEvent } from '../modelversion/events.ts';
import { evaluateGates } from '../modelversion/gates.ts';
import type { ModelVersion } from '../modelversion/resource.ts';
import {
  DEFAULT_LIFECYCLE,
  finishedConditions,
  planTrainingJob,
  type LifecycleOptions,
  type PlannedEvent,
} from './lifecycle.ts';
import { desiredJob, jobName } from './job.ts';
import {
  desiredWorkload,
  KUEUE_QUEUE_LABEL,
  needsWorkload,
  nextForKueue,
  queueTurn,
  type PriorityClassObject,
  type QueueOrder,
} from './kueue.ts';
import { desiredService } from './pods.ts';
import { desiredTokenSecret, drawProgressCredentials, progressPodEnv } from './progress.ts';
import { desiredModelVersion, LABEL_TRAININGJOB_UID } from './registration.ts';
import type { TrainingJob, TrainingJobStatus } from './resource.ts';
import { parseTrainingResult, type TrainingResult } from './result.ts';

export interface TrainingJobControllerOptions {
  /** Uncached reads: the registry must see every version the API server has, not what the cache has seen so far. */
  api: KubeApi;
  lifecycle?: Partial<LifecycleOptions>;
  /** Versions tried before giving up when other jobs keep taking the next number. */
  maxVersionAttempts?: number;
  /** Parallel reconciles of different jobs; default 16. */
  workers?: number;
  /** `registered` lifecycle events on NATS; without one, registration works the same. */
  publisher?: LifecyclePublisher;
  /** Object storage settings given to training pods (endpoint, region, the Secret with the keys). */
  storage?: StorageSettings;
  /** Base URL of the operator's progress endpoint as pods reach it; without it pods get no progress env or token. */
  progressUrl?: string;
}

export function trainingJobController(options: TrainingJobControllerOptions): ControllerDefinition {
  const lifecycle: LifecycleOptions = { ...DEFAULT_LIFECYCLE, ...options.lifecycle };
  /** Uids of TrainingJobs whose last Job creation failed: they do not hold up their LocalQueue (kueue.ts). */
  const stuck = new Set<string>();
  /** Uids of Jobs whose Workload this operator made and the cache has not shown yet. */
  const workloadMade = new Set<string>();
  const createWorkload = async (attemptJob: KubeObject, ctx: ReconcileContext) => {
    const classes = ctx.cache.list<PriorityClassObject>(kinds.PriorityClass);
    // Never read back (create is all the chart grants on Workloads): one the cache has not shown yet fails this
    // reconcile with AlreadyExists, and the retry finds it in the cache.
    await ctx.create(desiredWorkload(attemptJob, classes), { readExisting: false });
    workloadMade.add(attemptJob.metadata.uid!);
  };
  const queueOrder = (cache: ClusterCache, namespace: string | undefined): QueueOrder => ({
    peers: cache.list<TrainingJob>(kinds.TrainingJob, { namespace }),
    jobsOf: (peer) => cache.ownedBy(kinds.Job, peer),
    workloadOf: (job) => cache.ownedBy(kinds.Workload, job)[0],
    stuck: (peer) => stuck.has(peer.metadata.uid ?? ''),
  });
  /** A Job or Workload of a LocalQueue changed: the jobs whose turn to go to Kueue that may be. */
  const nextOfQueue = (queue: string | undefined) => (object: KubeObject, cache: ClusterCache) =>
    queue
      ? nextForKueue(queue, queueOrder(cache, object.metadata.namespace), new Date()).map((j) =>
          keyOf(j.metadata.namespace, j.metadata.name),
        )
      : [];
  return {
    name: 'trainingjob',
    for: kinds.TrainingJob,
    owns: [kinds.Job, kinds.Service],
    // The priority of a queued Job's pods goes on the Workload the operator makes of it (kueue.ts desiredWorkload).
    reads: [kinds.PriorityClass],
    // The pods and Kueue Workloads of its Jobs: the Job's controller owner is the TrainingJob.
    watches: [
      { kind: kinds.Pod, map: ownerOfOwningJob },
      { kind: kinds.Workload, map: ownerOfOwningJob },
      // A queued job's Job and then its Workload appearing may make it the turn of the next jobs of that LocalQueue.
      { kind: kinds.Job, map: (o, cache) => nextOfQueue(o.metadata.labels?.[KUEUE_QUEUE_LABEL])(o, cache) },
      { kind: kinds.Workload, map: (o, cache) => nextOfQueue(o.spec?.queueName)(o, cache) },
    ],
    // Each reconcile waits on a few API round trips; with many jobs created at once, more of them in
    // flight is what keeps the first Job of the last TrainingJob from queueing behind the others.
    // (Queued jobs get their first Job one at a time, in creation order: kueue.ts.)
    workers: options.workers ?? 64,
    async reconcile({ namespace, name }, ctx) {
      const job = ctx.cache.get<TrainingJob>(kinds.TrainingJob, namespace, name);
      // Gone or going: owner references let the garbage collector remove its Jobs, their pods and Workloads, and its Service.
      if (!job || job.metadata.deletionTimestamp) return;
      const owner = controllerReference(job);
      const jobs = ctx.cache.ownedBy(kinds.Job, job);
      const pods = jobs.flatMap((j) => ctx.cache.ownedBy(kinds.Pod, j));
      const workloads = jobs.flatMap((j) => ctx.cache.ownedBy(kinds.Workload, j));
      const now = new Date();
      const turn =
        job.spec.queueName && jobs.length === 0 ? queueTurn(job, queueOrder(ctx.cache, namespace), now) : undefined;
      const notYourTurn = turn && !turn.go ? turn : undefined;
      const plan = planTrainingJob(job, { jobs, pods, workloads, notYourTurn }, now, lifecycle);

      const service = desiredService(job, owner);
      if (service) await ctx.apply(service);
      for (const stop of plan.deleteJobs)
        await ctx.delete(kinds.Job, namespace, stop, { propagationPolicy: 'Background' });
      // A queued Job without its Workload (the create failed, the operator stopped in between, someone deleted it):
      // make it now. One made moments ago may not be in the cache yet.
      for (const attemptJob of jobs) {
        const uid = attemptJob.metadata.uid!;
        const workload = ctx.cache.ownedBy(kinds.Workload, attemptJob)[0];
        if (workload) workloadMade.delete(uid);
        if (
          needsWorkload(attemptJob, workload) &&
          !workloadMade.has(uid) &&
          !plan.deleteJobs.includes(attemptJob.metadata.name)
        )
          await createWorkload(attemptJob, ctx);
      }

      if (plan.kind === 'wait') {
        ctx.log.debug({ why: plan.why }, 'waiting');
        return { requeueAfter: plan.requeueAfterMs };
      }
      if (plan.kind === 'start') {
        try {
          const created = await start(job, owner, plan.attempt, plan.activeDeadlineSeconds, options, ctx);
          if (job.spec.queueName) await createWorkload(created, ctx);
        } catch (err) {
          // A job whose Job cannot be created must not hold up the jobs queued behind it.
          stuck.add(job.metadata.uid!);
          throw err;
        }
        stuck.delete(job.metadata.uid!);
        return;
      }
      const { status, conditions, events } =
        plan.kind === 'judge' ? await judge(job, plan.attempt, plan.message, plan.status, now, options, ctx) : plan;
      await ctx.applyStatus(job, { ...status, conditions });
      for (const e of events) await ctx.event(job, e.type, e.reason, e.message);
      if (plan.kind === 'hold' && plan.deleteTrainingJob) {
        await ctx.delete(kinds.TrainingJob, namespace, name, {
          propagationPolicy: 'Background',
          preconditionUid: job.metadata.uid,
        });
        return;
      }
      return plan.kind === 'hold' && plan.requeueAfterMs !== undefined
        ? { requeueAfter: plan.requeueAfterMs }
        : undefined;
    },
  };
}

/** Creates the Job of `attempt` (and, with a progress endpoint, its token Secret first); returns it as created. */
async function start(
  job: TrainingJob,
  owner: OwnerReference,
  attempt: number,
  activeDeadlineSeconds: number | undefined,
  options: TrainingJobControllerOptions,
  ctx: ReconcileContext,
): Promise<KubeObject> {
  let progress;
  if (options.progressUrl) {
    // A fresh token per attempt, its Secret first: the Job's pods start as soon as the Job exists.
    const credentials = drawProgressCredentials(jobName(job, attempt));
    // Never read back: a name taken (by a draw of an earlier try) fails this reconcile, and the retry draws anew.
    await ctx.create(desiredTokenSecret(job, owner, attempt, credentials), { readExisting: false });
    progress = {
      env: progressPodEnv(options.progressUrl, job, credentials.secretName),
      tokenSha256: credentials.tokenSha256,
    };
  }
  const { object } = await ctx.create(
    desiredJob(job, owner, attempt, {
      activeDeadlineSeconds,
      storage: options.storage,
      progress,
    }),
  );
  return object;
}

/** A pod or Workload of a Job of a TrainingJob: the key of that TrainingJob. */
function ownerOfOwningJob(object: KubeObject, cache: ClusterCache): string[] {
  const byJob = controllerOf(object);
  if (byJob?.kind !== 'Job') return [];
  const namespace = object.metadata.namespace;
  const job = cache.get(kinds.Job, namespace, byJob.name);
  const owner = job && job.metadata.uid === byJob.uid ? controllerOf(job) : undefined;
  return owner?.kind === 'TrainingJob' ? [keyOf(namespace, owner.name)] : [];
}

interface Judgement {
  status: TrainingJobStatus;
  conditions: ReturnType<typeof finishedConditions>;
  events: PlannedEvent[];
}

/** Every rank succeeded: accept the result only if it holds to the contract, then register it if the gates pass. */
async function judge(
  job: TrainingJob,
  attempt: number,
  message: string | undefined,
  base: TrainingJobStatus,
  now: Date,
  options: TrainingJobControllerOptions,
  ctx: ReconcileContext,
): Promise<Judgement> {
  const completionTime = rfc3339(now);
  const verdict = parseTrainingResult(message);
  if (!verdict.ok) {
    const text = `InvalidResult: attempt ${attempt} exited 0 but ${verdict.reason}`;
    return {
      status: { ...base, phase: 'Failed', completionTime, message: text },
      conditions: finishedConditions('Failed', 'InvalidResult', text),
      events: [{ type: 'Warning', reason: 'InvalidResult', message: text }],
    };
  }
  const result = verdict.result;
  const done = { ...base, phase: 'Succeeded' as const, completionTime, metrics: result.metrics };
  const gates = evaluateGates(job.spec.registration?.gates, result.metrics);
  if (!gates.passed) {
    const text = `trained, not registered: ${gates.failures.join('; ')}`;
    return {
      status: { ...done, message: text },
      conditions: finishedConditions('Succeeded', 'Trained', text, {
        type: 'Registered',
        status: 'False',
        reason: 'GatesNotMet',
        message: text,
      }),
      events: [{ type: 'Warning', reason: 'GatesNotMet', message: text }],
    };
  }
  const mv = await register(job, result, options, ctx);
  // Before the job's status records it: a reconcile retried after a crash registers nothing new but
  // announces the same version again under the same id, which JetStream drops.
  await publishLifecycle(options.publisher, registeredEvent(mv, job.metadata.name!), ctx.log);
  const text = `registered ${mv.metadata.name} (version ${mv.spec.version}) from attempt ${attempt}`;
  return {
    status: { ...done, modelVersion: mv.metadata.name, version: mv.spec.version, message: text },
    conditions: finishedConditions('Succeeded', 'Registered', text, {
      type: 'Registered',
      status: 'True',
      reason: 'ModelVersionCreated',
      message: text,
    }),
    events: [{ type: 'Normal', reason: 'Registered', message: text }],
  };
}

/**
 * Creates the ModelVersion under the next free version number. The API server arbitrates: the name
 * is `<model>-v<version>`, so of two jobs trying the same number one gets AlreadyExists and tries the
 * next. A version this job registered before (the operator stopped before recording it) is reused.
 */
async function register(
  job: TrainingJob,
  result: TrainingResult,
  options: TrainingJobControllerOptions,
  ctx: ReconcileContext,
): Promise<ModelVersion> {
  const namespace = job.metadata.namespace!;
  const mine = await options.api.list<ModelVersion>(kinds.ModelVersion, namespace, {
    labelSelector: `${LABEL_TRAININGJOB_UID}=${job.metadata.uid}`,
  });
  if (mine.items.length > 0) return mine.items[0]!;
  const all = await options.api.list<ModelVersion>(kinds.ModelVersion, namespace);
  let version =
    1 +
    Math.max(0, ...all.items.filter((v) => v.spec?.model === job.spec.model).map((v) => Number(v.spec.version) || 0));
  const limit = options.maxVersionAttempts ?? 50;
  for (let tries = 0; tries < limit; tries++, version++) {
    const { object, created } = await ctx.create<ModelVersion>(desiredModelVersion(job, result, version));
    if (created) return object;
    ctx.log.info({ version }, 'version taken by another registration; trying the next');
  }
  throw new Error(`could not register ${job.spec.model}: ${limit} version numbers in a row were taken concurrently`);
}
