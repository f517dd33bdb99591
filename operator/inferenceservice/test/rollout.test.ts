/**
 * Progressive delivery against the real API server of the local cluster, with the real Gateway API and Istio
 * CRDs validating every route the controller writes, a real Prometheus for the analysis and a real
 * nats-server for lifecycle events. Predictor pods are simulated by KWOK here (the image is not a loopline/
 * one); their metrics come from endpoints whose error rate and latency the test sets. The closed loop with
 * real predictor processes is closed-loop.test.ts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { NatsConnection } from '@nats-io/transport-node';
import { createEngine, kinds, type Engine, type KubeObject } from '../../engine/index.ts';
import { connectTo, startNats, type TestNats } from '../../../test/support/nats.ts';
import { gatewayApiRouter, istioRouter } from '../router/index.ts';
import { registerInferenceServices } from '../index.ts';
import {
  createNamespace,
  deleteNamespace,
  installCrds,
  registerVersion,
  requireKubeconfig,
  setEffectiveAliases,
  sleep,
  uniqueName,
  waitFor,
} from './support/cluster.ts';
import { eventsAbout } from '../../../test/support/events.ts';
import { startPrometheus, type TestPrometheus } from '../../../test/support/prometheus.ts';
import { versionEndpoint, type Behaviour, type VersionEndpoint } from '../../../test/support/predictor-metrics.ts';
import { KubeApi } from '../../engine/index.ts';
import { run as runCli } from '../../cli/main.ts';
import { traefikService } from '../../../test/support/gateway.ts';
import { inProcessEngine } from '../../../test/support/local.ts';

const kc = requireKubeconfig();
const api = new KubeApi(kc);
const ns = uniqueName('isvc-rollout');
const IMAGE = 'registry.local/predictor-simulated:1';
const healthy: Behaviour = { rate: 10, errorShare: 0, latencySeconds: 0.004 };

let prometheus: TestPrometheus;
let nats: TestNats;
let nc: NatsConnection;
let engine: Engine;
const endpoints: VersionEndpoint[] = [];
const lifecycle: Array<{ subject: string; type: string; data: any }> = [];

async function startOperator(): Promise<Engine> {
  const started = createEngine(inProcessEngine(kc, ns));
  await registerInferenceServices(started, {
    prometheusUrl: prometheus.url,
    scrapeIntervalMs: prometheus.scrapeIntervalMs,
    nats: nc,
  });
  await started.start();
  return started;
}

/** Metrics endpoints for a service's versions, all scraped with that service's target labels. */
async function serveMetrics(
  service: string,
  model: string,
  versions: Record<number, Behaviour>,
): Promise<Record<number, VersionEndpoint>> {
  const made: Record<number, VersionEndpoint> = {};
  for (const [version, behaviour] of Object.entries(versions)) {
    made[Number(version)] = await versionEndpoint(model, Number(version), { ...behaviour });
    endpoints.push(made[Number(version)]!);
    (made[Number(version)] as VersionEndpoint & { service?: string }).service = service;
  }
  prometheus.setTargets(
    endpoints.map((e) => ({
      address: e.address,
      labels: { namespace: ns, inference_service: (e as VersionEndpoint & { service?: string }).service! },
    })),
  );
  // The analysis needs two scrapes of every version before its first check: on a quiet machine the operator
  // reaches that check sooner than Prometheus rereads its targets file, and a canary with no series fails it.
  await prometheus.waitForTargets(endpoints.length);
  await sleep(3 * prometheus.scrapeIntervalMs);
  return made;
}

function isvcObject(name: string, model: string, spec: Record<string, unknown>) {
  return {
    apiVersion: 'loopline.dev/v1alpha1',
    kind: 'InferenceService',
    metadata: { name, namespace: ns },
    spec: {
      model,
      stable: { alias: 'production' },
      canary: { alias: 'candidate' },
      predictor: { image: IMAGE },
      rollout: {
        steps: [20, 50, 100],
        interval: '3s',
        analysis: { maxErrorRate: 0.05, maxLatencyP95Ms: 100, minRequests: 10, failureLimit: 2 },
      },
      traffic: { provider: 'gatewayAPI', parentRefs: [{ name: 'edge' }] },
      ...spec,
    },
  };
}

