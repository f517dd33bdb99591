/**
 * The closed loop end to end on the local cluster, with every part real: the operator (TrainingJob, ModelVersion
 * and InferenceService controllers, wired as operator/main.ts wires them), the example trainer and the predictor
 * server run as processes by the local kubelet in pod network namespaces, Prometheus finding those pods through
 * Kubernetes discovery and scraping them, nats-server with JetStream, and Traefik as the Gateway every request
 * goes through (with the route's Host).
 *
 *   train v1 → Production → served → shifted inputs → the predictor's drift event → status.drift → one retrain
 *   (duplicates replayed) → v2 registered as candidate → canary 50 → 100 on real traffic → promoted, v1 Archived
 *
 * The failing canary is a ModelVersion whose artifact digest does not match its file: the predictor refuses to
 * load it and stays unready (its predictions answer 503). The route sends it nothing, its step is never
 * analysed, and it is rolled back at spec.rollout.progressDeadline.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { generateCreditRisk } from '../../../examples/trainer/src/dataset.ts';
import { kinds, KubeApi, type KubeObject } from '../../engine/index.ts';
import { STREAM_NAME } from '../../events/stream.ts';
import { gatewayApiRouter } from '../router/index.ts';
import { createNamespace, installCrds, requireKubeconfig, sleep, uniqueName, waitFor } from './support/cluster.ts';
import { eventNotes } from '../../../test/support/events.ts';
import { startLiveOperator, type LiveOperator } from './support/live-operator.ts';
import { requireNatsUrl } from '../../../test/support/nats.ts';
import { startPrometheus, type TestPrometheus } from '../../../test/support/prometheus.ts';
import { GatewayClient } from '../../../test/support/gateway.ts';

const kc = requireKubeconfig();
const api = new KubeApi(kc);
const ns = uniqueName('isvc-loop');
const MODEL = 'credit-risk';
const ISVC = 'credit';
const TRAINER = 'loopline/example-trainer:0.1.0';
requireNatsUrl();

let outputDir: string;
let prometheus: TestPrometheus;
let live: LiveOperator;
const HOST = `${ISVC}.${ns}.example.com`;
const gateway = new GatewayClient(HOST);
const predict = (rows: number[][]) => gateway.post('/predict', { instances: rows });
const lifecycle: Array<{ type: string; data: any }> = [];
const driftEvents: Array<{ subject: string; raw: Uint8Array; event: any }> = [];

/** Live traffic: a request every 100 ms through the gateway; rows from the training population or a shifted one. */
const traffic = { shift: 0, seed: 1000, running: true, answers: [] as Array<{ status: number; version?: string }> };
async function trafficLoop(): Promise<void> {
  while (traffic.running) {
    const rows = generateCreditRisk({ rows: 2, seed: traffic.seed++, shift: traffic.shift }).x;
    const answer = await predict(rows);
    traffic.answers.push({ status: answer.status, version: answer.version });
    await sleep(100);
  }
}

const getIsvc = () => api.get(kinds.InferenceService, ns, ISVC);
const modelVersion = (version: number) =>
  api.get(kinds.ModelVersion, ns, `${MODEL}-v${version}`).catch(() => undefined);
const retrainJobs = async () =>
  (await api.list(kinds.TrainingJob, ns, { labelSelector: `loopline.dev/inferenceservice=${ISVC}` })).items;

function trainingJob(name: string) {
  return {
    apiVersion: 'loopline.dev/v1alpha1',
    kind: 'TrainingJob',
    metadata: { name, namespace: ns },
    spec: {
      model: MODEL,
      image: TRAINER,
      hyperparameters: { epochs: '40', rows: '800' },
      output: { uri: pathToFileURL(outputDir).href },
      backoffLimit: 0,
      registration: {
        gates: [{ metric: 'auc', operator: '>=', value: 0.6 }],
        stage: 'Production',
        aliases: ['production'],
      },
    },
  };
}

