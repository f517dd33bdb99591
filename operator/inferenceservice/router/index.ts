/**
 * Traffic providers behind one small interface (after Flagger's pkg/router): the canary state machine decides
 * weights, a router turns them into the provider's route objects and says what else differs between providers (whether
 * version Services need a cluster IP, whether routes attach to a Gateway); nothing else names a provider.
 */
import type { TrafficSpec } from '../resource.ts';
import { gatewayApiRouter } from './gateway-api.ts';
import { istioRouter } from './istio.ts';
import { traefikRouter } from './traefik.ts';
import type { TrafficRouter } from './types.ts';

export type { RouteOwner, TrafficProvider, TrafficRouter, TrafficSplit } from './types.ts';

export const routers: readonly TrafficRouter[] = [gatewayApiRouter, istioRouter, traefikRouter];

export function routerFor(traffic: TrafficSpec | undefined): TrafficRouter {
  return routers.find((router) => router.provider === traffic?.provider) ?? gatewayApiRouter;
}

export { gatewayApiRouter, istioRouter, traefikRouter };
