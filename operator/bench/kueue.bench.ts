import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { Watch } from '@kubernetes/client-node';
import { operatorWrites as writes } from './support/scale.ts';
import { startShippedOperator } from './support/shipped-operator.ts';
import { controllerReference } from '../engine/keys.ts';
import { kinds, type KubeObject } from '../engine/index.ts';
import { desiredJob } from '../trainingjob/job.ts';
import { KUEUE_PREBUILT_WORKLOAD_LABEL } from '../trainingjob/kueue.ts';
import type { TrainingJob } from '../trainingjob/resource.ts';
import {
  GPU_PRODUCT,
  REPO_ROOT,
  createQueue,
  sleep,
  startHarness,
  trainingJobObject,
  waitFor,
  type Harness,
} from '../../test/support/operator-harness.ts';
import { percentile } from '../../test/support/figures.ts';

const JOBS = Number(process.env.BENCH_KUEUE_JOBS ?? 500);
const SECONDS = Number(process.env.BENCH_KUEUE_SECONDS ?? 4);
const QUOTA = 16;
const GPUS_PER_JOB = 1;

const round = (n: number) => Math.round(n * 10) / 10;

/** A valid training result (digest and all) whose AUC fails the bench jobs' gate: judged, not registered. */
const RESULT = JSON.stringify({
  artifact: { uri: 'file:///var/lib/loopline/bench/model.onnx', digest: `sha256:${'0'.repeat(64)}`, format: 'onnx' },
  metrics: { auc: 0.5 },
  signature: {
    inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 4] }],
    outputs: [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }],
  },
});

/** The bench's TrainingJob: one GPU, a KWOK-run image (not loopline/...), training for SECONDS, queued in `queue`. */
function benchJob(h: Harness, namespace: string, name: string, queue: string): KubeObject {
  const job = trainingJobObject(h, name, {
    image: 'registry.local/simulated-trainer:0.1.0',
    queueName: queue,
    resources: { gpus: GPUS_PER_JOB, gpuType: GPU_PRODUCT },
    hyperparameters: {},
    env: [
      { name: 'SIMULATED_TRAINING_DURATION', value: `${SECONDS}s` },
      { name: 'SIMULATED_TRAINING_RESULT', value: RESULT },
    ],
    registration: { gates: [{ metric: 'auc', operator: '>=', value: 0.99 }] },
  });
  job.metadata.namespace = namespace;
  return job;
}

interface Run {
  submittedAt: Map<string, number>;
  podCreated: Map<string, number>;
  podFinished: Map<string, number>;
  maxGpus: number;
  samples: number;
  overQuota: number;
  start: number;
  /** Date.now() at `start`: converts the API server's timestamps (whole seconds) onto the run's clock. */
  startEpoch: number;
}

/**
 * Submits every name at once with `submit`, watching the namespace's pods: when each job's pod appears and finishes,
 * and (every 100 ms) how many GPUs live pods hold. Returns once every job's pod has succeeded.
 */
