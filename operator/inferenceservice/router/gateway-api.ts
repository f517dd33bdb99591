/**
 * Gateway API HTTPRoute: weighted backendRefs for the canary, a RequestMirror filter for shadow mode. Standard
 * API only; Traefik answers 500 for a rule with RequestMirror (the traefik router mirrors there instead).
 */
import { kinds } from '../../engine/kinds.ts';
import type { TrafficRouter } from './types.ts';

export const gatewayApiRouter: TrafficRouter = {
  provider: 'gatewayAPI',
  routesToClusterIP: false,
  attachesToGateway: true,
  kinds: [kinds.HTTPRoute],
  routes(owner, traffic, split) {
    const backendRefs: Array<Record<string, unknown>> = [{ kind: 'Service', name: split.stableService, port: split.port, weight: 100 - split.canaryWeight }];
    if (split.canaryService && split.canaryWeight > 0) {
      backendRefs.push({ kind: 'Service', name: split.canaryService, port: split.port, weight: split.canaryWeight });
    }
    const rule: Record<string, unknown> = {
      matches: [{ path: { type: 'PathPrefix', value: '/' } }],
      backendRefs,
    };
    if (split.canaryService && split.mirrorPercent) {
      rule.filters = [
        {
          type: 'RequestMirror',
          requestMirror: { backendRef: { kind: 'Service', name: split.canaryService, port: split.port }, percent: split.mirrorPercent },
        },
      ];
    }
    const spec: Record<string, unknown> = { rules: [rule] };
    if (traffic.parentRefs?.length) spec.parentRefs = traffic.parentRefs;
    if (traffic.hostnames?.length) spec.hostnames = traffic.hostnames;
    return [{
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: owner.name, namespace: owner.namespace, labels: owner.labels, ownerReferences: [owner.ownerReference] },
      spec,
    }];
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
