/**
 * The whole user journey on the local cluster, each step asserted on what a user sees (kubectl output,
 * HTTP responses, NATS events): helm install → train → register → promote → serve → predict → train
 * again → canary → analysis → promotion → drift → retraining → canary → promotion.
 *
 * Real components throughout: the kube-apiserver of the local cluster, the chart installed by helm, the
 * operator as a local process authenticated with the chart's ServiceAccount token (so the chart's RBAC is
 * all it has), the local-kubelet running the trainer and the predictors as processes, Prometheus (built from
 * its Go module) finding them through Kubernetes discovery and scraping them, NATS with JetStream. Needs KUBECONFIG and NATS_URL (`npm test -- journey` sets both).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getJson, kubectl, run, waitFor } from '../journey/commands.ts';
import { EventLog } from '../journey/events.ts';
import { FIRST_JOB, ISVC, Journey, SECOND_JOB, type Reporter } from '../journey/journey.ts';
import {
  freePort,
  installChart,
  gateway,
  provideStorageSecret,
  startKubelet,
  startOperator,
  startPrometheus,
  stopPrometheus,
  type PlatformOptions,
  type RunningOperator,
} from '../journey/platform.ts';
import { stopByPidFile } from '../journey/processes.ts';

for (const name of ['KUBECONFIG', 'NATS_URL', 'AWS_ENDPOINT_URL_S3', 'LOOPLINE_POD_SUBNET']) {
  if (!process.env[name])
    throw new Error(
      `${name} is not set: run through \`npm test -- journey\`, or eval "$(bash e2e/cluster/cluster.sh env)" first`,
    );
}

const root = fileURLToPath(new URL('../../', import.meta.url));
const namespace = `journey-${randomBytes(3).toString('hex')}`;
const stateDir = mkdtempSync(join(tmpdir(), 'loopline-journey-'));
const started = Date.now();
const elapsed = () => `${Math.round((Date.now() - started) / 1000)}s`;
const verbose = process.env.JOURNEY_VERBOSE === '1';
const reporter: Reporter = {
  step: (title) => console.log(`[journey +${elapsed()}] ${title}`),
  command: (r) => verbose && console.log(`$ ${r.command}\n${r.stdout}`),
  progress: (line) => verbose && console.log(`  ${line}`),
};

let options: PlatformOptions;
let events: EventLog;
let journey: Journey;
let operator: RunningOperator;
let broken: string | undefined;

/** Steps build on each other: once one fails, the rest report that instead of waiting out their timeouts. */
function step(name: string, body: () => Promise<void>): void {
  test(name, async () => {
    if (broken) throw new Error(`not run: an earlier step failed (${broken})`);
    try {
      await body();
    } catch (error) {
      broken = name;
      throw error;
    }
  });
}

/**
 * Every step passed an analysis against Prometheus, with fewer failed checks than the example's failureLimit (2)
 * tolerates: the first check can count short when the canary pod was still starting during its interval.
 */
function assertAnalysed(analyses: string[]): void {
  const passed = analyses.filter((a) => /Passed: requests \d+, error rate 0/.test(a));
  assert.ok(passed.length >= 4, `an analysis passed at each of the steps before 100%:\n${analyses.join('\n')}`);
  assert.ok(analyses.length - passed.length < 2, `fewer failed checks than failureLimit:\n${analyses.join('\n')}`);
}

const ns = (...args: string[]) => [...args, '-n', namespace];
const lifecycle = (reason: string) =>
  events.find(`loopline.events.${namespace}.inferenceservice.${ISVC}`, `.inferenceservice.${reason}`);

test.before(async () => {
  options = {
    root,
    stateDir,
    release: 'loopline',
    releaseNamespace: 'loopline-system',
    natsUrl: process.env.NATS_URL!,
    prometheusPort: await freePort(),
    scrapeInterval: '1s',
    kubeletNamespace: namespace,
  };
  events = await EventLog.connect(process.env.NATS_URL!);
  journey = new Journey(root, namespace, events, reporter);
});

