/**
 * InferenceService controller at scale (issue 5, Benchmark), against the real kube-apiserver,
 * kube-controller-manager and kube-scheduler of the local cluster:
 *   - time for N InferenceServices (default 1000) to converge: every owned object created and status Ready;
 *   - API writes per InferenceService against the minimum (one per owned object plus one status write);
 *   - writes during a full resync with nothing changed;
 *   - the operator's resident memory at that scale.
 * The operator runs as its own process (this file with --operator), wired like operator/main.ts, so its memory is
 * its own. Predictor pods use a non-`loopline/` image: KWOK plays their kubelet (Running and Ready after
 * 0.2-0.7 s), so no predictor process runs; the bench adds simulated nodes for the pods and removes them after.
 *   npm run bench -- inferenceservice      (or: npx tsx operator/bench/inferenceservice.bench.ts, KUBECONFIG set)
 *   BENCH_ISVCS=200 for a quicker run.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { createEngine, kinds, KubeApi } from '../engine/index.ts';
import { inferenceServiceSettings, setUpInferenceServices } from '../inferenceservice/config.ts';
import { DEFAULT_WORKERS } from '../inferenceservice/controller.ts';
import { bundleOperator, chartNodeOptions } from '../../scripts/bundle-operator.ts';
import { installCrds } from '../api/install.ts';
import { requireKubeconfig, sleep, uniqueName } from '../../test/support/local.ts';
import { registerVersion } from '../../test/support/model-versions.ts';
import { createNamespace } from '../../test/support/namespaces.ts';
import {
  addCapacity,
  benchInferenceService,
  controlPlaneCpu,
  cpuSpent,
  forEachInferenceService,
  SIMULATED_IMAGE,
} from './support/scale.ts';

const WORKERS = process.env.BENCH_WORKERS ? Number(process.env.BENCH_WORKERS) : undefined;
const OWNED_PER_SERVICE = ['Deployment', 'Service', 'Service', 'PodDisruptionBudget', 'HTTPRoute'];
/** Kinds that are not InferenceService writes (none are expected; they would be reported separately). */
const NOT_COUNTED = ['Lease', 'Event'];

type Message =
  | { type: 'started' }
  | { type: 'stats'; writes: Record<string, number>; rssBytes: number; heapUsedBytes: number; cached: number };

/** The operator process: the InferenceService controller alone, answering the benchmark's questions over IPC. */
async function runOperator(namespace: string): Promise<void> {
  const engine = createEngine({
    namespace,
    leaderElection: false,
    httpPort: false,
    logger: pino({ level: 'warn' }),
    resyncPeriodMs: 0,
  });
  await setUpInferenceServices(engine, {
    ...inferenceServiceSettings({
      PREDICTOR_IMAGE: SIMULATED_IMAGE,
      PROMETHEUS_URL: 'http://127.0.0.1:9',
      ...(WORKERS ? { INFERENCESERVICE_WORKERS: String(WORKERS) } : {}),
    }),
    namespace,
  });
  await engine.start();
  const stats = (collect: boolean): Message => {
    // Memory is read after a full collection (the child runs with --expose-gc): what the operator keeps, not garbage.
    if (collect) (globalThis as { gc?: () => void }).gc?.();
    const memory = process.memoryUsage();
    return {
      type: 'stats',
      writes: engine.writes.snapshot(),
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      cached: engine.cache.list(kinds.InferenceService).length,
    };
  };
  process.on('message', (command: { cmd: 'stats' | 'resync' | 'stop'; gc?: boolean }) => {
    void (async () => {
      if (command.cmd === 'resync') {
        engine.resync();
        await sleep(100);
        await engine.waitIdle();
      }
      if (command.cmd === 'stop') {
        await engine.stop();
        process.exit(0);
      }
      process.send!(stats(command.gc === true));
    })();
  });
  process.send!({ type: 'started' } satisfies Message);
}

class OperatorProcess {
  private readonly child: ChildProcess;
  private waiting: Array<(message: Message) => void> = [];

  constructor(namespace: string, script: string, execArgv: string[]) {
    this.child = fork(script, ['--operator', namespace], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (message: Message) => this.waiting.shift()?.(message));
    this.child.once('exit', (code) => {
      if (code !== 0 && code !== null) console.error(`operator process exited with ${code}`);
    });
  }

  next(): Promise<Message> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  async ask(cmd: 'stats' | 'resync', gc = false): Promise<Extract<Message, { type: 'stats' }>> {
    const answer = this.next();
    this.child.send({ cmd, gc });
    return (await answer) as Extract<Message, { type: 'stats' }>;
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.send({ cmd: 'stop' });
    await Promise.race([exited, sleep(10_000).then(() => this.child.kill('SIGKILL'))]);
  }
}

