/**
 * The InferenceService's conditions, planned from what the controller observed: a pure function, so every
 * combination of versions, pods, routes and drift is tested without a cluster (test/status.test.ts).
 */
import type { Condition } from '../engine/types.ts';
import type { DriftStatus, Phase } from './resource.ts';

export interface ServedFacts {
  version: number;
  /** The version's Deployment and Service name (`<isvc>-v<version>`). */
  name: string;
  /** Its Deployment has a ready pod. */
  available: boolean;
}

export interface RouteFacts {
  provider: string;
  /** Route kinds the provider writes that the API server does not serve, e.g. `HTTPRoute (gateway.networking.k8s.io/v1)`. */
  missingKinds: string[];
  /** `<Kind> <name>` of each route object written. */
  routes: string[];
  canaryWeight: number;
  hasCanary: boolean;
  mirrorPercent?: number;
}

export interface StatusFacts {
  namespace: string;
  url: string;
  /** The first of spec.traffic.hostnames, which requests through the gateway carry as Host. */
  hostname?: string;
  phase: Phase;
  stable: ServedFacts;
  /** The canary being served, with the share the rollout gives it. */
  canary?: ServedFacts & { weight: number; progressDeadline?: string };
  /** Why spec.canary resolves to no ModelVersion, when it does not. */
  canaryNotFound?: string;
  /** Routes, when spec.traffic asks for them. */
  route?: RouteFacts;
  /** The drift summary of the serving version, and whether status held drift (of any version) or a Drifted condition. */
  drift?: DriftStatus;
  hadDrift: boolean;
  servingVersion: number;
  /** Ready was True before this reconcile. */
  wasReady: boolean;
}

export interface StatusPlan {
  /** One per type, Ready first. */
  conditions: Condition[];
  /** The stable version lost its pods after being Ready while nothing rolls out: the phase says Degraded. */
  degraded: boolean;
}

export function planStatus(facts: StatusFacts): StatusPlan {
  const { stable, canary } = facts;
  const conditions: Condition[] = [
    stable.available
      ? { type: 'Ready', status: 'True', reason: 'StableAvailable', message: `v${stable.version} is serving at ${facts.url}${facts.hostname ? ` (Host ${facts.hostname})` : ''}` }
      : { type: 'Ready', status: 'False', reason: 'StableUnavailable', message: `no ready pod of ${stable.name} yet; see kubectl describe deployment ${stable.name} -n ${facts.namespace}` },
  ];
  if (facts.canaryNotFound) conditions.push({ type: 'CanaryReady', status: 'False', reason: 'CanaryVersionNotFound', message: facts.canaryNotFound });
  const route = routeCondition(facts.route);
  if (route) conditions.push(route);
  if (canary) {
    conditions.push({
      type: 'CanaryReady',
      status: canary.available ? 'True' : 'False',
      reason: canary.available ? 'CanaryAvailable' : 'CanaryUnavailable',
      message: canary.available
        ? `canary v${canary.version} has ready pods`
        : `canary v${canary.version} has no ready pod yet: its ${canary.weight}% stays on stable and its step is not analysed (progressDeadline ${canary.progressDeadline ?? '10m'})`,
    });
  }
  const drift = driftCondition(facts);
  if (drift) conditions.push(drift);
  return {
    conditions: dedupe(conditions),
    degraded: !stable.available && facts.wasReady && (facts.phase === 'Stable' || facts.phase === 'Promoted'),
  };
}

function routeCondition(route: RouteFacts | undefined): Condition | undefined {
  if (!route || route.routes.length === 0) return undefined;
  if (route.missingKinds.length > 0) {
    const names = route.missingKinds.join(' and ');
    return {
      type: 'RouteReady',
      status: 'False',
      reason: 'RouteKindNotInstalled',
      message: `${names} ${route.missingKinds.length > 1 ? 'are' : 'is'} not served by the API server: install the CRDs of provider ${route.provider} (Gateway API, Istio or Traefik) and restart the operator, or change spec.traffic.provider`,
    };
  }
  return {
    type: 'RouteReady',
    status: 'True',
    reason: 'RouteApplied',
    message: `${route.routes.join(', ')}: stable ${100 - route.canaryWeight}%, canary ${route.hasCanary ? route.canaryWeight : 0}%${route.mirrorPercent ? `, mirroring ${route.mirrorPercent}% to the canary` : ''}`,
  };
}

function driftCondition(facts: StatusFacts): Condition | undefined {
  const { drift } = facts;
  if (drift) {
    return drift.drifted
      ? { type: 'Drifted', status: 'True', reason: 'DriftDetected', message: `drift score ${drift.score} (features: ${(drift.driftedFeatures ?? []).join(', ') || 'none'})` }
      : { type: 'Drifted', status: 'False', reason: 'NoDrift', message: `drift score ${drift.score}` };
  }
  if (facts.hadDrift) return { type: 'Drifted', status: 'Unknown', reason: 'AwaitingWindow', message: `no drift window of v${facts.servingVersion} has closed yet` };
  return undefined;
}

/** The first condition of each type wins. */
export function dedupe(conditions: Condition[]): Condition[] {
  const byType = new Map<string, Condition>();
  for (const condition of conditions) if (!byType.has(condition.type)) byType.set(condition.type, condition);
  return [...byType.values()];
}
