// The local cluster behaves like a real one where Loopline depends on it: a real
// API server with RBAC, the scheduler honouring GPU capacity and taints on
// KWOK-simulated nodes, an S3 server holding a bucket, Traefik programming the Gateway,
// and a clean teardown.
import { connect } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { HeadBucketCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { s3ClientFromEnv } from '../../operator/api/object-storage.ts';
import { requireS3 } from '../../test/support/s3.ts';

const clusterScript = fileURLToPath(new URL('../cluster/cluster.sh', import.meta.url));
if (!process.env.KUBECONFIG) throw new Error('KUBECONFIG is not set: run through `npm test`, or `eval "$(bash e2e/cluster/cluster.sh env)"` first');

const kc = new k8s.KubeConfig();
kc.loadFromDefault();
const core = kc.makeApiClient(k8s.CoreV1Api);
const ns = `cluster-test-${process.pid}`;

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function gpuPod(name: string, tolerate: boolean): k8s.V1Pod {
  return {
    metadata: { name },
    spec: {
      restartPolicy: 'Never',
      containers: [{ name: 'main', image: 'busybox:stable', resources: { limits: { 'nvidia.com/gpu': '1' } } }],
      tolerations: tolerate ? [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] : undefined,
    },
  };
}

test.before(async () => {
  await core.createNamespace({ body: { metadata: { name: ns } } });
});

test.after(async () => {
  await core.deleteNamespace({ name: ns }).catch(() => undefined);
});

test('nodes: two GPU nodes advertise nvidia.com/gpu=8 with the product label and taint, two CPU nodes have no GPUs', async () => {
  const nodes = (await core.listNode()).items;
  const gpu = nodes.filter((n) => n.status?.capacity?.['nvidia.com/gpu'] === '8');
  const cpu = nodes.filter((n) => !n.status?.capacity?.['nvidia.com/gpu']);
  assert.ok(gpu.length >= 2, `expected >= 2 GPU nodes, got ${gpu.map((n) => n.metadata?.name)}`);
  assert.ok(cpu.length >= 2, `expected >= 2 CPU nodes, got ${cpu.map((n) => n.metadata?.name)}`);
  for (const n of gpu) {
    assert.ok(n.metadata?.labels?.['nvidia.com/gpu.product'], `${n.metadata?.name} lacks nvidia.com/gpu.product`);
    assert.ok(n.spec?.taints?.some((t) => t.key === 'nvidia.com/gpu' && t.effect === 'NoSchedule'), `${n.metadata?.name} lacks the GPU taint`);
  }
  for (const n of nodes) {
    const ready = n.status?.conditions?.find((c) => c.type === 'Ready');
    assert.is(ready?.status, 'True', `${n.metadata?.name} is not Ready`);
  }
});

test('scheduler: a pod requesting nvidia.com/gpu: 1 with the toleration lands on a GPU node, never a CPU node', async () => {
  const names = ['gpu-a', 'gpu-b', 'gpu-c', 'gpu-d'];
  for (const name of names) await core.createNamespacedPod({ namespace: ns, body: gpuPod(name, true) });
  for (const name of names) {
    const node = await waitFor(`${name} to be scheduled`, async () => (await core.readNamespacedPod({ name, namespace: ns })).spec?.nodeName);
    const n = await core.readNode({ name: node });
    assert.is(n.status?.capacity?.['nvidia.com/gpu'], '8', `${name} was scheduled on ${node}, which has no GPUs`);
  }
});

test('scheduler: a GPU pod without the toleration, or asking for more GPUs than any node has, stays Pending unschedulable', async () => {
  await core.createNamespacedPod({ namespace: ns, body: gpuPod('no-toleration', false) });
  const big = gpuPod('too-many-gpus', true);
  big.spec!.containers[0].resources = { limits: { 'nvidia.com/gpu': '9' } };
  await core.createNamespacedPod({ namespace: ns, body: big });
  for (const name of ['no-toleration', 'too-many-gpus']) {
    const cond = await waitFor(`${name} to be marked unschedulable`, async () => {
      const pod = await core.readNamespacedPod({ name, namespace: ns });
      return pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable');
    });
    assert.ok(cond.message, `${name}: the scheduler gave no reason`);
    const pod = await core.readNamespacedPod({ name, namespace: ns });
    assert.not.ok(pod.spec?.nodeName, `${name} was bound to ${pod.spec?.nodeName}`);
  }
});

test('kwok: ordinary pods on simulated nodes become Running with an address from 198.18.0.0/16 that EndpointSlices accept', async () => {
  const pod = await waitFor('gpu-a to run', async () => {
    const p = await core.readNamespacedPod({ name: 'gpu-a', namespace: ns });
    return p.status?.phase === 'Running' ? p : undefined;
  });
  assert.match(pod.status?.podIP ?? '', /^198\.18\.\d+\.\d+$/);
  // A Service selecting it gets an EndpointSlice with that address from the real endpointslice controller.
  await core.patchNamespacedPod({ name: 'gpu-a', namespace: ns, body: { metadata: { labels: { app: 'gpu-a' } } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
  await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'gpu-a' }, spec: { selector: { app: 'gpu-a' }, ports: [{ port: 80 }] } } });
  const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
  const addresses = await waitFor('an EndpointSlice for the gpu-a Service', async () => {
    const slices = (await discovery.listNamespacedEndpointSlice({ namespace: ns, labelSelector: 'kubernetes.io/service-name=gpu-a' })).items;
    const found = slices.flatMap((s) => (s.endpoints ?? []).flatMap((e) => e.addresses));
    return found.length ? found : undefined;
  });
  assert.equal(addresses, [pod.status!.podIP]);
});

