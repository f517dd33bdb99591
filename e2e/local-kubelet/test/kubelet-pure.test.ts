// test: no cluster
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { containerEnv, expandReferences, fieldValue } from '../env.ts';
import { commandLine, imageRepository, lookPath } from '../images.ts';
import { podAddresses, PodNetworkError, sandboxNames } from '../network.ts';
import { podPhase, podStatus, type ContainerRecord, type PodRecord } from '../status.ts';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

test("images map to a local entrypoint; command replaces it and args follow, like a container runtime; node is the kubelet's own Node", () => {
  assert.is(imageRepository('loopline/predictor:0.1.0@sha256:abc'), 'loopline/predictor');
  assert.is(imageRepository('localhost:5000/loopline/predictor'), 'localhost:5000/loopline/predictor');
  assert.equal(commandLine({ image: 'loopline/example-trainer:1', args: ['--x'] }), {
    ok: true,
    argv: [process.execPath, '--import', 'tsx', 'examples/trainer/src/main.ts', '--x'],
  });
  assert.equal(commandLine({ image: 'loopline/predictor', command: ['node', '-e', '1'], args: ['a'] }), {
    ok: true,
    argv: [process.execPath, '-e', '1', 'a'],
  });
  const unknown = commandLine({ image: 'loopline/other' });
  assert.is(unknown.ok, false);
  assert.is(!unknown.ok && unknown.reason, 'ErrImagePull');
});

test('a command resolves like a runtime resolves it: a name on PATH, a path from the WORKDIR, undefined when missing', () => {
  assert.is(lookPath('sh', '/', '/nonexistent:/bin'), '/bin/sh');
  assert.is(lookPath('./cluster.sh', join(repoRoot, 'e2e/cluster'), ''), join(repoRoot, 'e2e/cluster/cluster.sh'));
  assert.is(lookPath('no-such-command', '/', '/bin:/usr/bin'), undefined);
});

test("pod addresses are the /24 without the bridge's host address; namespace and veth names come from the address", () => {
  const addresses = podAddresses({ subnet: '198.19.7.0/24', hostAddress: '198.19.7.1' });
  assert.equal([addresses.length, addresses[0], addresses.at(-1)], [253, '198.19.7.2', '198.19.7.254']);
  assert.equal(sandboxNames('198.19.7.254'), { netns: 'll7-254', veth: 'llv7-254' });
  assert.ok(sandboxNames('198.19.255.254').veth.length <= 15, 'a Linux interface name has at most 15 characters');
  assert.throws(
    () => podAddresses({ subnet: '198.19.0.0/16', hostAddress: '198.19.0.1' }),
    (err: Error) => err instanceof PodNetworkError && /not a \/24/.test(err.message),
  );
});

test('env: literals, $(VAR) references, downward API and ConfigMap/Secret keys resolve as the kubelet does', async () => {
  const pod = {
    metadata: { name: 'p', namespace: 'ns', uid: 'u', labels: { app: 'a' } },
    spec: { nodeName: 'gpu-node-0' },
  };
  assert.is(expandReferences('$(A)-$$(A)-$(MISSING)', { A: 'x' }), 'x-$(A)-$(MISSING)');
  assert.is(fieldValue(pod, "metadata.labels['app']", '198.19.7.2', '127.0.0.1'), 'a');
  const env = await containerEnv(
    {
      envFrom: [{ configMapRef: { name: 'cm' }, prefix: 'CM_' }],
      env: [
        { name: 'A', value: 'one' },
        { name: 'B', value: '$(A)/two' },
        { name: 'NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        { name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
        { name: 'S', valueFrom: { secretKeyRef: { name: 'sec', key: 'k' } } },
        { name: 'O', valueFrom: { configMapKeyRef: { name: 'cm', key: 'absent', optional: true } } },
      ],
    },
    {
      pod,
      podIP: '198.19.7.2',
      hostIP: '127.0.0.1',
      readData: async (kind): Promise<Record<string, string>> => (kind === 'ConfigMap' ? { x: '1' } : { k: 'secret' }),
    },
  );
  assert.equal(env, { CM_x: '1', A: 'one', B: 'one/two', NAME: 'p', IP: '198.19.7.2', S: 'secret' });
  await containerEnv(
    { env: [{ name: 'S', valueFrom: { secretKeyRef: { name: 'sec', key: 'nope' } } }] },
    { pod, podIP: '', hostIP: '', readData: async () => ({}) },
  ).then(
    () => assert.unreachable('a missing key must fail'),
    (err) => assert.match(err.message, /couldn't find key nope in Secret ns\/sec/),
  );
});

const c = (state: ContainerRecord['state'], extra: Partial<ContainerRecord> = {}): ContainerRecord => ({
  name: 'c',
  image: 'i',
  state,
  restartCount: 0,
  ready: false,
  started: false,
  ...extra,
});
const rec = (containers: ContainerRecord[], restartPolicy: PodRecord['restartPolicy'] = 'Never'): PodRecord => ({
  hostIP: '127.0.0.1',
  podIP: '198.19.7.9',
  startTime: 'T',
  restartPolicy,
  sandboxReady: true,
  containers,
});
const done = (exitCode: number) => ({
  terminated: { exitCode, reason: exitCode ? 'Error' : 'Completed', finishedAt: 'T' },
});

const phases: Array<[string, PodRecord, string]> = [
  ['creating', rec([c({ waiting: { reason: 'ContainerCreating' } })]), 'Pending'],
  ['running', rec([c({ running: { startedAt: 'T' } })]), 'Running'],
  ['exit 0', rec([c(done(0))]), 'Succeeded'],
  ['exit 1', rec([c(done(1))]), 'Failed'],
  ['one done, one running', rec([c(done(0)), c({ running: { startedAt: 'T' } })]), 'Running'],
  ['one failed, one succeeded', rec([c(done(0)), c(done(2))]), 'Failed'],
  [
    'waiting to restart after a crash',
    rec(
      [
        c(
          { waiting: { reason: 'CrashLoopBackOff' } },
          { lastState: { terminated: { exitCode: 1, reason: 'Error', finishedAt: 'T' } } },
        ),
      ],
      'Always',
    ),
    'Running',
  ],
];
for (const [name, record, phase] of phases)
  test(`pod phase: ${name} -> ${phase}`, () => assert.is(podPhase(record), phase));

test('pod status: Ready follows the containers, transition times survive unchanged conditions, states are exclusive', () => {
  const now = new Date('2030-01-01T00:00:05Z');
  const s = podStatus(
    rec([c({ running: { startedAt: 'T' } }, { ready: false })]),
    [{ type: 'Ready', status: 'False', lastTransitionTime: '2030-01-01T00:00:00Z' }],
    now,
  ) as any;
  const ready = s.conditions.find((x: any) => x.type === 'Ready');
  assert.equal(
    [ready.status, ready.reason, ready.lastTransitionTime],
    ['False', 'ContainersNotReady', '2030-01-01T00:00:00Z'],
  );
  assert.equal(s.containerStatuses[0].state, { waiting: null, running: { startedAt: 'T' }, terminated: null });
  assert.equal([s.podIP, s.podIPs, s.hostIP], ['198.19.7.9', [{ ip: '198.19.7.9' }], '127.0.0.1']);
  const finished = podStatus(rec([c(done(0), { ready: false })]), s.conditions, now) as any;
  assert.is(finished.phase, 'Succeeded');
  assert.equal(finished.conditions.find((x: any) => x.type === 'Ready').reason, 'PodCompleted');
  assert.is(finished.conditions.find((x: any) => x.type === 'PodReadyToStartContainers').status, 'False');
});

test.run();