const getIsvc = (name: string) => api.get(kinds.InferenceService, ns, name);
const getRoute = (kind: typeof kinds.HTTPRoute | typeof kinds.VirtualService, name: string) =>
  api.get(kind, ns, name).catch(() => undefined);

/** Every distinct canary weight the route held while `until` was not yet true. */
async function watchWeights(
  kind: typeof kinds.HTTPRoute,
  name: string,
  until: () => Promise<boolean>,
  timeoutMs = 60_000,
): Promise<number[]> {
  const seen: number[] = [];
  const deadline = Date.now() + timeoutMs;
  while (!(await until())) {
    if (Date.now() > deadline) throw new Error(`rollout of ${name} did not finish; weights so far ${seen}`);
    const route = await getRoute(kind, name);
    if (route) {
      const weight = gatewayApiRouter.weights(route).canary;
      if (seen[seen.length - 1] !== weight) seen.push(weight);
    }
    await sleep(100);
  }
  return seen;
}

test.before(async () => {
  await installCrds(api);
  await createNamespace(api, ns);
  prometheus = await startPrometheus({ scrapeIntervalMs: 500 });
  nats = await startNats();
  nc = await connectTo(nats);
  const subscription = nc.subscribe(`loopline.events.${ns}.>`);
  void (async () => {
    for await (const message of subscription) {
      const event = message.json<{ type: string; data: unknown }>();
      lifecycle.push({ subject: message.subject, type: event.type, data: event.data });
    }
  })();
  engine = await startOperator();
});

test.after(async () => {
  await engine?.stop();
  await deleteNamespace(api, ns);
  await prometheus?.stop();
  for (const endpoint of endpoints) await endpoint.close();
  await nc?.close();
  await nats?.stop();
});

test('a healthy canary steps 20→50→100 through HTTPRoutes the real CRD accepts and is promoted through the registry', async () => {
  await serveMetrics('happy', 'happy-model', { 1: healthy, 2: healthy });
  await registerVersion(api, ns, 'happy-model', 1, ['production']);
  await registerVersion(api, ns, 'happy-model', 2, ['candidate']);
  await api.create(kinds.InferenceService, isvcObject('happy', 'happy-model', {}) as never, 'loopline-test');
  const weights = await watchWeights(
    kinds.HTTPRoute,
    'happy',
    async () => (await getIsvc('happy')).status?.phase === 'Promoted',
  );
  assert.equal(
    weights.filter((w) => w > 0),
    [20, 50, 100],
  );
  const isvc = await getIsvc('happy');
  assert.is(isvc.status.stableVersion, 2);
  assert.is(isvc.status.canaryWeight, 0);
  assert.match(isvc.status.analysis.message, /^Passed: requests \d+, error rate 0/);
  // The registry was asked to make v2 the production version.
  const v2 = await api.get(kinds.ModelVersion, ns, 'happy-model-v2');
  assert.is(v2.spec.stage, 'Production');
  assert.ok(v2.spec.aliases.includes('production'));
  // All traffic on v2, v1's objects pruned.
  const route = await api.get(kinds.HTTPRoute, ns, 'happy');
  assert.equal(
    route.spec.rules[0].backendRefs.map((r: any) => [r.name, r.weight]),
    [['happy-v2', 100]],
  );
  await waitFor(
    'v1 Deployment pruned',
    async () =>
      await api.get(kinds.Deployment, ns, 'happy-v1').then(
        () => false,
        () => true,
      ),
  );
  // The registry moving the production alias to v2 keeps it stable (no new canary, no traffic move).
  await setEffectiveAliases(api, ns, 'happy-model-v1', [], 'Archived');
  await setEffectiveAliases(api, ns, 'happy-model-v2', ['candidate', 'production'], 'Production');
  await sleep(1000);
  const after = await getIsvc('happy');
  assert.is(after.status.phase, 'Promoted');
  assert.is(after.status.stableVersion, 2);
  assert.ok(
    lifecycle.some(
      (e) =>
        e.subject === `loopline.events.${ns}.inferenceservice.happy` &&
        e.type === 'dev.loopline.inferenceservice.promoted',
    ),
  );
});

