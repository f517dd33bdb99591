/**
 * The InferenceService controller: the imperative shell around desired.ts, canary.ts, analysis.ts and drift.ts.
 * Reads the cache, resolves the stable/canary selectors through the registry's ModelVersions, runs the canary
 * state machine (querying Prometheus only when a step is due), persists the rollout state before moving
 * traffic, applies and prunes the owned objects, and reports status, Events and NATS lifecycle events.
 */
import type { Logger } from 'pino';
import {
  kindId,
  kinds,
  type Condition,
  type ControllerDefinition,
  type DesiredObject,
  type KubeApi,
  type KubeObject,
  type ReconcileContext,
  type ResourceKind,
  type ClusterCache,
} from '../engine/index.ts';
import { publishLifecycle, type LifecyclePublisher } from '../events/publisher.ts';
import { aliasHolder } from '../modelversion/registry.ts';
import { CronJob, batchCronJob, batchCronJobName, latestRun } from './batch.ts';
import {
  comparedVersions,
  evaluatesQuality,
  evaluationFailure,
  qualityCronJob,
  qualityEvaluationJob,
} from './quality.ts';
import { analysisQueries, measureCanary, rangeFor, type MetricNames } from './analysis.ts';
import { analysisDue, intervalMs, nextRollout, type RolloutEvent, type RolloutState } from './canary.ts';
import {
  LABELS,
  desiredObjects,
  parentGateway,
  serviceAddressChange,
  serviceUrl,
  versionName,
  withoutClusterIP,
  type Serving,
  type ServingConfig,
} from './desired.ts';
import { driftOfVersion, planRetrain } from './drift.ts';
import { planQualityRetrain, snapshotCondition } from './quality-retrain.ts';
import type { BatchScoringStatus } from '../api/types.ts';
import type { InferenceService, InferenceServiceStatus, ServedModel, VersionSelector } from './resource.ts';
import { routerFor, routers } from './router/index.ts';
import { planStatus, refusalOf } from './status.ts';
import { promoteVersion, type ModelVersionObject } from './registry.ts';

export const PodDisruptionBudget: ResourceKind = {
  apiVersion: 'policy/v1',
  kind: 'PodDisruptionBudget',
  plural: 'poddisruptionbudgets',
  namespaced: true,
};

export interface InferenceServiceControllerOptions {
  /** Prometheus query endpoint for canary analysis. */
  prometheusUrl: string;
  /** Scrape interval of that Prometheus: query windows span at least two scrapes. */
  scrapeIntervalMs?: number;
  metricNames?: MetricNames;
  /** Route kinds whose CRDs are installed (see `servedKinds`); others are reported, not written. */
  routeKinds: ResourceKind[];
  /** Gateway API's Gateway is served: status.url follows the address of the Gateway a route attaches to. */
  watchGateways?: boolean;
  serving?: ServingConfig;
  publisher?: LifecyclePublisher;
  now?: () => Date;
  workers?: number;
}

/** The route kinds of every traffic provider. */
export const ROUTE_KINDS: ResourceKind[] = routers.flatMap((router) => [...router.kinds, ...router.grpcKinds]);

/** Which of `candidates` the API server serves: watching a kind without its CRD would never sync. */
export async function servedKinds(api: KubeApi, candidates: ResourceKind[]): Promise<ResourceKind[]> {
  const found: ResourceKind[] = [];
  for (const kind of candidates) {
    const served = await api
      .request<{ resources?: Array<{ name: string }> }>('GET' as never, `/apis/${kind.apiVersion}`)
      .then(
        (list) => list.resources?.some((r) => r.name === kind.plural) ?? false,
        () => false,
      );
    if (served) found.push(kind);
  }
  return found;
}

function selectorText(selector: VersionSelector): string {
  return selector.alias !== undefined ? `alias "${selector.alias}"` : `version ${selector.version}`;
}

/**
 * Parallel reconciles. A reconcile mostly waits on the API server (its owned objects are applied
 * concurrently, then the status), so more in flight is what keeps a burst of creates from queueing.
 */
export const DEFAULT_WORKERS = 16;

/** The ModelVersion a selector names: by number, or by the alias the registry says is in effect (mid-move: its newest holder). */
export function resolveSelector(
  versions: ModelVersionObject[],
  selector: VersionSelector,
): ModelVersionObject | undefined {
  if (selector.version !== undefined) return versions.find((mv) => mv.spec.version === selector.version);
  return aliasHolder(versions, selector.alias!);
}