test.after(async () => {
  await journey?.stop();
  // While the local-kubelet still confirms its pods' deletion: a namespace left terminating keeps its HTTPRoute,
  // which, as the oldest route for the example's hostname, would win that host on the Gateway for the next run.
  await run('kubectl', ['delete', 'namespace', namespace, '--ignore-not-found', '--timeout=90s']);
  // By pid file: a step that failed half-way may have started a process without returning its handle.
  await stopByPidFile(stateDir, 'operator');
  await stopByPidFile(stateDir, 'local-kubelet');
  // The release namespace stays: it is the cluster's, and holds the Gateway (loopline-system/loopline-gateway).
  await run('helm', [
    'uninstall',
    options.release,
    '-n',
    options.releaseNamespace,
    '--ignore-not-found',
    '--wait',
    '--timeout',
    '60s',
  ]);
  await stopPrometheus(options);
  await events?.close();
  if (!broken) rmSync(stateDir, { recursive: true, force: true });
  else console.log(`logs of the failed journey: ${stateDir} (operator.log, local-kubelet.log, prometheus/)`);
  console.log(`[journey] total ${elapsed()}`);
});

step(
  'helm install puts the chart on the cluster and the operator runs with nothing but its ServiceAccount token',
  async () => {
    reporter.step('platform: the Gateway, Prometheus, helm install');
    assert.match((await gateway()).stdout, /loopline-gateway\s+traefik\s+127\.0\.0\.1\s+True/);
    const prometheusUrl = await startPrometheus(options);
    const install = await installChart(options);
    assert.match(install.stdout, /STATUS: deployed/);
    const crds = (await kubectl(['get', 'crd', '-l', 'app.kubernetes.io/part-of=loopline', '-o', 'name'])).stdout;
    for (const crd of ['trainingjobs', 'modelversions', 'inferenceservices'])
      assert.ok(crds.includes(`${crd}.loopline.dev`), `${crd} CRD installed: ${crds}`);

    operator = await startOperator(options);
    const whoami = (
      await kubectl([
        'auth',
        'whoami',
        '--kubeconfig',
        operator.kubeconfig,
        '-o',
        'jsonpath={.status.userInfo.username}',
      ])
    ).stdout;
    assert.is(whoami, `system:serviceaccount:loopline-system:${operator.serviceAccount}`);
    const holder = await waitFor(
      "the operator to hold the chart's Lease",
      async () => {
        const lease = await getJson(['lease', 'loopline', '-n', options.releaseNamespace]);
        return lease?.spec?.holderIdentity as string | undefined;
      },
      { timeoutMs: 30_000 },
    );
    assert.ok(holder.startsWith(hostname()), `lease held by the local operator: ${holder}`);
    await startKubelet(options);
    assert.ok((await fetch(`${prometheusUrl}/-/ready`)).ok);
    await journey.createNamespace();
    await provideStorageSecret(namespace);
  },
);

step(
  'kubectl apply -f examples/trainingjob.yaml is admitted by Kueue, trains on a GPU node, and kubectl get modelversions shows v1 with its AUC',
  async () => {
    await journey.prepareDataset();
    const apply = await journey.applyTrainingJob();
    assert.match(apply.stdout, /trainingjob.loopline.dev\/credit-risk-train created/);
    const { job, table } = await journey.waitForTraining(FIRST_JOB);
    assert.match(table.stdout, new RegExp(`${FIRST_JOB}\\s+Succeeded\\s+Admitted\\s+credit-risk`));
    assert.is(job.status.modelVersion, 'credit-risk-v1');
    assert.equal(
      [job.status.queue.localQueue, job.status.queue.clusterQueue],
      ['training', 'training'],
      'queued in the example LocalQueue, admitted by the ClusterQueue cluster.sh made',
    );
    const pods =
      (await getJson<{ items: any[] }>(ns('pods', '-l', `loopline.dev/trainingjob=${FIRST_JOB}`)))?.items ?? [];
    assert.ok(
      pods.some((p) => p.spec.nodeName?.startsWith('gpu-node-') && p.status.phase === 'Succeeded'),
      `a training pod ran on a GPU node: ${pods.map((p) => `${p.spec.nodeName} ${p.status.phase}`)}`,
    );

    const { table: versions, items } = await journey.modelVersions('credit-risk-v1');
    assert.match(versions.stdout, /credit-risk-v1\s+credit-risk\s+1\s+None\s+\["candidate"\]\s+auc=0\.\d+/);
    const v1 = items.find((mv) => mv.metadata.name === 'credit-risk-v1');
    assert.ok(v1.spec.metrics.auc >= 0.75, `AUC passes the example's gate: ${v1.spec.metrics.auc}`);
    assert.match(v1.spec.artifact.digest, /^sha256:[0-9a-f]{64}$/);
    assert.is(v1.spec.lineage.trainingJob, FIRST_JOB);
    await waitFor(
      'NATS event modelversion.registered for v1',
      async () =>
        events.find(`loopline.events.${namespace}.modelversion.credit-risk-v1`, '.modelversion.registered').length > 0,
      { timeoutMs: 10_000 },
    );
  },
);

