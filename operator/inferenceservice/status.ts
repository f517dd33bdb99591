/**
 * The InferenceService's conditions, planned from what the controller observed: a pure function, so every
 * combination of versions, pods, routes and drift is tested without a cluster (test/status.test.ts).
 */
import type { Condition, KubeObject } from '../engine/types.ts';
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
  /** gRPC route kinds (GRPCRoute) the split asks for that the API server does not serve: those routes are withheld. */
  missingGrpcKinds?: string[];
  /** A written route a Gateway refused (see refusalOf), the first found. */
  refusal?: { route: string; kind: string; gateway: string };
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
      ? {
          type: 'Ready',
          status: 'True',
          reason: 'StableAvailable',
          message: `v${stable.version} is serving at ${facts.url}${facts.hostname ? ` (Host ${facts.hostname})` : ''}`,
        }
      : {
          type: 'Ready',
          status: 'False',
          reason: 'StableUnavailable',
          message: `no ready pod of ${stable.name} yet; see kubectl describe deployment ${stable.name} -n ${facts.namespace}`,
        },
  ];
  if (facts.canaryNotFound)
    conditions.push({
      type: 'CanaryReady',
      status: 'False',
      reason: 'CanaryVersionNotFound',
      message: facts.canaryNotFound,
    });
  const route = routeCondition(facts.route, facts.namespace);
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

function routeCondition(route: RouteFacts | undefined, namespace: string): Condition | undefined {
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
  if (route.missingGrpcKinds?.length) {
    return {
      type: 'RouteReady',
      status: 'False',
      reason: 'RouteKindNotInstalled',
      message: `${route.missingGrpcKinds.join(' and ')} ${route.missingGrpcKinds.length > 1 ? 'are' : 'is'} not served by the API server, so gRPC is not routed (REST is): spec.predictor.protocols lists grpc; install Gateway API's GRPCRoute CRD (standard channel, v1.1 or later) and restart the operator, or remove grpc from spec.predictor.protocols`,
    };
  }
  if (route.refusal) {
    const fix =
      route.refusal.kind === 'GRPCRoute'
        ? 'let a listener of that Gateway allow GRPCRoute (spec.listeners[].allowedRoutes.kinds; an HTTP or HTTPS listener), or remove grpc from spec.predictor.protocols'
        : `see kubectl describe ${route.refusal.route.toLowerCase()} -n ${namespace}`;
    return {
      type: 'RouteReady',
      status: 'False',
      reason: 'RouteNotAccepted',
      message: `${route.refusal.route}: ${route.refusal.gateway}: ${fix}`,
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
      ? {
          type: 'Drifted',
          status: 'True',
          reason: 'DriftDetected',
          message: `drift score ${drift.score} (features: ${(drift.driftedFeatures ?? []).join(', ') || 'none'})`,
        }
      : { type: 'Drifted', status: 'False', reason: 'NoDrift', message: `drift score ${drift.score}` };
  }
  if (facts.hadDrift)
    return {
      type: 'Drifted',
      status: 'Unknown',
      reason: 'AwaitingWindow',
      message: `no drift window of v${facts.servingVersion} has closed yet`,
    };
  return undefined;
}

/**
 * What a Gateway API controller said against a route at its current generation: not Accepted, or refs not resolved
 * for a reason other than a backend whose endpoints are still coming up. Undefined when nothing was refused.
 */
export function refusalOf(route: KubeObject | undefined): string | undefined {
  const parents: Array<{
    parentRef?: { name?: string; namespace?: string };
    conditions?: Array<Condition & { observedGeneration?: number }>;
  }> = route?.status?.parents ?? [];
  for (const parent of parents) {
    const refused = (parent.conditions ?? []).find(
      (c) =>
        c.observedGeneration === route!.metadata.generation &&
        c.status === 'False' &&
        (c.type === 'Accepted' || (c.type === 'ResolvedRefs' && c.reason !== 'BackendNotFound')),
    );
    if (!refused) continue;
    const gateway = `${parent.parentRef?.namespace ?? route!.metadata.namespace}/${parent.parentRef?.name}`;
    return `Gateway ${gateway} says ${refused.type} False, ${refused.reason}${refused.message ? ` (${refused.message})` : ''}`;
  }
  return undefined;
}

/** The first condition of each type wins. */
export function dedupe(conditions: Condition[]): Condition[] {
  const byType = new Map<string, Condition>();
  for (const condition of conditions) if (!byType.has(condition.type)) byType.set(condition.type, condition);
  return [...byType.values()];
}
