/**
 * Gateway API HTTPRoute: weighted backendRefs for the canary, a RequestMirror filter for shadow mode. Standard
 * API only; Traefik answers 500 for a rule with RequestMirror (the traefik router mirrors there instead).
 * With gRPC, a GRPCRoute of the same name, parents and hostnames sends the inference service's methods to the
 * Services' gRPC port with the same weights. It matches that service only, not every method: on a shared listener
 * and hostname the REST requests must still reach the HTTPRoute (Traefik ranks a GRPCRoute rule above an
 * HTTPRoute's PathPrefix `/`, so a catch-all GRPCRoute would take them).
 */
import { kinds } from '../../engine/kinds.ts';
import type { DesiredObject } from '../../engine/types.ts';
import { type RouteOwner, routeMetadata, type TrafficRouter, type TrafficSplit } from './types.ts';
import type { TrafficSpec } from '../resource.ts';

function backendRefs(split: TrafficSplit, port: number): Array<Record<string, unknown>> {
  const refs: Array<Record<string, unknown>> = [
    { kind: 'Service', name: split.stableService, port, weight: 100 - split.canaryWeight },
  ];
  if (split.canaryService && split.canaryWeight > 0)
    refs.push({ kind: 'Service', name: split.canaryService, port, weight: split.canaryWeight });
  return refs;
}

function mirrorFilters(split: TrafficSplit, port: number): Array<Record<string, unknown>> | undefined {
  if (!split.canaryService || !split.mirrorPercent) return undefined;
  return [
    {
      type: 'RequestMirror',
      requestMirror: { backendRef: { kind: 'Service', name: split.canaryService, port }, percent: split.mirrorPercent },
    },
  ];
}

function route(
  kind: 'HTTPRoute' | 'GRPCRoute',
  owner: RouteOwner,
  traffic: TrafficSpec,
  rule: Record<string, unknown>,
): DesiredObject {
  const spec: Record<string, unknown> = { rules: [rule] };
  if (traffic.parentRefs?.length) spec.parentRefs = traffic.parentRefs;
  if (traffic.hostnames?.length) spec.hostnames = traffic.hostnames;
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind,
    metadata: routeMetadata(owner),
    spec,
  };
}

export const gatewayApiRouter: TrafficRouter = {
  provider: 'gatewayAPI',
  routesToClusterIP: false,
  attachesToGateway: true,
  kinds: [kinds.HTTPRoute],
  grpcKinds: [kinds.GRPCRoute],
  routes(owner, traffic, split) {
    const httpFilters = mirrorFilters(split, split.port);
    const objects = [
      route('HTTPRoute', owner, traffic, {
        matches: [{ path: { type: 'PathPrefix', value: '/' } }],
        backendRefs: backendRefs(split, split.port),
        ...(httpFilters ? { filters: httpFilters } : {}),
      }),
    ];
    if (split.grpc) {
      const grpcFilters = mirrorFilters(split, split.grpc.port);
      objects.push(
        route('GRPCRoute', owner, traffic, {
          matches: [{ method: { type: 'Exact', service: split.grpc.service } }],
          backendRefs: backendRefs(split, split.grpc.port),
          ...(grpcFilters ? { filters: grpcFilters } : {}),
        }),
      );
    }
    return objects;
  },
  weights(route) {
    const rule = route.spec?.rules?.[0] ?? {};
    const refs: Array<{ name: string; weight?: number }> = rule.backendRefs ?? [];
    const stable = refs[0]?.weight ?? 1;
    const canary = refs[1]?.weight ?? 0;
    const mirror = (rule.filters ?? []).find((filter: { type: string }) => filter.type === 'RequestMirror');
    return { stable, canary, ...(mirror ? { mirrorPercent: mirror.requestMirror?.percent ?? 100 } : {}) };
  },
};
