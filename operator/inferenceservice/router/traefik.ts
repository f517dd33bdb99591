/**
 * Traefik's own resources, for shadow mode on Traefik: it does not implement HTTPRoute's RequestMirror filter
 * (a rule with one answers 500), but its TraefikService mirrors. The TraefikService carries the split — weighted
 * between the version Services, or mirroring a share of stable's requests to the canary — and an IngressRoute
 * sends the hostnames' requests to it. With gRPC, a second IngressRoute rule sends the inference service's methods
 * (a longer rule: Traefik tries it first) to the version Services' gRPC port over h2c, weighted in the rule itself.
 * In shadow mode gRPC calls go to stable only: a mirror needs a TraefikService of its own per port, and Traefik
 * mirrors by buffering whole requests, which gRPC streams do not suit.
 */
import { kinds } from '../../engine/kinds.ts';
import { routeMetadata, type TrafficRouter, type TrafficSplit } from './types.ts';

/** Traefik's rule language quotes values in backticks; a hostname cannot contain one (the CRD bounds them to DNS names). */
function matchRule(hostnames: string[] | undefined): string {
  return hostnames?.length ? hostnames.map((host) => `Host(\`${host}\`)`).join(' || ') : 'PathPrefix(`/`)';
}

function grpcMatchRule(hostnames: string[] | undefined, service: string): string {
  const path = `PathPrefix(\`/${service}/\`)`;
  return hostnames?.length ? `(${matchRule(hostnames)}) && ${path}` : path;
}

/** The version Services' gRPC port, h2c, at the split's weights (shadow mode: stable's weight only). */
function grpcServices(split: TrafficSplit): Array<Record<string, unknown>> {
  const port = split.grpc!.port;
  const canaryWeight = split.mirrorPercent ? 0 : split.canaryWeight;
  const services: Array<Record<string, unknown>> = [
    { name: split.stableService, port, scheme: 'h2c', weight: 100 - canaryWeight },
  ];
  if (split.canaryService && canaryWeight > 0)
    services.push({ name: split.canaryService, port, scheme: 'h2c', weight: canaryWeight });
  return services;
}

export const traefikRouter: TrafficRouter = {
  provider: 'traefik',
  routesToClusterIP: false,
  attachesToGateway: false,
  kinds: [kinds.TraefikService, kinds.IngressRoute],
  grpcKinds: [],
  routes(owner, traffic, split) {
    const metadata = routeMetadata(owner);
    const stable = { name: split.stableService, port: split.port };
    let spec: Record<string, unknown>;
    if (split.canaryService && split.mirrorPercent) {
      // Traefik copies the request to the mirror and drops its answer; the client gets stable's.
      spec = {
        mirroring: {
          ...stable,
          mirrors: [{ name: split.canaryService, port: split.port, percent: split.mirrorPercent }],
        },
      };
    } else {
      const services: Array<Record<string, unknown>> = [{ ...stable, weight: 100 - split.canaryWeight }];
      if (split.canaryService && split.canaryWeight > 0)
        services.push({ name: split.canaryService, port: split.port, weight: split.canaryWeight });
      spec = { weighted: { services } };
    }
    return [
      { apiVersion: 'traefik.io/v1alpha1', kind: 'TraefikService', metadata, spec },
      {
        apiVersion: 'traefik.io/v1alpha1',
        kind: 'IngressRoute',
        metadata,
        spec: {
          ...(traffic.entryPoints?.length ? { entryPoints: traffic.entryPoints } : {}),
          routes: [
            ...(split.grpc
              ? [
                  {
                    kind: 'Rule',
                    match: grpcMatchRule(traffic.hostnames, split.grpc.service),
                    services: grpcServices(split),
                  },
                ]
              : []),
            {
              kind: 'Rule',
              match: matchRule(traffic.hostnames),
              services: [{ kind: 'TraefikService', name: owner.name }],
            },
          ],
        },
      },
    ];
  },
  weights(route) {
    const mirroring = route.spec?.mirroring;
    if (mirroring) return { stable: 100, canary: 0, mirrorPercent: mirroring.mirrors?.[0]?.percent ?? 0 };
    const services: Array<{ weight?: number }> = route.spec?.weighted?.services ?? [];
    return { stable: services[0]?.weight ?? 1, canary: services[1]?.weight ?? 0 };
  },
};
