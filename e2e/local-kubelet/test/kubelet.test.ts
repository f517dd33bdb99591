// The local-kubelet against the real API server: pods of Loopline images run as local processes,
// each in a network namespace of its own on the cluster's bridge, and their lifecycle shows up in pod
// status as a kubelet would report it.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { createServer, type Server } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, DiscoveryV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startLocalKubelet, type LocalKubelet } from '../kubelet.ts';
import { podNetworkFromEnv, sandboxNames } from '../network.ts';

if (!process.env.KUBECONFIG)
  throw new Error('KUBECONFIG is not set: bash e2e/cluster/cluster.sh up && eval "$(bash e2e/cluster/cluster.sh env)"');
const kc = new KubeConfig();
kc.loadFromDefault();
const core = kc.makeApiClient(CoreV1Api);
const discovery = kc.makeApiClient(DiscoveryV1Api);
const network = podNetworkFromEnv();
const subnetPrefix = network.subnet.replace(/0\/24$/, '');
const namespace = `local-kubelet-${randomBytes(3).toString('hex')}`;
const repoRoot = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
let kubelet: LocalKubelet;
const cacheDir = () => process.env.LOOPLINE_CACHE ?? join(homedir(), '.cache', 'loopline');

function gpuPod(name: string, script: string, extra: Record<string, any> = {}): V1Pod {
  return {
    metadata: { name, namespace },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 5,
      nodeSelector: { 'nvidia.com/gpu.product': 'NVIDIA-A100-SXM4-80GB' },
      tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
      containers: [
        {
          name: 'main',
          image: 'loopline/example-trainer:dev',
          command: ['node', '-e', script],
          resources: { limits: { 'nvidia.com/gpu': '1' } },
          env: [
            { name: 'MY_POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'MY_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
            { name: 'GREETING', value: 'hello $(MY_POD)' },
          ],
          ...extra,
        },
      ],
    },
  };
}

async function waitPod(name: string, what: string, ok: (p: V1Pod) => boolean, timeoutMs = 60_000): Promise<V1Pod> {
  const deadline = Date.now() + timeoutMs;
  let last: V1Pod | undefined;
  while (Date.now() < deadline) {
    last = await core.readNamespacedPod({ name, namespace }).catch(() => undefined);
    if (last && ok(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`pod ${name}: timed out waiting for ${what}; last status ${JSON.stringify(last?.status)}`);
}

const startKubelet = () =>
  startLocalKubelet({ kubeconfig: kc, repoRoot, namespace, logger: pino({ level: process.env.LOG_LEVEL ?? 'warn' }) });
const isReady = (p: V1Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
const netnsList = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });

/** A pod running an HTTP server on port 8080 of every address it has, Ready by an httpGet probe. */
function serverPod(name: string, labels: Record<string, string> = {}): V1Pod {
  const script = `require('http').createServer((q, r) => r.end(require('os').networkInterfaces().eth0[0].address)).listen(8080); process.on('SIGTERM', () => { require('fs').writeFileSync(process.env.LOOPLINE_RESULT_PATH, 'got SIGTERM'); process.exit(0); });`;
  const pod = gpuPod(name, script, {
    ports: [{ name: 'http', containerPort: 8080 }],
    readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1 },
  });
  pod.metadata!.labels = labels;
  return pod;
}

test.before(async () => {
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  kubelet = await startKubelet();
});

test.after(async () => {
  await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  // Let the local-kubelet carry out the pod deletions the namespace deletion asks for.
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && (await core.listNamespacedPod({ namespace })).items.length > 0)
    await new Promise((r) => setTimeout(r, 200));
  await kubelet.stop();
});

