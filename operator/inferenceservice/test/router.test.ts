import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { route } from '../desired.ts';
import { gatewayApiRouter, istioRouter, routerFor } from '../router/index.ts';
import { inferenceService, servedModel } from './support/fixtures.ts';

const gateway = { provider: 'gatewayAPI' as const, parentRefs: [{ name: 'edge', namespace: 'gateways' }], hostnames: ['fraud.example.com'] };
const istio = { provider: 'istio' as const, hostnames: ['fraud.example.com'], gateways: ['gateways/edge'] };

for (const [traffic, router] of [[gateway, gatewayApiRouter], [istio, istioRouter]] as const) {
  for (const weight of [0, 5, 10, 25, 50, 100]) {
    test(`${router.kind} splits ${100 - weight}/${weight} between stable and canary`, () => {
      const object: any = route(inferenceService({ traffic }), { stable: servedModel(1), canary: servedModel(2), canaryWeight: weight });
      assert.is(object.kind, router.kind);
      const weights = router.weights(object);
      assert.is(weights.stable, 100 - weight);
      assert.is(weights.canary, weight);
      assert.is(weights.mirrorPercent, undefined);
    });
  }
  test(`${router.kind} in shadow mode serves stable only and mirrors to the canary`, () => {
    const object: any = route(inferenceService({ traffic }), { stable: servedModel(1), canary: servedModel(2), canaryWeight: 0, mirrorPercent: 100 });
    assert.equal(router.weights(object), { stable: 100, canary: 0, mirrorPercent: 100 });
    assert.ok(JSON.stringify(object).includes('fraud-v2'), 'mirror target is the canary Service');
  });
}

test('HTTPRoute keeps parentRefs and hostnames and points backendRefs at the version Services', () => {
  const object: any = route(inferenceService({ traffic: gateway }), { stable: servedModel(1), canary: servedModel(2), canaryWeight: 25 });
  assert.equal(object.spec.parentRefs, gateway.parentRefs);
  assert.equal(object.spec.hostnames, gateway.hostnames);
  assert.equal(object.spec.rules[0].backendRefs.map((ref: any) => ref.name), ['fraud-v1', 'fraud-v2']);
  assert.is(object.spec.rules[0].backendRefs[0].port, 8080);
});

test('VirtualService routes to cluster-local Service hosts and binds the named gateways', () => {
  const object: any = route(inferenceService({ traffic: istio }), { stable: servedModel(1), canary: servedModel(2), canaryWeight: 25 });
  assert.equal(object.spec.gateways, ['gateways/edge']);
  assert.equal(object.spec.http[0].route.map((r: any) => r.destination.host), ['fraud-v1.risk.svc.cluster.local', 'fraud-v2.risk.svc.cluster.local']);
});

test('the provider defaults to Gateway API', () => {
  assert.is(routerFor(undefined).kind, 'HTTPRoute');
  assert.is(routerFor({ provider: 'istio' }).kind, 'VirtualService');
});

test.run();
