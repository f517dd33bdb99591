/**
 * What the chaos scenarios run while faults hit, and the invariants they check afterwards: TrainingJobs of
 * the example trainer, canaries of InferenceServices whose predictor pods KWOK simulates (their metrics come
 * from endpoints the suite feeds, scraped by a real Prometheus), and a probe that measures how soon the
 * operator reconciles again once a fault is over.
 */
import { LABELS } from '../../operator/api/contracts.ts';
import { kinds, type KubeObject } from '../../operator/engine/index.ts';
import type { TrainingJobSpec } from '../../operator/trainingjob/resource.ts';
import { sleep, waitFor } from '../../test/support/local.ts';
import { trainingJobObject } from '../../test/support/operator-harness.ts';
import type { ChaosHarness } from './harness.ts';
import type { ScenarioRecord } from './report.ts';

/** The harness's TrainingJob of the example trainer (one A100, file:// output unless told), trained smaller. */
export function trainingJob(
  h: ChaosHarness,
  name: string,
  model: string,
  spec: Partial<TrainingJobSpec> = {},
): KubeObject {
  return trainingJobObject(h, name, { model, hyperparameters: { epochs: '20', rows: '400' }, ...spec });
}

export async function createTrainingJobs(
  h: ChaosHarness,
  model: string,
  names: string[],
  spec: Partial<TrainingJobSpec> = {},
): Promise<void> {
  await Promise.all(
    names.map((name) => h.api.create(kinds.TrainingJob, trainingJob(h, name, model, spec), 'loopline-chaos')),
  );
}

/** Waits until every named TrainingJob is Succeeded or Failed; returns those that are not by the deadline. */
export async function waitForTrainingJobs(
  h: ChaosHarness,
  names: string[],
  timeoutMs: number,
): Promise<{ done: KubeObject[]; stuck: string[] }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const items = (
      await h.api.list(kinds.TrainingJob, h.namespace).catch(() => ({ items: [] as KubeObject[] }))
    ).items.filter((j) => names.includes(j.metadata.name));
    const done = items.filter((j) => ['Succeeded', 'Failed'].includes(j.status?.phase));
    if (done.length === names.length || Date.now() > deadline) {
      return { done, stuck: names.filter((n) => !done.some((j) => j.metadata.name === n)) };
    }
    await sleep(250);
  }
}

/** The served model: trained once by the TrainingJob `seed`, registered as served-v1, in production. */
export async function seedServedModel(h: ChaosHarness): Promise<KubeObject> {
  await h.api.create(kinds.TrainingJob, trainingJob(h, 'seed', 'served'), 'loopline-chaos');
  const [seeded] = (await waitForTrainingJobs(h, ['seed'], 120_000)).done;
  if (seeded?.status.phase !== 'Succeeded')
    throw new Error(`the seed TrainingJob did not succeed: ${JSON.stringify(seeded?.status)}`);
  const v1 = await h.api.get(kinds.ModelVersion, h.namespace, 'served-v1');
  await h.api.mergePatch(
    kinds.ModelVersion,
    h.namespace,
    'served-v1',
    { spec: { aliases: ['production'], stage: 'Production' } },
    'loopline-chaos',
  );
  return v1;
}

/** A later version of the seeded `served` model: v1's artifact, signature and metrics, holding the canary alias. */
export function registerServedVersion(h: ChaosHarness, v1: KubeObject, version: number): Promise<KubeObject> {
  return h.api.create(
    kinds.ModelVersion,
    {
      apiVersion: 'loopline.dev/v1alpha1',
      kind: 'ModelVersion',
      metadata: { name: `served-v${version}`, namespace: h.namespace },
      spec: {
        model: 'served',
        version,
        artifact: v1.spec.artifact,
        signature: v1.spec.signature,
        metrics: v1.spec.metrics,
        aliases: ['candidate'],
      },
    } as never,
    'loopline-chaos',
  );
}

/**
 * An InferenceService of the seeded `served` model behind the shared Gateway at `host`: the stable version by
 * alias production, a canary by alias candidate rolled out along `steps` every `interval`.
 */