const inferenceService = () => ({
  apiVersion: 'loopline.dev/v1alpha1',
  kind: 'InferenceService',
  metadata: { name: ISVC, namespace: ns },
  spec: {
    model: MODEL,
    stable: { alias: 'production' },
    canary: { alias: 'candidate' },
    // No image: the operator's configured predictor image (loopline/predictor), which the local kubelet runs.
    predictor: { resources: { cpu: '100m', memory: '256Mi' } },
    rollout: {
      steps: [50, 100],
      interval: '4s',
      progressDeadline: '30s',
      analysis: { maxErrorRate: 0.05, maxLatencyP95Ms: 1000, minRequests: 5, failureLimit: 2 },
    },
    traffic: {
      provider: 'gatewayAPI',
      parentRefs: [{ name: 'loopline-gateway', namespace: 'loopline-system', sectionName: 'http' }],
      hostnames: [HOST],
    },
    // Kolmogorov-Smirnov and chi-square at p < 0.05; three of five features must drift (a false alarm on
    // unshifted traffic then needs three chance rejections in one window).
    drift: {
      enabled: true,
      window: { size: 200, seconds: 600 },
      methods: { numeric: 'ks', categorical: 'chiSquare' },
      threshold: 0.6,
    },
    retrain: {
      onDrift: true,
      cooldown: '1h',
      template: {
        spec: {
          image: TRAINER,
          // Retrain on the population the service now sees.
          hyperparameters: { epochs: '40', rows: '800', shift: '1.5' },
          output: { uri: pathToFileURL(outputDir).href },
          backoffLimit: 0,
          registration: { gates: [{ metric: 'auc', operator: '>=', value: 0.6 }], aliases: ['candidate'] },
        },
      },
    },
  },
});

const eventsNote = async (reason: string) => (await eventNotes(api, ns, ISVC, reason))[0];

test.before(async () => {
  await installCrds(api);
  await createNamespace(api, ns);
  outputDir = mkdtempSync(join(tmpdir(), 'isvc-loop-'));
  prometheus = await startPrometheus({ scrapeIntervalMs: 500, discover: { namespace: ns } });
  live = await startLiveOperator({
    kubeconfig: kc,
    api,
    namespace: ns,
    env: { PROMETHEUS_URL: prometheus.url, PROMETHEUS_SCRAPE_INTERVAL: '500ms' },
    operator: { lifecycle: { retryBaseMs: 300 } },
  });
  const events = live.nc.subscribe(`loopline.events.${ns}.inferenceservice.>`);
  void (async () => {
    for await (const message of events) {
      const event = message.json<{ type: string; data: unknown }>();
      lifecycle.push({ type: event.type, data: event.data });
    }
  })();
  const drift = live.nc.subscribe(`loopline.drift.${ns}.>`);
  void (async () => {
    for await (const message of drift)
      driftEvents.push({ subject: message.subject, raw: message.data, event: message.json() });
  })();
});

test.after(async () => {
  traffic.running = false;
  await live?.stop();
  gateway.close();
  await prometheus?.stop();
  rmSync(outputDir, { recursive: true, force: true });
});

test('a trained version promoted to production is served by a real predictor process through the Gateway', async () => {
  await api.create(kinds.TrainingJob, trainingJob('credit-v1') as never, 'loopline-test');
  const v1 = await waitFor(
    'v1 registered with the production alias',
    async () => {
      const mv = await modelVersion(1);
      return mv?.status?.aliases?.includes('production') ? mv : undefined;
    },
    60_000,
  );
  assert.ok(v1.spec.referenceProfile?.digest, 'the trainer wrote a drift reference profile');
  await api.create(kinds.InferenceService, inferenceService() as never, 'loopline-test');
  const ready = await waitFor(
    'InferenceService Ready',
    async () => {
      const current = await getIsvc();
      return current.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')
        ? current
        : undefined;
    },
    60_000,
  );
  assert.is(ready.status.url, process.env.GATEWAY_URL, "status.url is the Gateway's address");
  const deployment = await api.get(kinds.Deployment, ns, `${ISVC}-v1`);
  assert.match(deployment.spec.template.spec.containers[0].image, /^loopline\/predictor:/);
  let last: unknown;
  const answer = await waitFor('a prediction through the gateway', async () => {
    const a = await predict(generateCreditRisk({ rows: 3, seed: 7, shift: 0 }).x);
    last = a;
    return a.status === 200 ? a : undefined;
  }).catch((error) => {
    throw new Error(`${error.message}; last answer ${JSON.stringify(last)}`);
  });
  assert.is(answer.version, '1');
  assert.is(answer.body.predictions.length, 3);
  // Prometheus found the predictor pod through Kubernetes discovery, from the annotations the operator set.
  const pod = (await api.list(kinds.Pod, ns, { labelSelector: `loopline.dev/inferenceservice=${ISVC}` })).items.find(
    (p) => p.status?.phase === 'Running',
  )!;
  const target = await waitFor(
    'the predictor pod scraped',
    async () => {
      const body = (await (await fetch(`${prometheus.url}/api/v1/targets?state=active`)).json()) as {
        data: {
          activeTargets: Array<{
            scrapeUrl: string;
            health: string;
            labels: Record<string, string>;
            discoveredLabels: Record<string, string>;
          }>;
        };
      };
      return body.data.activeTargets.find(
        (t) => t.discoveredLabels.__meta_kubernetes_pod_name === pod.metadata.name && t.health === 'up',
      );
    },
    20_000,
  );
  assert.is(target.scrapeUrl, `http://${pod.status.podIP}:8080/metrics`);
  assert.equal([target.labels.namespace, target.labels.inference_service], [ns, ISVC]);
  assert.ok(
    answer.body.predictions.every((p: any) => JSON.stringify(p).match(/\d/)),
    JSON.stringify(answer.body),
  );
  void trafficLoop();
});

