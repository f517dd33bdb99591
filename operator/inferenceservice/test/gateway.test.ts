/**
 * The routes the operator writes, carried out by a real data plane: Traefik, the Gateway API implementation the
 * local cluster runs for Gateway loopline-system/loopline-gateway, in front of real predictor processes the local
 * kubelet runs (each in its own network namespace, published through real EndpointSlices). Every request here goes
 * through the Gateway with the route's Host; the answering version is the predictor's x-model-version header.
 *
 *   a canary held at each of its steps: ≥ 2000 requests, the split a chi-square goodness of fit to the step's weight
 *   a rollback: once Traefik runs the new route, no request reaches the canary
 *   shadow mode with provider traefik: the canary gets the mirrored share (its own counters say so), clients get
 *   only stable's answers, stable has no errors
 *   gRPC (spec.predictor.protocols [rest, grpc]): a real grpc-js client calling ModelInfer over h2c through the
 *   Gateway gets both versions at each step's split, by the GRPCRoute the operator writes beside the HTTPRoute;
 *   a Gateway that refuses GRPCRoute, and an API server without its CRD, show in RouteReady
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startLocalKubelet, type LocalKubelet } from '../../../e2e/local-kubelet/kubelet.ts';
import { buildLogisticRegressionModel } from '../../../examples/trainer/src/onnx.ts';
import { chiSquareGoodnessOfFit } from '../../../server/src/drift/statistics.ts';
import {
  GatewayClient,
  GrpcGatewayClient,
  isGrpcRule,
  traefikServers,
  traefikService,
  type GatewayAnswer,
  type GrpcGatewayAnswer,
} from '../../../test/support/gateway.ts';
import { createEngine, kinds, KubeApi, type Engine } from '../../engine/index.ts';
import { inferenceServiceController, registerInferenceServices } from '../index.ts';
import { gatewayApiRouter } from '../router/index.ts';
import {
  createNamespace,
  deleteNamespace,
  installCrds,
  quietLogger,
  registerVersion,
  requireKubeconfig,
  sleep,
  uniqueName,
  waitFor,
} from './support/cluster.ts';
import { startPrometheus, type TestPrometheus } from '../../../test/support/prometheus.ts';
import { inProcessEngine } from '../../../test/support/local.ts';

const REPO_ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const kc = requireKubeconfig();
const api = new KubeApi(kc);
const ns = uniqueName('isvc-gateway');
const GATEWAY = { name: 'loopline-gateway', namespace: 'loopline-system', sectionName: 'http' };
const REQUESTS_PER_STEP = 2000;
const FEATURES = 4;

let models: string;
let prometheus: TestPrometheus;
let kubelet: LocalKubelet;
let engine: Engine;

/** A ModelVersion with a real ONNX artifact: a logistic regression whose weights differ per version. */
async function registerModel(model: string, version: number, aliases: string[]): Promise<void> {
  const bytes = buildLogisticRegressionModel({
    weights: Array.from({ length: FEATURES }, (_, i) => (i + 1) * 0.1 * version),
    bias: -0.5,
  });
  const file = join(models, `${model}-v${version}.onnx`);
  writeFileSync(file, bytes);
  await registerVersion(api, ns, model, version, aliases, { uri: pathToFileURL(file).href, bytes, features: FEATURES });
}

function inferenceService(name: string, model: string, spec: Record<string, unknown>) {
  return {
    apiVersion: 'loopline.dev/v1alpha1',
    kind: 'InferenceService',
    metadata: { name, namespace: ns },
    spec: {
      model,
      stable: { alias: 'production' },
      canary: { alias: 'candidate' },
      predictor: { resources: { cpu: '100m', memory: '256Mi' } },
      ...spec,
    },
  };
}

const getIsvc = (name: string) => api.get(kinds.InferenceService, ns, name);
const setPaused = (name: string, paused: boolean) =>
  api.mergePatch(kinds.InferenceService, ns, name, { spec: { rollout: { paused } } }, 'loopline-test');

/**
 * A paused rollout's step interval. Unpaused after a full interval, the next analysis moves the weight at once; the
 * test then has this long to pause again before the step after. 2 s was too short on a loaded machine: CI saw the
 * rollout run past 50% before the pause landed.
 */
const STEP_INTERVAL = '15s';