step('promoting v1 to Production gives it the production alias, recorded with who asked', async () => {
  const { patch, mv, table } = await journey.promote('credit-risk-v1');
  assert.match(patch.stdout, /modelversion.loopline.dev\/credit-risk-v1 patched/);
  assert.match(table.stdout, /credit-risk-v1\s+credit-risk\s+1\s+Production\s+\["production"\]/);
  const entry = mv.status.history.at(-1);
  assert.is(entry.to, 'Production');
  assert.ok(entry.by && entry.by !== 'unknown', `promotion records who asked: ${JSON.stringify(entry)}`);
  await waitFor(
    'NATS event modelversion.promoted for v1',
    async () =>
      events.find(`loopline.events.${namespace}.modelversion.credit-risk-v1`, '.modelversion.promoted').length > 0,
    { timeoutMs: 10_000 },
  );
});

step(
  "kubectl apply -f examples/inferenceservice.yaml serves v1 and predictions come back over HTTP from the Service's endpoints",
  async () => {
    const { apply, patch } = await journey.applyInferenceService();
    assert.match(apply.stdout, /inferenceservice.loopline.dev\/credit-risk created/);
    assert.match(patch.stdout, /patched/);
    const { isvc, table, pods, endpoints } = await journey.waitForServing(1);
    assert.match(table.stdout, /credit-risk\s+credit-risk\s+1\s/);
    assert.is(isvc.status.phase, 'Stable');
    // The Service's EndpointSlices hold the predictor pod's address on the cluster's pod network, shown by kubectl get pods -o wide.
    const podNetwork = process.env.LOOPLINE_POD_SUBNET!.replace(/0\/24$/, '');
    assert.ok(
      endpoints.length >= 1 && endpoints.every((e) => e.startsWith(podNetwork)),
      `endpoints on the pod network ${process.env.LOOPLINE_POD_SUBNET}: ${endpoints}`,
    );
    for (const endpoint of endpoints)
      assert.match(pods.stdout, new RegExp(`Running.*${endpoint.split(':')[0]!.replace(/\./g, '\\.')}`));

    const { direct, routed } = await journey.predict();
    assert.ok(direct.length >= 1);
    for (const response of [...direct, routed]) {
      assert.is(response.status, 200, JSON.stringify(response));
      assert.is(response.body.model_name, 'credit-risk');
      assert.is(String(response.body.model_version), '1');
      assert.ok(
        response.body.prediction >= 0 && response.body.prediction <= 1,
        `a probability: ${response.body.prediction}`,
      );
    }
  },
);

step(
  'a second training run registers v2 as candidate, and the operator canaries it step by step to promotion',
  async () => {
    journey.startTraffic();
    const apply = await journey.applySecondTrainingJob();
    assert.match(apply.stdout, /credit-risk-train-2 created/);
    const { job } = await journey.waitForTraining(SECOND_JOB);
    assert.is(job.status.modelVersion, 'credit-risk-v2');

    const rollout = await journey.watchRollout(2);
    assert.equal(
      rollout.routeWeights,
      [5, 10, 25, 50, 100].filter((w) => rollout.routeWeights.includes(w)),
      `weights in step order: ${rollout.routeWeights}`,
    );
    assert.ok(rollout.routeWeights.length >= 3, `the route moved through the steps: ${rollout.routeWeights}`);
    assertAnalysed(rollout.analyses);
    assert.ok(
      (rollout.answeredBy['2'] ?? 0) > 0 && (rollout.answeredBy['1'] ?? 0) > 0,
      `clients were answered by both versions: ${JSON.stringify(rollout.answeredBy)}`,
    );

    const versions = (await kubectl(ns('get', 'modelversions'))).stdout;
    assert.match(versions, /credit-risk-v1\s+credit-risk\s+1\s+Archived/);
    assert.match(versions, /credit-risk-v2\s+credit-risk\s+2\s+Production\s+\["candidate","production"\]/);
    for (const reason of ['canarystarted', 'stepadvanced', 'promoted'])
      assert.ok(
        lifecycle(reason).some((e) => e.data.version === 2),
        `NATS lifecycle event ${reason} for v2`,
      );
    const k8sEvents = (await kubectl(ns('events', '--for', `inferenceservice/${ISVC}`))).stdout;
    assert.match(k8sEvents, /Promoted\s+.*v2 promoted to stable \(was v1\)/);
  },
);

