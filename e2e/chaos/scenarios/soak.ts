/**
 * (g) A soak: for `durationMs`, TrainingJobs, ModelVersions and InferenceServices are created, updated and
 * deleted without pause while the operator (operator/main.ts, a process of its own) is killed with SIGKILL at
 * random moments and started again, and clients post predictions through the Gateway (Traefik) to an
 * InferenceService whose new versions roll out as canaries on real predictor pods. Afterwards: one holder per
 * alias, version numbers unique and gap-free per model, canary weights never moving backwards within a rollout
 * (except to 0 on a rollback), nothing left of what was deleted, and no client request failed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { LABELS } from '../../../operator/api/contracts.ts';
import { kinds, type KubeObject, type ResourceKind } from '../../../operator/engine/index.ts';
import { applications } from '../../journey/traffic.ts';
import { GatewayClient } from '../../../test/support/gateway.ts';
import { startPrometheus } from '../../../test/support/prometheus.ts';
import { freePort, sleep, waitFor } from '../../../test/support/local.ts';
import { seededRandom } from '../../../examples/trainer/src/random.ts';
import { SIMULATED_PREDICTOR_IMAGE } from '../canary.ts';
import { REPO_ROOT, startChaos, type ChaosHarness } from '../harness.ts';
import { ScenarioRecord, type ScenarioResult } from '../report.ts';
import {
  checkSettledAliasHolders,
  checkVersionNumbers,
  createGatewayCanary,
  reconcileProbe,
  registerServedVersion,
  seedServedModel,
  trainingJob,
  waitForTrainingJobs,
} from '../workload.ts';

export interface SoakOptions {
  durationMs: number;
  /** The operator is killed after a random wait between these two (ms), each time. */
  killEveryMs: [number, number];
  seed?: number;
}

/** operator/main.ts as a process, as the chart runs it (no leader election: one replica). */
export class OperatorProcess {
  child: ChildProcess | undefined;
  constructor(
    private readonly h: ChaosHarness,
    private readonly env: Record<string, string>,
  ) {}

  async start(): Promise<void> {
    const port = await freePort();
    this.child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(REPO_ROOT, 'operator/main.ts'),
        '--namespace',
        this.h.namespace,
        '--no-leader-election',
        '--http-port',
        String(port),
        '--http-host',
        '127.0.0.1',
        '--retry-base-ms',
        '300',
      ],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, LOG_LEVEL: 'warn', ...this.env },
        stdio: ['ignore', 'ignore', process.env.LOG_LEVEL === 'debug' ? 'inherit' : 'ignore'],
      },
    );
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}

const isvcKinds: ResourceKind[] = [kinds.Deployment, kinds.Service, kinds.HTTPRoute];

