// TrainingJob benchmark on the local cluster, the operator running as its own process:
//  A. TrainingJob created -> its first pod created, 200 jobs created at once (p50/p99), and one at a time; the same
//     for a controller with no logic (no-logic-controller.ts), which shows what the machine allows;
//  B. full resync with nothing changed: API writes (target 0);
//  C. API writes per TrainingJob lifecycle (real trainer via the local-kubelet) versus the minimum:
//     its Job plus one status write per phase change (Pending, Running, Succeeded).
// Writes bench/results/trainingjob.json and .md.   npx tsx operator/bench/trainingjob.bench.ts
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { Watch } from '@kubernetes/client-node';
import { bundleOperator, chartNodeOptions } from '../../scripts/bundle-operator.ts';
import { startLocalKubelet } from '../../e2e/local-kubelet/kubelet.ts';
import { kinds, type KubeObject } from '../engine/index.ts';
import {
  REPO_ROOT,
  createJob,
  logger,
  sleep,
  startHarness,
  trainingJobObject,
  waitFor,
  waitForPhase,
} from '../../test/support/operator-harness.ts';
import { operatorWrites as writes } from './support/scale.ts';
import { startShippedOperator } from './support/shipped-operator.ts';
import { percentile } from '../../test/support/figures.ts';

const JOBS = Number(process.env.BENCH_TRAININGJOBS ?? 200);
const SINGLE_JOBS = 20;
const LIFECYCLES = 5;
const RESYNC_MS = 8000;

const round = (n: number) => Math.round(n * 10) / 10;

async function reconciles(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return [...text.matchAll(/^loopline_reconcile_total\{[^}]*controller="trainingjob"[^}]*\} (\d+)$/gm)].reduce(
    (a, m) => a + Number(m[1]),
    0,
  );
}

function delta(
  after: Map<string, number>,
  before: Map<string, number>,
  exclude: string[] = [],
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of after) {
    const d = v - (before.get(k) ?? 0);
    if (d > 0 && !exclude.some((x) => k.endsWith(` ${x}`))) out[k] = d;
  }
  return out;
}
const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

/**
 * `count` TrainingJobs created in `namespace`, all at once or (`oneAtATime`) each after the previous one's pod was seen;
 * for each, the time until its first pod is seen through a watch opened beforehand, counted from the create's
 * response and from its request.
 */
async function burst(namespace: string, prefix: string, count = JOBS, oneAtATime = false) {
  const podSeen = new Map<string, number>();
  // From the list's resourceVersion, and opened again from the last one seen when it ends: on a freshly
  // started cluster the API server's watch cache can lag the list and end the watch ("Too large resource
  // version"), which once lost every pod event of the burst.
  let podsFrom = (await h.api.list(kinds.Pod, namespace)).metadata.resourceVersion;
  let watch: { abort(): void } | undefined;
  let watching = true;
  const watchPods = async (): Promise<void> => {
    watch = (await new Watch(h.kc).watch(
      `/api/v1/namespaces/${namespace}/pods`,
      { resourceVersion: podsFrom },
      (type, pod: KubeObject) => {
        if (pod.metadata?.resourceVersion) podsFrom = pod.metadata.resourceVersion;
        const job = pod.metadata?.labels?.['loopline.dev/trainingjob'];
        if (type === 'ADDED' && job && !podSeen.has(job)) podSeen.set(job, performance.now());
      },
      () => {
        if (watching) setTimeout(() => void watchPods().catch(() => undefined), 100);
      },
    )) as { abort(): void };
  };
  await watchPods();
  const names = Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);
  const sent = new Map<string, number>();
  const created = new Map<string, number>();
  const burstStart = performance.now();
  const create = async (name: string) => {
    sent.set(name, performance.now());
    // No GPU so the scheduler places them all; no local-kubelet yet, so they stay Pending and run nothing.
    const job = trainingJobObject(h, name, { resources: {} });
    job.metadata.namespace = namespace;
    await h.api.create(kinds.TrainingJob, job, 'bench');
    created.set(name, performance.now());
  };
  if (oneAtATime) {
    for (const name of names) {
      await create(name);
      await waitFor(`the first pod of ${name}`, () => podSeen.has(name) || undefined, 30_000);
    }
  } else {
    await Promise.all(names.map(create));
  }
  const createBurstMs = performance.now() - burstStart;
  await waitFor(`first pods of ${count} jobs in ${namespace}`, () => podSeen.size >= count || undefined, 180_000);
  watching = false;
  watch?.abort();
  return {
    names,
    createBurstMs,
    lastPodMs: Math.max(...podSeen.values()) - burstStart,
    fromCreated: names.map((n) => podSeen.get(n)! - created.get(n)!).sort((a, b) => a - b),
    fromSent: names.map((n) => podSeen.get(n)! - sent.get(n)!).sort((a, b) => a - b),
  };
}

