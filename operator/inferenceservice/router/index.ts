/**
 * Traffic providers behind one small interface (after Flagger's pkg/router): the canary state machine decides
 * weights, a router turns them into the provider's route object. Nothing else knows which mesh is there.
 */
import type { DesiredObject, OwnerReference } from '../../engine/types.ts';
import type { TrafficSpec } from '../resource.ts';
import { gatewayApiRouter } from './gateway-api.ts';
import { istioRouter } from './istio.ts';

/** Where requests go: the stable Service, and the canary Service with its share or as a mirror. */
export interface TrafficSplit {
  stableService: string;
  canaryService?: string;
  /** Percent of requests served by the canary, 0..100. */
  canaryWeight: number;
  /** Mirror this percent of requests to the canary; the answers are dropped (shadow mode). */
  mirrorPercent?: number;
  port: number;
}

export interface RouteOwner {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  ownerReference: OwnerReference;
}

export interface TrafficRouter {
  readonly provider: 'gatewayAPI' | 'istio';
  readonly apiVersion: string;
  readonly kind: string;
  readonly plural: string;
  /** The route object for this split, ready for server-side apply. */
  route(owner: RouteOwner, traffic: TrafficSpec, split: TrafficSplit): DesiredObject;
  /** Reads the weights back from a route object (as stored by the API server). */
  weights(route: Record<string, any>): { stable: number; canary: number; mirrorPercent?: number };
}

export function routerFor(traffic: TrafficSpec | undefined): TrafficRouter {
  return traffic?.provider === 'istio' ? istioRouter : gatewayApiRouter;
}

export { gatewayApiRouter, istioRouter };