test('a pod of a Loopline image on a GPU node runs as a process; exit 0 reports Succeeded with the termination message', async () => {
  const script = `require('fs').writeFileSync(process.env.LOOPLINE_RESULT_PATH, JSON.stringify({pod: process.env.MY_POD, ip: process.env.MY_IP, host: process.env.HOST, greeting: process.env.GREETING, cwd: process.cwd()}))`;
  await core.createNamespacedPod({ namespace, body: gpuPod('ok', script) });
  const pod = await waitPod('ok', 'Succeeded', (p) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed');
  assert.is(pod.status!.phase, 'Succeeded');
  assert.match(pod.spec!.nodeName!, /^gpu-node-/);
  const cs = pod.status!.containerStatuses![0];
  assert.is(cs.state!.terminated!.exitCode, 0);
  assert.is(cs.state!.terminated!.reason, 'Completed');
  const ip = pod.status!.podIP!;
  assert.ok(
    ip.startsWith(subnetPrefix) && ip !== network.hostAddress,
    `pod IP ${ip} is from the cluster's pod subnet ${network.subnet}`,
  );
  assert.equal(
    pod.status!.podIPs!.map((p) => p.ip),
    [ip],
  );
  assert.equal(JSON.parse(cs.state!.terminated!.message!), { pod: 'ok', ip, greeting: 'hello ok', cwd: repoRoot });
  assert.not.ok(netnsList().includes(sandboxNames(ip).netns), "the finished pod's network namespace is gone");
  const ready = pod.status!.conditions!.find((c) => c.type === 'Ready')!;
  assert.equal([ready.status, ready.reason], ['False', 'PodCompleted']);
});

test('a non-zero exit reports Failed with the exit code, and the message is cut at 4096 bytes', async () => {
  await core.createNamespacedPod({
    namespace,
    body: gpuPod(
      'crash',
      `require('fs').writeFileSync(process.env.LOOPLINE_RESULT_PATH, 'x'.repeat(5000)); process.exit(3)`,
    ),
  });
  const pod = await waitPod('crash', 'Failed', (p) => p.status?.phase === 'Failed' || p.status?.phase === 'Succeeded');
  assert.is(pod.status!.phase, 'Failed');
  const t = pod.status!.containerStatuses![0].state!.terminated!;
  assert.equal([t.exitCode, t.reason, t.message!.length], [3, 'Error', 4096]);
});

test('a readiness probe decides Ready; deleting the pod stops the process, removes its network namespace and the pod', async () => {
  await core.createNamespacedPod({ namespace, body: serverPod('server') });
  const pod = await waitPod('server', 'Ready', isReady);
  assert.is(pod.status!.phase, 'Running');
  assert.is(pod.status!.containerStatuses![0].ready, true);
  const { netns, veth } = sandboxNames(pod.status!.podIP!);
  assert.ok(netnsList().includes(netns), `network namespace ${netns} exists`);
  assert.is(
    await (await fetch(`http://${pod.status!.podIP}:8080/`)).text(),
    pod.status!.podIP,
    'the host reaches the pod at its own address, through the bridge',
  );
  const started = Date.now();
  await core.deleteNamespacedPod({ name: 'server', namespace });
  const deadline = Date.now() + 10_000;
  let gone = false;
  while (!gone && Date.now() < deadline) {
    gone = await core.readNamespacedPod({ name: 'server', namespace }).then(
      () => false,
      (err) => err.code === 404,
    );
    if (!gone) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(gone, 'the pod is removed after its process exits');
  assert.ok(Date.now() - started < 4000, 'the process exited on SIGTERM, well before the 5 s grace period ended');
  await fetch(`http://${pod.status!.podIP}:8080/`).then(
    () => assert.unreachable('the server process is gone'),
    () => undefined,
  );
  assert.not.ok(netnsList().includes(netns), `network namespace ${netns} is removed`);
  assert.not.ok(existsSync(`/sys/class/net/${veth}`), `veth ${veth} is removed`);
});

test('each pod has its own network: two servers on the same port, each answering at its own address; pods reach the host only at the bridge address', async () => {
  const listen = (host: string) =>
    new Promise<Server>((done) => {
      const s = createServer((c) => c.end('host'));
      s.listen(0, host, () => done(s));
    });
  const onBridge = await listen(network.hostAddress);
  const onLoopback = await listen('127.0.0.1');
  const port = (s: Server) => (s.address() as { port: number }).port;
  /** A pod that dials host:port once and reports what happened as its termination message. */
  const dial = (name: string, host: string, p: number) =>
    core.createNamespacedPod({
      namespace,
      body: gpuPod(
        name,
        `const done = (m) => { require('fs').writeFileSync(process.env.LOOPLINE_RESULT_PATH, m); process.exit(0); };
      const c = require('net').connect(${p}, '${host}');
      c.on('connect', () => c.write('GET / HTTP/1.0' + String.fromCharCode(13, 10, 13, 10)));
      c.on('data', (d) => done('reached ' + d)); c.on('error', (e) => done(e.code)); c.setTimeout(3000, () => done('timeout'));`,
      ),
    });
  try {
    await core.createNamespacedPod({ namespace, body: serverPod('twin-a') });
    await core.createNamespacedPod({ namespace, body: serverPod('twin-b') });
    const a = await waitPod('twin-a', 'Ready', isReady);
    const b = await waitPod('twin-b', 'Ready', isReady);
    assert.is.not(a.status!.podIP, b.status!.podIP);
    for (const pod of [a, b])
      assert.is(await (await fetch(`http://${pod.status!.podIP}:8080/`)).text(), pod.status!.podIP);
    await dial('to-bridge', network.hostAddress, port(onBridge));
    await dial('to-loopback', '127.0.0.1', port(onLoopback));
    await dial('to-twin', a.status!.podIP!, 8080);
    const message = async (name: string) =>
      (
        await waitPod(name, 'Succeeded', (p) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed')
      ).status!.containerStatuses![0].state!.terminated!.message?.trim();
    assert.is(await message('to-bridge'), 'reached host', "a pod reaches a server on the bridge's host address");
    assert.is(await message('to-loopback'), 'ECONNREFUSED', "a pod's 127.0.0.1 is its own loopback, not the host's");
    assert.match((await message('to-twin'))!, /^reached /, 'a pod reaches another pod at its address');
  } finally {
    onBridge.close();
    onLoopback.close();
  }
});

test("a Service over a ready pod gets a real EndpointSlice with the pod's address from the endpointslice controller", async () => {
  await core.createNamespacedPod({ namespace, body: serverPod('served', { app: 'served' }) });
  const pod = await waitPod('served', 'Ready', isReady);
  await core.createNamespacedService({
    namespace,
    body: {
      metadata: { name: 'served' },
      spec: { selector: { app: 'served' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
    },
  });
  const deadline = Date.now() + 20_000;
  let endpoints: Array<{ addresses: string[]; ready?: boolean }> = [];
  let port: number | undefined;
  while (Date.now() < deadline) {
    const slices = (
      await discovery.listNamespacedEndpointSlice({ namespace, labelSelector: 'kubernetes.io/service-name=served' })
    ).items;
    endpoints = slices.flatMap((slice) =>
      (slice.endpoints ?? []).map((e) => ({ addresses: e.addresses, ready: e.conditions?.ready })),
    );
    port = slices[0]?.ports?.[0]?.port;
    if (endpoints.length) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(endpoints, [{ addresses: [pod.status!.podIP!], ready: true }]);
  assert.is(port, 8080);
});

test("stop() kills the pods' processes and removes every network namespace and veth it made", async () => {
  await core.createNamespacedPod({ namespace, body: serverPod('left-running') });
  const pod = await waitPod('left-running', 'Ready', isReady);
  const { netns, veth } = sandboxNames(pod.status!.podIP!);
  await kubelet.stop();
  const mine = netnsList()
    .split('\n')
    .filter((line) => line.startsWith(`ll${network.subnet.split('.')[2]}-`));
  assert.equal(mine, [], 'no network namespace of this cluster is left');
  assert.not.ok(existsSync(`/sys/class/net/${veth}`), `veth ${veth} is removed`);
  await fetch(`http://${pod.status!.podIP}:8080/`, { signal: AbortSignal.timeout(2000) }).then(
    () => assert.unreachable('the server is gone'),
    () => undefined,
  );
  assert.ok(!netnsList().includes(netns));
  // A local-kubelet started again finds the pod Running without its process, and restarts it (restartPolicy Never: reports it lost).
  kubelet = await startKubelet();
  const lost = await waitPod(
    'left-running',
    'reported lost',
    (p) => p.status?.containerStatuses?.[0]?.state?.terminated?.reason === 'ContainerStatusUnknown',
  );
  assert.is(lost.status!.containerStatuses![0].state!.terminated!.exitCode, 137);
});

test('a restarted local-kubelet runs a Deployment-style pod again in a new sandbox; its status carries only the new address', async () => {
  const body = serverPod('restarted');
  body.spec!.restartPolicy = 'Always';
  await core.createNamespacedPod({ namespace, body });
  const before = await waitPod('restarted', 'Ready', isReady);
  const oldIp = before.status!.podIP!;
  await kubelet.stop();
  // The old address is taken meanwhile (a lease held by this live process), so the new sandbox gets another one.
  const lease = join(cacheDir(), 'local-kubelet', 'addresses', oldIp);
  writeFileSync(lease, `${process.pid} another-pod\n`);
  try {
    kubelet = await startKubelet();
    const after = await waitPod('restarted', 'Ready at a new address', (p) => isReady(p) && p.status?.podIP !== oldIp);
    assert.equal(
      after.status!.podIPs!.map((p) => p.ip),
      [after.status!.podIP],
      'one address, the new one',
    );
    const answer = await fetch(`http://${after.status!.podIP}:8080/`, { signal: AbortSignal.timeout(5000) });
    assert.is(await answer.text(), after.status!.podIP);
  } finally {
    rmSync(lease, { force: true });
  }
});

test('pods of other images are left to KWOK', async () => {
  const body = gpuPod('other', '');
  body.spec!.containers[0].image = 'busybox';
  await core.createNamespacedPod({ namespace, body });
  const pod = await waitPod('other', 'Running (by KWOK)', (p) => p.status?.phase === 'Running');
  assert.match(pod.status!.podIP!, /^198\.18\./, 'KWOK addresses pods from its own range (198.18.0.0/16)');
});

test.run();