const h = await startHarness('bench-tj', { operator: false, kubelet: false });
const { process: operator, port } = await startShippedOperator(h.namespace, [
  '--retry-base-ms',
  '300',
  '--resync-period-ms',
  String(RESYNC_MS),
]);
let noLogic: ReturnType<typeof spawn> | undefined;
try {
  const loadBefore = loadavg()[0];

  // A. 200 TrainingJobs at once, answered by the operator, and before and after by the controller with no logic
  // (no-logic-controller.ts: no cache, queue, status or Events) in a namespace of its own.
  const noLogicNamespace = `${h.namespace}-nologic`;
  await h.api.create(
    kinds.Namespace,
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: noLogicNamespace } } as never,
    'bench',
  );
  const noLogicBundle = join(REPO_ROOT, 'node_modules/.cache/loopline-bench-dist/no-logic-controller.mjs');
  await bundleOperator(join(REPO_ROOT, 'operator/bench/no-logic-controller.ts'), noLogicBundle);
  noLogic = spawn(process.execPath, [...chartNodeOptions(), noLogicBundle, noLogicNamespace], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    noLogic!.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('watching') && resolve());
    noLogic!.on('exit', (code) => reject(new Error(`no-logic controller exited (${code})`)));
  });
  // Unloaded: one job at a time, each after the previous one's pod was seen.
  const operatorSingle = await burst(h.namespace, 'single', SINGLE_JOBS, true);
  const noLogicSingle = await burst(noLogicNamespace, 'nologic-single', SINGLE_JOBS, true);
  const noLogicBefore = await burst(noLogicNamespace, 'nologic-a');
  const operatorBurst = await burst(h.namespace, 'load');
  const { fromCreated, fromSent, createBurstMs, lastPodMs } = operatorBurst;
  const names = operatorBurst.names;
  const loadAfter = loadavg()[0];

  // B. Let the burst settle, then a full resync (every job enqueued again) must write nothing.
  await waitFor(
    'the operator to go quiet',
    async () => {
      const before = sum(Object.fromEntries(await writes(port)));
      await sleep(1500);
      return sum(Object.fromEntries(await writes(port))) === before || undefined;
    },
    60_000,
  );
  const beforeResync = await writes(port);
  const reconcilesBefore = await reconciles(port);
  await waitFor(
    'a full resync',
    async () => (await reconciles(port)) - reconcilesBefore >= JOBS || undefined,
    RESYNC_MS * 4,
  );
  await sleep(1000);
  const resyncReconciles = (await reconciles(port)) - reconcilesBefore;
  const resyncWrites = delta(await writes(port), beforeResync, ['Lease']);
  // The controller with no logic again, with the operator quiet and the cluster holding its burst too.
  const noLogicAfter = await burst(noLogicNamespace, 'nologic-b');
  noLogic.kill('SIGTERM');
  /** A percentile of the no-logic controller's two bursts, before and after the operator's. */
  const noLogicAt = (from: 'fromCreated' | 'fromSent', p: number) =>
    [noLogicBefore, noLogicAfter].map((b) => round(percentile(b[from], p)));

  // C. Full lifecycles with the real trainer, one job at a time so every write is attributed to it.
  for (const name of [...operatorSingle.names, ...names])
    await h.api.delete(kinds.TrainingJob, h.namespace, name).catch(() => undefined);
  await waitFor(
    'the load jobs to be gone',
    async () => (await h.api.list(kinds.TrainingJob, h.namespace)).items.length === 0 || undefined,
    60_000,
  );
  const kubelet = await startLocalKubelet({
    kubeconfig: h.kc,
    repoRoot: REPO_ROOT,
    namespace: h.namespace,
    logger: logger(),
  });
  // Pods on a node are removed once its kubelet confirms: the local-kubelet finishes the load pods' deletion.
  await waitFor(
    'the load pods to be gone',
    async () => (await h.api.list(kinds.Pod, h.namespace)).items.length === 0 || undefined,
    120_000,
  );
  const lifecycles: Array<{ writes: Record<string, number>; events: number; phases: string[] }> = [];
  for (let i = 0; i < LIFECYCLES; i++) {
    const name = `life-${i}`;
    const before = await writes(port);
    const phases: string[] = [];
    const jobsFrom = (await h.api.list(kinds.TrainingJob, h.namespace)).metadata.resourceVersion;
    const phaseWatch = await new Watch(h.kc).watch(
      `/apis/loopline.dev/v1alpha1/namespaces/${h.namespace}/trainingjobs`,
      { fieldSelector: `metadata.name=${name}`, resourceVersion: jobsFrom },
      (_t, job: KubeObject) => {
        const phase = job.status?.phase;
        if (phase && phases.at(-1) !== phase) phases.push(phase);
      },
      () => undefined,
    );
    await createJob(h, name, { model: 'bench-model', registration: { stage: 'Staging' } });
    await waitForPhase(h, name, ['Succeeded', 'Failed'], 60_000);
    await waitFor('the registry to settle', async () => {
      const mvs = (await h.api.list(kinds.ModelVersion, h.namespace)).items;
      return (mvs.length === i + 1 && mvs.every((v) => v.status?.stage === 'Staging')) || undefined;
    });
    await sleep(1500);
    (phaseWatch as { abort(): void }).abort();
    const all = delta(await writes(port), before, ['Lease']);
    const events = Object.entries(all)
      .filter(([k]) => k.endsWith(' Event'))
      .reduce((a, [, v]) => a + v, 0);
    lifecycles.push({
      writes: Object.fromEntries(Object.entries(all).filter(([k]) => !k.endsWith(' Event'))),
      events,
      phases,
    });
  }
  for (let i = 0; i < LIFECYCLES; i++) await h.api.delete(kinds.TrainingJob, h.namespace, `life-${i}`);
  await waitFor(
    'the lifecycle pods to be gone',
    async () => (await h.api.list(kinds.Pod, h.namespace)).items.length === 0 || undefined,
    30_000,
  );
  await kubelet.stop();

  const typical = lifecycles[lifecycles.length - 1];
  const minimum = 1 + typical.phases.length; // the Job + one status write per phase
  const writesPerJob = lifecycles.map((l) => sum(l.writes));
  const result = {
    machine: {
      arch: process.arch,
      cores: cpus().length,
      loadAverage1m: { beforeBurst: round(loadBefore), afterBurst: round(loadAfter) },
    },
    firstPodLatencyMs: {
      jobs: JOBS,
      fromCreateResponse: {
        p50: round(percentile(fromCreated, 50)),
        p90: round(percentile(fromCreated, 90)),
        p99: round(percentile(fromCreated, 99)),
        max: round(fromCreated.at(-1)!),
      },
      fromCreateRequest: { p50: round(percentile(fromSent, 50)), p99: round(percentile(fromSent, 99)) },
      createBurstMs: round(createBurstMs),
      lastFirstPodAfterMs: round(lastPodMs),
      targets: { p50: 50, p99: 500 },
      oneAtATime: {
        jobs: SINGLE_JOBS,
        operator: {
          p50: round(percentile(operatorSingle.fromCreated, 50)),
          p99: round(percentile(operatorSingle.fromCreated, 99)),
        },
        noLogicController: {
          p50: round(percentile(noLogicSingle.fromCreated, 50)),
          p99: round(percentile(noLogicSingle.fromCreated, 99)),
        },
      },
      noLogicController: {
        what: 'the same burst in another namespace answered by no-logic-controller.ts (watch, create the same Job; no cache, queue, status or Events), before and after the operator burst',
        p50: noLogicAt('fromCreated', 50),
        p99: noLogicAt('fromCreated', 99),
        fromCreateRequest: { p50: noLogicAt('fromSent', 50), p99: noLogicAt('fromSent', 99) },
        createBurstMs: [round(noLogicBefore.createBurstMs), round(noLogicAfter.createBurstMs)],
        lastFirstPodAfterMs: [round(noLogicBefore.lastPodMs), round(noLogicAfter.lastPodMs)],
      },
    },
    resync: { reconciles: resyncReconciles, writes: sum(resyncWrites), byKind: resyncWrites, target: 0 },
    lifecycle: {
      jobs: LIFECYCLES,
      phases: typical.phases,
      writesPerJob,
      typical: typical.writes,
      minimum,
      minimumCounts: 'the Job create + one status write per phase change',
      registrationWrites:
        'ModelVersion create (TrainingJob controller) + ModelVersion status (registry): needed for the result, outside the minimum',
      eventsPerJob: lifecycles.map((l) => l.events),
    },
  };
  mkdirSync(join(REPO_ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(REPO_ROOT, 'bench/results/trainingjob.json'), JSON.stringify(result, null, 2) + '\n');
  const l = result.firstPodLatencyMs;
  const md = `## TrainingJob (operator/bench/trainingjob.bench.ts)

Operator as its own process, the bundle Dockerfile.operator ships run by plain node with the chart's NODE_OPTIONS; ${result.machine.cores} cores shared with the API server, etcd, KWOK, the benchmark and whatever else runs (1-minute load average ${result.machine.loadAverage1m.beforeBurst} before the burst, ${result.machine.loadAverage1m.afterBurst} after).

| measure | result | target |
|---|---|---|
| TrainingJob created -> first pod created (by the Job controller), ${l.jobs} jobs at once, p50 | ${l.fromCreateResponse.p50} ms | <= 50 ms |
| same, p90 / p99 / max | ${l.fromCreateResponse.p90} / ${l.fromCreateResponse.p99} / ${l.fromCreateResponse.max} ms | p99 <= 500 ms |
| same, counted from the create request instead of its response, p50 / p99 | ${l.fromCreateRequest.p50} / ${l.fromCreateRequest.p99} ms | |
| all ${l.jobs} creates answered / last first pod seen | ${l.createBurstMs} / ${l.lastFirstPodAfterMs} ms | |
| the same burst answered by a controller with no logic (no-logic-controller.ts), run before / after the operator's, p50 | ${l.noLogicController.p50.join(' / ')} ms | |
| same, p99 | ${l.noLogicController.p99.join(' / ')} ms | |
| same, counted from the create request, p50 / p99 | ${l.noLogicController.fromCreateRequest.p50.join(' / ')} ms / ${l.noLogicController.fromCreateRequest.p99.join(' / ')} ms | |
| same, all creates answered; last first pod seen | ${l.noLogicController.createBurstMs.join(' / ')} ms; ${l.noLogicController.lastFirstPodAfterMs.join(' / ')} ms | |
| one job at a time (${l.oneAtATime.jobs} jobs, each after the previous pod), operator p50 / p99 | ${l.oneAtATime.operator.p50} / ${l.oneAtATime.operator.p99} ms | |
| same, the controller with no logic, p50 / p99 | ${l.oneAtATime.noLogicController.p50} / ${l.oneAtATime.noLogicController.p99} ms | |
| API writes in a full resync with nothing changed (${result.resync.reconciles} reconciles) | ${result.resync.writes} | 0 |
| API writes per TrainingJob lifecycle (phases ${typical.phases.join(' -> ')}), events excluded | ${writesPerJob.join(', ')} | minimum ${minimum} + 2 for registration |
| of which (last job) | ${Object.entries(typical.writes)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ')} | |
| Kubernetes Events per lifecycle | ${result.lifecycle.eventsPerJob.join(', ')} | |
`;
  writeFileSync(join(REPO_ROOT, 'bench/results/trainingjob.md'), md);
  console.log(md);
} finally {
  operator.kill('SIGTERM');
  noLogic?.kill('SIGTERM');
  await h.stop();
}
