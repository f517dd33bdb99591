// The three images scripts/images.sh builds from the Dockerfiles, run with podman (runc) exactly as the
// chart and the operator ask Kubernetes to run them: the pod spec each produces is turned into podman
// arguments by e2e/images/podman.ts (user 65532, read-only root filesystem, no capabilities, no privilege
// escalation, RuntimeDefault seccomp, the env, resource limits and volumes of the spec). The operator
// reconciles against the local API server as the chart's ServiceAccount with a TokenRequest token; the
// predictor, in a network namespace of its own, serves the example model; the trainer trains and writes
// its result to the termination message. Where buildah or podman is missing every test is skipped.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dump, load } from 'js-yaml';
import { CHART, ROOT, deleteNamespace, find, kubectl, render, requireKubeconfig, run, KUBECTL, uniqueNamespace, type Manifest } from './support/chart.ts';
import { freePort } from '../../test/support/local.ts';
import { networkNamespace, podmanRun, type ContainerRun } from '../../e2e/images/podman.ts';
import { predictorDeployment } from '../../operator/inferenceservice/desired.ts';
import { desiredPod } from '../../operator/trainingjob/pods.ts';
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
  return spawnSync('podman', ['logs', name], { encoding: 'utf8' }).stdout.slice(-4000) + spawnSync('podman', ['logs', name], { encoding: 'utf8' }).stderr.slice(-4000);
}

/** The security state of the container's main process as the kernel holds it. */
function processSecurity(name: string): Record<string, string> {
  const pid = podman(['inspect', '--format', '{{.State.Pid}}', name]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (key: string) => new RegExp(`^${key}:\\s+(.*)$`, 'm').exec(status)![1].trim();
  return { uid: field('Uid'), gid: field('Gid'), capEff: field('CapEff'), capBnd: field('CapBnd'), noNewPrivs: field('NoNewPrivs'), seccomp: field('Seccomp') };
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

async function until<T>(what: string, name: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (podman(['inspect', '--format', '{{.State.Running}}', name]) !== 'true') throw new Error(`${what}: the container exited:\n${logs(name)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${what}: timed out:\n${logs(name)}`);
}

function stop(name: string): number {
  podman(['stop', '--time', '30', name], 60_000);
  return Number(podman(['inspect', '--format', '{{.State.ExitCode}}', name]));
}

/** The example trainer's model, trained on this machine: what the predictor serves. */
function trainExampleModel(dir: string): any {
  const resultPath = join(dir, 'result.json');
  const trained = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'examples/trainer/src/main.ts')], {
    cwd: ROOT, encoding: 'utf8',
    env: { ...process.env, LOOPLINE_OUTPUT_URI: `file://${dir}/model`, LOOPLINE_RESULT_PATH: resultPath, HP_ROWS: '2000', HP_EPOCHS: '50' },
  });
  if (trained.status !== 0) throw new Error(`training the example model failed: ${trained.stderr}`);
  return JSON.parse(readFileSync(resultPath, 'utf8'));
}

test.before(() => {
  if (unavailable) return;
  const built = spawnSync('bash', [IMAGES, 'build'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 30 * 60_000 });
  if (built.status !== 0) {
    console.error('scripts/images.sh build failed'); // uvu does not print an error thrown by a hook
    throw new Error('scripts/images.sh build failed');
  }
});

test.after(() => {
  for (const name of containers) spawnSync('podman', ['rm', '--force', '--time', '5', name]);
  rmSync(scratch, { recursive: true, force: true });
});

it('the sizes of the images: operator <= 150 MB, predictor <= 250 MB (uncompressed)', () => {
  const size = (image: string) => Number(podman(['image', 'inspect', '--format', '{{.Size}}', `localhost/loopline/${image}:0.1.0`]));
  const sizes = { operator: size('operator'), predictor: size('predictor'), trainer: size('example-trainer') };
  console.log(`image sizes (MB): ${Object.entries(sizes).map(([k, v]) => `${k} ${(v / 1e6).toFixed(1)}`).join(', ')}`);
  assert.ok(sizes.operator <= 150e6, `operator ${sizes.operator}`);
  assert.ok(sizes.predictor <= 250e6, `predictor ${sizes.predictor}`);
});