test('rbac: an unprivileged service account is refused by the API server (authorization is on)', async () => {
  await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'nobody' } } });
  const token = await core.createNamespacedServiceAccountToken({ name: 'nobody', namespace: ns, body: { spec: { audiences: [] } } });
  assert.ok(token.status?.token, 'no token was issued');
  const as = new k8s.KubeConfig();
  const cluster = kc.getCurrentCluster()!;
  as.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'nobody', token: token.status!.token }],
    contexts: [{ name: 'nobody', cluster: cluster.name, user: 'nobody' }],
    currentContext: 'nobody',
  });
  const err = await as.makeApiClient(k8s.CoreV1Api).listNode().then(() => undefined, (e: unknown) => e);
  assert.ok(err, 'listing nodes as an unprivileged service account succeeded');
  assert.is((err as { code?: number }).code, 403);
});

test('s3: versitygw serves the bucket `up` made to the keys `env` exports, and refuses any other key', async () => {
  const s3 = requireS3('cluster');
  await s3.client.send(new HeadBucketCommand({ Bucket: s3.bucket }));
  await s3.put('probe.txt', 'hello');
  const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: new URL(s3.uri('')).pathname.slice(1) }));
  assert.equal(listed.Contents?.map((o) => o.Key?.split('/').pop()), ['probe.txt']);
  const wrong = s3ClientFromEnv({ ...s3.env, AWS_SECRET_ACCESS_KEY: `${s3.secretAccessKey}x` });
  const refused = await wrong.send(new HeadBucketCommand({ Bucket: s3.bucket })).then(() => undefined, (e: any) => e.$metadata?.httpStatusCode);
  assert.is(refused, 403);
});

