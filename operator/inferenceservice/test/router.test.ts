// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { routes } from '../desired.ts';
import { gatewayApiRouter, istioRouter, routerFor, traefikRouter } from '../router/index.ts';
import { inferenceService, servedModel } from './support/fixtures.ts';

const gateway = {
  provider: 'gatewayAPI' as const,
  parentRefs: [{ name: 'edge', namespace: 'gateways' }],
  hostnames: ['fraud.example.com'],
};
const istio = { provider: 'istio' as const, hostnames: ['fraud.example.com'], gateways: ['gateways/edge'] };
const traefik = { provider: 'traefik' as const, hostnames: ['fraud.example.com', 'fraud.internal'] };

/** The object that carries the weights: the first of the router's kinds. */
function weighted(objects: any[], router: typeof gatewayApiRouter): any {
  return objects.find((o) => o.kind === router.kinds[0].kind);
}

for (const [traffic, router] of [
  [gateway, gatewayApiRouter],
  [istio, istioRouter],
  [traefik, traefikRouter],
] as const) {
  const kind = router.kinds[0].kind;
  for (const weight of [0, 5, 10, 25, 50, 100]) {
    test(`${kind} splits ${100 - weight}/${weight} between stable and canary`, () => {
      const objects: any[] = routes(inferenceService({ traffic }), {
        stable: servedModel(1),
        canary: servedModel(2),
        canaryWeight: weight,
      });
      assert.equal(
        objects.map((o) => o.kind),
        router.kinds.map((k) => k.kind),
      );
      assert.not.ok(JSON.stringify(objects).includes('8081'), 'REST only: nothing routes to the gRPC port');
      const weights = router.weights(weighted(objects, router));
      assert.is(weights.stable, 100 - weight);
      assert.is(weights.canary, weight);
      assert.is(weights.mirrorPercent, undefined);
    });
  }
  test(`${kind} in shadow mode serves stable only and mirrors to the canary`, () => {
    const objects: any[] = routes(inferenceService({ traffic }), {
      stable: servedModel(1),
      canary: servedModel(2),
      canaryWeight: 0,
      mirrorPercent: 100,
    });
    assert.equal(router.weights(weighted(objects, router)), { stable: 100, canary: 0, mirrorPercent: 100 });
    assert.ok(JSON.stringify(objects).includes('fraud-v2'), 'mirror target is the canary Service');
  });
}

test('HTTPRoute keeps parentRefs and hostnames and points backendRefs at the version Services', () => {
  const [object]: any[] = routes(inferenceService({ traffic: gateway }), {
    stable: servedModel(1),
    canary: servedModel(2),
    canaryWeight: 25,
  });
  assert.equal(object.spec.parentRefs, gateway.parentRefs);
  assert.equal(object.spec.hostnames, gateway.hostnames);
  assert.equal(
    object.spec.rules[0].backendRefs.map((ref: any) => ref.name),
    ['fraud-v1', 'fraud-v2'],
  );
  assert.is(object.spec.rules[0].backendRefs[0].port, 8080);
});

test('VirtualService routes to cluster-local Service hosts and binds the named gateways', () => {
  const [object]: any[] = routes(inferenceService({ traffic: istio }), {
    stable: servedModel(1),
    canary: servedModel(2),
    canaryWeight: 25,
  });
  assert.equal(object.spec.gateways, ['gateways/edge']);
  assert.equal(
    object.spec.http[0].route.map((r: any) => r.destination.host),
    ['fraud-v1.risk.svc.cluster.local', 'fraud-v2.risk.svc.cluster.local'],
  );
});

test("VirtualService hosts carry the cluster's own DNS domain (CLUSTER_DOMAIN) when it is not cluster.local", () => {
  const [object]: any[] = routes(
    inferenceService({ traffic: istio }),
    { stable: servedModel(1), canary: servedModel(2), canaryWeight: 25 },
    { clusterDomain: 'corp.internal' },
  );
  assert.equal(
    object.spec.http[0].route.map((r: any) => r.destination.host),
    ['fraud-v1.risk.svc.corp.internal', 'fraud-v2.risk.svc.corp.internal'],
  );
});

test('Traefik: the IngressRoute matches every hostname and sends them to the TraefikService, which mirrors to the canary Service in shadow mode', () => {
  const [service, ingress]: any[] = routes(inferenceService({ traffic: traefik }), {
    stable: servedModel(1),
    canary: servedModel(2),
    canaryWeight: 0,
    mirrorPercent: 30,
  });
  assert.equal(ingress.spec.routes, [
    {
      kind: 'Rule',
      match: 'Host(`fraud.example.com`) || Host(`fraud.internal`)',
      services: [{ kind: 'TraefikService', name: 'fraud' }],
    },
  ]);
  assert.is(ingress.spec.entryPoints, undefined);
  assert.equal(service.spec, {
    mirroring: { name: 'fraud-v1', port: 8080, mirrors: [{ name: 'fraud-v2', port: 8080, percent: 30 }] },
  });
  assert.equal(
    [service, ingress].map((o) => o.metadata.ownerReferences[0].name),
    ['fraud', 'fraud'],
  );
});

test('Traefik: without hostnames the IngressRoute matches every path; entryPoints are passed on', () => {
  const [service, ingress]: any[] = routes(
    inferenceService({ traffic: { provider: 'traefik', entryPoints: ['web'] } }),
    { stable: servedModel(1), canaryWeight: 0 },
  );
  assert.is(ingress.spec.routes[0].match, 'PathPrefix(`/`)');
  assert.equal(ingress.spec.entryPoints, ['web']);
  assert.equal(service.spec, { weighted: { services: [{ name: 'fraud-v1', port: 8080, weight: 100 }] } });
});