const counted = (writes: Record<string, number>) =>
  Object.entries(writes)
    .filter(([key]) => !NOT_COUNTED.includes(key.split(' ')[1]!))
    .reduce((sum, [, n]) => sum + n, 0);
const diff = (after: Record<string, number>, before: Record<string, number>) =>
  Object.fromEntries(
    Object.entries(after)
      .map(([k, n]) => [k, n - (before[k] ?? 0)])
      .filter(([, n]) => (n as number) !== 0),
  );
const mb = (bytes: number) => Math.round(bytes / 1024 / 1024);

/**
 * The operator ships as one esbuild bundle run by plain node (Dockerfile.operator, scripts/bundle-operator.ts);
 * its memory is measured that way: this file bundled the same way, run with --operator. BENCH_OPERATOR_RUNTIME=tsx
 * runs this file through tsx instead (tsx's loader adds ~100 MB).
 */
async function operatorRuntime(): Promise<{ name: string; script: string; execArgv: string[] }> {
  if (process.env.BENCH_OPERATOR_RUNTIME === 'tsx')
    return { name: 'tsx', script: fileURLToPath(import.meta.url), execArgv: ['--expose-gc', '--import', 'tsx'] };
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const script = join(root, 'node_modules/.cache/loopline-bench-dist/inferenceservice.bench.mjs');
  console.log('bundling the operator as Dockerfile.operator does (scripts/bundle-operator.ts)');
  await bundleOperator(fileURLToPath(import.meta.url), script);
  return {
    name: 'node (bundled)',
    script,
    execArgv: ['--expose-gc', ...chartNodeOptions(process.env.BENCH_OPERATOR_NODE_OPTIONS)],
  };
}

