/**
 * Canaries for the chaos scenarios: an InferenceService whose predictor pods KWOK simulates (the image is not
 * one of Loopline's, so the local-kubelet leaves them to KWOK), with each version's metrics served by an
 * endpoint this process feeds (test/support/predictor-metrics.ts) and scraped by a real Prometheus, so the
 * operator's PromQL analysis reads what healthy predictors would show.
 */
import { kinds, type KubeObject } from '../../operator/engine/index.ts';
import type { TestPrometheus } from '../../test/support/prometheus.ts';
import { versionEndpoint, type Behaviour, type VersionEndpoint } from '../../test/support/predictor-metrics.ts';
import { sleep, waitFor } from '../../test/support/local.ts';
import type { ChaosHarness } from './harness.ts';
import type { ScenarioRecord } from './report.ts';
import { checkSettledAliasHolders, sampler } from './workload.ts';
import { registerVersion } from '../../test/support/model-versions.ts';

export const SIMULATED_PREDICTOR_IMAGE = 'registry.local/predictor-simulated:1';
const healthy: Behaviour = { rate: 10, errorShare: 0, latencySeconds: 0.004 };

/** Every metrics endpoint a Prometheus scrapes for the scenarios, with the labels of the service it stands for. */
export class SimulatedMetrics {
  private readonly endpoints: Array<{ endpoint: VersionEndpoint; namespace: string; service: string }> = [];

  constructor(readonly prometheus: TestPrometheus) {}

  async serve(namespace: string, service: string, model: string, versions: number[]): Promise<void> {
    for (const version of versions)
      this.endpoints.push({ endpoint: await versionEndpoint(model, version, { ...healthy }), namespace, service });
    this.prometheus.setTargets(
      this.endpoints.map((e) => ({
        address: e.endpoint.address,
        labels: { namespace: e.namespace, inference_service: e.service },
      })),
    );
    await this.prometheus.waitForTargets(this.endpoints.length);
    // Two scrapes of every version before the first analysis, or a canary with no series fails its first check.
    await sleep(3 * this.prometheus.scrapeIntervalMs);
  }

  async close(): Promise<void> {
    for (const e of this.endpoints) await e.endpoint.close();
  }
}

export interface CanaryView {
  phase?: string;
  step?: number;
  /** The weight the rollout decided (status.canaryWeight); the route carries it while the canary has ready pods. */
  decided?: number;
  /** The canary version's weight on the route (what the gateway sends it). */
  weight: number;
  message?: string;
  failedChecks?: number;
}

export interface RunningCanary {
  name: string;
  model: string;
  /** What the route and status said, sampled every 100 ms since the canary was created. */
  views: CanaryView[];
  current(): Promise<CanaryView | undefined>;
  stopWatching(): Promise<CanaryView[]>;
}

/** Registers v1 (production) and v2 (candidate) of `model` and creates an InferenceService rolling v2 out. */
export async function startCanary(
  h: ChaosHarness,
  metrics: SimulatedMetrics,
  name: string,
  rollout: { steps: number[]; interval: string; analysis?: Record<string, number> },
): Promise<RunningCanary> {
  const model = `${name}-model`;
  await metrics.serve(h.namespace, name, model, [1, 2]);
  for (const [version, aliases] of [
    [1, ['production']],
    [2, ['candidate']],
  ] as const) {
    await registerVersion(h.api, h.namespace, model, version, [...aliases], undefined, { effective: false });
  }
  await waitFor(
    `the registry to put ${model}'s aliases in effect`,
    async () => {
      const versions = (await h.api.list(kinds.ModelVersion, h.namespace)).items.filter((v) => v.spec.model === model);
      return versions.length === 2 && versions.every((v) => (v.status?.aliases ?? []).length > 0) ? true : undefined;
    },
    60_000,
  );
  await h.api.create(
    kinds.InferenceService,
    {
      apiVersion: 'loopline.dev/v1alpha1',
      kind: 'InferenceService',
      metadata: { name, namespace: h.namespace },
      spec: {
        model,
        stable: { alias: 'production' },
        canary: { alias: 'candidate' },
        predictor: { image: SIMULATED_PREDICTOR_IMAGE },
        rollout: {
          steps: rollout.steps,
          interval: rollout.interval,
          analysis: { maxErrorRate: 0.05, maxLatencyP95Ms: 100, minRequests: 10, failureLimit: 2, ...rollout.analysis },
        },
        traffic: { provider: 'gatewayAPI', parentRefs: [{ name: 'edge' }] },
      },
    } as never,
    'loopline-chaos',
  );
  const current = async (): Promise<CanaryView | undefined> => {
    const [isvc, route] = await Promise.all([
      h.api.get(kinds.InferenceService, h.namespace, name),
      h.api.get(kinds.HTTPRoute, h.namespace, name).catch(() => undefined),
    ]);
    const backends = (route?.spec?.rules?.[0]?.backendRefs ?? []) as Array<{ name: string; weight?: number }>;
    const canary = backends.find((b) => b.name === `${name}-v2`);
    return {
      phase: isvc.status?.phase,
      step: isvc.status?.currentStep,
      decided: isvc.status?.canaryWeight,
      weight: canary ? (canary.weight ?? 1) : 0,
      message: isvc.status?.analysis?.message,
      failedChecks: isvc.status?.analysis?.failedChecks,
    };
  };
  const watch = sampler(current, 100);
  return { name, model, views: watch.samples, current, stopWatching: () => watch.stop() };
}