/** Waits until the rollout holds `weight`; on a timeout the error says where the rollout is instead. */
async function atStep(name: string, index: number, weight: number): Promise<void> {
  await waitFor(
    `step ${index} at ${weight}%`,
    async () => {
      const status = (await getIsvc(name)).status;
      if (status?.canaryWeight === weight) return true;
      const { phase, canaryWeight, analysis } = status ?? {};
      throw new Error(`the rollout is at ${JSON.stringify({ phase, canaryWeight, analysis })}`);
    },
    60_000,
  );
}

/**
 * One canary step on from `weight`: unpaused, the next analysis passes and moves the weight; then paused again.
 * Requests keep coming meanwhile, as on a live service: the analysis judges the interval before it, and a burst
 * sent before the unpause alone left it "requests 0" under load (CI: a healthy gRPC canary rolled back).
 */
async function stepOn(name: string, weight: number, client: GatewayClient): Promise<void> {
  let stepped = false;
  const trickle = (async () => {
    while (!stepped) await send(client, 16);
  })();
  try {
    await setPaused(name, false);
    await waitFor(
      `the step after ${weight}%`,
      async () => (await getIsvc(name)).status?.canaryWeight !== weight,
      30_000,
    );
    await setPaused(name, true);
  } finally {
    stepped = true;
    await trickle;
  }
}

/** `count` predictions through the gateway, 16 in flight; the answers in order of completion. */
async function send(client: GatewayClient, count: number): Promise<GatewayAnswer[]> {
  const answers: GatewayAnswer[] = [];
  let next = 0;
  const row = Array.from({ length: FEATURES }, (_, i) => i / FEATURES);
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next++ < count) answers.push(await client.post('/predict', { instances: [row] }));
    }),
  );
  return answers;
}

function byVersion(answers: GatewayAnswer[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const a of answers) {
    const key = a.status === 200 ? `v${a.version}` : `status ${a.status}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/**
 * Waits until Traefik runs the route with these weights per version, each backend with a server: the weighted
 * service it built for the route, whose children are named `...-svc-<namespace>-<version Service>-<index>`.
 * A configuration built before a pod's EndpointSlice said ready has that backend empty (Traefik answers 503).
 */
async function routeLive(
  isvc: string,
  host: string,
  want: Record<number, number>,
  timeoutMs = 30_000,
  grpc = false,
): Promise<void> {
  let seen: unknown;
  const expected = Object.entries(want)
    .filter(([, weight]) => weight > 0)
    .map(([version, weight]) => `v${version}=${weight}`)
    .sort();
  await waitFor(
    `Traefik running the ${grpc ? 'gRPC ' : ''}route for ${host} at ${expected.join(' ')}`,
    async () => {
      const service = await traefikService(host, (rule) => isGrpcRule(rule) === grpc);
      seen = service;
      const children: Array<{ name: string; weight: number }> = (service?.weighted?.services ?? []).filter(
        (s: { weight: number }) => s.weight > 0,
      );
      const live = children
        .map((s) => `v${new RegExp(`-${ns}-${isvc}-v(\\d+)-\\d+$`).exec(s.name)?.[1]}=${s.weight}`)
        .sort();
      if (JSON.stringify(live) !== JSON.stringify(expected)) return false;
      const servers = await Promise.all(children.map((s) => traefikServers(`${s.name}@${service.provider}`)));
      return servers.every((n) => n > 0);
    },
    timeoutMs,
  ).catch((error) => {
    throw new Error(`${error.message}; Traefik's service: ${JSON.stringify(seen)}`);
  });
}

/** `count` ModelInfer calls through the gateway over gRPC, 16 in flight. */
async function sendGrpc(client: GrpcGatewayClient, model: string, count: number): Promise<GrpcGatewayAnswer[]> {
  const answers: GrpcGatewayAnswer[] = [];
  let next = 0;
  const row = Array.from({ length: FEATURES }, (_, i) => i / FEATURES);
  const request = {
    model_name: model,
    inputs: [{ name: 'input', datatype: 'FP32', shape: [1, FEATURES], contents: { fp32_contents: row } }],
  };
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next++ < count) answers.push(await client.call('ModelInfer', request));
    }),
  );
  return answers;
}

