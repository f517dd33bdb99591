// The local cluster behaves like a real one where Loopline depends on it: a real
// API server with RBAC, the scheduler honouring GPU capacity and taints on
// KWOK-simulated nodes, Kueue queueing batch Jobs, an S3 server holding a bucket, Traefik programming the
// Gateway, a pod network of its own per cluster, and a clean teardown.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { HeadBucketCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { s3ClientFromEnv } from '../../operator/api/object-storage.ts';
import { waitFor } from '../../test/support/local.ts';
import { requireS3 } from '../../test/support/s3.ts';

const clusterScript = fileURLToPath(new URL('../cluster/cluster.sh', import.meta.url));
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
if (!process.env.KUBECONFIG)
  throw new Error(
    'KUBECONFIG is not set: run through `npm test`, or `eval "$(bash e2e/cluster/cluster.sh env)"` first',
  );

const kc = new k8s.KubeConfig();
kc.loadFromDefault();
const core = kc.makeApiClient(k8s.CoreV1Api);
const ns = `cluster-test-${process.pid}`;

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
    assert.ok(
      n.spec?.taints?.some((t) => t.key === 'nvidia.com/gpu' && t.effect === 'NoSchedule'),
      `${n.metadata?.name} lacks the GPU taint`,
    );
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
    const node = await waitFor(
      `${name} to be scheduled`,
      async () => (await core.readNamespacedPod({ name, namespace: ns })).spec?.nodeName,
    );
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
  await core.patchNamespacedPod(
    { name: 'gpu-a', namespace: ns, body: { metadata: { labels: { app: 'gpu-a' } } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
  await core.createNamespacedService({
    namespace: ns,
    body: { metadata: { name: 'gpu-a' }, spec: { selector: { app: 'gpu-a' }, ports: [{ port: 80 }] } },
  });
  const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
  const addresses = await waitFor('an EndpointSlice for the gpu-a Service', async () => {
    const slices = (
      await discovery.listNamespacedEndpointSlice({ namespace: ns, labelSelector: 'kubernetes.io/service-name=gpu-a' })
    ).items;
    const found = slices.flatMap((s) => (s.endpoints ?? []).flatMap((e) => e.addresses));
    return found.length ? found : undefined;
  });
  assert.equal(addresses, [pod.status!.podIP]);
});

test('rbac: an unprivileged service account is refused by the API server (authorization is on)', async () => {
  await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'nobody' } } });
  const token = await core.createNamespacedServiceAccountToken({
    name: 'nobody',
    namespace: ns,
    body: { spec: { audiences: [] } },
  });
  assert.ok(token.status?.token, 'no token was issued');
  const as = new k8s.KubeConfig();
  const cluster = kc.getCurrentCluster()!;
  as.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'nobody', token: token.status!.token }],
    contexts: [{ name: 'nobody', cluster: cluster.name, user: 'nobody' }],
    currentContext: 'nobody',
  });
  const err = await as
    .makeApiClient(k8s.CoreV1Api)
    .listNode()
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  assert.ok(err, 'listing nodes as an unprivileged service account succeeded');
  assert.is((err as { code?: number }).code, 403);
});

test("kueue: a Job labelled for a LocalQueue is held by Kueue's webhook, admitted onto the GPU flavor's nodes, and run to completion", async () => {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const batch = kc.makeApiClient(k8s.BatchV1Api);
  await custom.createNamespacedCustomObject({
    group: 'kueue.x-k8s.io',
    version: 'v1beta2',
    namespace: ns,
    plural: 'localqueues',
    body: {
      apiVersion: 'kueue.x-k8s.io/v1beta2',
      kind: 'LocalQueue',
      metadata: { name: 'training' },
      spec: { clusterQueue: 'training' },
    },
  });
  const created = await batch.createNamespacedJob({
    namespace: ns,
    body: {
      metadata: { name: 'queued', labels: { 'kueue.x-k8s.io/queue-name': 'training' } },
      spec: {
        template: {
          spec: {
            restartPolicy: 'Never',
            tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
            containers: [
              {
                name: 'main',
                image: 'busybox:stable',
                resources: { limits: { 'nvidia.com/gpu': '2' }, requests: { 'nvidia.com/gpu': '2' } },
              },
            ],
          },
        },
      },
    },
  });
  assert.is(created.spec?.suspend, true, "Kueue's mutating webhook suspended the Job on create");
  const done = await waitFor('the Job to complete', async () => {
    const job = await batch.readNamespacedJob({ name: 'queued', namespace: ns });
    return job.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True') ? job : undefined;
  });
  assert.is(
    done.spec?.template.spec?.nodeSelector?.['nvidia.com/gpu.product'],
    'NVIDIA-A100-SXM4-80GB',
    "admitted with the a100-80gb flavor's node label",
  );
  const workloads = (await custom.listNamespacedCustomObject({
    group: 'kueue.x-k8s.io',
    version: 'v1beta2',
    namespace: ns,
    plural: 'workloads',
  })) as { items: Array<{ status?: { admission?: { clusterQueue?: string } } }> };
  assert.equal(
    workloads.items.map((w) => w.status?.admission?.clusterQueue),
    ['training'],
  );
});