test('drift in live traffic: event → status.drift → exactly one retrain TrainingJob, also when the event is delivered twice more', async () => {
  traffic.shift = 1.5;
  // A window's worth of shifted rows at once, as a batch client would send them.
  const burst = await predict(generateCreditRisk({ rows: 200, seed: 99, shift: 1.5 }).x);
  assert.is(burst.status, 200);
  const drifted = await waitFor(
    'a drifted window event from the predictor',
    () => driftEvents.find((e) => e.event.data.drifted === true),
    20_000,
  );
  assert.is(drifted.subject, `loopline.drift.${ns}.${ISVC}`);
  assert.ok(drifted.event.data.driftedFeatures.length >= 3, JSON.stringify(drifted.event.data.driftedFeatures));
  const isvc = await waitFor(
    'status.drift and lastRetrain from that event',
    async () => {
      const current = await getIsvc();
      return current.status?.lastRetrain?.eventId === drifted.event.id ? current : undefined;
    },
    20_000,
  );
  assert.is(isvc.status.lastRetrain.eventId, drifted.event.id);
  assert.ok(isvc.status.conditions.some((c: any) => c.type === 'Drifted'));
  const [job] = await waitFor('the retrain TrainingJob', async () =>
    (await retrainJobs()).length > 0 ? retrainJobs() : undefined,
  );
  assert.is(job!.metadata.name, isvc.status.lastRetrain.trainingJob);
  assert.match(
    job!.metadata.annotations?.['loopline.dev/trigger'] ?? '',
    new RegExp(`drift event ${drifted.event.id}`),
  );

  // The same event twice more, past JetStream's duplicate window (no Nats-Msg-Id), as a replay would deliver it.
  const js = jetstream(live.nc);
  await js.publish(drifted.subject, drifted.raw);
  await js.publish(drifted.subject, drifted.raw);
  const jsm = await jetstreamManager(live.nc);
  await waitFor('the operator consumed every drift event', async () => {
    const info = await jsm.consumers.info(STREAM_NAME, `loopline-operator-drift-${ns}`);
    return (
      info.num_pending === 0 && info.num_ack_pending === 0 && info.delivered.stream_seq >= info.ack_floor.stream_seq
    );
  });
  await sleep(1000);
  assert.is((await retrainJobs()).length, 1);
  assert.ok(
    lifecycle.some(
      (e) => e.type === 'dev.loopline.inferenceservice.retrainstarted' && e.data.eventId === drifted.event.id,
    ),
  );
});

test('the retrained version becomes the candidate, its canary steps 50 → 100 on real traffic, and is promoted; v1 is archived', async () => {
  const v2 = await waitFor(
    'v2 registered as candidate',
    async () => {
      const mv = await modelVersion(2);
      return mv?.status?.aliases?.includes('candidate') ? mv : undefined;
    },
    60_000,
  );
  assert.is(v2.spec.lineage.trainingJob, (await getIsvc()).status.lastRetrain.trainingJob);
  const weights: number[] = [];
  const statusWeights: number[] = [];
  await waitFor(
    'canary promoted',
    async () => {
      const route = await api.get(kinds.HTTPRoute, ns, ISVC).catch(() => undefined);
      if (route) {
        const weight = gatewayApiRouter.weights(route).canary;
        if (weights[weights.length - 1] !== weight) weights.push(weight);
      }
      const current = await getIsvc();
      if (
        current.status?.phase === 'Progressing' &&
        statusWeights[statusWeights.length - 1] !== current.status.canaryWeight
      )
        statusWeights.push(current.status.canaryWeight);
      return current.status?.phase === 'Promoted' ? current : undefined;
    },
    90_000,
  );
  // The canary got traffic only once it had a ready pod, and then at each step's weight.
  assert.equal(
    weights.filter((w) => w > 0),
    [50, 100],
  );
  assert.equal(statusWeights, [50, 100]);
  const isvc = await getIsvc();
  assert.is(isvc.status.stableVersion, 2);
  assert.match(isvc.status.analysis.message, /^Passed: requests \d+, error rate 0/);
  assert.ok(isvc.status.analysis.requests >= 5);
  await waitFor(
    'the registry moved production to v2 and archived v1',
    async () => {
      const [one, two] = [await modelVersion(1), await modelVersion(2)];
      return (
        one?.status?.stage === 'Archived' &&
        two?.status?.aliases?.includes('production') &&
        two.status.stage === 'Production'
      );
    },
    20_000,
  );
  // Live traffic is answered by v2 now; the canary served real requests while it ran.
  const answer = await predict(generateCreditRisk({ rows: 1, seed: 5, shift: 1.5 }).x);
  assert.is(answer.version, '2');
  assert.ok(traffic.answers.some((a) => a.version === '2'));
  // Lifecycle events go out after the status write that the wait above saw, so they may still be in flight.
  for (const type of ['canarystarted', 'stepadvanced', 'promoted']) {
    await waitFor(
      `lifecycle event ${type}`,
      () => lifecycle.some((e) => e.type === `dev.loopline.inferenceservice.${type}`),
      10_000,
    );
  }
  assert.is((await retrainJobs()).length, 1);
});