function grpcByVersion(answers: GrpcGatewayAnswer[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const a of answers) {
    const key = a.code === 0 ? `v${a.version}` : `code ${a.code} ${a.details}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/**
 * REQUESTS_PER_STEP ModelInfer calls through the Gateway, every one answered by a predictor and split between the
 * versions as `weight` says (chi-square goodness of fit); then REST to the same host, which still reaches the
 * predictors' REST port through the HTTPRoute.
 */
async function assertGrpcSplit(
  grpcClient: GrpcGatewayClient,
  restClient: GatewayClient,
  model: string,
  weight: number,
): Promise<void> {
  const counts = grpcByVersion(await sendGrpc(grpcClient, model, REQUESTS_PER_STEP));
  assert.is(
    (counts.v1 ?? 0) + (counts.v2 ?? 0),
    REQUESTS_PER_STEP,
    `every gRPC call answered by a predictor: ${JSON.stringify(counts)}`,
  );
  const fit = chiSquareGoodnessOfFit([counts.v1 ?? 0, counts.v2 ?? 0], [100 - weight, weight]);
  assert.ok(
    fit.pValue > 0.001,
    `gRPC at ${weight}%: observed ${JSON.stringify(counts)}, chi-square ${fit.statistic.toFixed(2)}, p ${fit.pValue}`,
  );
  const rest = byVersion(await send(restClient, 200));
  assert.is((rest.v1 ?? 0) + (rest.v2 ?? 0), 200, `REST beside gRPC: ${JSON.stringify(rest)}`);
}

const condition = (isvc: any, type: string) =>
  (isvc?.status?.conditions ?? []).find((c: { type: string }) => c.type === type);

test.before(async () => {
  await installCrds(api);
  await createNamespace(api, ns);
  models = mkdtempSync(join(tmpdir(), 'isvc-gateway-'));
  prometheus = await startPrometheus({ scrapeIntervalMs: 500, discover: { namespace: ns } });
  kubelet = await startLocalKubelet({
    kubeconfig: kc,
    repoRoot: REPO_ROOT,
    namespace: ns,
    logger: quietLogger(),
    restartBackoffMs: 500,
  });
  engine = createEngine(inProcessEngine(kc, ns));
  await registerInferenceServices(engine, {
    prometheusUrl: prometheus.url,
    scrapeIntervalMs: prometheus.scrapeIntervalMs,
  });
  await engine.start();
});

test.after(async () => {
  await engine?.stop();
  await deleteNamespace(api, ns);
  await waitFor('predictor pods gone', async () => (await api.list(kinds.Pod, ns)).items.length === 0, 30_000).catch(
    () => undefined,
  );
  await kubelet?.stop();
  await prometheus?.stop();
  rmSync(models, { recursive: true, force: true });
});

test('through Traefik the split at every canary step matches its weight (chi-square, 2000 requests a step), and after a rollback no request reaches the canary', async () => {
  const host = `split.${ns}.example.com`;
  const steps = [10, 25, 50, 75];
  await registerModel('split-model', 1, ['production']);
  await registerModel('split-model', 2, ['candidate']);
  // Paused from the start: the canary begins at the first step and holds there until the test moves it on.
  await api.create(
    kinds.InferenceService,
    inferenceService('split', 'split-model', {
      rollout: { steps: [...steps, 100], interval: STEP_INTERVAL, paused: true, analysis: { maxErrorRate: 0.05 } },
      traffic: { provider: 'gatewayAPI', parentRefs: [GATEWAY], hostnames: [host] },
    }) as never,
    'loopline-test',
  );
  const client = new GatewayClient(host);
  try {
    const isvc = await waitFor(
      'status.url from the Gateway',
      async () => {
        const current = await getIsvc('split');
        return current.status?.url === process.env.GATEWAY_URL ? current : undefined;
      },
      60_000,
    );
    assert.is(isvc.status.url, process.env.GATEWAY_URL);

    for (const [index, weight] of steps.entries()) {
      await atStep('split', index, weight);
      await routeLive('split', host, { 1: 100 - weight, 2: weight }, 60_000);
      const answers = await send(client, REQUESTS_PER_STEP);
      const counts = byVersion(answers);
      assert.is(
        (counts.v1 ?? 0) + (counts.v2 ?? 0),
        REQUESTS_PER_STEP,
        `every request answered by a predictor: ${JSON.stringify(counts)}`,
      );
      const fit = chiSquareGoodnessOfFit([counts.v1 ?? 0, counts.v2 ?? 0], [100 - weight, weight]);
      assert.ok(
        fit.pValue > 0.001,
        `step ${weight}%: observed ${JSON.stringify(counts)}, chi-square ${fit.statistic.toFixed(2)}, p ${fit.pValue}`,
      );
      if (index + 1 < steps.length) {
        await stepOn('split', weight, client);
      }
    }

    await api.mergePatch(kinds.InferenceService, ns, 'split', { spec: { rollout: { abort: true } } }, 'loopline-test');
    await waitFor('rolled back', async () => (await getIsvc('split')).status?.phase === 'RolledBack', 30_000);
    await routeLive('split', host, { 1: 100 });
    const after = byVersion(await send(client, REQUESTS_PER_STEP));
    assert.equal(after, { v1: REQUESTS_PER_STEP }, 'after the rollback every request is answered by stable');
  } finally {
    client.close();
  }
});

test("shadow mode with provider traefik: the canary sees the mirrored share in its own counters, clients get only stable's answers, stable has no errors", async () => {
  const host = `shadow.${ns}.example.com`;
  await registerModel('shadow-model', 1, ['production']);
  await registerModel('shadow-model', 2, ['candidate']);
  await api.create(
    kinds.InferenceService,
    inferenceService('shadow', 'shadow-model', {
      shadow: { enabled: true, percent: 50 },
      rollout: { steps: [100], interval: '1h' },
      traffic: { provider: 'traefik', hostnames: [host] },
    }) as never,
    'loopline-test',
  );
  await waitFor(
    'both predictors ready',
    async () => {
      const conditions = (await getIsvc('shadow')).status?.conditions ?? [];
      return ['Ready', 'CanaryReady'].every((type) =>
        conditions.some((c: { type: string; status: string }) => c.type === type && c.status === 'True'),
      );
    },
    60_000,
  );
  await waitFor(
    'Traefik mirroring to the canary, both backends with a server',
    async () => {
      const service = await traefikService(host);
      const mirroring = service?.mirroring;
      if (mirroring?.mirrors?.[0]?.percent !== 50) return false;
      const servers = await Promise.all(
        [mirroring.service, mirroring.mirrors[0].name].map((name: string) =>
          traefikServers(`${name}@${service.provider}`),
        ),
      );
      return servers.every((n) => n > 0);
    },
    30_000,
  );

  const counters = async (version: number) => {
    const pod = (
      await api.list(kinds.Pod, ns, {
        labelSelector: `loopline.dev/inferenceservice=shadow,loopline.dev/model-version=${version}`,
      })
    ).items[0]!;
    const text = await (await fetch(`http://${pod.status.podIP}:8080/metrics`)).text();
    const value = (outcome: string) =>
      Number(
        new RegExp(`^prediction_requests_total\\{[^}]*outcome="${outcome}"[^}]*\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0,
      );
    return { success: value('success'), error: value('error') + value('unavailable') };
  };
  const before = { stable: await counters(1), canary: await counters(2) };
  const client = new GatewayClient(host);
  const answers = await send(client, REQUESTS_PER_STEP).finally(() => client.close());
  assert.equal(byVersion(answers), { v1: REQUESTS_PER_STEP }, "clients only ever get stable's answers");
  // Mirrored requests go out after the client's answer: wait until the canary's counters stop moving.
  let after = { stable: await counters(1), canary: await counters(2) };
  for (let settled = 0; settled < 4; ) {
    await sleep(250);
    const now = { stable: await counters(1), canary: await counters(2) };
    settled = JSON.stringify(now) === JSON.stringify(after) ? settled + 1 : 0;
    after = now;
  }
  assert.is(after.stable.success - before.stable.success, REQUESTS_PER_STEP);
  assert.is(after.stable.error, before.stable.error, 'stable answered without errors');
  // Traefik picks exactly every second request to mirror, and skips the copy of one whose request context is
  // already done when stable's answer returns (a few in a hundred on this loaded machine: 864 to 1000 of 1000).
  const mirrored = after.canary.success - before.canary.success;
  assert.ok(
    mirrored <= REQUESTS_PER_STEP / 2 && mirrored >= 0.8 * (REQUESTS_PER_STEP / 2),
    `the canary got ${mirrored} of the ${REQUESTS_PER_STEP / 2} requests mirrored at 50%`,
  );
  assert.is(after.canary.error, before.canary.error, 'the canary answered its mirrored requests without errors');
  const route = await api.get(kinds.TraefikService, ns, 'shadow');
  assert.equal(route.spec.mirroring.mirrors, [{ name: 'shadow-v2', port: 8080, percent: 50 }]);
});

test('why provider traefik exists: Traefik answers 500 for an HTTPRoute whose rule mirrors (shadow mode with gatewayAPI), while accepting the route', async () => {
  const host = `mirror.${ns}.example.com`;
  await registerModel('mirror-model', 1, ['production']);
  await registerModel('mirror-model', 2, ['candidate']);
  await api.create(
    kinds.InferenceService,
    inferenceService('mirror', 'mirror-model', {
      shadow: { enabled: true, percent: 50 },
      rollout: { steps: [100], interval: '1h' },
      traffic: { provider: 'gatewayAPI', parentRefs: [GATEWAY], hostnames: [host] },
    }) as never,
    'loopline-test',
  );
  const route = await waitFor(
    'the HTTPRoute with a RequestMirror filter, accepted by the Gateway',
    async () => {
      const current = await api.get(kinds.HTTPRoute, ns, 'mirror').catch(() => undefined);
      if (!current) return undefined;
      const accepted = current.status?.parents?.some((p: any) =>
        p.conditions.some(
          (c: any) =>
            c.type === 'Accepted' && c.status === 'True' && c.observedGeneration === current.metadata.generation,
        ),
      );
      return accepted && current.spec.rules[0].filters?.[0]?.type === 'RequestMirror' ? current : undefined;
    },
    60_000,
  );
  assert.is(route.spec.rules[0].filters[0].requestMirror.backendRef.name, 'mirror-v2');
  const client = new GatewayClient(host);
  const answer = await waitFor('Traefik answering for the route', async () => {
    const a = await client.post('/predict', { instances: [[0, 0, 0, 0]] });
    return a.status === 404 ? undefined : a;
  }).finally(() => client.close());
  assert.is(answer.status, 500);
  assert.is(answer.version, undefined, 'no predictor answered');
});

test("gRPC through Traefik: the GRPCRoute carries each canary step's split to both versions' gRPC port (chi-square, 2000 ModelInfer calls a step), REST on the same host stays on the HTTPRoute, and without grpc in protocols the GRPCRoute is deleted", async () => {
  const host = `grpc.${ns}.example.com`;
  const steps = [20, 50];
  await registerModel('grpc-model', 1, ['production']);
  await registerModel('grpc-model', 2, ['candidate']);
  await api.create(
    kinds.InferenceService,
    inferenceService('grpc', 'grpc-model', {
      predictor: { resources: { cpu: '100m', memory: '256Mi' }, protocols: ['rest', 'grpc'] },
      rollout: { steps: [...steps, 100], interval: STEP_INTERVAL, paused: true, analysis: { maxErrorRate: 0.05 } },
      traffic: { provider: 'gatewayAPI', parentRefs: [GATEWAY], hostnames: [host] },
    }) as never,
    'loopline-test',
  );
  const uid = (await getIsvc('grpc')).metadata.uid;
  const grpcClient = new GrpcGatewayClient(host);
  const restClient = new GatewayClient(host);
  try {
    for (const [index, weight] of steps.entries()) {
      await atStep('grpc', index, weight);
      const route = await waitFor(
        `the GRPCRoute at ${weight}%, accepted by the Gateway`,
        async () => {
          const current = await api.get(kinds.GRPCRoute, ns, 'grpc').catch(() => undefined);
          const accepted = current?.status?.parents?.some((p: any) =>
            p.conditions.some(
              (c: any) =>
                c.type === 'Accepted' && c.status === 'True' && c.observedGeneration === current.metadata.generation,
            ),
          );
          return current && accepted && gatewayApiRouter.weights(current).canary === weight ? current : undefined;
        },
        60_000,
      );
      assert.equal(route.metadata.ownerReferences, [
        {
          apiVersion: 'loopline.dev/v1alpha1',
          kind: 'InferenceService',
          name: 'grpc',
          uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
      assert.equal(
        gatewayApiRouter.weights(route),
        gatewayApiRouter.weights(await api.get(kinds.HTTPRoute, ns, 'grpc')),
        'the same weights as the HTTPRoute',
      );
      assert.equal(
        route.spec.rules[0].backendRefs.map((ref: any) => [ref.name, ref.port]),
        [
          ['grpc-v1', 8081],
          ['grpc-v2', 8081],
        ],
      );

      await routeLive('grpc', host, { 1: 100 - weight, 2: weight }, 60_000, true);
      await assertGrpcSplit(grpcClient, restClient, 'grpc-model', weight);
      if (index + 1 < steps.length) {
        await stepOn('grpc', weight, restClient);
      }
    }
    // The client docs/predictor.md shows, run as it stands.
    const doc = readFileSync(join(REPO_ROOT, 'docs/predictor.md'), 'utf8');
    const snippet = /### gRPC through the Gateway[\s\S]*?```js\n([\s\S]*?)```/.exec(doc)?.[1];
    assert.ok(snippet, 'docs/predictor.md has the Node client under "gRPC through the Gateway"');
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', snippet], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, GATEWAY: new URL(process.env.GATEWAY_URL!).host, HOST: host, MODEL: 'grpc-model' },
    });
    assert.is(run.status, 0, `the docs' client failed: ${run.stderr}`);
    assert.ok(['1', '2'].includes(JSON.parse(run.stdout).version), `answered by a served version: ${run.stdout}`);

    const ready = condition(await getIsvc('grpc'), 'RouteReady');
    assert.is(ready?.status, 'True');
    assert.ok(ready.message.includes('HTTPRoute grpc, GRPCRoute grpc'), ready.message);

    await api.mergePatch(
      kinds.InferenceService,
      ns,
      'grpc',
      { spec: { predictor: { protocols: ['rest'] } } },
      'loopline-test',
    );
    await waitFor(
      'the GRPCRoute deleted',
      async () =>
        (await api
          .get(kinds.GRPCRoute, ns, 'grpc')
          .catch((error: any) => (error?.code === 404 || error?.statusCode === 404 ? 'gone' : undefined))) === 'gone',
      30_000,
    );
    const services = await Promise.all(['grpc', 'grpc-v1', 'grpc-v2'].map((name) => api.get(kinds.Service, ns, name)));
    assert.equal(
      services.map((service: any) => service.spec.ports.map((port: any) => port.name)),
      [['http'], ['http'], ['http']],
    );
    assert.ok(await api.get(kinds.HTTPRoute, ns, 'grpc'), 'the HTTPRoute stays');
  } finally {
    grpcClient.close();
    restClient.close();
  }
});

test("gRPC through Traefik with provider traefik: the IngressRoute's gRPC rule carries the split to both versions over h2c (chi-square, 2000 ModelInfer calls), REST beside it", async () => {
  const host = `grpc-traefik.${ns}.example.com`;
  const weight = 30;
  await registerModel('grpc-traefik-model', 1, ['production']);
  await registerModel('grpc-traefik-model', 2, ['candidate']);
  await api.create(
    kinds.InferenceService,
    inferenceService('grpc-traefik', 'grpc-traefik-model', {
      predictor: { resources: { cpu: '100m', memory: '256Mi' }, protocols: ['rest', 'grpc'] },
      rollout: { steps: [weight, 100], interval: '1h' },
      traffic: { provider: 'traefik', hostnames: [host] },
    }) as never,
    'loopline-test',
  );
  await waitFor(
    `the canary at ${weight}%`,
    async () => (await getIsvc('grpc-traefik')).status?.canaryWeight === weight,
    60_000,
  );
  let seen: unknown;
  await waitFor(
    `Traefik running the gRPC rule for ${host} at ${100 - weight}/${weight}, both backends with a server`,
    async () => {
      const service = await traefikService(host, isGrpcRule);
      seen = service;
      const children: Array<{ name: string; weight: number }> = service?.weighted?.services ?? [];
      if (
        JSON.stringify(children.map((c) => c.weight).sort((a, b) => a - b)) !== JSON.stringify([weight, 100 - weight])
      )
        return false;
      const servers = await Promise.all(
        children.map((c) => traefikServers(c.name.includes('@') ? c.name : `${c.name}@${service.provider}`)),
      );
      return servers.every((n) => n > 0);
    },
    60_000,
  ).catch((error) => {
    throw new Error(`${error.message}; Traefik's service: ${JSON.stringify(seen)}`);
  });
  const grpcClient = new GrpcGatewayClient(host);
  const restClient = new GatewayClient(host);
  try {
    await assertGrpcSplit(grpcClient, restClient, 'grpc-traefik-model', weight);
  } finally {
    grpcClient.close();
    restClient.close();
  }
});

test("a Gateway whose listener does not allow GRPCRoute: RouteReady False, RouteNotAccepted, naming the route, the Gateway's reason and the fix", async () => {
  const host = `refused.${ns}.example.com`;
  const port = Number(new URL(process.env.GATEWAY_URL!).port);
  await api.create(
    kinds.Gateway,
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'http-only', namespace: ns },
      spec: {
        gatewayClassName: 'traefik',
        listeners: [
          {
            name: 'http',
            protocol: 'HTTP',
            port,
            allowedRoutes: { namespaces: { from: 'Same' }, kinds: [{ kind: 'HTTPRoute' }] },
          },
        ],
      },
    } as never,
    'loopline-test',
  );
  await registerModel('refused-model', 1, ['production']);
  await api.create(
    kinds.InferenceService,
    inferenceService('refused', 'refused-model', {
      canary: undefined,
      predictor: { replicas: 0, protocols: ['rest', 'grpc'] },
      traffic: { provider: 'gatewayAPI', parentRefs: [{ name: 'http-only', namespace: ns }], hostnames: [host] },
    }) as never,
    'loopline-test',
  );
  const ready = await waitFor(
    'RouteReady False',
    async () => {
      const found = condition(await getIsvc('refused'), 'RouteReady');
      return found?.status === 'False' ? found : undefined;
    },
    60_000,
  );
  assert.is(ready.reason, 'RouteNotAccepted');
  for (const part of [
    'GRPCRoute refused:',
    `Gateway ${ns}/http-only`,
    'NotAllowedByListeners',
    'allowedRoutes.kinds',
    'spec.predictor.protocols',
  ]) {
    assert.ok(ready.message.includes(part), `"${part}" in: ${ready.message}`);
  }
});

