/**
 * Leader election and shutdown with several engines in one process against the real API server.
 * Controller under test: a ConfigMap labelled role=source is mirrored into `<name>-mirror`.
 * Short lease timings keep the test fast; the algorithm is the same as with the 15/10/2 s defaults.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Engine, createEngine } from '../engine.ts';
import { controllerReference } from '../keys.ts';
import { kinds } from '../kinds.ts';
import { HttpMethod } from '@kubernetes/client-node';
import type { ControllerDefinition, KubeObject } from '../types.ts';
import { NotLeaderError } from '../writer.ts';
import {
  createNamespace,
  deleteNamespace,
  quietLogger,
  requireKubeconfig,
  sleep,
  testApi,
  uniqueName,
  waitFor,
} from './cluster.ts';

const kc = requireKubeconfig();
const api = testApi(kc);
const ns = uniqueName('engine-leader');
const LEASE = { name: 'mirror-lease', leaseDurationMs: 4000, renewDeadlineMs: 3000, retryPeriodMs: 500 };

/** Reconciles per engine identity. */
const reconcilesBy = new Map<string, string[]>();
const engines: Engine[] = [];

function mirrorController(identity: string): ControllerDefinition {
  return {
    name: 'mirror',
    for: kinds.ConfigMap,
    owns: [kinds.ConfigMap],
    async reconcile({ namespace, name, key }, ctx) {
      const source = ctx.cache.get(kinds.ConfigMap, namespace, name);
      if (!source || source.metadata.labels?.role !== 'source') return;
      reconcilesBy.set(identity, [...(reconcilesBy.get(identity) ?? []), key]);
      const delayMs = Number((source as KubeObject & { data?: Record<string, string> }).data?.delayMs ?? 0);
      if (delayMs > 0) await sleep(delayMs);
      await ctx.apply({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: `${name}-mirror`,
          namespace,
          labels: { role: 'mirror' },
          ownerReferences: [controllerReference(source)],
        },
        data: { ...(source as KubeObject & { data?: Record<string, string> }).data, mirroredBy: identity },
      });
    },
  };
}

async function startEngine(identity: string): Promise<Engine> {
  const engine = createEngine({
    kubeconfig: kc,
    namespace: ns,
    leaderElection: { ...LEASE, namespace: ns, identity },
    httpPort: 0,
    httpHost: '127.0.0.1',
    resyncPeriodMs: 0,
    logger: quietLogger(),
  });
  engine.register(mirrorController(identity));
  engines.push(engine);
  await engine.start();
  return engine;
}

async function source(name: string, data: Record<string, string>): Promise<void> {
  await api.apply(
    kinds.ConfigMap,
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace: ns, labels: { role: 'source' } },
      data,
    } as never,
    'engine-test',
  );
}

const mirror = (name: string) =>
  api.get(kinds.ConfigMap, ns, `${name}-mirror`).catch(() => undefined) as Promise<
    (KubeObject & { data: Record<string, string> }) | undefined
  >;
const leaderOf = (...candidates: Engine[]) => candidates.find((e) => e.isLeader());

let a: Engine;
let b: Engine;

test.before(async () => {
  await createNamespace(api, ns);
});

test.after(async () => {
  await Promise.all(engines.map((e) => e.stop({ releaseLease: false })));
  await deleteNamespace(api, ns);
});

test('of two engines exactly one leads and only the leader reconciles; /readyz is ready on both', async () => {
  [a, b] = await Promise.all([startEngine('engine-a'), startEngine('engine-b')]);
  const leader = await waitFor('a leader', () => leaderOf(a, b));
  await sleep(2 * LEASE.retryPeriodMs);
  assert.is([a, b].filter((e) => e.isLeader()).length, 1, 'never two leaders');
  await source('one', { v: '1' });
  const copy = await waitFor('mirror of one', () => mirror('one'));
  assert.is(copy.data.mirroredBy, leader.identity);
  const follower = leader === a ? b : a;
  assert.is(reconcilesBy.get(follower.identity), undefined, 'the follower reconciled nothing');
  for (const e of [a, b]) {
    assert.is((await fetch(`http://127.0.0.1:${e.httpAddress()!.port}/readyz`)).status, 200);
  }
  const lease = await api.get(kinds.Lease, ns, LEASE.name);
  assert.is(lease.spec.holderIdentity, leader.identity);
});

test('a follower refuses writes', async () => {
  const follower = a.isLeader() ? b : a;
  try {
    await follower.writer.apply({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'nope', namespace: ns },
      data: {},
    });
    assert.unreachable('the write should have been refused');
  } catch (err) {
    assert.instance(err, NotLeaderError);
  }
});

