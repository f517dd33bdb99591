// The three images scripts/images.sh builds from the Dockerfiles, run with podman (runc) exactly as the
// chart and the operator ask Kubernetes to run them: the pod spec each produces is turned into podman
// arguments by e2e/images/podman.ts (user 65532, read-only root filesystem, no capabilities, no privilege
// escalation, RuntimeDefault seccomp, the env, resource limits and volumes of the spec). The operator
// reconciles against the local API server as the chart's ServiceAccount with a TokenRequest token; the
// predictor, in a pod network namespace on the cluster's bridge, serves the example model from the local S3 server; the
// trainer, in one too, trains on a data set in S3, uploads its model there and writes its result to the
// termination message. Where buildah or podman is missing every test is skipped.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import {
  CHART,
  ROOT,
  deleteNamespace,
  find,
  kubectl,
  render,
  requireKubeconfig,
  run,
  KUBECTL,
  uniqueNamespace,
  type Manifest,
} from './support/chart.ts';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { freePort } from '../../test/support/local.ts';
import { requireS3, type LocalS3 } from '../../test/support/s3.ts';
import { STORAGE_ENV, storageSettingsFromEnv } from '../../operator/api/storage-env.ts';
import { podmanRun, type ContainerRun } from '../../e2e/images/podman.ts';
import { PodNetwork, podNetworkFromEnv, type PodSandbox } from '../../e2e/local-kubelet/network.ts';
import { predictorDeployment } from '../../operator/inferenceservice/desired.ts';
import { desiredJob } from '../../operator/trainingjob/job.ts';
import { COMPLETION_INDEX } from '../../operator/trainingjob/pods.ts';
import { generateCreditRisk, toCsv } from '../../examples/trainer/src/dataset.ts';

const IMAGES = join(ROOT, 'scripts/images.sh');
const check = spawnSync('bash', [IMAGES, 'check'], { encoding: 'utf8' });
const unavailable = check.status !== 0 ? check.stdout.trim() || check.stderr.trim() : undefined;
if (unavailable) console.log(unavailable);
const it = unavailable ? test.skip : test;

const scratch = mkdtempSync(join(tmpdir(), 'loopline-images-'));
chmodSync(scratch, 0o755);
const containers: string[] = [];

function podman(args: string[], timeout = 120_000): string {
  const result = spawnSync('podman', args, { encoding: 'utf8', timeout });
  if (result.status !== 0) throw new Error(`podman ${args.slice(0, 3).join(' ')}...: ${result.stderr || result.error}`);
  return result.stdout.trim();
}

function start(run: ContainerRun, podSpec: Record<string, any>): { terminationMessageFile: string } {
  const { args, terminationMessageFile } = podmanRun(podSpec, run);
  containers.push(run.name);
  podman(args);
  return { terminationMessageFile };
}

function logs(name: string): string {
  return (
    spawnSync('podman', ['logs', name], { encoding: 'utf8' }).stdout.slice(-4000) +
    spawnSync('podman', ['logs', name], { encoding: 'utf8' }).stderr.slice(-4000)
  );
}