export function createGatewayCanary(
  h: ChaosHarness,
  name: string,
  host: string,
  rollout: { steps: number[]; interval: string },
  predictor?: { replicas: number },
): Promise<KubeObject> {
  return h.api.create(
    kinds.InferenceService,
    {
      apiVersion: 'loopline.dev/v1alpha1',
      kind: 'InferenceService',
      metadata: { name, namespace: h.namespace },
      spec: {
        model: 'served',
        stable: { alias: 'production' },
        canary: { alias: 'candidate' },
        ...(predictor ? { predictor } : {}),
        rollout: { ...rollout, analysis: { maxErrorRate: 0.05, minRequests: 1, failureLimit: 2 } },
        traffic: {
          provider: 'gatewayAPI',
          parentRefs: [{ name: 'loopline-gateway', namespace: 'loopline-system', sectionName: 'http' }],
          hostnames: [host],
        },
      },
    } as never,
    'loopline-chaos',
  );
}

/**
 * The TrainingJob invariants after faults: every job finished and Succeeded (no stuck key), ran exactly one
 * Job (its first attempt's, named <job>-1; a second one would be a duplicate), registered exactly one
 * ModelVersion, and the model's version numbers are 1..N, unique and without a gap.
 */
export async function checkTrainingJobs(
  h: ChaosHarness,
  record: ScenarioRecord,
  model: string,
  names: string[],
  timeoutMs = 120_000,
): Promise<void> {
  const { done, stuck } = await waitForTrainingJobs(h, names, timeoutMs);
  record.check(
    stuck.length === 0,
    `every TrainingJob finishes (no stuck key): ${stuck.length} did not within ${timeoutMs / 1000} s: ${stuck.length ? await describeTrainingJobs(h, stuck) : ''}`,
  );
  for (const job of done) {
    record.check(
      job.status.phase === 'Succeeded',
      `TrainingJob ${job.metadata.name} Succeeded, not ${job.status.phase}: ${job.status.message ?? ''}`,
    );
    record.check(
      job.status.attempts === 1,
      `TrainingJob ${job.metadata.name} took one attempt, not ${job.status.attempts}`,
    );
  }
  const jobs = (await h.api.list(kinds.Job, h.namespace)).items;
  for (const name of names) {
    const mine = jobs.filter((j) => j.metadata.labels?.[LABELS.trainingJob] === name).map((j) => j.metadata.name);
    record.check(
      mine.length === 1 && mine[0] === `${name}-1`,
      `TrainingJob ${name} has one Job, ${name}-1 (no lost or duplicated Job): found [${mine.join(', ')}]`,
    );
  }
  const versions = (await h.api.list(kinds.ModelVersion, h.namespace)).items.filter((v) => v.spec.model === model);
  for (const name of names) {
    const registered = versions.filter((v) => v.spec.lineage?.trainingJob === name).map((v) => v.metadata.name);
    const job = done.find((j) => j.metadata.name === name);
    record.check(
      registered.length === 1 && (!job || job.status.modelVersion === registered[0]),
      `TrainingJob ${name} registered one ModelVersion, the one its status names: found [${registered.join(', ')}], status ${job?.status?.modelVersion}`,
    );
  }
  checkVersionNumbers(record, model, versions);
}

/** Where each TrainingJob is: its phase and message, its Jobs' conditions, its pods' phases. */
async function describeTrainingJobs(h: ChaosHarness, names: string[]): Promise<string> {
  const [jobs, pods] = await Promise.all([h.api.list(kinds.Job, h.namespace), h.api.list(kinds.Pod, h.namespace)]);
  const parts: string[] = [];
  for (const name of names) {
    const tj = await h.api.get(kinds.TrainingJob, h.namespace, name).catch(() => undefined);
    const mine = (o: KubeObject) => o.metadata.labels?.[LABELS.trainingJob] === name;
    const jobText = jobs.items
      .filter(mine)
      .map(
        (j) =>
          `${j.metadata.name} [${(j.status?.conditions ?? []).map((c: { type: string; status: string }) => `${c.type}=${c.status}`).join(' ')}] suspend=${j.spec?.suspend}`,
      );
    const podText = pods.items.filter(mine).map((p) => `${p.metadata.name} ${p.status?.phase}`);
    parts.push(
      `${name}: ${tj?.status?.phase ?? 'no status'} "${tj?.status?.message ?? ''}"; Jobs ${jobText.join(', ') || 'none'}; pods ${podText.join(', ') || 'none'}`,
    );
  }
  return parts.join(' | ');
}