it('operator image, as the chart\'s ServiceAccount under the chart\'s pod security: leads, registers a ModelVersion, stops cleanly on SIGTERM', async () => {
  requireKubeconfig();
  const release = `img-${process.pid}`;
  const namespace = uniqueNamespace('images');
  const fullname = `${release}-loopline`;
  const port = await freePort();
  const manifests = render([`operator.port=${port}`, 'operator.replicas=1', `nats.url=${process.env.NATS_URL}`], { release, namespace });
  try {
    kubectl(['create', 'namespace', namespace]);
    kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=loopline-crds', '-f', join(CHART, 'crds')]);
    const rbac = manifests.filter((m: Manifest) => ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(m.kind));
    kubectl(['apply', '-f', '-'], rbac.map((m) => dump(m)).join('---\n'));
    // What the kubelet mounts: a token from the TokenRequest API, the cluster CA, the namespace.
    const token = kubectl(['create', 'token', fullname, '-n', namespace, '--duration=1h']).trim();
    const caCert = Buffer.from(kubectl(['config', 'view', '--raw', '--minify', '--flatten', '-o', 'jsonpath={.clusters[0].cluster.certificate-authority-data}']), 'base64').toString();
    assert.match(caCert, /BEGIN CERTIFICATE/, 'the cluster CA from the kubeconfig');
    const server = new URL(kubectl(['config', 'view', '--minify', '-o', 'jsonpath={.clusters[0].cluster.server}']));
    const podSpec = structuredClone(find(manifests, 'Deployment').spec.template.spec);
    assert.is(podSpec.serviceAccountName, fullname);
    // Confined to the test's namespace, so it leaves other suites' objects alone; everything else as the chart renders it.
    podSpec.containers[0].args.push(`--namespace=${namespace}`);
    const name = `loopline-operator-${process.pid}`;
    start({
      name, network: 'host', scratch: join(scratch, 'operator'), fieldRefs: { 'metadata.namespace': namespace },
      serviceAccount: { token, caCert, namespace, apiHost: server.hostname, apiPort: Number(server.port) },
    }, podSpec);
    const base = `http://127.0.0.1:${port}`;
    await until('operator /readyz', name, async () => ((await fetch(`${base}/readyz`)).ok ? true : undefined));
    assertRestricted(name);
    await until('leader', name, async () => (/loopline_leader 1/.test(await (await fetch(`${base}/metrics`)).text()) ? true : undefined));
    assert.ok(kubectl(['get', 'lease', fullname, '-n', namespace, '-o', 'jsonpath={.spec.holderIdentity}']).length > 0, 'holds the chart\'s Lease');
    kubectl(['apply', '-n', namespace, '-f', join(ROOT, 'examples/modelversion.yaml')]);
    const ready = await until('ModelVersion Ready', name, async () => {
      const status = kubectl(['get', 'modelversion', 'credit-risk-v1', '-n', namespace, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
      return status === 'True' ? status : undefined;
    });
    assert.is(ready, 'True');
    assert.match(kubectl(['get', 'events.events.k8s.io', '-n', namespace, '-o', 'jsonpath={.items[*].reportingController}']), /loopline/);
    assert.is(stop(name), 0, logs(name));
  } finally {
    deleteNamespace(namespace);
    run(KUBECTL, ['delete', 'clusterrole,clusterrolebinding', fullname, '--ignore-not-found']);
  }
});

it('predictor image, in its own network namespace under the operator\'s pod security: loads the example model, answers health, readiness and a prediction', async () => {
  const dir = join(scratch, 'predictor-model');
  mkdirSync(dir, { recursive: true });
  const result = trainExampleModel(dir);
  const isvc = load(readFileSync(join(ROOT, 'examples/inferenceservice.yaml'), 'utf8')) as any;
  isvc.metadata.namespace = 'images';
  // The operator's defaults for a predictor (the chart's predictor.resources), not the example's 1 CPU / 1 GiB.
  delete isvc.spec.predictor.resources;
  const model = { version: 1, name: 'credit-risk-v1', uri: result.artifact.uri, digest: result.artifact.digest, signature: result.signature, referenceProfile: result.referenceProfile };
  const deployment = predictorDeployment(isvc, model, 'stable', { predictorResources: { cpu: '500m', memory: '512Mi' } });
  const podSpec = (deployment.spec as any).template.spec;
  const sandbox = networkNamespace(`llimg-${process.pid}`);
  try {
    const name = `loopline-predictor-${process.pid}`;
    const started = Date.now();
    start({ name, network: { netns: sandbox.netns }, scratch: join(scratch, 'predictor'), fieldRefs: { 'status.podIP': sandbox.podIP }, hostPaths: [{ path: dir, host: dir, readOnly: true }] }, podSpec);
    const base = `http://${sandbox.podIP}:8080`;
    await until('predictor ready', name, async () => ((await fetch(`${base}/v2/health/ready`)).ok ? true : undefined));
    const readyMs = Date.now() - started;
    console.log(`predictor: podman run to /v2/health/ready ${readyMs} ms`);
    assertRestricted(name);
    assert.ok((await fetch(`${base}/v2/health/live`)).ok);
    const response = await fetch(`${base}/v2/models/credit-risk/infer`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: result.signature.inputs[0].name, datatype: 'FP32', shape: [1, result.inputExample[0].length], data: result.inputExample[0] }] }),
    });
    assert.is(response.status, 200, `${await response.clone().text()}\n${logs(name)}`);
    const answer = (await response.json()) as { model_version: string; outputs: Array<{ name: string; data: number[] }> };
    assert.is(answer.model_version, '1');
    assert.ok(answer.outputs[0].data[0] > 0 && answer.outputs[0].data[0] < 1, JSON.stringify(answer));
    assert.match(await (await fetch(`${base}/metrics`)).text(), /prediction_requests_total\{[^}]*outcome="success"[^}]*\} 1/);
    assert.is(stop(name), 0, logs(name));
  } finally {
    sandbox.remove();
  }
});