async function measure(
  h: Harness,
  namespace: string,
  names: string[],
  jobOf: (pod: KubeObject) => string | undefined,
  submit: (name: string) => Promise<unknown>,
): Promise<Run> {
  const run: Run = {
    submittedAt: new Map(),
    podCreated: new Map(),
    podFinished: new Map(),
    maxGpus: 0,
    samples: 0,
    overQuota: 0,
    start: 0,
    startEpoch: 0,
  };
  const live = new Map<string, number>();
  let from = (await h.api.list(kinds.Pod, namespace)).metadata.resourceVersion;
  let watching = true;
  let watch: { abort(): void } | undefined;
  const open = async (): Promise<void> => {
    watch = (await new Watch(h.kc).watch(
      `/api/v1/namespaces/${namespace}/pods`,
      { resourceVersion: from },
      (type, pod: KubeObject) => {
        if (pod.metadata?.resourceVersion) from = pod.metadata.resourceVersion;
        const job = jobOf(pod);
        if (!job) return;
        const uid = pod.metadata.uid!;
        const now = performance.now();
        if (type === 'ADDED' && !run.podCreated.has(job)) run.podCreated.set(job, now);
        const done = pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
        if (type === 'DELETED' || done) live.delete(uid);
        else live.set(uid, Number(pod.spec.containers[0].resources?.requests?.['nvidia.com/gpu'] ?? 0));
        if (pod.status?.phase === 'Succeeded' && !run.podFinished.has(job)) run.podFinished.set(job, now);
      },
      () => {
        if (watching) setTimeout(() => void open().catch(() => undefined), 100);
      },
    )) as { abort(): void };
  };
  await open();
  const sampler = setInterval(() => {
    const gpus = [...live.values()].reduce((a, b) => a + b, 0);
    run.samples++;
    run.maxGpus = Math.max(run.maxGpus, gpus);
    if (gpus > QUOTA) run.overQuota++;
  }, 100);
  run.start = performance.now();
  run.startEpoch = Date.now();
  await Promise.all(
    names.map(async (name) => {
      await submit(name);
      run.submittedAt.set(name, performance.now());
    }),
  );
  const ideal = (JOBS * GPUS_PER_JOB * SECONDS) / QUOTA;
  await waitFor(
    `${names.length} training pods in ${namespace} to succeed`,
    () => run.podFinished.size >= names.length || undefined,
    (ideal * 4 + 180) * 1000,
  );
  clearInterval(sampler);
  watching = false;
  watch?.abort();
  return run;
}

function summarize(run: Run, names: string[]) {
  const created = [...run.podCreated.values()].sort((a, b) => a - b);
  const finished = [...run.podFinished.values()].sort((a, b) => a - b);
  // The k-th training pod to finish frees the GPU the (QUOTA/GPUS_PER_JOB + k)-th pod takes.
  const slots = QUOTA / GPUS_PER_JOB;
  const freedToNext = finished
    .slice(0, Math.max(0, created.length - slots))
    .map((t, k) => created[slots + k] - t)
    .sort((a, b) => a - b);
  // FIFO: a job whose pod came before the pod of a job submitted more than a second earlier (Kueue orders by
  // creation time, which the API server keeps to the second) was admitted out of order.
  const order = names
    .map((n) => ({ submitted: run.submittedAt.get(n)!, started: run.podCreated.get(n)! }))
    .sort((a, b) => a.submitted - b.submitted);
  let outOfOrder = 0;
  for (const [i, job] of order.entries()) {
    if (order.slice(0, i).some((earlier) => earlier.submitted < job.submitted - 1000 && earlier.started > job.started))
      outOfOrder++;
  }
  const makespanS = (finished.at(-1)! - run.start) / 1000;
  const idealS = (names.length * GPUS_PER_JOB * SECONDS) / QUOTA;
  return {
    jobs: names.length,
    maxGpusHeld: run.maxGpus,
    samplesOverQuota: run.overQuota,
    samples: run.samples,
    admittedOutOfOrder: outOfOrder,
    freedToNextPodMs: {
      p50: round(percentile(freedToNext, 50)),
      p99: round(percentile(freedToNext, 99)),
      max: round(freedToNext.at(-1) ?? 0),
    },
    makespanS: round(makespanS),
    idealS: round(idealS),
    makespanOverIdeal: Math.round((makespanS / idealS) * 100) / 100,
  };
}

/**
 * With BENCH_KUEUE_TRACE=<file>: each job's timeline in ms from the run's start — submitted, its Job and Workload
 * created, quota reserved (the API server's whole seconds), its pod created and finished — to tell where a wait is.
 */