test('gateway: Traefik has programmed loopline-system/loopline-gateway with the address and port of GATEWAY_URL, and answers there', async () => {
  const url = new URL(process.env.GATEWAY_URL ?? '');
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const gateway = (await custom.getNamespacedCustomObject({ group: 'gateway.networking.k8s.io', version: 'v1', namespace: 'loopline-system', plural: 'gateways', name: 'loopline-gateway' })) as any;
  assert.ok(gateway.status.conditions.some((c: any) => c.type === 'Programmed' && c.status === 'True'), JSON.stringify(gateway.status.conditions));
  assert.equal(gateway.status.addresses, [{ type: 'IPAddress', value: url.hostname }]);
  assert.equal(gateway.spec.listeners.map((l: any) => [l.name, l.protocol, l.port]), [['http', 'HTTP', Number(url.port)]]);
  const crds = kc.makeApiClient(k8s.ApiextensionsV1Api);
  const names = (await crds.listCustomResourceDefinition()).items.map((crd) => crd.metadata!.name!);
  for (const kind of ['gatewayclasses', 'gateways', 'httproutes', 'grpcroutes', 'referencegrants', 'backendtlspolicies']) assert.ok(names.includes(`${kind}.gateway.networking.k8s.io`), `Gateway API CRD ${kind}`);
  for (const kind of ['ingressroutes', 'traefikservices', 'middlewares']) assert.ok(names.includes(`${kind}.traefik.io`), `Traefik CRD ${kind}`);
  // Traefik itself answers: no route matches this host.
  const answer = await fetch(`${url.origin}/`);
  assert.is(answer.status, 404);
});

const listening = (port: number) => new Promise<boolean>((resolve) => {
  const socket = connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true); });
  socket.once('error', () => resolve(false));
});

test('lifecycle: a second cluster comes up with its own S3 keys and gateway port, and `down` leaves no process, port or state behind', async () => {
  const natsPort = 4300 + (process.pid % 500);
  const env = { ...process.env, LOOPLINE_CLUSTER: `teardown-${process.pid}`, LOOPLINE_NATS_PORT: String(natsPort) };
  const up = spawnSync('bash', [clusterScript, 'up'], { env, encoding: 'utf8' });
  assert.is(up.status, 0, up.stderr);
  const kubeconfig = up.stdout.trim().split('\n').pop()!;
  const nodes = execFileSync('kubectl', ['--kubeconfig', kubeconfig, 'get', 'nodes', '-o', 'name'], { encoding: 'utf8' });
  assert.match(nodes, /node\/gpu-node-0/);
  const exported = Object.fromEntries([...execFileSync('bash', [clusterScript, 'env'], { env, encoding: 'utf8' }).matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1], m[2]]));
  assert.is(exported.AWS_ENDPOINT_URL_S3, `http://127.0.0.1:${natsPort + 3000}`);
  assert.match(exported.AWS_SECRET_ACCESS_KEY ?? '', /^[A-Za-z0-9]{40}$/);
  assert.is.not(exported.AWS_SECRET_ACCESS_KEY, process.env.AWS_SECRET_ACCESS_KEY, 'each cluster makes its own keys');
  await s3ClientFromEnv(exported).send(new HeadBucketCommand({ Bucket: exported.LOOPLINE_S3_BUCKET }));
  assert.is(exported.GATEWAY_URL, `http://127.0.0.1:${natsPort + 4000}`);
  assert.is((await fetch(`${exported.GATEWAY_URL}/`)).status, 404, 'its own Traefik answers on its gateway port');
  const down = spawnSync('bash', [clusterScript, 'down'], { env, encoding: 'utf8' });
  assert.is(down.status, 0, down.stderr);
  const left = spawnSync('pgrep', ['-af', `teardown-${process.pid}`], { encoding: 'utf8' }).stdout.trim();
  assert.is(left, '', `processes left behind:\n${left}`);
  for (const port of [natsPort, natsPort + 3000, natsPort + 4000, natsPort + 5000]) assert.not.ok(await listening(port), `port ${port} still listens`);
  assert.not.match(execFileSync('bash', [clusterScript, 'env'], { env, encoding: 'utf8' }), /AWS_SECRET_ACCESS_KEY/, 'the keys went with the cluster');
});

test.run();