/** The security state of the container's main process as the kernel holds it. */
function processSecurity(name: string): Record<string, string> {
  const pid = podman(['inspect', '--format', '{{.State.Pid}}', name]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (key: string) => new RegExp(`^${key}:\\s+(.*)$`, 'm').exec(status)![1].trim();
  return {
    uid: field('Uid'),
    gid: field('Gid'),
    capEff: field('CapEff'),
    capBnd: field('CapBnd'),
    noNewPrivs: field('NoNewPrivs'),
    seccomp: field('Seccomp'),
  };
}

function assertRestricted(name: string): void {
  const s = processSecurity(name);
  assert.is(s.uid, '65532\t65532\t65532\t65532');
  assert.is(s.gid, '65532\t65532\t65532\t65532');
  assert.is(s.capEff, '0000000000000000', 'no capabilities');
  assert.is(s.capBnd, '0000000000000000', 'none can be regained');
  assert.is(s.noNewPrivs, '1');
  assert.is(s.seccomp, '2', 'a seccomp filter');
  assert.is(podman(['inspect', '--format', '{{.HostConfig.ReadonlyRootfs}}', name]), 'true');
}

async function until<T>(
  what: string,
  name: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (podman(['inspect', '--format', '{{.State.Running}}', name]) !== 'true')
      throw new Error(`${what}: the container exited:\n${logs(name)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${what}: timed out:\n${logs(name)}`);
}

function stop(name: string): number {
  podman(['stop', '--time', '30', name], 60_000);
  return Number(podman(['inspect', '--format', '{{.State.ExitCode}}', name]));
}

/** The example trainer's model, trained by the trainer on this machine into S3: what the predictor serves. */
function trainExampleModel(dir: string, output: string): any {
  const resultPath = join(dir, 'result.json');
  const trained = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'examples/trainer/src/main.ts')], {
    cwd: ROOT,
    encoding: 'utf8',
    env: {
      ...process.env,
      LOOPLINE_OUTPUT_URI: output,
      LOOPLINE_RESULT_PATH: resultPath,
      HP_ROWS: '2000',
      HP_EPOCHS: '50',
    },
  });
  if (trained.status !== 0) throw new Error(`training the example model failed: ${trained.stderr}`);
  return JSON.parse(readFileSync(resultPath, 'utf8'));
}

const S3_SECRET = 'loopline-s3';

/** The storage settings the operator gives pods (the chart's objectStorage values) for the local S3 server, and the Secret with its keys. */
function podStorage(s3: LocalS3) {
  const settings = storageSettingsFromEnv(s3.operatorEnv(S3_SECRET));
  const secrets = {
    [S3_SECRET]: {
      [STORAGE_ENV.accessKeyId]: s3.env[STORAGE_ENV.accessKeyId],
      [STORAGE_ENV.secretAccessKey]: s3.secretAccessKey,
    },
  };
  return { settings, secrets };
}

/** Pod network namespaces on the cluster's bridge, as the local-kubelet makes them (addresses leased from the same pool). */
let podNetwork: PodNetwork | undefined;
function sandboxFor(owner: string): Promise<PodSandbox> {
  podNetwork ??= new PodNetwork(
    podNetworkFromEnv(),
    join(
      process.env.LOOPLINE_CACHE ?? join(process.env.HOME ?? '/root', '.cache/loopline'),
      'local-kubelet',
      'addresses',
    ),
  );
  return podNetwork.attach(owner);
}

async function s3Digest(s3: LocalS3, uri: string): Promise<string> {
  const { pathname, host } = new URL(uri);
  const object = await s3.client.send(new GetObjectCommand({ Bucket: host, Key: pathname.slice(1) }));
  return `sha256:${createHash('sha256')
    .update(await object.Body!.transformToByteArray())
    .digest('hex')}`;
}

test.before(() => {
  if (unavailable) return;
  const built = spawnSync('bash', [IMAGES, 'build'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 30 * 60_000,
  });
  if (built.status !== 0) {
    console.error('scripts/images.sh build failed'); // uvu does not print an error thrown by a hook
    throw new Error('scripts/images.sh build failed');
  }
});

test.after(() => {
  for (const name of containers) spawnSync('podman', ['rm', '--force', '--time', '5', name]);
  rmSync(scratch, { recursive: true, force: true });
});

it("the sizes of the images: operator <= 150 MB besides the evaluator's DuckDB engine, predictor <= 250 MB (uncompressed)", () => {
  const size = (image: string) =>
    Number(podman(['image', 'inspect', '--format', '{{.Size}}', `localhost/loopline/${image}:0.1.0`]));
  const sizes = { operator: size('operator'), predictor: size('predictor'), trainer: size('example-trainer') };
  // The quality evaluator (operator/evaluate.js, run by the CronJobs from this image) needs DuckDB's native
  // bindings, the image's only node_modules; the operator process never loads them. They are the same files as here.
  const duckdb = Number(
    spawnSync('du', ['-sb', join(ROOT, 'node_modules/@duckdb')], { encoding: 'utf8' }).stdout.split('\t')[0],
  );
  assert.ok(duckdb > 10e6, `DuckDB's bindings measured: ${duckdb} bytes`);
  console.log(
    `image sizes (MB): ${Object.entries(sizes)
      .map(([k, v]) => `${k} ${(v / 1e6).toFixed(1)}`)
      .join(', ')}; DuckDB bindings ${(duckdb / 1e6).toFixed(1)}`,
  );
  assert.ok(sizes.operator - duckdb <= 150e6, `operator ${sizes.operator}, of which DuckDB ${duckdb}`);
  assert.ok(sizes.predictor <= 250e6, `predictor ${sizes.predictor}`);
});

