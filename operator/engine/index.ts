/**
 * Loopline's controller engine: informers fill a cache, a deduplicating rate-limited work queue feeds
 * `reconcile(request, ctx)`, writes go through server-side apply with one field manager and are skipped
 * when nothing would change, status goes through the status subresource with observedGeneration and
 * conditions, and a Lease elects the one replica that reconciles.
 *
 * @example
 * ```ts
 * import { createEngine, kinds, controllerReference, type ControllerDefinition } from '../engine/index.ts';
 *
 * const trainingJobs: ControllerDefinition = {
 *   name: 'trainingjob',
 *   for: kinds.TrainingJob,
 *   owns: [kinds.Pod, kinds.Service],               // pod events enqueue the TrainingJob that controls them
 *   watches: [{ kind: kinds.ModelVersion, map: (mv) => [`${mv.metadata.namespace}/${mv.spec.lineage.trainingJob}`] }],
 *   async reconcile({ namespace, name }, ctx) {
 *     const job = ctx.cache.get(kinds.TrainingJob, namespace, name);
 *     if (!job) return;                                // deleted: owner references clean up the pods
 *     const pods = ctx.cache.ownedBy(kinds.Pod, job);
 *     for (const pod of desiredPods(job, pods)) {      // a pure function of spec + observed state
 *       await ctx.apply({ ...pod, metadata: { ...pod.metadata, ownerReferences: [controllerReference(job)] } });
 *     }
 *     const { changed } = await ctx.applyStatus(job, {
 *       phase: 'Running',
 *       conditions: [{ type: 'Running', status: 'True', reason: 'PodsCreated', message: '1 pod' }],
 *     });
 *     if (changed) await ctx.event(job, 'Normal', 'Started', 'created 1 pod');
 *     return { requeueAfter: 30_000 };                // or nothing: done until the next event
 *   },
 * };
 *
 * const engine = createEngine({ leaderElection: { namespace: 'loopline-system' }, httpPort: 8080 });
 * engine.register(trainingJobs);
 * engine.handleSignals();                             // SIGTERM/SIGINT: drain, release the lease, exit
 * await engine.start();                               // resolves once the caches are synced
 * ```
 *
 * Notes for controller authors:
 * - Names of owned objects must be deterministic (e.g. `<job>-<attempt>-<rank>`): apply is idempotent per name,
 *   so a restart or a stale cache never duplicates them. Use `ctx.create` only where the API server must arbitrate
 *   (AlreadyExists = someone else won), e.g. the next ModelVersion number.
 * - `ctx.apply` skips the write when the cache already holds the desired fields; write resource quantities in any
 *   form (`0.5` = `500m`). A field dropped from the desired object is removed (fingerprint annotation
 *   `loopline.dev/applied`).
 * - `ctx.applyStatus` owns the whole status it is given (server-side apply on /status): pass every field each time.
 *   `ctx.patchStatus` merges a part. Both set observedGeneration and keep lastTransitionTime of unchanged conditions.
 * - `ctx.patch` is a JSON merge patch of the object, for what apply cannot say (taking an item out of a list another
 *   manager applied, resetting a user's one-shot field); `metadata.resourceVersion` in it makes it conditional.
 * - Every write goes through `ctx` (or `engine.writer` outside a reconcile): only those are fenced by leadership,
 *   and a reconcile that was running when the lease was lost gets NotLeaderError from its next write.
 * - Emit events on transitions (e.g. when `applyStatus` returned `changed`), not on every reconcile.
 * - `engine.writes.total({ excludeKinds: ['Lease', 'Event'] })` counts the writes a reconcile made; Lease renewals
 *   of leader election are writes too.
 * - Kinds to write without watching them go into `EngineOptions.kinds`; a watched kind whose API is not served
 *   (CRD not installed) leaves its cache empty and does not block start.
 */
export { createEngine, type Engine, type Runnable } from './engine.ts';
export { kinds, kindId, resourcePath, groupOf, LOOPLINE_API_VERSION, type ResourceKind } from './kinds.ts';
export type {
  ClusterCache,
  Condition,
  ControllerDefinition,
  DesiredObject,
  EngineOptions,
  EventType,
  KubeObject,
  LeaderElectionOptions,
  MapFunction,
  OwnerReference,
  ReconcileContext,
  Request,
  Result,
  Watch,
  Writer,
} from './types.ts';
export { mergeConditions, setCondition, findCondition, isConditionTrue, rfc3339 } from './conditions.ts';
export { objectKey, keyOf, parseKey, controllerReference, controllerOf } from './keys.ts';
export {
  ApiError,
  KubeApi,
  WriteCounter,
  isAlreadyExists,
  isConflict,
  isGone,
  isNotFound,
  loadKubeConfig,
  type WriteVerb,
} from './kube.ts';
export { WorkQueue, ExponentialBackoff, TokenBucket, MaxOf, defaultRateLimiter, type RateLimiter } from './queue.ts';
export { isSubset, applyIsNoop, appliedFingerprint, quantityValue, APPLIED_ANNOTATION } from './apply.ts';
export { NotLeaderError } from './writer.ts';