it('trainer image, as the operator runs a TrainingJob\'s pod (restricted pod security): trains on the data set, writes model and profile, the result goes to the termination message', () => {
  const job = load(readFileSync(join(ROOT, 'examples/trainingjob.yaml'), 'utf8')) as any;
  job.metadata.namespace = 'images';
  // This machine has two cores and no GPU: the example's 4 CPUs, 16 GiB and one A100 do not fit it.
  job.spec.resources = { cpu: '1', memory: '1Gi' };
  const pod = desiredPod(job, { apiVersion: 'loopline.dev/v1alpha1', kind: 'TrainingJob', name: job.metadata.name, uid: 'uid', controller: true }, 1, 0) as any;
  // The operator leaves a training pod's security to the TrainingJob's image; run it as restricted as the predictor.
  pod.spec.securityContext = { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } };
  pod.spec.containers[0].securityContext = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } };
  // The node's /var/lib/loopline, where the example's file:// data set and output live, owned by the trainer's user.
  const node = join(scratch, 'var-lib-loopline');
  const datasetDir = join(node, fileURLToPath(job.spec.dataset.uri).replace('/var/lib/loopline/', ''));
  mkdirSync(datasetDir, { recursive: true });
  writeFileSync(join(datasetDir, 'part-0.csv'), toCsv(generateCreditRisk({ rows: 2000, seed: 7, shift: 0 })));
  for (const path of [node, join(node, 'datasets'), datasetDir]) chmodSync(path, 0o755);
  mkdirSync(join(node, 'models'));
  chownSync(join(node, 'models'), 65532, 65532);
  const name = `loopline-trainer-${process.pid}`;
  const { terminationMessageFile } = start({ name, network: 'host', scratch: join(scratch, 'trainer'), hostPaths: [{ path: '/var/lib/loopline', host: node }] }, pod.spec);
  const exit = podman(['wait', name], 5 * 60_000);
  assert.is(exit, '0', logs(name));
  const message = readFileSync(terminationMessageFile, 'utf8');
  assert.ok(message.length > 0 && message.length <= 4096, `a result of at most 4 KiB, got ${message.length} bytes`);
  const result = JSON.parse(message);
  const output = `file:///var/lib/loopline/models/credit-risk/images/credit-risk-train/attempt-1`;
  assert.is(result.artifact.uri, `${output}/model.onnx`);
  const onHost = (uri: string) => join(node, fileURLToPath(uri).replace('/var/lib/loopline/', ''));
  assert.is(result.artifact.digest, `sha256:${createHash('sha256').update(readFileSync(onHost(result.artifact.uri))).digest('hex')}`);
  assert.is(result.referenceProfile.digest, `sha256:${createHash('sha256').update(readFileSync(onHost(result.referenceProfile.uri))).digest('hex')}`);
  assert.ok(result.metrics.auc >= 0.75, `auc ${result.metrics.auc} passes the example's registration gate`);
});

it('npm run images writes OCI archives skopeo reads, named for containerd (kind load image-archive) and OCI tools', () => {
  const out = join(scratch, 'archives');
  const written = spawnSync('bash', [IMAGES, 'archives'], { encoding: 'utf8', env: { ...process.env, LOOPLINE_IMAGES_OUT: out }, timeout: 10 * 60_000 });
  assert.is(written.status, 0, written.stderr);
  const entrypoints: Record<string, string[]> = {
    operator: ['/nodejs/bin/node', 'operator/main.js'],
    predictor: ['/nodejs/bin/node', 'server/src/main.js'],
    'example-trainer': ['/nodejs/bin/node', 'examples/trainer/src/main.js'],
  };
  for (const [image, entrypoint] of Object.entries(entrypoints)) {
    const archive = `oci-archive:${join(out, `loopline-${image}.tar`)}`;
    const config = JSON.parse(spawnSync('skopeo', ['inspect', '--config', archive], { encoding: 'utf8' }).stdout).config;
    assert.equal(config.Entrypoint, entrypoint, image);
    assert.is(config.User, '65532:65532', image);
    const index = JSON.parse(spawnSync('tar', ['-xOf', join(out, `loopline-${image}.tar`), './index.json'], { encoding: 'utf8' }).stdout);
    assert.equal(index.manifests[0].annotations, { 'org.opencontainers.image.ref.name': `loopline/${image}:0.1.0`, 'io.containerd.image.name': `docker.io/loopline/${image}:0.1.0` });
  }
});

test.run();