test('a canary that errs, and one that is slow, are rolled back on their own with the numbers in status, an Event and a NATS event', async () => {
  await serveMetrics('errs', 'errs-model', { 1: healthy, 2: { rate: 10, errorShare: 0.3, latencySeconds: 0.004 } });
  await serveMetrics('slow', 'slow-model', { 1: healthy, 2: { rate: 10, errorShare: 0, latencySeconds: 0.4 } });
  for (const model of ['errs-model', 'slow-model']) {
    await registerVersion(api, ns, model, 1, ['production']);
    await registerVersion(api, ns, model, 2, ['candidate']);
  }
  await api.create(kinds.InferenceService, isvcObject('errs', 'errs-model', {}) as never, 'loopline-test');
  await api.create(kinds.InferenceService, isvcObject('slow', 'slow-model', {}) as never, 'loopline-test');
  for (const [name, pattern] of [
    ['errs', /error rate 0\.\d+ > maxErrorRate 0\.05/],
    ['slow', /p95 latency \d+(\.\d+)?ms > maxLatencyP95Ms 100/],
  ] as const) {
    const isvc = await waitFor(
      `${name} rolled back`,
      async () => {
        const current = await getIsvc(name);
        return current.status?.phase === 'RolledBack' ? current : undefined;
      },
      40_000,
    );
    assert.is(isvc.status.canaryWeight, 0);
    assert.is(isvc.status.stableVersion, 1);
    assert.is(isvc.status.canaryVersion, 2);
    assert.is(isvc.status.analysis.failedChecks, 2);
    assert.match(isvc.status.analysis.message, pattern, `${name}: ${isvc.status.analysis.message}`);
    if (name === 'errs') assert.ok(isvc.status.analysis.errorRate > 0.2, `errorRate ${isvc.status.analysis.errorRate}`);
    else assert.ok(isvc.status.analysis.latencyP95Ms > 100, `p95 ${isvc.status.analysis.latencyP95Ms}`);
    // Status is written before the route (a restart resumes from status): the route follows right after.
    await waitFor(
      `${name}'s route back on stable`,
      async () =>
        JSON.stringify(gatewayApiRouter.weights(await api.get(kinds.HTTPRoute, ns, name))) ===
        JSON.stringify({ stable: 100, canary: 0 }),
      5000,
    );
    await waitFor(
      `${name} canary Deployment pruned`,
      async () =>
        await api.get(kinds.Deployment, ns, `${name}-v2`).then(
          () => false,
          () => true,
        ),
    );
    let notes: string[] = [];
    await waitFor(
      `a RolledBack Event for ${name}`,
      async () => {
        const events = await eventsAbout(api, ns, name);
        notes = events.map((e) => `${e.reason}: ${e.note}`);
        return events.some((e) => e.reason === 'RolledBack' && pattern.test(e.note));
      },
      5000,
    ).catch((error) => {
      throw new Error(`${error.message}; events: ${notes.join(' | ')}`);
    });
    const published = await waitFor(`NATS rolledback event for ${name}`, () =>
      lifecycle.find(
        (e) =>
          e.subject === `loopline.events.${ns}.inferenceservice.${name}` &&
          e.type === 'dev.loopline.inferenceservice.rolledback',
      ),
    );
    assert.match(published.data.reason, pattern);
  }
});

test('shadow mode on Istio mirrors to the canary through a VirtualService the real CRD accepts, serving none of its answers', async () => {
  await serveMetrics('shadow', 'shadow-model', { 1: healthy, 2: healthy });
  await registerVersion(api, ns, 'shadow-model', 1, ['production']);
  await registerVersion(api, ns, 'shadow-model', 2, ['candidate']);
  await api.create(
    kinds.InferenceService,
    isvcObject('shadow', 'shadow-model', {
      traffic: { provider: 'istio', hostnames: ['shadow.example.com'] },
      shadow: { enabled: true, percent: 50 },
      rollout: { steps: [100], interval: '30s', analysis: { minRequests: 10 } },
    }) as never,
    'loopline-test',
  );
  const route = await waitFor('VirtualService', () => getRoute(kinds.VirtualService, 'shadow'));
  assert.equal(istioRouter.weights(route), { stable: 100, canary: 0, mirrorPercent: 50 });
  assert.is(route.spec.http[0].mirror.host, `shadow-v2.${ns}.svc.cluster.local`);
  const isvc = await waitFor('shadow Progressing', async () =>
    (await getIsvc('shadow')).status?.phase === 'Progressing' ? getIsvc('shadow') : undefined,
  );
  assert.is(isvc.status.canaryWeight, 0);
  assert.ok(await api.get(kinds.Deployment, ns, 'shadow-v2'), 'the mirrored canary runs');
});