test('when the leader dies without releasing, the other takes over within the lease duration', async () => {
  const leader = leaderOf(a, b)!;
  const follower = leader === a ? b : a;
  const t0 = Date.now();
  await leader.stop({ releaseLease: false }); // a crash, as far as the lease shows
  await follower.whenLeader();
  const takeoverMs = Date.now() - t0;
  console.log(
    `takeover after crash: ${takeoverMs} ms (lease ${LEASE.leaseDurationMs} ms, retry ${LEASE.retryPeriodMs} ms)`,
  );
  // The follower measures expiry from when it saw the last renewal, polling every retry period.
  assert.ok(takeoverMs <= LEASE.leaseDurationMs + 2 * LEASE.retryPeriodMs, `takeover took ${takeoverMs} ms`);
  assert.ok(
    takeoverMs >= LEASE.leaseDurationMs - LEASE.renewDeadlineMs,
    'no takeover before the lease could have expired',
  );
  await source('one', { v: '2' });
  const copy = await waitFor('new leader mirrors', async () => {
    const m = await mirror('one');
    return m?.data.v === '2' ? m : undefined;
  });
  assert.is(copy.data.mirroredBy, follower.identity);
  const lease = await api.get(kinds.Lease, ns, LEASE.name);
  assert.is(lease.spec.holderIdentity, follower.identity);
  assert.ok(lease.spec.leaseTransitions >= 1);
});

test('a leader whose lease is taken away stops reconciling at once', async () => {
  const leader = leaderOf(a, b)!;
  const c = await startEngine('engine-c');
  // Someone else grabs the lease (e.g. an operator with a newer clock view); the leader must notice on its next renew.
  const lease = await api.get(kinds.Lease, ns, LEASE.name);
  await api.replace(
    kinds.Lease,
    {
      ...lease,
      spec: { ...lease.spec, holderIdentity: 'intruder', renewTime: new Date().toISOString().replace('Z', '000Z') },
    } as KubeObject,
    'engine-test',
  );
  const t0 = Date.now();
  await waitFor('leader steps down', () => !leader.isLeader() || undefined, 5000);
  const stepDownMs = Date.now() - t0;
  console.log(`step-down after losing the lease: ${stepDownMs} ms`);
  assert.ok(stepDownMs <= 2 * LEASE.retryPeriodMs, `stepped down after ${stepDownMs} ms`);
  const before = reconcilesBy.get(leader.identity)?.length ?? 0;
  await source('two', { v: '1' });
  await sleep(500);
  assert.is(reconcilesBy.get(leader.identity)?.length ?? 0, before, 'no reconcile after losing the lease');
  // The intruder never renews: one of the live engines takes over after expiry.
  const next = await waitFor('someone leads again', () => leaderOf(leader, c), LEASE.leaseDurationMs + 3000);
  await waitFor('mirror of two', () => mirror('two'));
  assert.ok(next === leader || next === c);
});

test('graceful shutdown finishes the in-flight reconcile, releases the lease, and a successor takes over at once', async () => {
  const leader = leaderOf(...engines)!;
  const successor = engines.find((e) => e !== leader && e.isReady())!;
  assert.ok(successor, 'a running successor');
  await source('slow', { delayMs: '1500' });
  await waitFor(
    'slow reconcile started',
    () => reconcilesBy.get(leader.identity)?.some((k) => k.endsWith('/slow')) || undefined,
  );
  const t0 = Date.now();
  await leader.stop();
  const stopMs = Date.now() - t0;
  const written = await mirror('slow');
  assert.ok(written, 'the in-flight reconcile completed its write before stop returned');
  assert.is(written!.data.mirroredBy, leader.identity);
  assert.ok(stopMs >= 1000, `stop waited for the reconcile (${stopMs} ms)`);
  const lease = await api.get(kinds.Lease, ns, LEASE.name);
  assert.ok(lease.spec.holderIdentity === '' || lease.spec.holderIdentity === successor.identity, 'lease released');
  const t1 = Date.now();
  await successor.whenLeader();
  const takeoverMs = Date.now() - t1;
  console.log(`takeover after graceful release: ${takeoverMs} ms`);
  assert.ok(takeoverMs <= 2 * LEASE.retryPeriodMs, `takeover after release took ${takeoverMs} ms`);
  const health = await fetch(`http://127.0.0.1:${leader.httpAddress()!.port}/healthz`).catch(() => undefined);
  assert.is(health, undefined, 'the stopped engine no longer serves');
});

test('SIGTERM: the operator process finishes its in-flight reconcile, releases the lease and exits 0', async () => {
  const lease = uniqueName('signal-lease');
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('./operator-process.ts', import.meta.url)), ns, lease],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await waitFor('child leads', () => output.includes('leading') || undefined, 30_000);
    await source('sigterm', { delayMs: '1500' });
    await waitFor('child reconciling', () => output.includes('reconciling sigterm') || undefined);
    child.kill('SIGTERM');
    const code = await exited;
    assert.is(code, 0);
    assert.ok(output.includes('reconciled sigterm'), `in-flight reconcile finished; output:\n${output}`);
    assert.ok(await mirror('sigterm'), 'its write landed');
    const record = await api.get(kinds.Lease, ns, lease);
    assert.is(record.spec.holderIdentity, '', 'lease released');
  } finally {
    child.kill('SIGKILL');
  }
});

test('the lease record is a valid coordination.k8s.io/v1 Lease', async () => {
  const lease = await api.request<KubeObject>(
    HttpMethod.GET,
    `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${LEASE.name}`,
  );
  assert.is(lease.spec.leaseDurationSeconds, LEASE.leaseDurationMs / 1000);
  assert.match(lease.spec.renewTime, /\.\d{6}Z$/);
});

test.run();