async function trace(run: Run, namespace: string) {
  const jobOf = (job: KubeObject) => job.metadata.labels?.['loopline.dev/trainingjob'];
  const at = (time: Date | string | undefined) => (time ? new Date(time).getTime() - run.startEpoch : undefined);
  const rows = new Map<string, Record<string, number | undefined>>();
  const row = (name: string) => rows.get(name) ?? rows.set(name, {}).get(name)!;
  for (const [name, t] of run.submittedAt) row(name).submitted = Math.round(t - run.start);
  for (const job of (await h.api.list(kinds.Job, namespace)).items) {
    const name = jobOf(job);
    if (name) row(name).job = at(job.metadata.creationTimestamp);
  }
  const jobNames = new Map((await h.api.list(kinds.Job, namespace)).items.map((j) => [j.metadata.uid, jobOf(j)]));
  for (const wl of (await h.api.list(kinds.Workload, namespace)).items) {
    const name = jobNames.get(wl.metadata.ownerReferences?.[0]?.uid);
    if (!name) continue;
    row(name).workload = at(wl.metadata.creationTimestamp);
    const reserved = (wl.status?.conditions ?? []).find((c: { type: string }) => c.type === 'QuotaReserved');
    row(name).reserved = at(reserved?.lastTransitionTime);
  }
  for (const [name, t] of run.podCreated) row(name).pod = Math.round(t - run.start);
  for (const [name, t] of run.podFinished) row(name).finished = Math.round(t - run.start);
  return Object.fromEntries([...rows].sort(([a], [b]) => a.localeCompare(b)));
}