test('version Services behind an HTTPRoute are headless and the whole Service has a cluster IP; istio gets a version Service with one, replaced in place', async () => {
  await registerVersion(api, ns, 'address-model', 1, ['production']);
  await api.create(
    kinds.InferenceService,
    isvcObject('address', 'address-model', { canary: undefined }) as never,
    'loopline-test',
  );
  const headless = await waitFor('Service address-v1', () =>
    api.get(kinds.Service, ns, 'address-v1').catch(() => undefined),
  );
  assert.is(headless.spec.clusterIP, 'None');
  const whole = await waitFor('Service address', () => api.get(kinds.Service, ns, 'address').catch(() => undefined));
  assert.match(whole.spec.clusterIP, /^\d+\.\d+\.\d+\.\d+$/);
  assert.equal(
    (await getRoute(kinds.HTTPRoute, 'address'))!.spec.rules[0].backendRefs.map((b: { name: string }) => b.name),
    ['address-v1'],
  );

  // Istio routes a VirtualService destination through the host's virtual IP: the headless Service is replaced.
  await api.mergePatch(
    kinds.InferenceService,
    ns,
    'address',
    { spec: { traffic: { provider: 'istio', parentRefs: null } } },
    'loopline-test',
  );
  const addressed = await waitFor('address-v1 with a cluster IP', async () => {
    const service = await api.get(kinds.Service, ns, 'address-v1').catch(() => undefined);
    return service && service.spec.clusterIP !== 'None' ? service : undefined;
  });
  assert.match(addressed.spec.clusterIP, /^\d+\.\d+\.\d+\.\d+$/);
  assert.is.not(addressed.metadata.uid, headless.metadata.uid);
  await waitFor('VirtualService address', () => getRoute(kinds.VirtualService, 'address'));
  const events = (
    (await api.list(kinds.Event, ns)).items as Array<KubeObject & { regarding?: { name: string }; reason?: string }>
  ).filter((e) => e.regarding?.name === 'address');
  assert.ok(
    events.some((e) => e.reason === 'ServiceReplaced'),
    'an Event says why the Service was replaced',
  );

  // Back to Gateway API: a version Service that has a cluster IP keeps it (routes reach it just the same).
  await api.mergePatch(
    kinds.InferenceService,
    ns,
    'address',
    { spec: { traffic: { provider: 'gatewayAPI', parentRefs: [{ name: 'edge' }] } } },
    'loopline-test',
  );
  await waitFor(
    'HTTPRoute address, VirtualService pruned',
    async () => (await getRoute(kinds.HTTPRoute, 'address')) && !(await getRoute(kinds.VirtualService, 'address')),
  );
  const kept = await api.get(kinds.Service, ns, 'address-v1');
  assert.is(kept.metadata.uid, addressed.metadata.uid);
  assert.is(kept.spec.clusterIP, addressed.spec.clusterIP);
});