test('an API server without the GRPCRoute CRD: REST is routed, the gRPC route is withheld and RouteReady says which CRD to install', async () => {
  // A second namespace with its own controller, told that only HTTPRoute is served: the shared cluster keeps its CRDs.
  const other = uniqueName('isvc-no-grpcroute');
  await createNamespace(api, other);
  const scoped = createEngine(inProcessEngine(kc, other));
  scoped.register(
    inferenceServiceController({ prometheusUrl: prometheus.url, routeKinds: [kinds.HTTPRoute], watchGateways: true }),
  );
  await scoped.start();
  try {
    await registerVersion(api, other, 'plain', 1, ['production']);
    await api.create(
      kinds.InferenceService,
      {
        apiVersion: 'loopline.dev/v1alpha1',
        kind: 'InferenceService',
        metadata: { name: 'plain', namespace: other },
        spec: {
          model: 'plain',
          stable: { alias: 'production' },
          predictor: { replicas: 0, protocols: ['rest', 'grpc'] },
          traffic: { provider: 'gatewayAPI', parentRefs: [GATEWAY] },
        },
      } as never,
      'loopline-test',
    );
    const ready = await waitFor(
      'RouteReady False',
      async () => {
        const found = condition(await api.get(kinds.InferenceService, other, 'plain'), 'RouteReady');
        return found?.status === 'False' ? found : undefined;
      },
      30_000,
    );
    assert.is(ready.reason, 'RouteKindNotInstalled');
    for (const part of [
      'GRPCRoute (gateway.networking.k8s.io/v1) is not served',
      'REST is',
      'GRPCRoute CRD',
      'spec.predictor.protocols',
    ]) {
      assert.ok(ready.message.includes(part), `"${part}" in: ${ready.message}`);
    }
    assert.ok(await api.get(kinds.HTTPRoute, other, 'plain'), 'the HTTPRoute is written');
    const grpcRoute = await api.get(kinds.GRPCRoute, other, 'plain').catch(() => undefined);
    assert.is(grpcRoute, undefined, 'no GRPCRoute');
  } finally {
    await scoped.stop();
    await deleteNamespace(api, other);
  }
});

test.run();
