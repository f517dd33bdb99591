/**
 * (h) Predictor pods go away under traffic the way they do every day: one at a time (a rolling update, a
 * scale-down, a node drain: the pod is deleted and its Deployment starts another), a canary rolled back while
 * it carries half the traffic, and one promoted (the old stable version's pods go). Clients post through the
 * Gateway (Traefik) all along. A deleted pod stays in the gateway's list until the EndpointSlice change reaches
 * it, so a predictor that closed its port on SIGTERM would answer that gap with connection refused (502): the
 * invariant is that no client request fails. (A SIGKILLed process fails its in-flight requests on any platform;
 * here every pod is stopped gracefully, as Kubernetes stops them.)
 */
import { LABELS } from '../../../operator/api/contracts.ts';
import { kinds, type KubeObject } from '../../../operator/engine/index.ts';
import { applications } from '../../journey/traffic.ts';
import { GatewayClient } from '../../../test/support/gateway.ts';
import { startPrometheus } from '../../../test/support/prometheus.ts';
import { sleep, waitFor } from '../../../test/support/local.ts';
import { startChaos } from '../harness.ts';
import { ScenarioRecord, type ScenarioResult } from '../report.ts';
import { createGatewayCanary, registerServedVersion, seedServedModel } from '../workload.ts';
import { OperatorProcess } from './soak.ts';

export interface ReplacementOptions {
  /** Predictor pods deleted one after another (each once its replacement is ready). */
  deletions: number;
  /** Predictor replicas of each version (at least 2: a single pod deleted leaves nobody to answer). */
  replicas?: number;
}

const ready = (pod: KubeObject) =>
  !pod.metadata.deletionTimestamp &&
  (pod.status?.conditions ?? []).some(
    (c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True',
  );

export async function predictorReplacement(options: ReplacementOptions): Promise<ScenarioResult> {
  const replicas = options.replicas ?? 2;
  const record = new ScenarioRecord(
    'predictor pods replaced under traffic',
    `${options.deletions} predictor pods deleted one at a time (${replicas} replicas), a canary rolled back at 50% and one promoted, clients through the Gateway`,
  );
  const h = await startChaos('chaos-replace', { operatorInProcess: false });
  const prometheus = await startPrometheus({ scrapeIntervalMs: 1000, discover: { namespace: h.namespace } });
  const operator = new OperatorProcess(h, { PROMETHEUS_URL: prometheus.url, PROMETHEUS_SCRAPE_INTERVAL: '1s' });
  const host = `replace.${h.namespace}.example.com`;
  const client = new GatewayClient(host);
  const failures: Array<{ at: string; status: number; body: string; during: string }> = [];
  let phase = 'start';
  let sent = 0;
  let running = true;
  let traffic: Promise<void> = Promise.resolve();
  try {
    await operator.start();
    const v1 = await seedServedModel(h);
    const register = (version: number) => registerServedVersion(h, v1, version);
    await createGatewayCanary(h, 'replace', host, { steps: [50, 100], interval: '4s' }, { replicas });
    const pods = async (version?: number) =>
      (await h.api.list(kinds.Pod, h.namespace)).items.filter(
        (p) =>
          p.metadata.labels?.[LABELS.inferenceService] === 'replace' &&
          (version === undefined || p.metadata.labels?.[LABELS.version] === String(version)),
      );
    const allReady = (version: number) =>
      waitFor(
        `${replicas} ready pods of v${version} and none terminating`,
        async () => {
          const mine = await pods(version);
          return mine.filter(ready).length === replicas && mine.length === replicas ? true : undefined;
        },
        120_000,
        200,
      );
    const rows = applications(200, 0, 3);
    await allReady(1);
    await waitFor(
      'the Gateway to route to the predictors',
      async () =>
        (await client.post('/predict', { features: Object.values(rows[0]!) })).status === 200 ? true : undefined,
      120_000,
      300,
    );

    // Clients: one request after another (a pause of 20 ms) for the whole scenario.
    traffic = (async () => {
      while (running) {
        const answer = await client.post('/predict', { features: Object.values(rows[sent++ % rows.length]!) }, 5000);
        if (answer.status !== 200)
          failures.push({
            at: new Date().toISOString(),
            status: answer.status,
            body: JSON.stringify(answer.body).slice(0, 160),
            during: phase,
          });
        await sleep(20);
      }
    })();

    // Pods deleted one at a time, each once the Deployment has replaced the one before.
    for (let i = 1; i <= options.deletions; i++) {
      const victim = (await pods(1)).filter(ready)[0];
      if (!victim) throw new Error('no ready predictor pod of v1 to delete');
      phase = `deletion ${i} (${victim.metadata.name})`;
      await h.api.delete(kinds.Pod, h.namespace, victim.metadata.name);
      record.injected();
      const from = Date.now();
      await allReady(1);
      record.recovered(Date.now() - from);
      await sleep(1000);
    }

    // A canary rolled back while it has half the traffic: its pods go while the route stops sending to them.
    phase = 'canary v2 rolled back at 50%';
    await register(2);
    await waitFor(
      'canary v2 at 50% on the route',
      async () => {
        const route = await h.api.get(kinds.HTTPRoute, h.namespace, 'replace').catch(() => undefined);
        const refs = (route?.spec?.rules?.[0]?.backendRefs ?? []) as Array<{ name: string; weight?: number }>;
        return refs.find((b) => b.name === 'replace-v2')?.weight === 50 ? true : undefined;
      },
      120_000,
      200,
    );
    await sleep(2000);
    await h.api.mergePatch(
      kinds.InferenceService,
      h.namespace,
      'replace',
      { spec: { rollout: { abort: true } } },
      'loopline-chaos',
    );
    record.injected();
    await waitFor(
      'canary v2 rolled back and its pods gone',
      async () => {
        const isvc = await h.api.get(kinds.InferenceService, h.namespace, 'replace');
        return isvc.status?.phase === 'RolledBack' && (await pods(2)).length === 0 ? true : undefined;
      },
      90_000,
      200,
    );
    await sleep(1000);

    // A canary promoted: the old stable version's pods go once the new one has all the traffic.
    phase = 'canary v3 promoted';
    await register(3);
    record.injected();
    await waitFor(
      'canary v3 promoted and the pods of v1 gone',
      async () => {
        const isvc = await h.api.get(kinds.InferenceService, h.namespace, 'replace');
        return isvc.status?.phase === 'Promoted' && (await pods(1)).length === 0 ? true : undefined;
      },
      120_000,
      200,
    );
    phase = 'after';
    await sleep(2000);
    running = false;
    await traffic;

    const byPhase = new Map<string, number>();
    for (const f of failures)
      byPhase.set(`${f.during}: ${f.status}`, (byPhase.get(`${f.during}: ${f.status}`) ?? 0) + 1);
    record.note(
      `client requests: ${sent}, failed ${failures.length}${failures.length ? ` (${[...byPhase].map(([k, n]) => `${n}× ${k}`).join('; ')}; first ${JSON.stringify(failures[0])})` : ''}`,
    );
    record.check(
      failures.length === 0,
      `no client request through the Gateway failed while pods were replaced: ${failures.length} of ${sent}`,
    );
  } finally {
    running = false;
    await traffic.catch(() => undefined);
    client.close();
    await operator.kill();
    await prometheus.stop();
    await h.stop();
  }
  return record.result();
}
