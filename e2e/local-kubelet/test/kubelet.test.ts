// The local-kubelet against the real API server: pods of Loopline images run as local processes
// and their lifecycle shows up in pod status as a kubelet would report it.
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startLocalKubelet, type LocalKubelet } from '../kubelet.ts';

if (!process.env.KUBECONFIG) throw new Error('KUBECONFIG is not set: bash e2e/cluster/cluster.sh up && eval "$(bash e2e/cluster/cluster.sh env)"');
const kc = new KubeConfig();
kc.loadFromDefault();
const core = kc.makeApiClient(CoreV1Api);
const namespace = `local-kubelet-${randomBytes(3).toString('hex')}`;
const repoRoot = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
let kubelet: LocalKubelet;

function gpuPod(name: string, script: string, extra: Record<string, any> = {}): V1Pod {
  return {
    metadata: { name, namespace },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 5,
      nodeSelector: { 'nvidia.com/gpu.product': 'NVIDIA-A100-SXM4-80GB' },
      tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
      containers: [{
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
      }],
    },
  };
}

async function waitPod(name: string, what: string, ok: (p: V1Pod) => boolean, timeoutMs = 20_000): Promise<V1Pod> {
  const deadline = Date.now() + timeoutMs;
  let last: V1Pod | undefined;
  while (Date.now() < deadline) {
    last = await core.readNamespacedPod({ name, namespace }).catch(() => undefined);
    if (last && ok(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`pod ${name}: timed out waiting for ${what}; last status ${JSON.stringify(last?.status)}`);
}

test.before(async () => {
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  kubelet = await startLocalKubelet({ kubeconfig: kc, repoRoot, namespace, logger: pino({ level: process.env.LOG_LEVEL ?? 'warn' }) });
});

test.after(async () => {
  await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  // Let the local-kubelet carry out the pod deletions the namespace deletion asks for.
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && (await core.listNamespacedPod({ namespace })).items.length > 0) await new Promise((r) => setTimeout(r, 200));
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
  assert.match(ip, /^127\.0\.\d+\.\d+$/);
  assert.equal(pod.status!.podIPs!.map((p) => p.ip), [ip]);
  assert.equal(JSON.parse(cs.state!.terminated!.message!), { pod: 'ok', ip, host: ip, greeting: 'hello ok', cwd: repoRoot });
  const ready = pod.status!.conditions!.find((c) => c.type === 'Ready')!;
  assert.equal([ready.status, ready.reason], ['False', 'PodCompleted']);
});

test('a non-zero exit reports Failed with the exit code, and the message is cut at 4096 bytes', async () => {
  await core.createNamespacedPod({ namespace, body: gpuPod('crash', `require('fs').writeFileSync(process.env.LOOPLINE_RESULT_PATH, 'x'.repeat(5000)); process.exit(3)`) });
  const pod = await waitPod('crash', 'Failed', (p) => p.status?.phase === 'Failed' || p.status?.phase === 'Succeeded');
  assert.is(pod.status!.phase, 'Failed');
  const t = pod.status!.containerStatuses![0].state!.terminated!;
  assert.equal([t.exitCode, t.reason, t.message!.length], [3, 'Error', 4096]);
});

test('a readiness probe decides Ready; deleting the pod stops the process and removes the pod', async () => {
  const script = `const s = require('http').createServer((q, r) => r.end('up')).listen(8080, process.env.HOST); process.on('SIGTERM', () => { require('fs').writeFileSync(process.env.LOOPLINE_RESULT_PATH, 'got SIGTERM'); process.exit(0); });`;
  await core.createNamespacedPod({
    namespace,
    body: gpuPod('server', script, { ports: [{ name: 'http', containerPort: 8080 }], readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1 } }),
  });
  const pod = await waitPod('server', 'Ready', (p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false);
  assert.is(pod.status!.phase, 'Running');
  assert.is(pod.status!.containerStatuses![0].ready, true);
  const body = await (await fetch(`http://${pod.status!.podIP}:8080/`)).text();
  assert.is(body, 'up');
  const started = Date.now();
  await core.deleteNamespacedPod({ name: 'server', namespace });
  const deadline = Date.now() + 10_000;
  let gone = false;
  while (!gone && Date.now() < deadline) {
    gone = await core.readNamespacedPod({ name: 'server', namespace }).then(() => false, (err) => err.code === 404);
    if (!gone) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(gone, 'the pod is removed after its process exits');
  assert.ok(Date.now() - started < 4000, 'the process exited on SIGTERM, well before the 5 s grace period ended');
  await fetch(`http://${pod.status!.podIP}:8080/`).then(() => assert.unreachable('the server process is gone'), () => undefined);
});

test('pods of other images are left to KWOK', async () => {
  const body = gpuPod('other', '');
  body.spec!.containers[0].image = 'busybox';
  await core.createNamespacedPod({ namespace, body });
  const pod = await waitPod('other', 'Running (by KWOK)', (p) => p.status?.phase === 'Running');
  assert.match(pod.status!.podIP!, /^198\.18\./, 'KWOK addresses pods from its own range (198.18.0.0/16)');
});

test.run();