test('a canary whose predictor refuses its artifact gets no traffic and is rolled back at its progress deadline', async () => {
  const v2 = (await modelVersion(2))!;
  // Same file, wrong digest: the server verifies the artifact and will not serve it.
  await api.create(
    kinds.ModelVersion,
    {
      apiVersion: 'loopline.dev/v1alpha1',
      kind: 'ModelVersion',
      metadata: { name: `${MODEL}-v3`, namespace: ns },
      spec: {
        ...v2.spec,
        version: 3,
        artifact: { ...v2.spec.artifact, digest: `sha256:${'0'.repeat(64)}` },
        stage: 'None',
        aliases: ['candidate'],
        lineage: { trainingJob: 'hand-made' },
      },
    } as never,
    'loopline-test',
  );
  const started = Date.now();
  await waitFor('canary v3 progressing', async () => (await getIsvc()).status?.canaryVersion === 3);
  const pod = await waitFor(
    'the v3 predictor process running',
    async () => {
      const list = (await api.list(kinds.Pod, ns, { labelSelector: 'loopline.dev/model-version=3' })).items;
      return list.find((p: KubeObject) => p.status?.podIP && p.status.containerStatuses?.[0]?.state?.running);
    },
    30_000,
  );
  // The predictor really runs and really fails: unready, and its predictions answer 503 naming the digest.
  // While it still loads it answers 503 "not ready (loading)"; once the digest check failed, the answer says so.
  let last: { status: number; body: any } | undefined;
  const direct = await waitFor(
    'the v3 predictor answering with its failure',
    async () => {
      const response = await fetch(`http://${pod.status.podIP}:8080/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ instances: [[50, 0.3, 40, 0.4, 1]] }),
      }).catch(() => undefined);
      if (!response) return undefined;
      last = { status: response.status, body: await response.json() };
      return last.status === 200 || !/loading/i.test(String(last.body.error)) ? last : undefined;
    },
    30_000,
  ).catch((err) => {
    throw new Error(`${err.message}; last answer ${JSON.stringify(last)}`);
  });
  assert.is(direct.status, 503);
  assert.match(direct.body.error, /digest/i);
  const during = await getIsvc();
  assert.is(during.status.phase, 'Progressing');
  assert.is(during.status.canaryWeight, 50);
  assert.ok(
    during.status.conditions.some((c: any) => c.type === 'CanaryReady' && c.status === 'False'),
    JSON.stringify(during.status.conditions),
  );
  assert.equal(gatewayApiRouter.weights(await api.get(kinds.HTTPRoute, ns, ISVC)), { stable: 100, canary: 0 });

  const rolledBack = await waitFor(
    'v3 rolled back',
    async () => {
      const current = await getIsvc();
      return current.status?.phase === 'RolledBack' ? current : undefined;
    },
    60_000,
  );
  assert.ok(Date.now() - started >= 25_000, 'not before the progress deadline');
  assert.is(rolledBack.status.stableVersion, 2);
  assert.is(rolledBack.status.canaryWeight, 0);
  assert.match(rolledBack.status.analysis.message, /canary v3 had no ready pod for \d+s \(progressDeadline 30s\)/);
  assert.match((await waitFor('a RolledBack Event', () => eventsNote('RolledBack'))) ?? '', /no ready pod/);
  await waitFor('NATS rolledback event', () =>
    lifecycle.find((e) => e.type === 'dev.loopline.inferenceservice.rolledback' && e.data.version === 3),
  );
  await waitFor('v3 Deployment pruned', async () =>
    api.get(kinds.Deployment, ns, `${ISVC}-v3`).then(
      () => false,
      () => true,
    ),
  );
  // No request of the live traffic failed at the gateway while v3 was refused.
  const since = traffic.answers.length;
  await sleep(1000);
  assert.ok(
    traffic.answers.slice(since - 20).every((a) => a.status === 200 && a.version === '2'),
    JSON.stringify(traffic.answers.slice(-20)),
  );
});

test.run();