const grpcService = (traffic: any) => inferenceService({ traffic, predictor: { protocols: ['rest', 'grpc'] } });

for (const weight of [0, 10, 50, 100]) {
  test(`with grpc in protocols a GRPCRoute beside the HTTPRoute carries the same ${100 - weight}/${weight} split to port 8081`, () => {
    const [http, grpc]: any[] = routes(grpcService(gateway), {
      stable: servedModel(1),
      canary: servedModel(2),
      canaryWeight: weight,
    });
    assert.is(grpc.kind, 'GRPCRoute');
    assert.is(grpc.apiVersion, 'gateway.networking.k8s.io/v1');
    assert.equal(gatewayApiRouter.weights(grpc), gatewayApiRouter.weights(http));
    assert.equal(gatewayApiRouter.weights(grpc), { stable: 100 - weight, canary: weight });
    assert.equal(
      grpc.spec.rules[0].backendRefs.map((ref: any) => [ref.name, ref.port]),
      weight > 0
        ? [
            ['fraud-v1', 8081],
            ['fraud-v2', 8081],
          ]
        : [['fraud-v1', 8081]],
    );
    assert.equal(
      http.spec.rules[0].backendRefs.map((ref: any) => ref.port),
      weight > 0 ? [8080, 8080] : [8080],
    );
  });
}

test("the GRPCRoute has the HTTPRoute's name, parents, hostnames and owner, and matches only the inference service (REST keeps the HTTPRoute)", () => {
  const [http, grpc]: any[] = routes(grpcService(gateway), {
    stable: servedModel(1),
    canary: servedModel(2),
    canaryWeight: 25,
  });
  assert.is(grpc.metadata.name, http.metadata.name);
  assert.equal(grpc.metadata.ownerReferences, http.metadata.ownerReferences);
  assert.equal(grpc.metadata.ownerReferences[0], {
    apiVersion: 'loopline.dev/v1alpha1',
    kind: 'InferenceService',
    name: 'fraud',
    uid: '0000-1111',
    controller: true,
    blockOwnerDeletion: true,
  });
  assert.equal(grpc.spec.parentRefs, gateway.parentRefs);
  assert.equal(grpc.spec.hostnames, gateway.hostnames);
  assert.equal(grpc.spec.rules[0].matches, [{ method: { type: 'Exact', service: 'inference.GRPCInferenceService' } }]);
});

test("the GRPCRoute mirrors to the canary's gRPC port in shadow mode", () => {
  const [, grpc]: any[] = routes(grpcService(gateway), {
    stable: servedModel(1),
    canary: servedModel(2),
    canaryWeight: 0,
    mirrorPercent: 40,
  });
  assert.equal(gatewayApiRouter.weights(grpc), { stable: 100, canary: 0, mirrorPercent: 40 });
  assert.equal(grpc.spec.rules[0].filters[0].requestMirror.backendRef, {
    kind: 'Service',
    name: 'fraud-v2',
    port: 8081,
  });
});

test("Traefik with grpc: a longer IngressRoute rule sends the inference service to the gRPC port over h2c at the split's weights", () => {
  const [service, ingress]: any[] = routes(grpcService(traefik), {
    stable: servedModel(1),
    canary: servedModel(2),
    canaryWeight: 30,
  });
  const [grpc, rest] = ingress.spec.routes;
  assert.is(
    grpc.match,
    '(Host(`fraud.example.com`) || Host(`fraud.internal`)) && PathPrefix(`/inference.GRPCInferenceService/`)',
  );
  assert.ok(grpc.match.length > rest.match.length, 'Traefik tries the longer rule first');
  assert.equal(grpc.services, [
    { name: 'fraud-v1', port: 8081, scheme: 'h2c', weight: 70 },
    { name: 'fraud-v2', port: 8081, scheme: 'h2c', weight: 30 },
  ]);
  assert.equal(traefikRouter.weights(service), { stable: 70, canary: 30 });
  const [, shadow]: any[] = routes(grpcService(traefik), {
    stable: servedModel(1),
    canary: servedModel(2),
    canaryWeight: 0,
    mirrorPercent: 30,
  });
  assert.equal(
    shadow.spec.routes[0].services,
    [{ name: 'fraud-v1', port: 8081, scheme: 'h2c', weight: 100 }],
    'shadow mode: gRPC on stable only',
  );
});

test('Istio with grpc: a first http route matches the gRPC port and keeps it, at the same weights', () => {
  const [object]: any[] = routes(grpcService(istio), {
    stable: servedModel(1),
    canary: servedModel(2),
    canaryWeight: 20,
  });
  const [grpc, rest] = object.spec.http;
  assert.equal(grpc.match, [{ port: 8081 }]);
  assert.equal(
    grpc.route.map((r: any) => [r.destination.host, r.destination.port.number, r.weight]),
    [
      ['fraud-v1.risk.svc.cluster.local', 8081, 80],
      ['fraud-v2.risk.svc.cluster.local', 8081, 20],
    ],
  );
  assert.is(rest.name, 'predictor');
  assert.equal(istioRouter.weights(object), { stable: 80, canary: 20 });
});

test('the provider defaults to Gateway API', () => {
  assert.is(routerFor(undefined).kinds[0].kind, 'HTTPRoute');
  assert.is(routerFor({ provider: 'istio' }).kinds[0].kind, 'VirtualService');
  assert.is(routerFor({ provider: 'traefik' }).kinds[0].kind, 'TraefikService');
});

test.run();
