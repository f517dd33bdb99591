/**
 * The main job's driver (`bash e2e/demo.sh` calls it once the local cluster is up):
 *
 *   npx tsx e2e/journey/main.ts up      Prometheus, helm install, operator and local-kubelet in the background,
 *                                       then the example journey (skipped when it already ran), then a summary
 *   npx tsx e2e/journey/main.ts stop    stops what `up` left running (the cluster stays)
 *   npx tsx e2e/journey/main.ts summary prints what to try next
 *
 * Needs KUBECONFIG, NATS_URL and kubectl/helm on PATH (`eval "$(bash e2e/cluster/cluster.sh env)"`).
 * LOOPLINE_DEMO_DIR (~/.cache/loopline/demo) holds pid files and logs; LOOPLINE_DEMO_NAMESPACE (loopline-demo)
 * is where the examples go; PROMETHEUS_PORT (9090).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getJson, kubectl, waitFor, type CommandResult } from './commands.ts';
import { EventLog, describeEvent } from './events.ts';
import { FIRST_JOB, ISVC, Journey, SECOND_JOB, type Reporter } from './journey.ts';
import {
  cacheDir,
  installChart,
  gateway,
  provideStorageSecret,
  startKubelet,
  startOperator,
  startPrometheus,
  STORAGE_SECRET,
  stopPrometheus,
  type PlatformOptions,
} from './platform.ts';
import { stopByPidFile } from './processes.ts';
import { serviceEndpoints } from './traffic.ts';
import { KubeConfig } from '@kubernetes/client-node';
import * as yaml from 'js-yaml';

const root = fileURLToPath(new URL('../../', import.meta.url));
const stateDir = process.env.LOOPLINE_DEMO_DIR ?? join(cacheDir(), 'demo');
const namespace = process.env.LOOPLINE_DEMO_NAMESPACE ?? 'loopline-demo';
const started = Date.now();
const clock = () => {
  const s = Math.round((Date.now() - started) / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};

const indent = (text: string) =>
  text
    .trimEnd()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
const reporter: Reporter = {
  step: (title) => console.log(`\n[demo +${clock()}] ${title}`),
  command: (r: CommandResult) => console.log(`  $ ${r.command.replace(root, '')}\n${indent(r.stdout || r.stderr)}`),
  progress: (line) => console.log(`  … ${line}`),
};

function options(): PlatformOptions {
  for (const name of ['KUBECONFIG', 'NATS_URL', 'AWS_ENDPOINT_URL_S3']) {
    if (!process.env[name]) throw new Error(`${name} is not set: eval "$(bash e2e/cluster/cluster.sh env)" first`);
  }
  return {
    root,
    stateDir,
    release: 'loopline',
    releaseNamespace: 'loopline-system',
    natsUrl: process.env.NATS_URL!,
    prometheusPort: Number(process.env.PROMETHEUS_PORT ?? 9090),
    scrapeInterval: '1s',
    detached: true,
    progress: reporter.progress,
  };
}

async function platform(opts: PlatformOptions): Promise<void> {
  reporter.step(`the Gateway: Traefik programs loopline-system/loopline-gateway at ${process.env.GATEWAY_URL}`);
  reporter.command(await gateway());
  reporter.step('Prometheus on loopback, finding predictor pods through Kubernetes discovery');
  reporter.progress(`${await startPrometheus(opts)}`);
  reporter.step('helm upgrade --install loopline charts/loopline -n loopline-system');
  const install = await installChart(opts);
  reporter.command({ ...install, stdout: install.stdout.split('\n').slice(0, 7).join('\n') });
  reporter.step("operator: the chart's Deployment as a local process, authenticated with its ServiceAccount token");
  const operator = await startOperator(opts, '720h');
  reporter.progress(
    `pid ${operator.process.pid}, identity ${(await kubectl(['auth', 'whoami', '--kubeconfig', operator.kubeconfig, '-o', 'jsonpath={.status.userInfo.username}'])).stdout}, log ${operator.process.log}`,
  );
  reporter.step('local-kubelet: runs loopline/* pods of the simulated nodes as local processes');
  const kubelet = await startKubelet(opts);
  reporter.progress(`pid ${kubelet.pid}, log ${kubelet.log}`);
}

/** The journey already went all the way (the quality retrain's version promoted) in this namespace: nothing to redo. */
async function journeyDone(): Promise<boolean> {
  const isvc = await getJson(['inferenceservice', ISVC, '-n', namespace]);
  return (
    (isvc?.status?.stableVersion ?? 0) >= 4 &&
    isvc.status.lastRetrain?.trigger === 'QualityDrop' &&
    isvc.status.phase === 'Promoted'
  );
}