export function servedModel(mv: ModelVersionObject): ServedModel {
  return {
    version: mv.spec.version,
    name: mv.metadata.name,
    uri: mv.spec.artifact.uri,
    digest: mv.spec.artifact.digest,
    ...(mv.spec.signature !== undefined ? { signature: mv.spec.signature } : {}),
    ...(mv.spec.referenceProfile?.uri && mv.spec.referenceProfile.digest
      ? { referenceProfile: { uri: mv.spec.referenceProfile.uri, digest: mv.spec.referenceProfile.digest } }
      : {}),
  };
}

/** The rollout state as status stores it (what a restarted operator resumes from). */
export function rolloutStateOf(status: InferenceServiceStatus | undefined): RolloutState {
  return {
    phase: status?.phase === 'Degraded' ? 'Stable' : (status?.phase ?? 'Stable'),
    ...(status?.stableVersion !== undefined ? { stableVersion: status.stableVersion } : {}),
    ...(status?.canaryVersion !== undefined ? { canaryVersion: status.canaryVersion } : {}),
    ...(status?.canaryStartedAt !== undefined ? { canaryStartedAt: status.canaryStartedAt } : {}),
    canaryWeight: status?.canaryWeight ?? 0,
    ...(status?.currentStep !== undefined ? { currentStep: status.currentStep } : {}),
    analysis: status?.analysis ?? {},
  };
}

function deploymentAvailable(deployment: KubeObject | undefined): boolean {
  return (deployment?.status?.availableReplicas ?? 0) > 0;
}

/** Whether a version's predictor has a ready pod, and since when (the CanaryReady condition's last transition). */
function readinessOf(
  ctx: ReconcileContext,
  isvc: InferenceService,
  version: number,
  status: InferenceServiceStatus,
  now: Date,
): { ready: boolean; since: Date } {
  const ready = deploymentAvailable(
    ctx.cache.get(kinds.Deployment, isvc.metadata.namespace, versionName(isvc, version)),
  );
  const condition = status.conditions?.find((c) => c.type === 'CanaryReady');
  const unchanged =
    condition?.lastTransitionTime &&
    (condition.status === 'True') === ready &&
    condition.message.startsWith(`canary v${version} `);
  // Not recorded yet: the change is being observed now.
  return { ready, since: unchanged ? new Date(condition.lastTransitionTime!) : now };
}

function describeEvent(event: RolloutEvent): { type: 'Normal' | 'Warning'; reason: string; message: string } {
  switch (event.type) {
    case 'CanaryStarted':
      return {
        type: 'Normal',
        reason: 'CanaryStarted',
        message: `canary v${event.version} started at ${event.weight}%${event.replaced !== undefined ? `, replacing v${event.replaced}` : ''}`,
      };
    case 'StepAdvanced':
      return {
        type: 'Normal',
        reason: 'StepAdvanced',
        message: `canary v${event.version} at ${event.weight}% (step ${event.step}): ${event.analysis.reason}`,
      };
    case 'AnalysisFailed':
      return {
        type: 'Warning',
        reason: 'AnalysisFailed',
        message: `canary v${event.version} failed check ${event.failedChecks}/${event.failureLimit}: ${event.analysis.reason}`,
      };
    case 'AnalysisInconclusive':
      return {
        type: 'Warning',
        reason: 'AnalysisInconclusive',
        message: `canary v${event.version} held at ${event.weight}% (step ${event.step}): ${event.analysis.reason}; it is neither promoted nor rolled back until Prometheus answers`,
      };
    case 'AwaitingLabels':
      return {
        type: 'Normal',
        reason: 'AwaitingLabels',
        message: `canary v${event.version} held at ${event.weight}% (step ${event.step}): ${event.reason}`,
      };
    case 'AwaitingPromotion':
      return {
        type: 'Normal',
        reason: 'AwaitingPromotion',
        message: `canary v${event.version} passed every step; set spec.rollout.promoteNow (or npx loopline promote) to promote it`,
      };
    case 'Halted':
      return { type: 'Warning', reason: 'RolloutHalted', message: `canary v${event.version} halted: ${event.reason}` };
    case 'Promoted':
      return {
        type: 'Normal',
        reason: 'Promoted',
        message: `v${event.version} promoted to stable${event.previous !== undefined ? ` (was v${event.previous})` : ''}: ${event.reason}`,
      };
    case 'RolledBack':
      return {
        type: 'Warning',
        reason: 'RolledBack',
        message: `canary v${event.version} rolled back: ${event.reason}`,
      };
    case 'Cancelled':
      return {
        type: 'Normal',
        reason: 'CanaryCancelled',
        message: `canary v${event.version} removed from spec; all traffic on stable`,
      };
  }
}

