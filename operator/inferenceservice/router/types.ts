// What the canary state machine and the traffic providers exchange (see index.ts).
import type { ResourceKind } from '../../engine/kinds.ts';
import type { DesiredObject, OwnerReference } from '../../engine/types.ts';
import type { TrafficSpec } from '../resource.ts';

/** Where requests go: the stable Service, and the canary Service with its share or as a mirror. */
export interface TrafficSplit {
  stableService: string;
  canaryService?: string;
  /** Percent of requests served by the canary, 0..100. */
  canaryWeight: number;
  /** Mirror this percent of requests to the canary; the answers are dropped (shadow mode). */
  mirrorPercent?: number;
  port: number;
  /** When clients also call the predictors over gRPC: the Services' gRPC port (h2c) and the one gRPC service
   * routed there (`package.Service`), with the same split; every other request goes to `port`. */
  grpc?: { port: number; service: string };
}

export interface RouteOwner {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  ownerReference: OwnerReference;
  /** DNS suffix of Services (`cluster.local` unless the cluster says otherwise), for routes that name hosts. */
  clusterDomain: string;
}

/** A route object's metadata: the InferenceService's name, namespace and labels, and owned by it. */
export function routeMetadata(owner: RouteOwner): DesiredObject['metadata'] {
  return {
    name: owner.name,
    namespace: owner.namespace,
    labels: owner.labels,
    ownerReferences: [owner.ownerReference],
  };
}

export type TrafficProvider = NonNullable<TrafficSpec['provider']>;

export interface TrafficRouter {
  readonly provider: TrafficProvider;
  /**
   * The provider routes to a Service's virtual IP (Istio's sidecars match the destination host's cluster IP), so
   * version Services need one; the others route to endpoints, and version Services stay headless.
   */
  readonly routesToClusterIP: boolean;
  /** Its routes attach to a Gateway named in spec.traffic.parentRefs, whose address becomes status.url. */
  readonly attachesToGateway: boolean;
  /** The kinds `routes` writes; the first is the one whose object carries the weights. */
  readonly kinds: readonly [ResourceKind, ...ResourceKind[]];
  /** Kinds `routes` writes only for a split with `grpc`; without them served, the REST routes still are. */
  readonly grpcKinds: readonly ResourceKind[];
  /** The route objects for this split, ready for server-side apply, in the order of `kinds`. */
  routes(owner: RouteOwner, traffic: TrafficSpec, split: TrafficSplit): DesiredObject[];
  /** Reads the weights back from the object of `kinds[0]` (as stored by the API server). */
  weights(route: Record<string, any>): { stable: number; canary: number; mirrorPercent?: number };
}
