// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { planStatus, refusalOf, type StatusFacts } from '../status.ts';

const facts = (overrides: Partial<StatusFacts> = {}): StatusFacts => ({
  namespace: 'ml',
  url: 'http://credit.ml.svc.cluster.local',
  phase: 'Stable',
  stable: { version: 1, name: 'credit-v1', available: true },
  hadDrift: false,
  servingVersion: 1,
  wasReady: false,
  ...overrides,
});
const byType = (plan: ReturnType<typeof planStatus>) => Object.fromEntries(plan.conditions.map((c) => [c.type, c]));

test('an available stable version is Ready with its URL and the Host to send', () => {
  const plan = planStatus(facts({ hostname: 'credit.example.com' }));
  assert.equal(
    plan.conditions.map((c) => c.type),
    ['Ready'],
  );
  assert.is(plan.conditions[0]!.status, 'True');
  assert.is(
    plan.conditions[0]!.message,
    'v1 is serving at http://credit.ml.svc.cluster.local (Host credit.example.com)',
  );
  assert.is(plan.degraded, false);
});

test('a stable version without ready pods is not Ready and says what to describe', () => {
  const plan = planStatus(facts({ stable: { version: 2, name: 'credit-v2', available: false } }));
  assert.is(plan.conditions[0]!.reason, 'StableUnavailable');
  assert.match(plan.conditions[0]!.message, /kubectl describe deployment credit-v2 -n ml/);
  assert.is(plan.degraded, false, 'never Ready before: starting, not degraded');
});

test('losing the stable pods after Ready degrades a settled service, not one mid-rollout', () => {
  const down = { version: 1, name: 'credit-v1', available: false };
  assert.is(planStatus(facts({ stable: down, wasReady: true, phase: 'Stable' })).degraded, true);
  assert.is(planStatus(facts({ stable: down, wasReady: true, phase: 'Promoted' })).degraded, true);
  assert.is(planStatus(facts({ stable: down, wasReady: true, phase: 'Progressing' })).degraded, false);
});

test('a canary without ready pods keeps its share on stable and names the progress deadline', () => {
  const plan = byType(
    planStatus(
      facts({
        phase: 'Progressing',
        canary: { version: 2, name: 'credit-v2', available: false, weight: 20, progressDeadline: '5m' },
      }),
    ),
  );
  assert.is(plan.CanaryReady!.status, 'False');
  assert.is(
    plan.CanaryReady!.message,
    'canary v2 has no ready pod yet: its 20% stays on stable and its step is not analysed (progressDeadline 5m)',
  );
  const ready = byType(planStatus(facts({ canary: { version: 2, name: 'credit-v2', available: true, weight: 20 } })));
  assert.is(ready.CanaryReady!.reason, 'CanaryAvailable');
});

test("a canary selector that resolves to nothing wins over the served canary's condition", () => {
  const plan = planStatus(
    facts({
      canaryNotFound: 'no ModelVersion of model credit has alias "candidate"; serving stable only',
      canary: { version: 2, name: 'credit-v2', available: true, weight: 50 },
    }),
  );
  const canary = plan.conditions.filter((c) => c.type === 'CanaryReady');
  assert.is(canary.length, 1, 'one condition per type');
  assert.is(canary[0]!.reason, 'CanaryVersionNotFound');
});

test('routes: the split they carry, or the CRDs to install when the kind is not served', () => {
  const route = {
    provider: 'gatewayAPI',
    missingKinds: [],
    routes: ['HTTPRoute credit'],
    canaryWeight: 30,
    hasCanary: true,
    mirrorPercent: 10,
  };
  assert.is(
    byType(planStatus(facts({ route }))).RouteReady!.message,
    'HTTPRoute credit: stable 70%, canary 30%, mirroring 10% to the canary',
  );
  assert.is(
    byType(planStatus(facts({ route: { ...route, hasCanary: false, canaryWeight: 0, mirrorPercent: undefined } })))
      .RouteReady!.message,
    'HTTPRoute credit: stable 100%, canary 0%',
  );
  const missing = byType(
    planStatus(
      facts({
        route: {
          ...route,
          provider: 'traefik',
          missingKinds: ['TraefikService (traefik.io/v1alpha1)', 'IngressRoute (traefik.io/v1alpha1)'],
        },
      }),
    ),
  ).RouteReady!;
  assert.is(missing.status, 'False');
  assert.match(
    missing.message,
    /^TraefikService \(traefik\.io\/v1alpha1\) and IngressRoute \(traefik\.io\/v1alpha1\) are not served by the API server: install the CRDs of provider traefik/,
  );
  assert.not.ok(
    byType(planStatus(facts({ route: { ...route, routes: [] } }))).RouteReady,
    'no route objects, no condition',
  );
});