test('s3: versitygw serves the bucket `up` made to the keys `env` exports, and refuses any other key', async () => {
  const s3 = requireS3('cluster');
  await s3.client.send(new HeadBucketCommand({ Bucket: s3.bucket }));
  await s3.put('probe.txt', 'hello');
  const listed = await s3.client.send(
    new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: new URL(s3.uri('')).pathname.slice(1) }),
  );
  assert.equal(
    listed.Contents?.map((o) => o.Key?.split('/').pop()),
    ['probe.txt'],
  );
  const wrong = s3ClientFromEnv({ ...s3.env, AWS_SECRET_ACCESS_KEY: `${s3.secretAccessKey}x` });
  const refused = await wrong.send(new HeadBucketCommand({ Bucket: s3.bucket })).then(
    () => undefined,
    (e: any) => e.$metadata?.httpStatusCode,
  );
  assert.is(refused, 403);
});

test('gateway: Traefik has programmed loopline-system/loopline-gateway with the address and port of GATEWAY_URL, and answers there', async () => {
  const url = new URL(process.env.GATEWAY_URL ?? '');
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const gateway = (await custom.getNamespacedCustomObject({
    group: 'gateway.networking.k8s.io',
    version: 'v1',
    namespace: 'loopline-system',
    plural: 'gateways',
    name: 'loopline-gateway',
  })) as any;
  assert.ok(
    gateway.status.conditions.some((c: any) => c.type === 'Programmed' && c.status === 'True'),
    JSON.stringify(gateway.status.conditions),
  );
  assert.equal(gateway.status.addresses, [{ type: 'IPAddress', value: url.hostname }]);
  assert.equal(
    gateway.spec.listeners.map((l: any) => [l.name, l.protocol, l.port]),
    [['http', 'HTTP', Number(url.port)]],
  );
  const crds = kc.makeApiClient(k8s.ApiextensionsV1Api);
  const names = (await crds.listCustomResourceDefinition()).items.map((crd) => crd.metadata!.name!);
  for (const kind of [
    'gatewayclasses',
    'gateways',
    'httproutes',
    'grpcroutes',
    'referencegrants',
    'backendtlspolicies',
  ])
    assert.ok(names.includes(`${kind}.gateway.networking.k8s.io`), `Gateway API CRD ${kind}`);
  for (const kind of ['ingressroutes', 'traefikservices', 'middlewares'])
    assert.ok(names.includes(`${kind}.traefik.io`), `Traefik CRD ${kind}`);
  // Traefik itself answers: no route matches this host.
  const answer = await fetch(`${url.origin}/`);
  assert.is(answer.status, 404);
});

/** The `export NAME=value` lines of `cluster.sh env` applied to `base`. */
function clusterEnv(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env = { ...base };
  for (const line of execFileSync('bash', [clusterScript, 'env'], { env: base, encoding: 'utf8' }).split('\n')) {
    const m = /^export (\w+)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!.replace('$PATH', base.PATH ?? '');
  }
  return env;
}

/** Ports listening on this machine, by the pid owning them (`ss -tlnp`). */
function listeningPorts(): Array<{ port: string; pids: number[] }> {
  return execFileSync('ss', ['-Htlnp'], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((line) => ({
      port: line.split(/\s+/)[3]!.split(':').pop()!,
      pids: [...line.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])),
    }));
}

/** Running, not yet gone: a zombie (dead, its exit status not yet collected) does not count. */
function alive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0] !== 'Z';
  } catch {
    return false;
  }
}