export async function soak(options: SoakOptions): Promise<ScenarioResult> {
  const minutes = (options.durationMs / 60_000).toFixed(1);
  const record = new ScenarioRecord(
    'soak: churn + SIGKILL + traffic',
    `${minutes} min of creates, updates and deletes of all three kinds, the operator SIGKILLed every ${options.killEveryMs[0] / 1000}–${options.killEveryMs[1] / 1000} s, clients through the Gateway`,
  );
  const rand = seededRandom(options.seed ?? 7);
  const pick = <T>(items: T[]): T | undefined => items[Math.floor(rand() * items.length)];
  const h = await startChaos('chaos-soak', { operatorInProcess: false });
  const prometheus = await startPrometheus({ scrapeIntervalMs: 1000, discover: { namespace: h.namespace } });
  const operator = new OperatorProcess(h, { PROMETHEUS_URL: prometheus.url, PROMETHEUS_SCRAPE_INTERVAL: '1s' });
  const host = `traffic.${h.namespace}.example.com`;
  const client = new GatewayClient(host);
  const outcomes = new Map<string, number>();
  let running = true;
  try {
    await operator.start();
    const v1 = await seedServedModel(h);
    await createGatewayCanary(h, 'traffic', host, { steps: [20, 50, 100], interval: '5s' });
    const rows = applications(200, 0, 3);
    let lastAnswer: unknown;
    await waitFor(
      'the Gateway to route to the predictor',
      async () => {
        const answer = await client.post('/predict', { features: Object.values(rows[0]!) });
        lastAnswer = answer;
        return answer.status === 200 ? true : undefined;
      },
      120_000,
      500,
    ).catch(async (error: Error) => {
      const isvc = await h.api.get(kinds.InferenceService, h.namespace, 'traffic').catch(() => undefined);
      throw new Error(
        `${error.message}; last answer ${JSON.stringify(lastAnswer)}; InferenceService ${JSON.stringify(isvc?.status?.conditions)}`,
      );
    });

    // Clients: one request every 50 ms through the Gateway for the whole soak.
    let sent = 0;
    const traffic = (async () => {
      while (running) {
        const answer = await client.post('/predict', { features: Object.values(rows[sent++ % rows.length]!) }, 5000);
        const key = answer.status === 200 ? '200' : `${answer.status} ${JSON.stringify(answer.body).slice(0, 120)}`;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        await sleep(50);
      }
    })();

    // The canary's weight on the route, by canary version, as clients would see it.
    const weights = new Map<number, Array<{ weight: number; phase: string }>>();
    const watcher = (async () => {
      while (running) {
        const [isvc, route] = await Promise.all([
          h.api.get(kinds.InferenceService, h.namespace, 'traffic').catch(() => undefined),
          h.api.get(kinds.HTTPRoute, h.namespace, 'traffic').catch(() => undefined),
        ]);
        const canary = isvc?.status?.canaryVersion as number | undefined;
        if (canary !== undefined && route) {
          const backend = (route.spec.rules[0].backendRefs as Array<{ name: string; weight?: number }>).find(
            (b) => b.name === `traffic-v${canary}`,
          );
          const seen = weights.get(canary) ?? [];
          const sample = { weight: backend ? (backend.weight ?? 1) : 0, phase: isvc!.status.phase as string };
          if (seen.at(-1)?.weight !== sample.weight || seen.at(-1)?.phase !== sample.phase) seen.push(sample);
          weights.set(canary, seen);
        }
        await sleep(200);
      }
    })();

    // The killer: SIGKILL at a random moment, start again after a short pause, measure the recovery.
    let kills = 0;
    const killer = (async () => {
      while (running) {
        await sleep(options.killEveryMs[0] + rand() * (options.killEveryMs[1] - options.killEveryMs[0]));
        if (!running) break;
        await operator.kill();
        kills++;
        record.injected();
        await sleep(300 + rand() * 1500);
        await operator.start();
        record.recovered(await reconcileProbe(h, Date.now()));
      }
    })();

    // The churn.
    const deletedJobs: string[] = [];
    const deletedServices: string[] = [];
    let jobs = 0;
    let services = 0;
    let servedVersion = 1;
    const churnUntil = Date.now() + options.durationMs;
    while (Date.now() < churnUntil) {
      const op = pick([
        'train',
        'train',
        'delete-train',
        'alias',
        'isvc-create',
        'isvc-update',
        'isvc-delete',
        'canary',
      ])!;
      try {
        const tjs = (await h.api.list(kinds.TrainingJob, h.namespace)).items.filter((j) =>
          j.metadata.name.startsWith('churn-'),
        );
        const isvcs = (await h.api.list(kinds.InferenceService, h.namespace)).items.filter((i) =>
          i.metadata.name.startsWith('churn-'),
        );
        if (op === 'train' && tjs.filter((j) => !['Succeeded', 'Failed'].includes(j.status?.phase)).length < 2) {
          await h.api.create(kinds.TrainingJob, trainingJob(h, `churn-${++jobs}`, 'trained'), 'loopline-chaos');
        } else if (op === 'delete-train') {
          const done = pick(tjs.filter((j) => ['Succeeded', 'Failed'].includes(j.status?.phase)));
          if (done) {
            await h.api.delete(kinds.TrainingJob, h.namespace, done.metadata.name);
            deletedJobs.push(done.metadata.name);
          }
        } else if (op === 'alias') {
          const version = pick(
            (await h.api.list(kinds.ModelVersion, h.namespace)).items.filter((v) => v.spec.model === 'trained'),
          );
          if (version)
            await h.api.mergePatch(
              kinds.ModelVersion,
              h.namespace,
              version.metadata.name,
              { spec: { aliases: [pick(['staging', 'champion'])!] } },
              'loopline-chaos',
            );
        } else if (op === 'isvc-create' && isvcs.length < 3) {
          await h.api.create(
            kinds.InferenceService,
            {
              apiVersion: 'loopline.dev/v1alpha1',
              kind: 'InferenceService',
              metadata: { name: `churn-${++services}`, namespace: h.namespace },
              spec: {
                model: 'served',
                stable: { version: 1 },
                predictor: { image: SIMULATED_PREDICTOR_IMAGE },
                traffic: { provider: 'gatewayAPI', parentRefs: [{ name: 'edge' }] },
              },
            } as never,
            'loopline-chaos',
          );
        } else if (op === 'isvc-update') {
          const isvc = pick(isvcs);
          if (isvc)
            await h.api.mergePatch(
              kinds.InferenceService,
              h.namespace,
              isvc.metadata.name,
              { spec: { predictor: { replicas: isvc.spec.predictor?.replicas === 2 ? 1 : 2 } } },
              'loopline-chaos',
            );
        } else if (op === 'isvc-delete') {
          const isvc = pick(isvcs);
          if (isvc) {
            await h.api.delete(kinds.InferenceService, h.namespace, isvc.metadata.name);
            deletedServices.push(isvc.metadata.name);
          }
        } else if (op === 'canary') {
          const traffic = await h.api.get(kinds.InferenceService, h.namespace, 'traffic');
          if (traffic.status?.phase !== 'Progressing') {
            servedVersion++;
            await registerServedVersion(h, v1, servedVersion);
          }
        }
      } catch (error) {
        // The churn talks to the API server straight; a conflict or a race with the operator is fine, anything else is not.
        const status = (error as { statusCode?: number }).statusCode;
        if (status !== 409 && status !== 404) throw error;
      }
      await sleep(400 + rand() * 800);
    }

    running = false;
    await Promise.all([killer, traffic, watcher]);
    if (operator.child?.exitCode !== null) await operator.start();
    record.note(
      `${kills} SIGKILLs; ${jobs} TrainingJobs (${deletedJobs.length} deleted), ${services} InferenceServices (${deletedServices.length} deleted), ${servedVersion - 1} canaries; client requests: ${[...outcomes].map(([k, n]) => `${n}× ${k}`).join(', ')}`,
    );

    // Settle, then every invariant.
    const all = (await h.api.list(kinds.TrainingJob, h.namespace)).items.map((j) => j.metadata.name);
    const { done, stuck } = await waitForTrainingJobs(h, all, 180_000);
    record.check(stuck.length === 0, `every TrainingJob finishes: ${stuck.join(', ') || 'all did'}`);
    for (const job of done)
      record.check(
        job.status.phase === 'Succeeded',
        `TrainingJob ${job.metadata.name} Succeeded: ${job.status.phase} ${job.status.message ?? ''}`,
      );
    await waitFor(
      'the last canary to finish',
      async () =>
        (await h.api.get(kinds.InferenceService, h.namespace, 'traffic')).status?.phase !== 'Progressing'
          ? true
          : undefined,
      120_000,
    ).catch(() => undefined);
    const versions = (await h.api.list(kinds.ModelVersion, h.namespace)).items.filter(
      (v) => !v.spec.model.startsWith('probe-'),
    );
    for (const model of ['trained', 'served'])
      checkVersionNumbers(
        record,
        model,
        versions.filter((v) => v.spec.model === model),
      );
    const trainedBy = new Map<string, number>();
    for (const v of versions)
      if (v.spec.lineage?.trainingJob)
        trainedBy.set(v.spec.lineage.trainingJob, (trainedBy.get(v.spec.lineage.trainingJob) ?? 0) + 1);
    const twice = [...trainedBy].filter(([, n]) => n > 1).map(([name]) => name);
    record.check(twice.length === 0, `no TrainingJob registered two versions: ${twice.join(', ') || 'none did'}`);
    await checkSettledAliasHolders(h, record, undefined);
    for (const [canary, seen] of weights) {
      let backwards = '';
      for (let i = 1; i < seen.length; i++) {
        const [a, b] = [seen[i - 1]!, seen[i]!];
        if (b.weight < a.weight && !(b.weight === 0 && b.phase === 'RolledBack'))
          backwards ||= `${a.weight}% → ${b.weight}% (${b.phase})`;
      }
      record.check(
        backwards === '',
        `canary v${canary}'s weight never moves backwards: ${backwards || seen.map((s) => `${s.weight}%`).join(' → ')}`,
      );
    }
    // Deleted objects leave nothing behind (the garbage collector follows the operator's owner references).
    await waitFor(
      'what deleted objects owned to be collected',
      async () => (await orphans(h, deletedJobs, deletedServices)).length === 0 || undefined,
      60_000,
    ).catch(() => undefined);
    const left = await orphans(h, deletedJobs, deletedServices);
    record.check(left.length === 0, `nothing orphaned after deletes: ${left.join(', ') || 'none'}`);
    const failed = [...outcomes].filter(([k]) => k !== '200').reduce((n, [, c]) => n + c, 0);
    record.check(failed === 0, `no client request through the Gateway failed: ${failed} of ${sent}`);
  } finally {
    running = false;
    client.close();
    await operator.kill();
    await prometheus.stop();
    await h.stop();
  }
  return record.result();
}

/** Objects still there that belonged to a deleted TrainingJob (Jobs, pods) or InferenceService (Deployments, Services, routes). */
async function orphans(h: ChaosHarness, jobs: string[], services: string[]): Promise<string[]> {
  const left: string[] = [];
  for (const kind of [kinds.Job, kinds.Pod]) {
    for (const o of (await h.api.list(kind, h.namespace)).items as KubeObject[]) {
      if (jobs.includes(o.metadata.labels?.[LABELS.trainingJob] ?? '')) left.push(`${kind.kind} ${o.metadata.name}`);
    }
  }
  for (const kind of isvcKinds) {
    for (const o of (await h.api.list(kind, h.namespace)).items as KubeObject[]) {
      if (services.includes(o.metadata.labels?.[LABELS.inferenceService] ?? ''))
        left.push(`${kind.kind} ${o.metadata.name}`);
    }
  }
  return left;
}