test('status.url is the address and listener port of the Gateway the route attaches to; Traefik accepts the route and builds it', async () => {
  const host = `url.${ns}.example.com`;
  await registerVersion(api, ns, 'url-model', 1, ['production']);
  await api.create(
    kinds.InferenceService,
    isvcObject('url', 'url-model', {
      canary: undefined,
      traffic: {
        provider: 'gatewayAPI',
        parentRefs: [{ name: 'loopline-gateway', namespace: 'loopline-system', sectionName: 'http' }],
        hostnames: [host],
      },
    }) as never,
    'loopline-test',
  );
  // Until the Gateway's address is in the cache the URL is the route's hostname; it follows the address once known.
  const isvc = await waitFor('status.url from the Gateway', async () => {
    const current = await getIsvc('url');
    return current.status?.url === process.env.GATEWAY_URL ? current : undefined;
  });
  assert.is(isvc.status.url, process.env.GATEWAY_URL);
  const route = await waitFor('the HTTPRoute accepted by loopline-gateway', async () => {
    const current = await getRoute(kinds.HTTPRoute, 'url');
    const parent = current?.status?.parents?.find((p: any) => p.parentRef.name === 'loopline-gateway');
    return parent?.conditions?.some((c: any) => c.type === 'Accepted' && c.status === 'True') ? current : undefined;
  });
  assert.is(route.status.parents[0].controllerName, 'traefik.io/gateway-controller');
  const live = await waitFor('Traefik running a service for the host', () => traefikService(host));
  assert.equal(
    live.weighted.services.map((s: { weight: number }) => s.weight),
    [100],
  );
});

test('an operator killed mid-rollout resumes at the same step: no traffic jump', async () => {
  await serveMetrics('resume', 'resume-model', { 1: healthy, 2: healthy });
  await registerVersion(api, ns, 'resume-model', 1, ['production']);
  await registerVersion(api, ns, 'resume-model', 2, ['candidate']);
  await api.create(
    kinds.InferenceService,
    isvcObject('resume', 'resume-model', {
      rollout: { steps: [10, 30, 60, 100], interval: '4s', analysis: { maxErrorRate: 0.05, minRequests: 10 } },
    }) as never,
    'loopline-test',
  );
  const atStep1 = await waitFor(
    'step 1',
    async () => {
      const current = await getIsvc('resume');
      return current.status?.currentStep === 1 ? current : undefined;
    },
    30_000,
  );
  // What a crash looks like: no lease release, in-flight work aborted.
  await engine.stop({ releaseLease: false });
  const stepStartedAt = atStep1.status.analysis.stepStartedAt;
  await sleep(1000);
  engine = await startOperator();
  // Right after the restart the route and status still hold step 1's weight, and the step's clock is kept.
  await sleep(500);
  const resumed = await getIsvc('resume');
  assert.is(resumed.status.currentStep, 1);
  assert.is(resumed.status.canaryWeight, 30);
  assert.is(resumed.status.analysis.stepStartedAt, stepStartedAt);
  const weights = await watchWeights(
    kinds.HTTPRoute,
    'resume',
    async () => (await getIsvc('resume')).status?.phase === 'Promoted',
  );
  assert.equal(
    weights.filter((w) => w > 0),
    [30, 60, 100],
  );
});

test('the CLI pauses a rollout at its step, promotes it now, and prints its status; promoteNow is cleared after use', async () => {
  await serveMetrics('manual', 'manual-model', { 1: healthy, 2: healthy });
  await registerVersion(api, ns, 'manual-model', 1, ['production']);
  await registerVersion(api, ns, 'manual-model', 2, ['candidate']);
  await api.create(
    kinds.InferenceService,
    isvcObject('manual', 'manual-model', {
      rollout: { steps: [10, 50, 100], interval: '3s', analysis: { minRequests: 10 } },
    }) as never,
    'loopline-test',
  );
  await waitFor('canary started', async () => (await getIsvc('manual')).status?.phase === 'Progressing');
  assert.is(await runCli(['pause', 'manual', '-n', ns], () => {}), 0);
  await sleep(4500);
  const paused = await getIsvc('manual');
  assert.is(paused.status.currentStep, 0);
  assert.is(paused.status.canaryWeight, 10);
  assert.is(await runCli(['promote', 'manual', '-n', ns], () => {}), 0);
  const promoted = await waitFor('promoted', async () => {
    const current = await getIsvc('manual');
    return current.status?.phase === 'Promoted' && current.spec.rollout.promoteNow === false ? current : undefined;
  });
  assert.is(promoted.status.stableVersion, 2);
  const lines: string[] = [];
  assert.is(await runCli(['status', 'manual', '-n', ns], (line) => lines.push(line)), 0);
  assert.match(lines[0]!, /phase Promoted/);
  assert.match(lines.join('\n'), /stable  v2  100%/);
  assert.is(await runCli(['frobnicate', 'manual'], () => {}), 2);
});

test.run();