export function inferenceServiceController(options: InferenceServiceControllerOptions): ControllerDefinition {
  const now = options.now ?? (() => new Date());
  const routeKindIds = new Set(options.routeKinds.map(kindId));
  const ownedKinds = [
    kinds.Deployment,
    kinds.Service,
    kinds.HorizontalPodAutoscaler,
    PodDisruptionBudget,
    CronJob,
    ...options.routeKinds,
  ];

  // Losing a notification must not stall a rollout; the Kubernetes Event still records it.
  const publish = (isvc: InferenceService, reason: string, data: Record<string, unknown>, id: string, log: Logger) =>
    publishLifecycle(
      options.publisher,
      { kind: 'inferenceservice', namespace: isvc.metadata.namespace, name: isvc.metadata.name, reason, data, id },
      log,
    );

  async function reconcile(ctx: ReconcileContext, isvc: InferenceService) {
    const { namespace, name } = isvc.metadata;
    const at = now();
    const status = isvc.status ?? {};
    const versions = ctx.cache
      .list<ModelVersionObject>(kinds.ModelVersion, { namespace })
      .filter((mv) => mv.spec?.model === isvc.spec.model);
    const stableMv = resolveSelector(versions, isvc.spec.stable);
    if (!stableMv) {
      const message = `no ModelVersion of model ${isvc.spec.model} has ${selectorText(isvc.spec.stable)} in namespace ${namespace}: register one or change spec.stable`;
      const { changed } = await ctx.applyStatus(isvc, {
        ...carried(status),
        phase: status.phase ?? 'Stable',
        conditions: [{ type: 'Ready', status: 'False', reason: 'StableVersionNotFound', message }],
      });
      if (changed) await ctx.event(isvc, 'Warning', 'StableVersionNotFound', message);
      return;
    }
    const canaryMv = isvc.spec.canary ? resolveSelector(versions, isvc.spec.canary) : undefined;
    const canaryNotFound =
      isvc.spec.canary && !canaryMv
        ? `no ModelVersion of model ${isvc.spec.model} has ${selectorText(isvc.spec.canary)}; serving stable only`
        : undefined;

    const previous = rolloutStateOf(status);
    const shadow = isvc.spec.shadow?.enabled === true;
    const canaryReadiness = canaryMv ? readinessOf(ctx, isvc, canaryMv.spec.version, status, at) : undefined;
    const input = {
      rollout: isvc.spec.rollout,
      shadow,
      previous,
      stable: stableMv.spec.version,
      ...(canaryMv ? { canary: canaryMv.spec.version, canaryReadiness } : {}),
      ...(status.quality?.comparison ? { quality: status.quality.comparison } : {}),
      now: at,
    };
    let measurement;
    if (analysisDue(input)) {
      const range = rangeFor(intervalMs(isvc.spec.rollout), options.scrapeIntervalMs ?? 15_000);
      const queries = analysisQueries(
        { namespace, inferenceService: name, model: isvc.spec.model, version: canaryMv!.spec.version },
        range,
        options.metricNames,
      );
      measurement = await measureCanary(options.prometheusUrl, queries, ctx.signal);
      ctx.log.info({ canary: canaryMv!.spec.version, measurement }, 'canary analysed');
    }
    const decision = nextRollout({ ...input, measurement });
    const state = decision.state;

    if (decision.promote) {
      const target = versions.find((mv) => mv.spec.version === decision.promote!.version)!;
      await promoteVersion(ctx, target, decision.promote.reason);
    }

    const byVersion = (version: number | undefined) => versions.find((mv) => mv.spec.version === version);
    const stableServed = byVersion(state.stableVersion) ?? stableMv;
    const canaryServed =
      state.phase === 'Progressing' && state.canaryVersion !== undefined ? byVersion(state.canaryVersion) : undefined;
    // A canary without a ready pod gets no traffic: its share would only meet "no healthy upstream" at the gateway.
    const canaryServable =
      canaryServed !== undefined && (canaryServed !== canaryMv || canaryReadiness?.ready !== false);
    const serving: Serving = {
      stable: servedModel(stableServed),
      ...(canaryServed ? { canary: servedModel(canaryServed) } : {}),
      canaryWeight: canaryServable ? state.canaryWeight : 0,
      ...(canaryServed && shadow ? { mirrorPercent: isvc.spec.shadow?.percent ?? 100 } : {}),
    };

    const batch = await batchScoring(ctx, isvc, versions, stableServed, status);

    const qualityCron = evaluatesQuality(isvc)
      ? qualityCronJob(
          isvc,
          options.serving ?? {},
          snapshotCondition(isvc, {
            version: stableServed.spec.version,
            metrics: stableServed.spec.metrics,
            dataset: stableServed.spec.lineage?.dataset,
          }),
          comparedVersions(state, at),
        )
      : undefined;
    // A step due for its quality check runs the evaluator now rather than at the CronJob's next time.
    if (decision.evaluate && qualityCron) {
      const job = qualityEvaluationJob(isvc, qualityCron, decision.evaluate);
      const live = ctx.cache.get(kinds.Job, namespace, job.metadata.name);
      const failure = evaluationFailure(live);
      if (!live) {
        const { created } = await ctx.create(job);
        if (created)
          ctx.log.info({ job: job.metadata.name, step: decision.evaluate.step }, 'quality evaluation started');
      } else if (failure) {
        // Said in status and once as an Event; a later run of the CronJob that reports still lets the step go on.
        const message = `Waiting: quality evaluation Job ${job.metadata.name} failed (${failure}); kubectl logs -n ${namespace} job/${job.metadata.name} says why. Step ${decision.evaluate.step} holds until an evaluation reports (a run of the quality CronJob counts)`;
        if (status.analysis?.message !== message) await ctx.event(isvc, 'Warning', 'QualityEvaluationFailed', message);
        state.analysis = { ...state.analysis, message };
      }
    }

    const gateway = gatewayOf(ctx, isvc);
    const url = serviceUrl(isvc, options.serving, gateway);
    const rolloutStatus = (readiness: Partial<InferenceServiceStatus>): Record<string, unknown> => ({
      ...carried(status),
      url,
      phase: state.phase,
      stableVersion: state.stableVersion,
      ...(state.canaryVersion !== undefined ? { canaryVersion: state.canaryVersion } : {}),
      ...(state.phase === 'Progressing' && state.canaryStartedAt ? { canaryStartedAt: state.canaryStartedAt } : {}),
      canaryWeight: state.canaryWeight,
      ...(state.currentStep !== undefined ? { currentStep: state.currentStep } : {}),
      ...(Object.keys(state.analysis).length ? { analysis: state.analysis } : {}),
      ...(batch.status.length ? { batch: batch.status } : {}),
      ...readiness,
    });

    // Persist a traffic change before making it: a restart between the two resumes from status at the same step.
    const trafficMoves =
      state.canaryWeight !== (status.canaryWeight ?? 0) ||
      state.currentStep !== status.currentStep ||
      state.phase !== previous.phase;
    if (trafficMoves && isvc.status) {
      await ctx.applyStatus(isvc, rolloutStatus({ conditions: (status.conditions ?? []) as Condition[] }));
    }

    const desired = [
      ...desiredObjects(isvc, serving, options.serving),
      ...batch.cronJobs,
      ...(qualityCron ? [qualityCron] : []),
    ];
    const router = routerFor(isvc.spec.traffic);
    // Without the CRDs of its main kinds a provider's routes are not written at all; without GRPCRoute only the
    // gRPC route is withheld, and REST is still routed.
    const routeKinds = [...router.kinds, ...router.grpcKinds];
    const isRoute = (object: DesiredObject) => routeKinds.some((kind) => kindId(kind) === kindId(object));
    const routeObjects = desired.filter(isRoute);
    const notServed = (object: DesiredObject) => !routeKindIds.has(kindId(object));
    const missing = router.kinds.filter((kind) => !routeKindIds.has(kindId(kind)));
    const missingGrpc = routeObjects.filter(
      (object) => notServed(object) && router.grpcKinds.some((kind) => kindId(kind) === kindId(object)),
    );
    const written = desired.filter((object) => !isRoute(object) || (missing.length === 0 && !notServed(object)));
    // What a Gateway said of the routes written (their status is its controller's), e.g. a listener refusing GRPCRoute.
    const refusal = written
      .filter(isRoute)
      .map((object) => {
        const kind = routeKinds.find((k) => kindId(k) === kindId(object))!;
        const said = refusalOf(ctx.cache.get(kind, namespace, object.metadata.name));
        return said ? { route: `${object.kind} ${object.metadata.name}`, kind: object.kind, gateway: said } : undefined;
      })
      .find((found) => found !== undefined);
    // The objects do not depend on one another: applied together, a reconcile costs one round trip, not five.
    await Promise.all(written.map((object) => applyOwned(ctx, isvc, object)));
    await prune(ctx, isvc, written);

    // Readiness from the cached Deployments (their status changes enqueue us again).
    const served = (mv: ModelVersionObject) => {
      const deployment = versionName(isvc, mv.spec.version);
      return {
        version: mv.spec.version,
        name: deployment,
        available: deploymentAvailable(ctx.cache.get(kinds.Deployment, namespace, deployment)),
      };
    };

    // Drift is the serving version's: a promotion resets the summary another version's windows left.
    const servingVersion = stableServed.spec.version;
    const drift = driftOfVersion(status.drift, servingVersion);
    if (status.drift && !drift) await ctx.patchStatus(isvc, { drift: null });

    // The closed loop: drift recorded in status (by the NATS consumer) may start a retrain.
    // The closed loop on quality: an evaluation below spec.retrain.onQualityDrop's bound, with its snapshot.
    let lastRetrain = status.lastRetrain;
    const onDrift = planRetrain(isvc, at, servingVersion);
    const retrain = onDrift.create
      ? onDrift
      : planQualityRetrain(isvc, at, { version: servingVersion, metrics: stableServed.spec.metrics });
    if (retrain.create) {
      const { created } = await ctx.create(retrain.job);
      lastRetrain = retrain.lastRetrain;
      if (created) {
        await ctx.event(
          isvc,
          'Normal',
          'RetrainStarted',
          `TrainingJob ${retrain.job.metadata.name} created: ${retrain.reason}`,
        );
        await publish(
          isvc,
          'retrainstarted',
          { trainingJob: retrain.job.metadata.name, eventId: retrain.lastRetrain.eventId, reason: retrain.reason },
          `${isvc.metadata.uid}/retrain/${retrain.lastRetrain.eventId}`,
          ctx.log,
        );
      }
    }
    const { conditions, degraded } = planStatus({
      namespace,
      url,
      ...(isvc.spec.traffic?.hostnames?.length ? { hostname: isvc.spec.traffic.hostnames[0] } : {}),
      phase: state.phase,
      stable: served(stableServed),
      ...(canaryServed
        ? {
            canary: {
              ...served(canaryServed),
              weight: state.canaryWeight,
              progressDeadline: isvc.spec.rollout?.progressDeadline,
            },
          }
        : {}),
      ...(canaryNotFound ? { canaryNotFound } : {}),
      ...(routeObjects.length > 0
        ? {
            route: {
              provider: router.provider,
              missingKinds: missing.map((kind) => `${kind.kind} (${kind.apiVersion})`),
              missingGrpcKinds: missingGrpc.map((object) => `${object.kind} (${object.apiVersion})`),
              ...(refusal ? { refusal } : {}),
              routes: routeObjects.map((object) => `${object.kind} ${object.metadata.name}`),
              canaryWeight: serving.canaryWeight,
              hasCanary: serving.canary !== undefined,
              ...(serving.mirrorPercent ? { mirrorPercent: serving.mirrorPercent } : {}),
            },
          }
        : {}),
      ...(drift ? { drift } : {}),
      hadDrift: Boolean(status.drift) || (status.conditions ?? []).some((c) => c.type === 'Drifted'),
      servingVersion,
      wasReady: (status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
    });

    await ctx.applyStatus(
      isvc,
      rolloutStatus({
        ...(degraded ? { phase: 'Degraded' } : {}),
        ...(lastRetrain ? { lastRetrain } : {}),
        conditions: batch.condition ? [...conditions, batch.condition] : conditions,
      }),
    );

    // promoteNow and abort are one-shot requests: cleared once acted on, so the next canary is not promoted or aborted too.
    const consumed = decision.events.some((e) => e.type === 'Promoted' || e.type === 'RolledBack');
    if (consumed && (isvc.spec.rollout?.promoteNow || isvc.spec.rollout?.abort)) {
      await ctx.patch(kinds.InferenceService, namespace, name, {
        spec: { rollout: { promoteNow: false, abort: false } },
      });
    }

    for (const event of decision.events) {
      const { type, reason, message } = describeEvent(event);
      await ctx.event(isvc, type, reason, message);
      const step = 'step' in event ? event.step : (state.currentStep ?? 0);
      const data: Record<string, unknown> = {
        ...event,
        message,
        stableVersion: state.stableVersion,
        canaryWeight: state.canaryWeight,
      };
      await publish(
        isvc,
        reason.toLowerCase(),
        data,
        `${isvc.metadata.uid}/${reason}/v${event.version}/s${step}/${state.analysis.lastCheck ?? state.analysis.stepStartedAt ?? ''}`,
        ctx.log,
      );
    }
    return decision.requeueAfterMs !== undefined ? { requeueAfter: Math.max(decision.requeueAfterMs, 100) } : undefined;
  }

  /**
   * spec.batch: one CronJob per entry with the version its selector names now (runs started later copy it, see
   * batch.ts), and each entry's latest finished run, reported once as an Event and a lifecycle event.
   */
  async function batchScoring(
    ctx: ReconcileContext,
    isvc: InferenceService,
    versions: ModelVersionObject[],
    stable: ModelVersionObject,
    status: InferenceServiceStatus,
  ) {
    const { namespace, name } = isvc.metadata;
    const cronJobs: DesiredObject[] = [];
    const entries: BatchScoringStatus[] = [];
    const missing: string[] = [];
    for (const entry of isvc.spec.batch ?? []) {
      const mv = entry.version ? resolveSelector(versions, entry.version) : stable;
      const previous = status.batch?.find((b) => b.name === entry.name);
      const cronJob = batchCronJobName(isvc, entry);
      if (!mv) {
        missing.push(
          `spec.batch ${entry.name}: no ModelVersion of model ${isvc.spec.model} has ${selectorText(entry.version!)}; its CronJob is removed until one does: register one or change spec.batch[].version`,
        );
      } else {
        cronJobs.push(batchCronJob(isvc, entry, servedModel(mv), options.serving));
      }
      const jobs = ctx.cache.list<KubeObject>(kinds.Job, {
        namespace,
        labels: { [LABELS.inferenceService]: name, [LABELS.batch]: entry.name },
      });
      const run = latestRun(jobs, (job) => ctx.cache.ownedBy(kinds.Pod, job)) ?? previous?.lastRun;
      entries.push({
        name: entry.name,
        cronJob,
        ...(mv ? { version: mv.spec.version } : {}),
        ...(run ? { lastRun: run } : {}),
      });
      if (run && run.job !== previous?.lastRun?.job) {
        const reason = run.succeeded ? 'BatchSucceeded' : 'BatchFailed';
        await ctx.event(isvc, run.succeeded ? 'Normal' : 'Warning', reason, `batch ${entry.name}: ${run.message}`);
        await publish(
          isvc,
          reason.toLowerCase(),
          { batch: entry.name, ...run },
          `${isvc.metadata.uid}/batch/${run.job}`,
          ctx.log,
        );
      }
    }
    let condition: Condition | undefined;
    if (missing.length > 0)
      condition = { type: 'BatchReady', status: 'False', reason: 'BatchVersionNotFound', message: missing.join('; ') };
    else if (entries.length > 0)
      condition = {
        type: 'BatchReady',
        status: 'True',
        reason: 'CronJobsApplied',
        message: entries.map((e) => `${e.cronJob} scores with v${e.version}`).join('; '),
      };
    return { cronJobs, status: entries, condition };
  }

  /** Server-side apply, except where a Service's cluster IP would have to change (it cannot, see serviceAddressChange). */
  async function applyOwned(ctx: ReconcileContext, isvc: InferenceService, object: DesiredObject) {
    const live =
      object.kind === 'Service'
        ? ctx.cache.get(kinds.Service, isvc.metadata.namespace, object.metadata.name)
        : undefined;
    switch (serviceAddressChange(object, live)) {
      case 'keepClusterIP':
        return ctx.apply(withoutClusterIP(object));
      case 'replace':
        await ctx.delete(kinds.Service, isvc.metadata.namespace, object.metadata.name, {
          preconditionUid: live!.metadata.uid,
        });
        await ctx.event(
          isvc,
          'Normal',
          'ServiceReplaced',
          `Service ${object.metadata.name} was headless; replaced by one with a cluster IP, which spec.traffic.provider ${isvc.spec.traffic?.provider} routes to`,
        );
        return ctx.apply(object);
      default:
        return ctx.apply(object);
    }
  }

  /** The Gateway of the route's first parentRef, from the cache (Gateways are watched in every namespace). */
  function gatewayOf(ctx: ReconcileContext, isvc: InferenceService): KubeObject | undefined {
    const parent = options.watchGateways ? parentGateway(isvc) : undefined;
    return parent ? ctx.cache.get(kinds.Gateway, parent.namespace, parent.name) : undefined;
  }

  async function prune(ctx: ReconcileContext, isvc: InferenceService, written: DesiredObject[]) {
    const keep = new Set(written.map((o) => `${o.kind}/${o.metadata.name}`));
    for (const kind of ownedKinds) {
      for (const object of ctx.cache.ownedBy(kind, isvc)) {
        if (!keep.has(`${kind.kind}/${object.metadata.name}`))
          await ctx.delete(kind, isvc.metadata.namespace, object.metadata.name, {
            preconditionUid: object.metadata.uid,
          });
      }
    }
  }

  return {
    name: 'inferenceservice',
    for: kinds.InferenceService,
    owns: ownedKinds,
    watches: [
      {
        kind: kinds.ModelVersion,
        // A version registered, or an alias moved: every InferenceService of that model looks again.
        map: (mv, cache) =>
          cache
            .list(kinds.InferenceService, { namespace: mv.metadata.namespace })
            .filter((isvc) => isvc.spec?.model === mv.spec?.model)
            .map((isvc) => `${isvc.metadata.namespace}/${isvc.metadata.name}`),
      },
      // A batch run's Job finished (or started): its InferenceService records the run.
      { kind: kinds.Job, map: batchRunOwner },
      // A Gateway got (or changed) its address: the InferenceServices routed through it update status.url.
      ...(options.watchGateways ? [{ kind: kinds.Gateway, allNamespaces: true, map: routedThrough }] : []),
    ],
    reads: [kinds.TrainingJob, kinds.Pod],
    workers: options.workers ?? DEFAULT_WORKERS,
    async reconcile(request, ctx) {
      const isvc = ctx.cache.get<InferenceService>(kinds.InferenceService, request.namespace, request.name);
      if (!isvc || isvc.metadata.deletionTimestamp) return;
      return await reconcile(ctx, isvc);
    },
  };
}

/** The InferenceService whose batch entry made this Job (the CronJob controller owns it; our labels name it). */
function batchRunOwner(job: KubeObject): string[] {
  const labels = job.metadata.labels ?? {};
  return labels[LABELS.batch] && labels[LABELS.inferenceService]
    ? [`${job.metadata.namespace}/${labels[LABELS.inferenceService]}`]
    : [];
}

/** Keys of the InferenceServices whose route attaches to `gateway` first. */
function routedThrough(gateway: KubeObject, cache: ClusterCache): string[] {
  return cache
    .list<InferenceService>(kinds.InferenceService)
    .filter((object) => {
      const parent = parentGateway(object);
      return (
        parent !== undefined && parent.namespace === gateway.metadata.namespace && parent.name === gateway.metadata.name
      );
    })
    .map((object) => `${object.metadata.namespace}/${object.metadata.name}`);
}

/** Status fields owned by other writers or kept across reconciles (drift is the NATS consumer's). */
function carried(status: InferenceServiceStatus): Record<string, unknown> {
  return {
    ...(status.lastRetrain ? { lastRetrain: status.lastRetrain } : {}),
    ...(status.batch ? { batch: status.batch } : {}),
  };
}
