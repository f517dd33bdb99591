/**
 * Istio VirtualService: weighted http route destinations, `mirror` + `mirrorPercentage` for shadow mode. With gRPC
 * a first http route matches calls to the gRPC port and sends them to the same port of the version Services
 * (Istio proxies HTTP/2 to a port whose appProtocol says h2c), at the same weights.
 */
import { kinds } from '../../engine/kinds.ts';
import { routeMetadata, type TrafficRouter } from './types.ts';

export const istioRouter: TrafficRouter = {
  provider: 'istio',
  routesToClusterIP: true,
  attachesToGateway: false,
  kinds: [kinds.VirtualService],
  grpcKinds: [],
  routes(owner, traffic, split) {
    const host = (service: string) => `${service}.${owner.namespace}.svc.${owner.clusterDomain}`;
    const httpRoute = (name: string, port: number): Record<string, unknown> => {
      const route: Array<Record<string, unknown>> = [
        { destination: { host: host(split.stableService), port: { number: port } }, weight: 100 - split.canaryWeight },
      ];
      if (split.canaryService && split.canaryWeight > 0) {
        route.push({
          destination: { host: host(split.canaryService), port: { number: port } },
          weight: split.canaryWeight,
        });
      }
      const http: Record<string, unknown> = { name, route };
      if (split.canaryService && split.mirrorPercent) {
        http.mirror = { host: host(split.canaryService), port: { number: port } };
        http.mirrorPercentage = { value: split.mirrorPercent };
      }
      return http;
    };
    const grpc = split.grpc
      ? [{ ...httpRoute('predictor-grpc', split.grpc.port), match: [{ port: split.grpc.port }] }]
      : [];
    const spec: Record<string, unknown> = {
      // Without hostnames the route applies to in-mesh calls of the whole-service name.
      hosts: traffic.hostnames?.length ? traffic.hostnames : [host(owner.name)],
      // The first matching route wins: the gRPC port's before the catch-all.
      http: [...grpc, httpRoute('predictor', split.port)],
    };
    if (traffic.gateways?.length) spec.gateways = traffic.gateways;
    return [
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: routeMetadata(owner),
        spec,
      },
    ];
  },
  weights(route) {
    const http =
      route.spec?.http?.find((h: { name?: string }) => h.name === 'predictor') ?? route.spec?.http?.[0] ?? {};
    const destinations: Array<{ weight?: number }> = http.route ?? [];
    return {
      stable: destinations[0]?.weight ?? 100,
      canary: destinations[1]?.weight ?? 0,
      ...(http.mirror ? { mirrorPercent: http.mirrorPercentage?.value ?? 100 } : {}),
    };
  },
};