it("operator image, as the chart's ServiceAccount under the chart's pod security: leads, registers a ModelVersion, stops cleanly on SIGTERM", async () => {
  requireKubeconfig();
  const release = `img-${process.pid}`;
  const namespace = uniqueNamespace('images');
  const fullname = `${release}-loopline`;
  const port = await freePort();
  const manifests = render([`operator.port=${port}`, 'operator.replicas=1', `nats.url=${process.env.NATS_URL}`], {
    release,
    namespace,
  });
  try {
    kubectl(['create', 'namespace', namespace]);
    kubectl([
      'apply',
      '--server-side',
      '--force-conflicts',
      '--field-manager=loopline-crds',
      '-f',
      join(CHART, 'crds'),
    ]);
    const rbac = manifests.filter((m: Manifest) =>
      ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(m.kind),
    );
    kubectl(['apply', '-f', '-'], rbac.map((m) => dump(m)).join('---\n'));
    // What the kubelet mounts: a token from the TokenRequest API, the cluster CA, the namespace.
    const token = kubectl(['create', 'token', fullname, '-n', namespace, '--duration=1h']).trim();
    const caCert = Buffer.from(
      kubectl([
        'config',
        'view',
        '--raw',
        '--minify',
        '--flatten',
        '-o',
        'jsonpath={.clusters[0].cluster.certificate-authority-data}',
      ]),
      'base64',
    ).toString();
    assert.match(caCert, /BEGIN CERTIFICATE/, 'the cluster CA from the kubeconfig');
    const server = new URL(kubectl(['config', 'view', '--minify', '-o', 'jsonpath={.clusters[0].cluster.server}']));
    const podSpec = structuredClone(find(manifests, 'Deployment').spec.template.spec);
    assert.is(podSpec.serviceAccountName, fullname);
    // Confined to the test's namespace, so it leaves other suites' objects alone; everything else as the chart renders it.
    podSpec.containers[0].args.push(`--namespace=${namespace}`);
    const name = `loopline-operator-${process.pid}`;
    start(
      {
        name,
        network: 'host',
        scratch: join(scratch, 'operator'),
        fieldRefs: { 'metadata.namespace': namespace },
        serviceAccount: { token, caCert, namespace, apiHost: server.hostname, apiPort: Number(server.port) },
      },
      podSpec,
    );
    const base = `http://127.0.0.1:${port}`;
    await until('operator /readyz', name, async () => ((await fetch(`${base}/readyz`)).ok ? true : undefined));
    assertRestricted(name);
    await until('leader', name, async () =>
      /loopline_leader 1/.test(await (await fetch(`${base}/metrics`)).text()) ? true : undefined,
    );
    assert.ok(
      kubectl(['get', 'lease', fullname, '-n', namespace, '-o', 'jsonpath={.spec.holderIdentity}']).length > 0,
      "holds the chart's Lease",
    );
    kubectl(['apply', '-n', namespace, '-f', join(ROOT, 'examples/modelversion.yaml')]);
    const ready = await until('ModelVersion Ready', name, async () => {
      const status = kubectl([
        'get',
        'modelversion',
        'credit-risk-v1',
        '-n',
        namespace,
        '-o',
        'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
      ]);
      return status === 'True' ? status : undefined;
    });
    assert.is(ready, 'True');
    assert.match(
      kubectl(['get', 'events.events.k8s.io', '-n', namespace, '-o', 'jsonpath={.items[*].reportingController}']),
      /loopline/,
    );
    assert.is(stop(name), 0, logs(name));
  } finally {
    deleteNamespace(namespace);
    run(KUBECTL, ['delete', 'clusterrole,clusterrolebinding', fullname, '--ignore-not-found']);
  }
});