/** Version numbers of one model: unique and 1..N with no gap. */
export function checkVersionNumbers(record: ScenarioRecord, model: string, versions: KubeObject[]): void {
  const numbers = versions.map((v) => v.spec.version as number).sort((a, b) => a - b);
  const expected = numbers.map((_, i) => i + 1);
  record.check(
    JSON.stringify(numbers) === JSON.stringify(expected),
    `model ${model}: version numbers unique and gap-free 1..${numbers.length}: got [${numbers.join(', ')}]`,
  );
}

/** At most one version of each model holds each alias (status.aliases, what the registry put in effect). */
export function checkAliasHolders(record: ScenarioRecord, versions: KubeObject[]): void {
  const holders = new Map<string, string[]>();
  for (const v of versions) {
    for (const alias of v.status?.aliases ?? []) {
      const key = `${v.spec.model}/${alias}`;
      holders.set(key, [...(holders.get(key) ?? []), v.metadata.name]);
    }
  }
  for (const [key, names] of holders)
    record.check(names.length === 1, `alias ${key} has one holder: held by [${names.join(', ')}]`);
}

/**
 * The alias invariant once the registry has settled: while an alias moves, the version gaining it holds it
 * before the one losing it lets go (a watcher never sees it held by nobody), so this waits up to `settleMs`
 * for that moment to pass before it counts.
 */
export async function checkSettledAliasHolders(
  h: ChaosHarness,
  record: ScenarioRecord,
  model: string | undefined,
  settleMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + settleMs;
  for (;;) {
    const versions = (await h.api.list(kinds.ModelVersion, h.namespace)).items.filter(
      (v) => model === undefined || v.spec.model === model,
    );
    const counts = new Map<string, number>();
    for (const v of versions)
      for (const alias of v.status?.aliases ?? [])
        counts.set(`${v.spec.model}/${alias}`, (counts.get(`${v.spec.model}/${alias}`) ?? 0) + 1);
    if ([...counts.values()].every((n) => n === 1) || Date.now() > deadline) return checkAliasHolders(record, versions);
    await sleep(250);
  }
}

let probes = 0;

/**
 * How long until the operator reconciles again: creates a ModelVersion asking for an alias and measures the
 * time until the registry controller has put it in status (a watch event reached the operator's cache, a
 * reconcile ran, its status write landed). `since` is when the fault ended.
 */
export async function reconcileProbe(h: ChaosHarness, since: number, timeoutMs = 120_000): Promise<number> {
  const name = `probe-${++probes}-v1`;
  const model = `probe-${probes}`;
  await waitFor(
    `probe ${name} created`,
    async () => {
      try {
        await h.api.create(
          kinds.ModelVersion,
          {
            apiVersion: 'loopline.dev/v1alpha1',
            kind: 'ModelVersion',
            metadata: { name, namespace: h.namespace },
            spec: {
              model,
              version: 1,
              artifact: { uri: 'file:///probe/model.onnx', digest: `sha256:${'0'.repeat(64)}`, format: 'onnx' },
              aliases: ['probe'],
            },
          } as never,
          'loopline-chaos',
        );
        return true;
      } catch (error) {
        if ((error as { statusCode?: number }).statusCode === 409) return true;
        return undefined;
      }
    },
    timeoutMs,
    100,
  );
  await waitFor(
    `the operator to reconcile probe ${name}`,
    async () => {
      const mv = await h.api.get(kinds.ModelVersion, h.namespace, name).catch(() => undefined);
      return mv?.status?.aliases?.includes('probe') ? true : undefined;
    },
    timeoutMs,
    50,
  );
  const ms = Date.now() - since;
  await h.api.delete(kinds.ModelVersion, h.namespace, name).catch(() => undefined);
  return ms;
}

/** Samples `probe` every `intervalMs` until stopped; what it returned each time it returned something. */
export function sampler<T>(
  probe: () => Promise<T | undefined>,
  intervalMs = 200,
): { samples: T[]; stop(): Promise<T[]> } {
  const samples: T[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const value = await probe().catch(() => undefined);
      if (value !== undefined) samples.push(value);
      await sleep(intervalMs);
    }
  })();
  return {
    samples,
    async stop() {
      running = false;
      await loop;
      return samples;
    },
  };
}