const h = await startHarness('bench-kueue', { operator: false, kubelet: false });
const floorNamespace = `${h.namespace}-plain`;
const { process: operator, port } = await startShippedOperator(h.namespace);
try {
  const names = Array.from({ length: JOBS }, (_, i) => `tj-${String(i).padStart(4, '0')}`);
  const loadBefore = loadavg()[0];

  // Floor: the same Jobs the operator would make, created directly in a namespace of their own, on a ClusterQueue of its own.
  await h.api.create(
    kinds.Namespace,
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: floorNamespace } } as never,
    'bench',
  );
  // Shares h's list of ClusterQueues, so h.stop() deletes this one too.
  await createQueue({ ...h, namespace: floorNamespace }, 'bench', QUOTA);
  const plainJob = (name: string) => {
    const tj = {
      ...benchJob(h, floorNamespace, name, 'bench'),
      metadata: { name, namespace: floorNamespace, uid: 'none' },
    } as unknown as TrainingJob;
    const job = desiredJob(tj, controllerReference(tj as unknown as KubeObject), 1);
    job.metadata.ownerReferences = undefined;
    // Kueue makes the Workload of a plain Job.
    delete (job.metadata.labels as Record<string, string>)[KUEUE_PREBUILT_WORKLOAD_LABEL];
    return job;
  };
  const floorRun = await measure(
    h,
    floorNamespace,
    names,
    (pod) => pod.metadata.labels?.['batch.kubernetes.io/job-name']?.replace(/-1$/, ''),
    (name) => h.api.create(kinds.Job, plainJob(name), 'bench'),
  );
  const floor = summarize(floorRun, names);
  const floorTrace = process.env.BENCH_KUEUE_TRACE ? await trace(floorRun, floorNamespace) : undefined;
  // The floor's finished Jobs stay until the end: deleting 500 Jobs and pods would load the control plane during the next run.
  await sleep(5000);

  // Loopline: the same number of TrainingJobs through the operator.
  await createQueue(h, 'bench', QUOTA);
  const before = await writes(port);
  const loopRun = await measure(
    h,
    h.namespace,
    names,
    (pod) => pod.metadata.labels?.['loopline.dev/trainingjob'],
    (name) => h.api.create(kinds.TrainingJob, benchJob(h, h.namespace, name, 'bench'), 'bench'),
  );
  const loopline = summarize(loopRun, names);
  if (process.env.BENCH_KUEUE_TRACE)
    writeFileSync(
      process.env.BENCH_KUEUE_TRACE,
      JSON.stringify({
        floor: floorTrace,
        loopline: await trace(loopRun, h.namespace),
      }),
    );
  await waitFor(
    'every TrainingJob to be Succeeded',
    async () =>
      (await h.api.list(kinds.TrainingJob, h.namespace)).items.every((j) => j.status?.phase === 'Succeeded') ||
      undefined,
    120_000,
  );
  await sleep(2000);
  const after = await writes(port);
  const byKind: Record<string, number> = {};
  for (const [k, v] of after)
    if (!k.endsWith(' Lease') && !k.endsWith(' Event') && v - (before.get(k) ?? 0) > 0)
      byKind[k] = v - (before.get(k) ?? 0);
  const events = [...after]
    .filter(([k]) => k.endsWith(' Event'))
    .reduce((a, [k, v]) => a + v - (before.get(k) ?? 0), 0);
  const total = Object.values(byKind).reduce((a, b) => a + b, 0);

  const result = {
    machine: {
      arch: process.arch,
      cores: cpus().length,
      loadAverage1m: { before: round(loadBefore), after: round(loadavg()[0]) },
    },
    shape: { jobs: JOBS, gpusPerJob: GPUS_PER_JOB, secondsPerPod: SECONDS, quotaGpus: QUOTA },
    loopline,
    floor,
    targets: { makespanWithinOfFloor: 1.1, freedToNextP99WithinOfFloor: 2 },
    makespanOverFloor: Math.round((loopline.makespanS / floor.makespanS) * 100) / 100,
    freedToNextP99OverFloor:
      Math.round((loopline.freedToNextPodMs.p99 / Math.max(1, floor.freedToNextPodMs.p99)) * 100) / 100,
    writes: {
      perTrainingJob: round(total / JOBS),
      minimum: 5,
      minimumCounts:
        'the Job and Workload creates + one status write per state a user sees: Queued, Running (admitted, pod started), Succeeded',
      byKind: Object.fromEntries(Object.entries(byKind).map(([k, v]) => [k, round(v / JOBS)])),
      eventsPerTrainingJob: round(events / JOBS),
    },
  };
  mkdirSync(join(REPO_ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(REPO_ROOT, 'bench/results/kueue.json'), JSON.stringify(result, null, 2) + '\n');
  const row = (what: string, get: (r: typeof loopline) => string | number, target = '') =>
    `| ${what} | ${get(loopline)} | ${get(floor)} | ${target} |`;
  const md = `## Kueue (operator/bench/kueue.bench.ts)

${JOBS} jobs of ${GPUS_PER_JOB} GPU submitted at once to a ClusterQueue of ${QUOTA} GPUs (the two KWOK GPU nodes), each training pod run by KWOK for ${SECONDS} s; the real Kueue v0.17.0, Job controller and scheduler; the operator as its own process (the bundle Dockerfile.operator ships). Floor: Kueue admitting the same Jobs created directly, no Loopline. ${result.machine.cores} cores shared with everything else (1-minute load average ${result.machine.loadAverage1m.before} before, ${result.machine.loadAverage1m.after} after).

| measure | TrainingJobs (Loopline) | plain Jobs (floor) | target |
|---|---|---|---|
${row('GPUs held by live pods, max of 100 ms samples (quota ' + QUOTA + ')', (r) => `${r.maxGpusHeld} (${r.samplesOverQuota} of ${r.samples} samples over)`, `<= ${QUOTA}, 0 over`)}
${row("admitted out of submission order (beyond the API server's 1 s timestamps)", (r) => r.admittedOutOfOrder, '0')}
${row('quota freed (pod finished) -> next training pod created, p50 / p99 / max', (r) => `${r.freedToNextPodMs.p50} / ${r.freedToNextPodMs.p99} / ${r.freedToNextPodMs.max} ms`, `p99 <= 2x floor (${result.freedToNextP99OverFloor}x)`)}
${row('makespan / ideal (total GPU-time / quota)', (r) => `${r.makespanS} s / ${r.idealS} s (${r.makespanOverIdeal}x)`, `<= 1.1x floor (${result.makespanOverFloor}x)`)}
| operator API writes per TrainingJob (Events excluded) | ${result.writes.perTrainingJob} (${Object.entries(
    result.writes.byKind,
  )
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}) | | minimum ${result.writes.minimum} |
| Kubernetes Events per TrainingJob | ${result.writes.eventsPerTrainingJob} | | |
`;
  writeFileSync(join(REPO_ROOT, 'bench/results/kueue.md'), md);
  console.log(md);
} finally {
  operator.kill('SIGTERM');
  await h.api.delete(kinds.Namespace, undefined, floorNamespace).catch(() => undefined);
  await h.stop();
}