it("predictor image, in a pod network namespace under the operator's pod security: fetches the example model from S3, answers health, readiness and a prediction", async () => {
  const s3 = requireS3('images');
  const dir = join(scratch, 'predictor-model');
  mkdirSync(dir, { recursive: true });
  const result = trainExampleModel(dir, s3.uri('predictor/model'));
  assert.match(result.artifact.uri, /^s3:\/\//);
  const isvc = load(readFileSync(join(ROOT, 'examples/inferenceservice.yaml'), 'utf8')) as any;
  isvc.metadata.namespace = 'images';
  // The operator's defaults for a predictor (the chart's predictor.resources), not the example's 1 CPU / 1 GiB.
  delete isvc.spec.predictor.resources;
  const model = {
    version: 1,
    name: 'credit-risk-v1',
    uri: result.artifact.uri,
    digest: result.artifact.digest,
    signature: result.signature,
    referenceProfile: result.referenceProfile,
  };
  const name = `loopline-predictor-${process.pid}`;
  const sandbox = await sandboxFor(name);
  try {
    const { settings, secrets } = podStorage(s3);
    const deployment = predictorDeployment(isvc, model, 'stable', {
      predictorResources: { cpu: '500m', memory: '512Mi' },
      storage: settings,
    });
    const podSpec = (deployment.spec as any).template.spec;
    const started = Date.now();
    start(
      {
        name,
        network: { netns: sandbox.netns },
        scratch: join(scratch, 'predictor'),
        fieldRefs: { 'status.podIP': sandbox.ip },
        secrets,
      },
      podSpec,
    );
    const base = `http://${sandbox.ip}:8080`;
    await until('predictor ready', name, async () => ((await fetch(`${base}/v2/health/ready`)).ok ? true : undefined));
    const readyMs = Date.now() - started;
    console.log(`predictor: podman run to /v2/health/ready ${readyMs} ms`);
    assertRestricted(name);
    assert.ok((await fetch(`${base}/v2/health/live`)).ok);
    const response = await fetch(`${base}/v2/models/credit-risk/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        inputs: [
          {
            name: result.signature.inputs[0].name,
            datatype: 'FP32',
            shape: [1, result.inputExample[0].length],
            data: result.inputExample[0],
          },
        ],
      }),
    });
    assert.is(response.status, 200, `${await response.clone().text()}\n${logs(name)}`);
    const answer = (await response.json()) as {
      model_version: string;
      outputs: Array<{ name: string; data: number[] }>;
    };
    assert.is(answer.model_version, '1');
    assert.ok(answer.outputs[0].data[0] > 0 && answer.outputs[0].data[0] < 1, JSON.stringify(answer));
    assert.match(
      await (await fetch(`${base}/metrics`)).text(),
      /prediction_requests_total\{[^}]*outcome="success"[^}]*\} 1/,
    );
    assert.not.match(logs(name), new RegExp(s3.secretAccessKey), 'the S3 secret key is in no log line');
    assert.is(stop(name), 0, logs(name));
  } finally {
    await podNetwork!.detach(name);
  }
});

it("trainer image, as the operator runs a TrainingJob's pod (restricted pod security): trains on the S3 data set, uploads model and profile, the result goes to the termination message", async () => {
  const s3 = requireS3('images');
  const job = load(readFileSync(join(ROOT, 'examples/trainingjob.yaml'), 'utf8')) as any;
  job.metadata.namespace = 'images';
  // This machine has two cores and no GPU: the example's 4 CPUs, 16 GiB and one A100 do not fit it.
  job.spec.resources = { cpu: '1', memory: '1Gi' };
  const csv = toCsv(generateCreditRisk({ rows: 2000, seed: 7, shift: 0 }));
  await s3.put('trainer/datasets/credit-risk/part-0.csv', csv);
  job.spec.dataset.uri = s3.uri('trainer/datasets/credit-risk/');
  // The trainer checks the data it reads against the recorded hash (LOOPLINE_DATASET_HASH).
  job.spec.dataset.hash = `sha256:${createHash('sha256').update(csv).digest('hex')}`;
  job.spec.output.uri = s3.uri('trainer/models/credit-risk/');
  const name = `loopline-trainer-${process.pid}`;
  const sandbox = await sandboxFor(name);
  try {
    const { settings, secrets } = podStorage(s3);
    const owner = {
      apiVersion: 'loopline.dev/v1alpha1',
      kind: 'TrainingJob',
      name: job.metadata.name,
      uid: 'uid',
      controller: true,
    };
    const pod = { spec: structuredClone((desiredJob(job, owner, 1, { storage: settings }).spec as any).template.spec) };
    // The operator leaves a training pod's security to the TrainingJob's image; run it as restricted as the predictor.
    pod.spec.securityContext = { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } };
    pod.spec.containers[0].securityContext = {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    };
    // The Job controller annotates rank 0's pod with its completion index.
    const fieldRefs = { [`metadata.annotations['${COMPLETION_INDEX}']`]: '0' };
    const { terminationMessageFile } = start(
      { name, network: { netns: sandbox.netns }, scratch: join(scratch, 'trainer'), secrets, fieldRefs },
      pod.spec,
    );
    const exit = spawnSync('podman', ['wait', name], { encoding: 'utf8', timeout: 5 * 60_000 }).stdout.trim();
    assert.is(exit, '0', logs(name));
    const message = readFileSync(terminationMessageFile, 'utf8');
    assert.ok(message.length > 0 && message.length <= 4096, `a result of at most 4 KiB, got ${message.length} bytes`);
    const result = JSON.parse(message);
    assert.is(
      result.artifact.uri,
      `${s3.uri('trainer/models/credit-risk')}/images/credit-risk-train/attempt-1/model.onnx`,
    );
    assert.is(result.artifact.digest, await s3Digest(s3, result.artifact.uri));
    assert.is(result.referenceProfile.digest, await s3Digest(s3, result.referenceProfile.uri));
    assert.ok(result.metrics.auc >= 0.75, `auc ${result.metrics.auc} passes the example's registration gate`);
    assert.not.match(logs(name), new RegExp(s3.secretAccessKey), 'the S3 secret key is in no log line');
  } finally {
    await podNetwork!.detach(name);
  }
});

it('npm run images writes OCI archives skopeo reads, named for containerd (kind load image-archive) and OCI tools', () => {
  const out = join(scratch, 'archives');
  const written = spawnSync('bash', [IMAGES, 'archives'], {
    encoding: 'utf8',
    env: { ...process.env, LOOPLINE_IMAGES_OUT: out },
    timeout: 10 * 60_000,
  });
  assert.is(written.status, 0, written.stderr);
  const entrypoints: Record<string, string[]> = {
    operator: ['/nodejs/bin/node', 'operator/main.js'],
    predictor: ['/nodejs/bin/node', 'server/src/main.js'],
    'example-trainer': ['/nodejs/bin/node', 'examples/trainer/src/main.js'],
  };
  for (const [image, entrypoint] of Object.entries(entrypoints)) {
    const archive = `oci-archive:${join(out, `loopline-${image}.tar`)}`;
    const config = JSON.parse(
      spawnSync('skopeo', ['inspect', '--config', archive], { encoding: 'utf8' }).stdout,
    ).config;
    assert.equal(config.Entrypoint, entrypoint, image);
    assert.is(config.User, '65532:65532', image);
    const index = JSON.parse(
      spawnSync('tar', ['-xOf', join(out, `loopline-${image}.tar`), './index.json'], { encoding: 'utf8' }).stdout,
    );
    assert.equal(index.manifests[0].annotations, {
      'org.opencontainers.image.ref.name': `loopline/${image}:0.1.0`,
      'io.containerd.image.name': `docker.io/loopline/${image}:0.1.0`,
    });
  }
});

test.run();