step('drifted traffic is reported over NATS, recorded in status and starts a retraining TrainingJob', async () => {
  const drift = await journey.injectDrift();
  assert.ok(drift.driftEvents > 0, 'drift reports arrived on loopline.drift.>');
  const reports = events.find(`loopline.drift.${namespace}.${ISVC}`).filter((e) => e.data.drifted === true);
  assert.ok(reports.length > 0, 'a drift report says drifted');
  assert.ok(reports[0]!.data.driftedFeatures.length >= 2, `features drifted: ${reports[0]!.data.driftedFeatures}`);
  assert.ok(drift.isvc.status.drift.score >= 0.3, `status.drift.score ${drift.isvc.status.drift.score}`);

  const retrain = await journey.retrainingJob();
  assert.match(retrain.name, /^credit-risk-retrain-[0-9a-f]{10}$/);
  assert.is(retrain.job.metadata.labels['loopline.dev/trigger'], 'drift');
  assert.match(
    retrain.job.spec.dataset.uri,
    new RegExp(`/credit-risk-${namespace}/$`),
    'retraining reads the data set with the recent data',
  );
  assert.match(retrain.job.metadata.annotations['loopline.dev/trigger'], /^drift event /);
  assert.match(retrain.table.stdout, new RegExp(retrain.name));
  assert.ok(
    lifecycle('retrainstarted').some((e) => e.data.trainingJob === retrain.name),
    'NATS lifecycle event retrainstarted',
  );

  const { job } = await journey.waitForTraining(retrain.name);
  assert.is(job.status.modelVersion, 'credit-risk-v3');
  const v3 = await getJson(ns('modelversion', 'credit-risk-v3'));
  assert.is(v3.spec.lineage.trainingJob, retrain.name);
});

step('the retrained v3 is canaried, passes analysis and is promoted', async () => {
  const rollout = await journey.watchRollout(3);
  assert.ok(rollout.routeWeights.length >= 3, `the route moved through the steps: ${rollout.routeWeights}`);
  assertAnalysed(rollout.analyses);
  const versions = (await kubectl(ns('get', 'modelversions'))).stdout;
  assert.match(versions, /credit-risk-v2\s+credit-risk\s+2\s+Archived/);
  assert.match(versions, /credit-risk-v3\s+credit-risk\s+3\s+Production/);
  assert.ok(
    lifecycle('promoted').some((e) => e.data.version === 3),
    'NATS lifecycle event promoted for v3',
  );
  const answer = await journey.gateway.post('/predict', {
    features: { income: 90, debt_ratio: 0.5, age: 55, utilization: 0.6, region: 3 },
  });
  assert.is(answer.status, 200);
  assert.is(String(answer.body.model_version), '3');
  assert.ok(
    journey.traffic.stats.ok > 0 && journey.traffic.stats.failed / journey.traffic.stats.sent < 0.01,
    `clients barely saw errors: ${JSON.stringify(journey.traffic.stats)}`,
  );
});

step(
  "the nightly batch scoring, run now, writes every customer's segment with the production version v3 into PostgreSQL",
  async () => {
    const { run, segments } = await journey.batchScoring();
    assert.ok(run.succeeded, JSON.stringify(run));
    assert.equal([run.version, run.rows, run.written + run.rejects], [3, 5000, 5000]);
    assert.is(segments.code, 0, segments.stderr);
    assert.match(segments.stdout, /high-risk|review|low-risk/);
    assert.match(segments.stdout, /\|\s+3$/m, 'the rows say version 3');
    assert.ok(
      lifecycle('batchsucceeded').some((e) => e.data.job === run.job),
      'NATS lifecycle event batchsucceeded',
    );
  },
);

test.run();
