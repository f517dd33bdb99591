/**
 * Artifacts in object storage on the local cluster, every part real: the operator process (operator/main.ts with
 * the STORAGE_S3_* settings the chart's objectStorage values become), the local kubelet running the example trainer
 * and the predictor as processes, and the cluster's S3 server (versitygw) with the keys in a Secret.
 *
 *   train into s3:// → ModelVersion on s3:// → a predictor pod loads it and answers
 *   digest mismatch, missing object, missing bucket, wrong keys → the TrainingJob fails, or the predictor stays
 *   unready, naming the URI and the S3 error code
 *   the secret access key (right or wrong) appears in no status, Event, log, metric or pod spec
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startLocalKubelet, type LocalKubelet } from '../local-kubelet/kubelet.ts';
import { generateCreditRisk, toCsv } from '../../examples/trainer/src/dataset.ts';
import { installCrds } from '../../operator/api/install.ts';
import { getObjectStream } from '../../operator/api/object-storage.ts';
import { HttpMethod } from '@kubernetes/client-node';
import { kinds, KubeApi, type KubeObject } from '../../operator/engine/index.ts';
import {
  freePort,
  quietLogger,
  requireKubeconfig,
  uniqueName,
  waitFor as sharedWaitFor,
} from '../../test/support/local.ts';
import { requireS3 } from '../../test/support/s3.ts';
import { createNamespace, deleteNamespace } from '../../test/support/namespaces.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const kc = requireKubeconfig();
const api = new KubeApi(kc);
const s3 = requireS3('e2e-storage');
const ns = uniqueName('object-storage');
const SECRET = 'loopline-s3';
const WRONG_SECRET = 'wrong-secret-wrong-secret-wrong-secret-00';
const MODEL = 'credit-risk';

let kubelet: LocalKubelet;
let operator: ChildProcess;
let operatorOutput = '';
let metricsUrl: string;

/** The shared waitFor; a timeout shows the operator's last output. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  return sharedWaitFor(what, probe, timeoutMs, 200).catch((error: Error) => {
    throw new Error(`${error.message}\noperator:\n${operatorOutput.slice(-3000)}`);
  });
}

function trainingJob(name: string, spec: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'loopline.dev/v1alpha1',
    kind: 'TrainingJob',
    metadata: { name, namespace: ns },
    spec: {
      model: MODEL,
      image: 'loopline/example-trainer:0.1.0',
      hyperparameters: { epochs: '40' },
      dataset: { uri: s3.uri('datasets/credit-risk/') },
      output: { uri: s3.uri('models/credit-risk') },
      backoffLimit: 0,
      ...spec,
    },
  };
}

function inferenceService(name: string, model: string): KubeObject {
  return {
    apiVersion: 'loopline.dev/v1alpha1',
    kind: 'InferenceService',
    metadata: { name, namespace: ns },
    spec: { model, stable: { version: 1 }, predictor: { resources: { cpu: '100m', memory: '256Mi' } } },
  };
}

/** A ModelVersion as registration makes one, for artifacts this test places itself. */
function modelVersion(model: string, uri: string, digest: string): KubeObject {
  return {
    apiVersion: 'loopline.dev/v1alpha1',
    kind: 'ModelVersion',
    metadata: { name: `${model}-v1`, namespace: ns },
    spec: { model, version: 1, artifact: { uri, digest, format: 'onnx' } },
  };
}

async function finished(name: string): Promise<any> {
  return await waitFor(
    `TrainingJob ${name} to finish`,
    async () => {
      const job = await api.get(kinds.TrainingJob, ns, name);
      return ['Succeeded', 'Failed'].includes(job.status?.phase) ? job : undefined;
    },
    90_000,
  );
}

const predictorPods = async (isvc: string) =>
  (await api.list(kinds.Pod, ns, { labelSelector: `loopline.dev/inferenceservice=${isvc}` })).items;