async function journey(natsUrl: string): Promise<void> {
  if (await getJson(['namespace', namespace])) {
    reporter.step(`namespace ${namespace} holds an unfinished journey: deleting it to start over`);
    reporter.command(await kubectl(['delete', 'namespace', namespace, '--timeout=120s']));
  }
  const events = await EventLog.connect(natsUrl);
  const j = new Journey(root, namespace, events, reporter);
  try {
    await j.createNamespace();
    reporter.step(
      `storage: Secret ${STORAGE_SECRET} with the S3 keys in ${namespace} (the chart's objectStorage.credentials.secretName)`,
    );
    reporter.command(await provideStorageSecret(namespace));
    reporter.step(`data: the snapshot examples/trainingjob.yaml names, at ${await j.prepareDataset()}`);
    await j.applyTrainingJob();
    await j.waitForTraining(FIRST_JOB);
    await j.modelVersions('credit-risk-v1');
    await j.promote('credit-risk-v1');
    await j.applyInferenceService();
    await j.waitForServing(1);
    const { direct } = await j.predict();
    if (direct[0]?.status !== 200) throw new Error(`the predictor did not answer: ${JSON.stringify(direct[0])}`);
    reporter.step(
      `client traffic: ${j.timings.trafficRate} requests/s through the Gateway, split by the HTTPRoute's weights (runs until the journey ends)`,
    );
    j.startTraffic();
    await j.applySecondTrainingJob();
    await j.waitForTraining(SECOND_JOB);
    await j.modelVersions('credit-risk-v2');
    await j.watchRollout(2);
    await j.injectDrift();
    const retrain = await j.retrainingJob();
    await j.waitForTraining(retrain.name);
    await j.watchRollout(3);
    await j.batchScoring();
    await j.enableQualityRetrain(3);
    const qualityRetrain = await j.injectConceptShift();
    const retrained = (await j.waitForTraining(qualityRetrain.name)).job.status.modelVersion as string;
    const mv = (await j.modelVersions(retrained)).items.find((item) => item.metadata.name === retrained);
    reporter.progress(`${retrained} lineage.dataset: ${JSON.stringify(mv?.spec?.lineage?.dataset)}`);
    const old = qualityRetrain.isvc.status.stableVersion as number;
    await j.watchRollout(mv.spec.version);
    await j.liveQuality([old, mv.spec.version]);
    reporter.step('registry after the journey');
    await kubectl(['get', 'modelversions', '-n', namespace]).then(reporter.command);
    reporter.step(
      `events on NATS during the journey (${events.events.length}; lifecycle shown, drift reports counted)`,
    );
    for (const e of events.events.filter((e) => e.subject.startsWith('loopline.events.')))
      console.log(`    ${describeEvent(e)}`);
    console.log(
      `    + ${events.events.filter((e) => e.subject.startsWith('loopline.drift.')).length} drift reports on loopline.drift.${namespace}.${ISVC}`,
    );
    const t = j.traffic.stats;
    reporter.progress(`clients: ${t.ok} answered, ${t.failed} failed`);
  } finally {
    await j.stop();
    await events.close();
  }
}

