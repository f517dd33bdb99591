/**
 * A promotion as an InferenceService sees it, on the real API server with the registry and InferenceService
 * controllers running in-process: the alias moves with no moment in which nobody holds it (so no Warning
 * StableVersionNotFound), and the drift summary and Drifted condition are the serving version's, not those
 * the previous stable version's windows left.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cloudEvent } from '../../events/cloudevents.ts';
import { kinds, KubeApi, type Engine, type KubeObject } from '../../engine/index.ts';
import { createOperator } from '../../main.ts';
import { aliasHolder } from '../../modelversion/registry.ts';
import type { ModelVersion } from '../../modelversion/resource.ts';
import { driftEventHandler, registerInferenceServices } from '../index.ts';
import {
  createNamespace,
  deleteNamespace,
  installCrds,
  requireKubeconfig,
  sleep,
  uniqueName,
  waitFor,
} from './support/cluster.ts';
import { registerVersion } from '../../../test/support/model-versions.ts';
import { inProcessEngine } from '../../../test/support/local.ts';

const kc = requireKubeconfig();
const api = new KubeApi(kc);
const ns = uniqueName('isvc-stable');
let operator: Engine;

async function register(model: string, version: number, spec: Record<string, unknown> = {}): Promise<void> {
  await registerVersion(api, ns, model, version, [], undefined, { effective: false, spec: spec });
}

const versionsOf = async (model: string) =>
  ((await api.list(kinds.ModelVersion, ns)).items as unknown as ModelVersion[]).filter((v) => v.spec.model === model);

async function holderSettled(model: string, version: number): Promise<void> {
  await waitFor(`production held by v${version} alone`, async () => {
    const holders = (await versionsOf(model)).filter((v) => v.status?.aliases?.includes('production'));
    return (holders.length === 1 && holders[0].spec.version === version) || undefined;
  });
}

/** Promotes `version` the way a user does: ask for Production and the alias in its spec. */
const promote = (model: string, version: number) =>
  api.mergePatch(
    kinds.ModelVersion,
    ns,
    `${model}-v${version}`,
    { spec: { stage: 'Production', aliases: ['production'] } },
    'release-manager',
  );

test.before(async () => {
  await installCrds(api);
  await createNamespace(api, ns);
  operator = createOperator(inProcessEngine(kc, ns));
  // No canary here, so Prometheus is never asked.
  await registerInferenceServices(operator, { prometheusUrl: 'http://127.0.0.1:9' });
  await operator.start();
});

test.after(async () => {
  await operator?.stop();
  await deleteNamespace(api, ns);
});

test("a watcher applying the registry's writes in order sees the alias held at every moment of a move, and by the newest holder", async () => {
  await register('watched', 1, { stage: 'Production', aliases: ['production'] });
  await register('watched', 2);
  await holderSettled('watched', 1);
  const list = await api.list(kinds.ModelVersion, ns);
  const seen = new Map<string, ModelVersion>(
    (list.items as unknown as ModelVersion[])
      .filter((v) => v.spec.model === 'watched')
      .map((v) => [v.metadata.name!, v]),
  );
  const holders: Array<number | undefined> = [];
  const watch = await api.watcher.watch(
    `/apis/loopline.dev/v1alpha1/namespaces/${ns}/modelversions`,
    { resourceVersion: list.metadata.resourceVersion },
    (type: string, object: ModelVersion) => {
      if (object.spec.model !== 'watched') return;
      if (type === 'DELETED') seen.delete(object.metadata.name!);
      else seen.set(object.metadata.name!, object);
      holders.push(aliasHolder([...seen.values()], 'production')?.spec.version);
    },
    () => undefined,
  );
  try {
    await promote('watched', 2);
    await holderSettled('watched', 2);
    await sleep(500); // the last events reach the watch
  } finally {
    watch.abort();
  }
  assert.ok(holders.length > 0, 'the watch saw the move');
  assert.not.ok(holders.includes(undefined), `a moment with no holder of production: ${JSON.stringify(holders)}`);
  assert.is(holders.at(-1), 2);
  assert.equal(
    holders.slice(holders.indexOf(2)),
    holders.slice(holders.indexOf(2)).map(() => 2),
    `v1 came back after v2 held it: ${JSON.stringify(holders)}`,
  );
});

test("after a promotion the drift summary and Drifted condition are the new stable version's; no StableVersionNotFound on the way", async () => {
  await register('credit', 1, { stage: 'Production', aliases: ['production'] });
  await register('credit', 2);
  await holderSettled('credit', 1);
  await api.create(
    kinds.InferenceService,
    {
      apiVersion: 'loopline.dev/v1alpha1',
      kind: 'InferenceService',
      metadata: { name: 'scoring', namespace: ns },
      spec: {
        model: 'credit',
        stable: { alias: 'production' },
        predictor: { image: 'registry.local/predictor-simulated:1' },
        drift: { enabled: true, threshold: 0.3 },
      },
    } as never,
    'loopline-test',
  );
  const isvc = () => api.get(kinds.InferenceService, ns, 'scoring');
  const drifted = (o: KubeObject) => o.status?.conditions?.find((c: { type: string }) => c.type === 'Drifted');
  await waitFor('v1 serving', async () => (await isvc()).status?.stableVersion === 1 || undefined);

  const handle = driftEventHandler(operator);
  const target = { namespace: ns, inferenceService: 'scoring' };
  const window = (id: string, modelVersion: string, score: number) =>
    cloudEvent({
      id,
      type: 'dev.loopline.drift.window.v1',
      source: `/apis/loopline.dev/v1alpha1/namespaces/${ns}/inferenceservices/scoring`,
      data: { score, driftedFeatures: score > 0.3 ? ['income'] : [], drifted: score > 0.3, modelVersion },
    });
  await handle(window('v1-window', '1', 0.8), target);
  const before = await waitFor("Drifted=True from v1's window", async () => {
    const o = await isvc();
    return drifted(o)?.status === 'True' ? o : undefined;
  });
  assert.is(before.status.drift.version, 1);

  await promote('credit', 2);
  const after = await waitFor('v2 serving', async () => {
    const o = await isvc();
    return o.status?.stableVersion === 2 && drifted(o)?.status !== 'True' ? o : undefined;
  });
  assert.is(after.status.drift, undefined, "v1's summary was reset");
  assert.equal([drifted(after).status, drifted(after).reason], ['Unknown', 'AwaitingWindow']);

  // v1's pods still draining report one more window: it is not the service's drift any more.
  await handle(window('v1-late', '1', 0.9), target);
  await operator.waitIdle();
  assert.is((await isvc()).status.drift, undefined);

  await handle(window('v2-window', '2', 0.1), target);
  const calm = await waitFor("Drifted=False from v2's window", async () => {
    const o = await isvc();
    return drifted(o)?.status === 'False' ? o : undefined;
  });
  assert.equal([calm.status.drift.version, calm.status.drift.lastEventId], [2, 'v2-window']);

  const events = (await api.list(kinds.Event, ns)).items as Array<
    KubeObject & { reason?: string; regarding?: { name?: string } }
  >;
  assert.equal(
    events.filter((e) => e.regarding?.name === 'scoring' && e.reason === 'StableVersionNotFound').map((e) => e.reason),
    [],
  );
});

test.run();