async function runBenchmark(): Promise<void> {
  const count = Number(process.env.BENCH_ISVCS ?? 1000);
  const kc = requireKubeconfig();
  const api = new KubeApi(kc);
  const namespace = uniqueName('bench-isvc');
  const loadBefore = loadavg()
    .map((l) => l.toFixed(2))
    .join(', ');
  await installCrds(kc);
  await createNamespace(api, namespace);
  const capacity = await addCapacity(api, namespace, count);
  await registerVersion(api, namespace, 'bench-model', 1, ['production']);
  const runtime = await operatorRuntime();
  const operator = new OperatorProcess(namespace, runtime.script, runtime.execArgv);
  await operator.next();
  const idle = await operator.ask('stats', true);
  console.log(
    `operator started (${mb(idle.rssBytes)} MB resident); creating ${count} InferenceServices in ${namespace}`,
  );

  try {
    const cpuBefore = controlPlaneCpu();
    const t0 = Date.now();
    await forEachInferenceService(count, async (name) => {
      await api.create(kinds.InferenceService, benchInferenceService(namespace, name) as never, 'loopline-bench');
    });
    const createdMs = Date.now() - t0;
    let objectsMs: number | undefined;
    let readyMs: number | undefined;
    let ready = 0;
    const deadline = t0 + 600_000;
    while (readyMs === undefined && Date.now() < deadline) {
      await sleep(2000);
      const stats = await operator.ask('stats');
      const applied = OWNED_PER_SERVICE.every(
        (kind) => (stats.writes[`apply ${kind}`] ?? 0) >= count * OWNED_PER_SERVICE.filter((k) => k === kind).length,
      );
      if (applied && objectsMs === undefined) objectsMs = Date.now() - t0;
      const list = (await api.list(kinds.InferenceService, namespace)).items;
      ready = list.filter((isvc) =>
        isvc.status?.conditions?.some(
          (c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True',
        ),
      ).length;
      console.log(
        `  ${((Date.now() - t0) / 1000).toFixed(0)} s: ${ready}/${count} Ready, writes ${counted(stats.writes)}`,
      );
      if (ready === count) readyMs = Date.now() - t0;
    }
    const converged = await operator.ask('stats');
    const controlPlane = cpuSpent(controlPlaneCpu(), cpuBefore);
    // Quiet period: late Deployment status updates settle before the resync is measured.
    await sleep(5000);
    const settled = await operator.ask('stats');
    const afterResync = await operator.ask('resync');
    const resyncWrites = diff(afterResync.writes, settled.writes);
    const afterGc = await operator.ask('stats', true);

    const writes = settled.writes;
    const totalWrites = counted(writes);
    const minimum = OWNED_PER_SERVICE.length + 1;
    const statusWrites =
      (writes['apply-status InferenceService'] ?? 0) + (writes['patch-status InferenceService'] ?? 0);
    const result = {
      inferenceServices: count,
      namespace,
      machine: `${cpus().length} cores, load ${loadBefore} before / ${loadavg()
        .map((l) => l.toFixed(2))
        .join(', ')} after`,
      createRequestsMs: createdMs,
      allObjectsCreatedMs: objectsMs ?? null,
      allReadyMs: readyMs ?? null,
      readyAtEnd: ready,
      writes,
      writesPerInferenceService: totalWrites / count,
      minimumWritesPerInferenceService: minimum,
      objectWritesPerInferenceService: (totalWrites - statusWrites) / count,
      statusWritesPerInferenceService: statusWrites / count,
      writesAfterConvergence: counted(diff(settled.writes, converged.writes)),
      resyncWrites: counted(resyncWrites),
      resyncWritesByKind: resyncWrites,
      operatorRssMB: mb(afterGc.rssBytes),
      operatorHeapUsedMB: mb(afterGc.heapUsedBytes),
      operatorRssIdleMB: mb(idle.rssBytes),
      operatorRuntime: runtime.name,
      workers: WORKERS ?? DEFAULT_WORKERS,
      operatorNodeOptions: runtime.execArgv.filter((a) => a !== '--expose-gc').join(' '),
      controlPlaneCpuSeconds: controlPlane,
    };
    writeResults(result);
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await operator.stop();
    await capacity.remove();
  }
}

function writeResults(r: Record<string, any>): void {
  const dir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    `${dir}inferenceservice.json`,
    `${JSON.stringify({ generated: new Date().toISOString(), ...r }, null, 2)}\n`,
  );
  const s = (ms: number | null) => (ms === null ? 'not reached' : `${(ms / 1000).toFixed(1)} s`);
  const met = (ok: boolean, miss: string) => (ok ? 'yes' : `no, ${miss}`);
  const byKind = Object.entries(r.writes as Record<string, number>)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const md = `## InferenceService controller at scale (\`operator/bench/inferenceservice.bench.ts\`)

${r.inferenceServices} InferenceServices (stable version only, Gateway API route) created 16 at a time against the local cluster's real
kube-apiserver, kube-controller-manager and kube-scheduler; the operator is a separate process (the InferenceService controller as
operator/main.ts wires it, ${r.workers} workers). Predictor pods use a non-\`loopline/\` image, so KWOK marks them Running and Ready on simulated
nodes (added for the run); no predictor process runs. Machine: ${r.machine}.

| measure | value |
|---|---|
| create requests sent | ${s(r.createRequestsMs)} |
| every owned object applied (5 per service) | ${s(r.allObjectsCreatedMs)} |
| every InferenceService Ready (Deployment available) | ${s(r.allReadyMs)} (${r.readyAtEnd}/${r.inferenceServices}) |
| API writes per InferenceService | ${r.writesPerInferenceService.toFixed(2)} (objects ${r.objectWritesPerInferenceService.toFixed(2)}, status ${r.statusWritesPerInferenceService.toFixed(2)}) |
| minimum: one per owned object + one status write | ${r.minimumWritesPerInferenceService} |
| writes after convergence (5 s quiet) | ${r.writesAfterConvergence} |
| writes during a full resync, nothing changed | ${r.resyncWrites} |
| operator resident memory (heap used), ${r.operatorRuntime} | ${r.operatorRssMB} MB (${r.operatorHeapUsedMB} MB); idle before: ${r.operatorRssIdleMB} MB |
| CPU the control plane spent from the first create to convergence | ${r.controlPlaneCpuSeconds.total} s (${Object.entries(
    r.controlPlaneCpuSeconds.byComponent as Record<string, number>,
  )
    .map(([k, v]) => `${k} ${v}`)
    .join(
      ', ',
    )}): on ${cpus().length} cores that alone is at least ${(r.controlPlaneCpuSeconds.total / cpus().length).toFixed(0)} s of wall time (the same objects with no operator: bench/results/inferenceservice-objects.md) |

Writes by verb and kind: ${byKind}.
The second status write per service is the Ready transition: the first reconcile reports Ready False (no pod yet), the
Deployment becoming available flips it to True.

| target | measured | met |
|---|---|---|
| converge ≤ 60 s | ${s(r.allReadyMs)} | ${met(r.allReadyMs !== null && r.allReadyMs <= 60_000, 'slower')} |
| writes per service = minimum (${r.minimumWritesPerInferenceService}) | ${r.writesPerInferenceService.toFixed(2)} | ${met(r.writesPerInferenceService <= r.minimumWritesPerInferenceService, `+${(r.writesPerInferenceService - r.minimumWritesPerInferenceService).toFixed(2)}: the Ready transition`)} |
| resync writes = 0 | ${r.resyncWrites} | ${met(r.resyncWrites === 0, 'writes on resync')} |
| operator memory ≤ 150 MB | ${r.operatorRssMB} MB | ${met(r.operatorRssMB <= 150, 'over')} |
`;
  writeFileSync(`${dir}inferenceservice.md`, md);
}

// Dispatched last: the classes and constants above must be initialised first.
if (process.argv.includes('--operator')) {
  await runOperator(process.argv[process.argv.indexOf('--operator') + 1]!);
} else {
  await runBenchmark();
}
