/** Istio VirtualService: weighted http route destinations, `mirror` + `mirrorPercentage` for shadow mode. */
import { kinds } from '../../engine/kinds.ts';
import type { TrafficRouter } from './types.ts';

export const istioRouter: TrafficRouter = {
  provider: 'istio',
  routesToClusterIP: true,
  attachesToGateway: false,
  kinds: [kinds.VirtualService],
  routes(owner, traffic, split) {
    const host = (service: string) => `${service}.${owner.namespace}.svc.${owner.clusterDomain}`;
    const route: Array<Record<string, unknown>> = [
      { destination: { host: host(split.stableService), port: { number: split.port } }, weight: 100 - split.canaryWeight },
    ];
    if (split.canaryService && split.canaryWeight > 0) {
      route.push({ destination: { host: host(split.canaryService), port: { number: split.port } }, weight: split.canaryWeight });
    }
    const http: Record<string, unknown> = { name: 'predictor', route };
    if (split.canaryService && split.mirrorPercent) {
      http.mirror = { host: host(split.canaryService), port: { number: split.port } };
      http.mirrorPercentage = { value: split.mirrorPercent };
    }
    const spec: Record<string, unknown> = {
      // Without hostnames the route applies to in-mesh calls of the whole-service name.
      hosts: traffic.hostnames?.length ? traffic.hostnames : [host(owner.name)],
      http: [http],
    };
    if (traffic.gateways?.length) spec.gateways = traffic.gateways;
    return [{
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: owner.name, namespace: owner.namespace, labels: owner.labels, ownerReferences: [owner.ownerReference] },
      spec,
    }];
  },
  weights(route) {
    const http = route.spec?.http?.[0] ?? {};
    const destinations: Array<{ weight?: number }> = http.route ?? [];
    return {
      stable: destinations[0]?.weight ?? 100,
      canary: destinations[1]?.weight ?? 0,
      ...(http.mirror ? { mirrorPercent: http.mirrorPercentage?.value ?? 100 } : {}),
    };
  },
};