test("a Gateway's refusal of a route at its current generation is reported; an older generation's, or a backend still without endpoints, is not", () => {
  const route = (generation: number, conditions: any[]) => ({
    apiVersion: 'v1',
    kind: 'GRPCRoute',
    metadata: { name: 'fraud', namespace: 'risk', generation },
    status: { parents: [{ parentRef: { name: 'edge', namespace: 'gateways' }, conditions }] },
  });
  const refused = {
    type: 'Accepted',
    status: 'False',
    reason: 'NotAllowedByListeners',
    observedGeneration: 2,
    message: '',
  };
  assert.is(refusalOf(route(2, [refused]) as any), 'Gateway gateways/edge says Accepted False, NotAllowedByListeners');
  assert.is(refusalOf(route(3, [refused]) as any), undefined, 'said of generation 2, the route is at 3');
  assert.is(
    refusalOf(
      route(2, [{ type: 'ResolvedRefs', status: 'False', reason: 'BackendNotFound', observedGeneration: 2 }]) as any,
    ),
    undefined,
  );
  assert.is(
    refusalOf(
      route(2, [
        {
          type: 'ResolvedRefs',
          status: 'False',
          reason: 'UnsupportedProtocol',
          message: 'no h2c',
          observedGeneration: 2,
        },
      ]) as any,
    ),
    'Gateway gateways/edge says ResolvedRefs False, UnsupportedProtocol (no h2c)',
  );
  assert.is(refusalOf(route(2, [{ ...refused, status: 'True', reason: 'Accepted' }]) as any), undefined);
  assert.is(refusalOf(undefined), undefined);
});

test("routes with grpc: a missing GRPCRoute CRD names it and says REST is routed; a refused route gives the Gateway's reason and the fix", () => {
  const route = {
    provider: 'gatewayAPI',
    missingKinds: [],
    routes: ['HTTPRoute credit', 'GRPCRoute credit'],
    canaryWeight: 30,
    hasCanary: true,
  };
  assert.is(
    byType(planStatus(facts({ route }))).RouteReady!.message,
    'HTTPRoute credit, GRPCRoute credit: stable 70%, canary 30%',
  );
  const missing = byType(
    planStatus(facts({ route: { ...route, missingGrpcKinds: ['GRPCRoute (gateway.networking.k8s.io/v1)'] } })),
  ).RouteReady!;
  assert.equal([missing.status, missing.reason], ['False', 'RouteKindNotInstalled']);
  assert.match(
    missing.message,
    /^GRPCRoute \(gateway\.networking\.k8s\.io\/v1\) is not served by the API server, so gRPC is not routed \(REST is\).*install Gateway API's GRPCRoute CRD.*or remove grpc from spec\.predictor\.protocols$/,
  );
  const refusal = {
    route: 'GRPCRoute credit',
    kind: 'GRPCRoute',
    gateway: 'Gateway ml/edge says Accepted False, NotAllowedByListeners',
  };
  const refused = byType(planStatus(facts({ route: { ...route, refusal } }))).RouteReady!;
  assert.equal([refused.status, refused.reason], ['False', 'RouteNotAccepted']);
  assert.is(
    refused.message,
    'GRPCRoute credit: Gateway ml/edge says Accepted False, NotAllowedByListeners: let a listener of that Gateway allow GRPCRoute (spec.listeners[].allowedRoutes.kinds; an HTTP or HTTPS listener), or remove grpc from spec.predictor.protocols',
  );
  const http = byType(
    planStatus(
      facts({
        route: {
          ...route,
          refusal: {
            route: 'HTTPRoute credit',
            kind: 'HTTPRoute',
            gateway: 'Gateway ml/edge says ResolvedRefs False, RefNotPermitted',
          },
        },
      }),
    ),
  ).RouteReady!;
  assert.is(
    http.message,
    'HTTPRoute credit: Gateway ml/edge says ResolvedRefs False, RefNotPermitted: see kubectl describe httproute credit -n ml',
  );
});

test("drift: the serving version's verdict, Unknown while its first window is open, absent if never seen", () => {
  const drifted = byType(
    planStatus(facts({ drift: { drifted: true, score: 0.4, driftedFeatures: ['income'] } as never, hadDrift: true })),
  );
  assert.is(drifted.Drifted!.message, 'drift score 0.4 (features: income)');
  assert.is(byType(planStatus(facts({ drift: { drifted: false, score: 0.1 } as never }))).Drifted!.reason, 'NoDrift');
  assert.is(
    byType(planStatus(facts({ hadDrift: true, servingVersion: 3 }))).Drifted!.message,
    'no drift window of v3 has closed yet',
  );
  assert.not.ok(byType(planStatus(facts())).Drifted);
});

test('conditions come Ready first, then route, canary and drift', () => {
  const plan = planStatus(
    facts({
      canary: { version: 2, name: 'credit-v2', available: true, weight: 20 },
      route: {
        provider: 'gatewayAPI',
        missingKinds: [],
        routes: ['HTTPRoute credit'],
        canaryWeight: 20,
        hasCanary: true,
      },
      hadDrift: true,
    }),
  );
  assert.equal(
    plan.conditions.map((c) => c.type),
    ['Ready', 'RouteReady', 'CanaryReady', 'Drifted'],
  );
});

test.run();