/** Every file (logs, termination messages) the local kubelet wrote for this namespace's pods, joined. */
function podLogs(podName?: string): string {
  const dir = join(process.env.LOOPLINE_CACHE!, 'local-kubelet', 'pods');
  if (!existsSync(dir)) return '';
  return readdirSync(dir)
    .filter((pod) => pod.startsWith(`${ns}_${podName ?? ''}`))
    .flatMap((pod) => readdirSync(join(dir, pod), { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => readFileSync(join(entry.parentPath, entry.name), 'utf8'))
    .join('\n');
}

/** The predictor of `isvc` running but unready, its log naming `uri` and `code`. */
async function expectUnreadyPredictor(isvc: string, uri: string, code: string): Promise<void> {
  const pod = await waitFor(`a running predictor pod of ${isvc} whose log names ${code}`, async () => {
    const [p] = await predictorPods(isvc);
    return p?.status?.phase === 'Running' && podLogs(p.metadata.name).includes(code) ? p : undefined;
  });
  const log = podLogs(pod.metadata.name);
  assert.ok(log.includes(uri), `the predictor log names ${uri}:\n${log.slice(-2000)}`);
  const ready = pod.status.conditions?.find((c: any) => c.type === 'Ready');
  assert.is(ready?.status, 'False', 'the predictor pod is not Ready');
  const health = (await (await fetch(`http://${pod.status.podIP}:8080/health`)).json()) as any;
  assert.ok(String(health.error).includes(uri) && String(health.error).includes(code), `/health says ${health.error}`);
  const status = (await api.get(kinds.InferenceService, ns, isvc)).status;
  assert.ok(
    status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'False'),
    `InferenceService ${isvc} is not Ready: ${JSON.stringify(status)}`,
  );
}

test.before(async () => {
  await installCrds(kc);
  await createNamespace(api, ns);
  await api.create(kinds.Secret, s3.secret(SECRET, ns) as never, 'loopline-test');
  await s3.put('datasets/credit-risk/2026-11-01.csv', toCsv(generateCreditRisk({ rows: 1200, seed: 42, shift: 0 })));
  kubelet = await startLocalKubelet({ kubeconfig: kc, repoRoot: ROOT, namespace: ns, logger: quietLogger() });
  const port = await freePort();
  metricsUrl = `http://127.0.0.1:${port}`;
  operator = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'operator/main.ts',
      `--namespace=${ns}`,
      '--no-leader-election',
      `--http-port=${port}`,
      '--http-host=127.0.0.1',
      '--retry-base-ms=300',
    ],
    {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH!,
        HOME: process.env.HOME!,
        KUBECONFIG: process.env.KUBECONFIG!,
        LOG_LEVEL: 'info',
        PROMETHEUS_URL: `http://127.0.0.1:${await freePort()}`,
        ...s3.operatorEnv(SECRET),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  operator.stdout!.on('data', (d) => (operatorOutput += d));
  operator.stderr!.on('data', (d) => (operatorOutput += d));
  await waitFor('the operator to be ready', async () => (await fetch(`${metricsUrl}/readyz`)).ok);
});

test.after(async () => {
  operator?.kill('SIGTERM');
  await deleteNamespace(api, ns);
  await waitFor(
    'pods of the namespace to be gone',
    async () => (await api.list(kinds.Pod, ns)).items.length === 0,
    30_000,
  ).catch(() => undefined);
  await kubelet?.stop();
});

test('a TrainingJob trains into s3://, registers the version there, and a predictor pod loads it from there and answers', async () => {
  await api.create(kinds.TrainingJob, trainingJob('train') as never, 'loopline-test');
  const job = await finished('train');
  assert.is(job.status.phase, 'Succeeded', job.status.message);
  const mv = await api.get(kinds.ModelVersion, ns, job.status.modelVersion);
  assert.is(mv.spec.artifact.uri, s3.uri(`models/credit-risk/${ns}/train/attempt-1/model.onnx`));
  const chunks: Uint8Array[] = [];
  for await (const chunk of (await getObjectStream(s3.client, mv.spec.artifact.uri)).body) chunks.push(chunk);
  assert.is(
    mv.spec.artifact.digest,
    `sha256:${createHash('sha256').update(Buffer.concat(chunks)).digest('hex')}`,
    'the digest is that of the object in the bucket',
  );
  assert.match(mv.spec.referenceProfile.uri, /^s3:\/\/.*\/profile\.json$/);
  const [trainer] = (await api.list(kinds.Pod, ns, { labelSelector: 'loopline.dev/trainingjob=train' })).items;
  const keyRef = trainer.spec.containers[0].env.find((e: any) => e.name === 'AWS_SECRET_ACCESS_KEY');
  assert.equal(keyRef, {
    name: 'AWS_SECRET_ACCESS_KEY',
    valueFrom: { secretKeyRef: { name: SECRET, key: 'AWS_SECRET_ACCESS_KEY' } },
  });

  await api.create(kinds.InferenceService, inferenceService('credit', MODEL) as never, 'loopline-test');
  const pod = await waitFor(
    'a Ready predictor pod',
    async () => {
      const [p] = await predictorPods('credit');
      return p?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True') ? p : undefined;
    },
    90_000,
  );
  const env = Object.fromEntries(pod.spec.containers[0].env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
  assert.is(env.MODEL_URI, mv.spec.artifact.uri);
  const row = generateCreditRisk({ rows: 1, seed: 9, shift: 0 }).x[0];
  const answer = await fetch(`http://${pod.status.podIP}:8080/v2/models/${MODEL}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 5], data: row }] }),
  });
  assert.is(answer.status, 200);
  const probability = ((await answer.json()) as any).outputs[0].data[0];
  assert.ok(probability > 0 && probability < 1);
});

test('a version whose s3:// object does not match its digest, or does not exist, keeps its predictor unready naming the URI and why', async () => {
  const good = await api.get(kinds.ModelVersion, ns, `${MODEL}-v1`);
  const missing = s3.uri('models/nowhere/model.onnx');
  await api.create(
    kinds.ModelVersion,
    modelVersion('tampered', good.spec.artifact.uri, `sha256:${'0'.repeat(64)}`) as never,
    'loopline-test',
  );
  await api.create(
    kinds.ModelVersion,
    modelVersion('missing', missing, good.spec.artifact.digest) as never,
    'loopline-test',
  );
  await api.create(kinds.InferenceService, inferenceService('tampered', 'tampered') as never, 'loopline-test');
  await api.create(kinds.InferenceService, inferenceService('missing', 'missing') as never, 'loopline-test');
  await expectUnreadyPredictor('tampered', good.spec.artifact.uri, `expected sha256:${'0'.repeat(64)}`);
  await expectUnreadyPredictor('missing', missing, 'NoSuchKey');
});

test('a missing output bucket or data set object fails the TrainingJob with the URI and the S3 error code', async () => {
  await api.create(
    kinds.TrainingJob,
    trainingJob('no-bucket', { output: { uri: 's3://no-such-bucket-loopline/models' } }) as never,
    'loopline-test',
  );
  await api.create(
    kinds.TrainingJob,
    trainingJob('no-data', { dataset: { uri: s3.uri('datasets/none.csv') } }) as never,
    'loopline-test',
  );
  const noBucket = await finished('no-bucket');
  assert.is(noBucket.status.phase, 'Failed');
  assert.match(
    noBucket.status.message,
    `s3://no-such-bucket-loopline/models/${ns}/no-bucket/attempt-1/model.onnx failed: NoSuchBucket`,
  );
  const noData = await finished('no-data');
  assert.is(noData.status.phase, 'Failed');
  assert.match(noData.status.message, `${s3.uri('datasets/none.csv')} failed: NoSuchKey`);
});

test('wrong keys in the Secret fail the TrainingJob and keep the predictor unready, both naming SignatureDoesNotMatch', async () => {
  await api.mergePatch(
    kinds.Secret,
    ns,
    SECRET,
    { stringData: { AWS_SECRET_ACCESS_KEY: WRONG_SECRET } },
    'loopline-test',
  );
  await api.create(kinds.TrainingJob, trainingJob('denied') as never, 'loopline-test');
  const good = await api.get(kinds.ModelVersion, ns, `${MODEL}-v1`);
  await api.create(
    kinds.ModelVersion,
    modelVersion('denied', good.spec.artifact.uri, good.spec.artifact.digest) as never,
    'loopline-test',
  );
  await api.create(kinds.InferenceService, inferenceService('denied', 'denied') as never, 'loopline-test');
  const denied = await finished('denied');
  assert.is(denied.status.phase, 'Failed');
  // The data set is the first thing the trainer reads.
  assert.match(denied.status.message, `LIST ${s3.uri('datasets/credit-risk/')} failed: SignatureDoesNotMatch`);
  await expectUnreadyPredictor('denied', good.spec.artifact.uri, 'SignatureDoesNotMatch');
});

test('neither secret access key appears in any status, Event, log line, metric or pod spec', async () => {
  const texts: Array<[string, string]> = [];
  for (const kind of [kinds.TrainingJob, kinds.ModelVersion, kinds.InferenceService, kinds.Pod, kinds.Deployment]) {
    const { items } = await api.list(kind, ns);
    assert.ok(items.length > 0, `${kind.kind}s were made`);
    texts.push([`${kind.kind} objects`, JSON.stringify(items)]);
  }
  texts.push(['Events', JSON.stringify(await api.request(HttpMethod.GET, `/api/v1/namespaces/${ns}/events`))]);
  texts.push([
    'events.k8s.io Events',
    JSON.stringify(await api.request(HttpMethod.GET, `/apis/events.k8s.io/v1/namespaces/${ns}/events`)),
  ]);
  texts.push(['the operator log', operatorOutput]);
  texts.push(['the operator metrics', await (await fetch(`${metricsUrl}/metrics`)).text()]);
  const logs = podLogs();
  assert.match(logs, /SignatureDoesNotMatch/, 'the pod logs are the ones of these pods');
  texts.push(['trainer and predictor logs', logs]);
  for (const pod of (await api.list(kinds.Pod, ns, { labelSelector: 'app.kubernetes.io/name=loopline-predictor' }))
    .items) {
    texts.push([
      `metrics of ${pod.metadata.name}`,
      await (await fetch(`http://${pod.status.podIP}:8080/metrics`)).text(),
    ]);
  }
  for (const [where, text] of texts) {
    assert.not.ok(text.includes(s3.secretAccessKey), `${where} show the secret access key`);
    assert.not.ok(text.includes(WRONG_SECRET), `${where} show the wrong secret access key`);
  }
});

test.run();