function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}

async function summary(): Promise<void> {
  const endpoint = (await serviceEndpoints(kubeConfig(), namespace, ISVC).catch(() => []))[0] ?? '<pod-ip>:8080';
  const host = (yaml.load(readFileSync(join(root, 'examples/inferenceservice.yaml'), 'utf8')) as any).spec.traffic
    .hostnames[0];
  const body = JSON.stringify({ features: { income: 52.7, debt_ratio: 0.22, age: 30, utilization: 0.398, region: 1 } });
  console.log(`
Loopline is running: the local cluster, NATS, Prometheus, the operator and the local-kubelet (logs and pids in ${stateDir}).
Try next (the examples live in namespace ${namespace}):

  eval "$(bash e2e/cluster/cluster.sh env)"                 # KUBECONFIG, PATH, NATS_URL, GATEWAY_URL, the S3 endpoint and keys (AWS_*)
  kubectl get loopline -n ${namespace}                       # TrainingJobs, ModelVersions, InferenceServices
  kubectl get pods -n ${namespace} -o wide                   # predictor pods on the pod network (198.19.0.0/16)
  curl -s -XPOST ${process.env.GATEWAY_URL}/predict -H 'host: ${host}' -H 'content-type: application/json' -d '${body}'   # through the Gateway (Traefik)
  curl -s -XPOST http://${endpoint}/predict -H 'content-type: application/json' -d '${body}'   # straight to a pod
  npx tsx e2e/journey/watch-events.ts --replay               # like: nats sub 'loopline.>' (lifecycle + drift events)
  npx loopline status ${ISVC} -n ${namespace}                 # the service at a glance
  kubectl events -n ${namespace} --for inferenceservice/${ISVC}
  aws s3 ls s3://loopline/models/credit-risk/ --recursive    # the artifacts, in the local S3 server (versitygw); any S3 client reads AWS_*
  open http://127.0.0.1:${process.env.PROMETHEUS_PORT ?? 9090}/graph   # Prometheus, e.g. sum by (model_version) (rate(prediction_requests_total[1m]))

  bash e2e/demo.sh stop                                       # stop operator, local-kubelet, Prometheus (cluster stays)
  bash e2e/cluster/cluster.sh down                            # remove the cluster, NATS and the S3 server with its bucket too
`);
}

async function stop(): Promise<void> {
  for (const name of ['operator', 'local-kubelet']) {
    if (await stopByPidFile(stateDir, name)) console.log(`stopped ${name}`);
  }
  await stopPrometheus({ root, stateDir });
}

const command = process.argv[2] ?? 'up';
try {
  if (command === 'up') {
    const opts = options();
    await platform(opts);
    if (await journeyDone()) {
      reporter.step(
        `the journey already ran in namespace ${namespace} (v${(await getJson(['inferenceservice', ISVC, '-n', namespace]))?.status?.stableVersion} serves); waiting for its predictors to be back`,
      );
      await waitFor(
        'predictor pods ready again',
        async () => (await serviceEndpoints(kubeConfig(), namespace, ISVC)).length > 0,
        { timeoutMs: 120_000 },
      );
    } else {
      await journey(opts.natsUrl);
    }
    await kubectl(['get', 'loopline', '-n', namespace]).then(reporter.command);
    reporter.step(`done in ${clock()}`);
    await summary();
  } else if (command === 'stop') {
    await stop();
  } else if (command === 'summary') {
    await summary();
  } else {
    console.error('usage: main.ts up|stop|summary');
    process.exitCode = 2;
  }
} catch (error) {
  console.error(
    `\n[demo] failed: ${(error as Error).message}\n  logs: ${stateDir}/operator.log, ${stateDir}/local-kubelet.log`,
  );
  process.exitCode = 1;
}
// The NATS and Kubernetes clients may keep handles open; the background processes are detached.
process.exit();