export async function waitForCanary(
  canary: RunningCanary,
  what: string,
  until: (view: CanaryView) => boolean,
  timeoutMs = 90_000,
): Promise<CanaryView> {
  let last: CanaryView | undefined;
  return await waitFor(
    `${canary.name}: ${what}`,
    async () => {
      last = await canary.current().catch(() => last);
      return last && until(last) ? last : undefined;
    },
    timeoutMs,
    100,
  ).catch((error: Error) => {
    throw new Error(`${error.message}; last seen ${JSON.stringify(last)}`);
  });
}

/**
 * The canary invariants: the canary's weight on the route never moves backwards within the rollout (except to
 * 0 on a rollback), the rollout ends Promoted with v2 at 100% and in Production, and each alias of the model
 * has one holder.
 */
export async function checkCanary(
  h: ChaosHarness,
  record: ScenarioRecord,
  canary: RunningCanary,
  timeoutMs = 120_000,
): Promise<void> {
  const end = await waitForCanary(
    canary,
    'Promoted',
    (v) => v.phase === 'Promoted' || v.phase === 'RolledBack',
    timeoutMs,
  ).catch(() => undefined);
  const views = await canary.stopWatching();
  record.check(
    end?.phase === 'Promoted',
    `canary ${canary.name} is promoted: ended ${end ? `${end.phase} (${end.message})` : 'still progressing (a stuck key?)'}`,
  );
  // The rollout's weight (status) never steps back; the route may carry 0 for a while when the canary has no
  // ready pod (the operator sends its share to stable then), which is counted, not a violation.
  let backwards = '';
  let routeDrops = 0;
  for (let i = 1; i < views.length; i++) {
    const [a, b] = [views[i - 1]!, views[i]!];
    if (b.phase === 'Progressing' && a.phase === 'Progressing' && (b.decided ?? 0) < (a.decided ?? 0))
      backwards ||= `${a.decided}% → ${b.decided}% (phase ${b.phase})`;
    if (b.weight < a.weight && b.phase === 'Progressing') routeDrops++;
  }
  const weights = views.map((v) => v.weight).filter((w, i, all) => i === 0 || w !== all[i - 1]);
  record.check(
    backwards === '',
    `canary ${canary.name}'s weight never moves backwards within the rollout: ${backwards || 'none'}; route weights ${weights.join(' → ')}`,
  );
  if (routeDrops)
    record.note(
      `canary ${canary.name}: the route carried 0% ${routeDrops}× while its pods were not ready (route weights ${weights.join(' → ')})`,
    );
  record.check(
    end?.phase !== 'Promoted' || end.weight === 100,
    `canary ${canary.name} serves 100% after promotion: ${end?.weight}%`,
  );
  const versions = (await h.api.list(kinds.ModelVersion, h.namespace)).items.filter(
    (v: KubeObject) => v.spec.model === canary.model,
  );
  const v2 = versions.find((v) => v.spec.version === 2);
  record.check(
    end?.phase !== 'Promoted' || v2?.spec.stage === 'Production',
    `${canary.model}-v2 asked for Production after promotion: ${v2?.spec.stage}`,
  );
  await checkSettledAliasHolders(h, record, canary.model);
}