test('lifecycle: a second cluster comes up with its own S3 keys, gateway port and pod network, and `down` leaves no process, network namespace, link, address, listening port or state behind', async () => {
  const name = `teardown-${process.pid}`;
  const natsPort = 4300 + (process.pid % 500);
  const base = { ...process.env, LOOPLINE_CLUSTER: name, LOOPLINE_NATS_PORT: String(natsPort) };
  const up = spawnSync('bash', [clusterScript, 'up'], { env: base, encoding: 'utf8' });
  assert.is(up.status, 0, up.stderr);
  const env = clusterEnv(base);
  const nodes = execFileSync('kubectl', ['--kubeconfig', env.KUBECONFIG!, 'get', 'nodes', '-o', 'name'], {
    encoding: 'utf8',
  });
  assert.match(nodes, /node\/gpu-node-0/);
  assert.is(env.AWS_ENDPOINT_URL_S3, `http://${env.LOOPLINE_HOST_ADDRESS}:${natsPort + 3000}`);
  assert.match(env.AWS_SECRET_ACCESS_KEY ?? '', /^[A-Za-z0-9]{40}$/);
  assert.is.not(env.AWS_SECRET_ACCESS_KEY, process.env.AWS_SECRET_ACCESS_KEY, 'each cluster makes its own keys');
  await s3ClientFromEnv(env).send(new HeadBucketCommand({ Bucket: env.LOOPLINE_S3_BUCKET }));
  assert.is(env.GATEWAY_URL, `http://127.0.0.1:${natsPort + 4000}`);
  assert.is((await fetch(`${env.GATEWAY_URL}/`)).status, 404, 'its own Traefik answers on its gateway port');
  const slot = env.LOOPLINE_POD_BRIDGE!.replace('llbr', '');
  assert.is.not(env.LOOPLINE_POD_BRIDGE, process.env.LOOPLINE_POD_BRIDGE, 'the second cluster has a bridge of its own');
  assert.ok(existsSync(`/sys/class/net/${env.LOOPLINE_POD_BRIDGE}`), 'up made the pod bridge');

  // A local-kubelet runs a pod on it and dies without cleaning up: down must clear what it left.
  const kubelet = spawn(process.execPath, ['--import', 'tsx', 'e2e/local-kubelet/main.ts'], {
    cwd: repoRoot,
    env: { ...env, LOG_LEVEL: 'warn' },
    stdio: 'ignore',
  });
  const other = new k8s.KubeConfig();
  other.loadFromFile(env.KUBECONFIG!);
  const otherCore = other.makeApiClient(k8s.CoreV1Api);
  const body = {
    metadata: { name: 'server' },
    spec: {
      restartPolicy: 'Never',
      containers: [
        {
          name: 'main',
          image: 'loopline/predictor:dev',
          command: ['node', '-e', `require('http').createServer((q, r) => r.end('up')).listen(8080)`],
        },
      ],
    },
  } as k8s.V1Pod;
  // Until the controller-manager has made the namespace's default ServiceAccount, pods are refused.
  await waitFor('the pod to be accepted', () =>
    otherCore.createNamespacedPod({ namespace: 'default', body }).then(
      () => true,
      () => undefined,
    ),
  );
  const pod = await waitFor(
    'the pod to run in its network namespace',
    async () => {
      const p = await otherCore.readNamespacedPod({ name: 'server', namespace: 'default' });
      return p.status?.phase === 'Running' && p.status.podIP ? p : undefined;
    },
    60_000,
  );
  const netns = `ll${slot}-${pod.status!.podIP!.split('.')[3]}`;
  const podPids = execFileSync('ip', ['netns', 'pids', netns], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map(Number);
  assert.ok(podPids.length > 0, `the pod's process runs in ${netns}`);
  kubelet.kill('SIGKILL');
  await new Promise((r) => kubelet.once('exit', r));
  const clusterPids = spawnSync('pgrep', ['-f', name], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)
    .map(Number);
  const ports = listeningPorts()
    .filter((l) => l.pids.some((pid) => clusterPids.includes(pid)))
    .map((l) => l.port);
  for (const port of [natsPort, natsPort + 3000])
    assert.ok(ports.includes(String(port)), `NATS and S3 listen on ${port}: ${ports}`);

  const down = spawnSync('bash', [clusterScript, 'down'], { env: base, encoding: 'utf8' });
  assert.is(down.status, 0, down.stderr);
  const left = spawnSync('pgrep', ['-af', name], { encoding: 'utf8' }).stdout.trim();
  assert.is(left, '', `processes left behind:\n${left}`);
  assert.equal(podPids.filter(alive), [], "the pod's process is killed");
  const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.startsWith(`ll${slot}-`));
  assert.equal(namespaces, [], 'no network namespace of the cluster is left');
  const links = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => new RegExp(`: (llbr${slot}|llv${slot}-\\d+)[@:]`).test(l));
  assert.equal(links, [], 'no bridge or veth of the cluster is left');
  assert.not.match(
    execFileSync('ip', ['-o', 'addr'], { encoding: 'utf8' }),
    ` ${env.LOOPLINE_HOST_ADDRESS}/`,
    'the host address is gone',
  );
  const stillListening = listeningPorts()
    .filter((l) =>
      [
        ...ports,
        ...[
          natsPort,
          natsPort + 1000,
          natsPort + 3000,
          natsPort + 4000,
          natsPort + 5000,
          natsPort + 20000,
          natsPort + 21000,
        ].map(String),
      ].includes(l.port),
    )
    .map((l) => l.port);
  assert.equal(stillListening, [], 'no port the cluster listened on is still open');
  assert.not.match(
    execFileSync('bash', [clusterScript, 'env'], { env: base, encoding: 'utf8' }),
    /AWS_SECRET_ACCESS_KEY/,
    'the keys went with the cluster',
  );
});

test.run();
