/**
 * The engine against the real API server: a throwaway `Widget` custom resource (status subresource,
 * no schema of the CRD helper's) whose controller owns one ConfigMap per Widget.
 */
import { HttpMethod } from '@kubernetes/client-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { APPLIED_ANNOTATION } from '../apply.ts';
import { type Engine, createEngine } from '../engine.ts';
import { controllerReference } from '../keys.ts';
import { type ResourceKind, kinds } from '../kinds.ts';
import type { Condition, KubeObject } from '../types.ts';
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
const ns = uniqueName('engine-test');

const Widget: ResourceKind = {
  apiVersion: 'enginetest.loopline.dev/v1',
  kind: 'Widget',
  plural: 'widgets',
  namespaced: true,
};
const CRD: ResourceKind = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  plural: 'customresourcedefinitions',
  namespaced: false,
};

type ConfigMap = KubeObject & { data: Record<string, string> };

const reconciled: string[] = [];
const failuresLeft = new Map<string, number>();
const attemptTimes = new Map<string, number[]>();
let engine: Engine;

/** The controller under test: a Widget's spec.color goes into a ConfigMap; status says whether it is `ok`. */
function widgetController() {
  return {
    name: 'widget',
    for: Widget,
    owns: [kinds.ConfigMap],
    // A custom mapping: a Secret labelled widget=<name> concerns that Widget.
    watches: [
      {
        kind: kinds.Secret,
        map: (secret: KubeObject) =>
          secret.metadata.labels?.widget ? [`${secret.metadata.namespace}/${secret.metadata.labels.widget}`] : [],
      },
    ],
    workers: 2,
    async reconcile({ namespace, name, key }: { namespace: string; name: string; key: string }, ctx: any) {
      reconciled.push(key);
      attemptTimes.set(key, [...(attemptTimes.get(key) ?? []), performance.now()]);
      const widget = ctx.cache.get(Widget, namespace, name) as KubeObject | undefined;
      if (!widget || widget.spec?.unmanaged) return;
      const left = failuresLeft.get(key) ?? 0;
      if (left > 0) {
        failuresLeft.set(key, left - 1);
        throw new Error(`planned failure, ${left - 1} left`);
      }
      await ctx.apply({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: `${name}-config`,
          namespace,
          labels: { widget: name },
          ownerReferences: [controllerReference(widget)],
        },
        data: { color: String(widget.spec?.color ?? 'none') },
      });
      const ok = widget.spec?.color !== 'broken';
      const { changed } = await ctx.applyStatus(widget, {
        phase: ok ? 'Ready' : 'Failed',
        color: widget.spec?.color,
        conditions: [
          {
            type: 'Ready',
            status: ok ? 'True' : 'False',
            reason: ok ? 'Configured' : 'Broken',
            message: `color ${widget.spec?.color}`,
          },
        ],
      });
      if (changed)
        await ctx.event(
          widget,
          ok ? 'Normal' : 'Warning',
          ok ? 'Configured' : 'Broken',
          `color is ${widget.spec?.color}`,
        );
    },
  };
}

async function createWidget(name: string, spec: Record<string, unknown>): Promise<KubeObject> {
  return api.create(
    Widget,
    { apiVersion: Widget.apiVersion, kind: 'Widget', metadata: { name, namespace: ns }, spec } as never,
    'engine-test',
  );
}

async function patchWidgetSpec(name: string, spec: Record<string, unknown>): Promise<KubeObject> {
  return api.mergePatch(Widget, ns, name, { spec }, 'engine-test');
}

const readWidget = (name: string) => api.get(Widget, ns, name);
const readyOf = (w: KubeObject) => (w.status?.conditions as Condition[] | undefined)?.find((c) => c.type === 'Ready');

test.before(async () => {
  await createNamespace(api, ns);
  // Applied, not created: a CRD left by an interrupted run gets this run's schema.
  await api.apply(
    CRD,
    {
      apiVersion: CRD.apiVersion,
      kind: CRD.kind,
      metadata: { name: 'widgets.enginetest.loopline.dev' },
      spec: {
        group: 'enginetest.loopline.dev',
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            subresources: { status: {} },
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: {
                  spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
                  status: {
                    type: 'object',
                    'x-kubernetes-preserve-unknown-fields': true,
                    // A set-typed list, as Loopline's CRDs declare some: the API server records no ownership for it when
                    // empty (it does for an atomic list, such as an undeclared one like status.notes).
                    properties: { tags: { type: 'array', items: { type: 'string' }, 'x-kubernetes-list-type': 'set' } },
                  },
                },
              },
            },
          },
        ],
      },
    } as never,
    'engine-test',
  );
  await waitFor('Widget CRD established', async () => {
    const crd = await api.get(CRD, undefined, 'widgets.enginetest.loopline.dev');
    return (crd.status?.conditions ?? []).some((c: Condition) => c.type === 'Established' && c.status === 'True');
  });
  // Established can precede the API path being served by a moment.
  await waitFor('Widget API served', () =>
    api.list(Widget, ns).then(
      () => true,
      () => undefined,
    ),
  );

  engine = createEngine({
    kubeconfig: kc,
    namespace: ns,
    leaderElection: false,
    httpPort: 0,
    httpHost: '127.0.0.1',
    resyncPeriodMs: 0,
    logger: quietLogger(),
  });
  engine.register(widgetController());
  await engine.start();
});

test.after(async () => {
  await engine?.stop();
  await deleteNamespace(api, ns);
  await api.delete(CRD, undefined, 'widgets.enginetest.loopline.dev').catch(() => undefined);
});

test('the informer cache sees a create, an update and a delete', async () => {
  await createWidget('cache', { color: 'red' });
  await waitFor('cache has widget', () => engine.cache.get(Widget, ns, 'cache'));
  await patchWidgetSpec('cache', { color: 'blue' });
  await waitFor('cache sees update', () => engine.cache.get(Widget, ns, 'cache')?.spec?.color === 'blue');
  assert.is(engine.cache.get(Widget, ns, 'cache')!.kind, 'Widget', 'cached objects carry their kind');
  await api.delete(Widget, ns, 'cache');
  await waitFor('cache sees delete', () => engine.cache.get(Widget, ns, 'cache') === undefined);
  assert.is(engine.cache.list(Widget, { namespace: ns }).filter((w) => w.metadata.name === 'cache').length, 0);
});

test('reconcile creates the owned object and writes status with observedGeneration and a Ready condition', async () => {
  await createWidget('alpha', { color: 'green' });
  const widget = await waitFor('status written', async () => {
    const w = await readWidget('alpha');
    return w.status?.observedGeneration === w.metadata.generation ? w : undefined;
  });
  assert.is(widget.status.phase, 'Ready');
  const ready = readyOf(widget)!;
  assert.is(ready.status, 'True');
  assert.is(ready.reason, 'Configured');
  assert.is(ready.observedGeneration, widget.metadata.generation);
  assert.match(ready.lastTransitionTime!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const cm = await api.get<ConfigMap>(kinds.ConfigMap, ns, 'alpha-config');
  assert.is(cm.data.color, 'green');
  assert.is(cm.metadata.ownerReferences![0].uid, widget.metadata.uid);
  assert.ok(cm.metadata.annotations?.[APPLIED_ANNOTATION]);
  const managers = (cm.metadata.managedFields ?? []).map((f: { manager?: string }) => f.manager);
  assert.ok(managers.includes('loopline-operator'), `field managers ${managers}`);
  assert.equal(
    engine.cache.ownedBy(kinds.ConfigMap, widget).map((c) => c.metadata.name),
    ['alpha-config'],
  );
  // The cache keeps of managedFields only the status Apply entries (what the status-ownership check reads).
  assert.is(engine.cache.ownedBy(kinds.ConfigMap, widget)[0].metadata.managedFields, undefined);
  const cached = await waitFor('the cache to hold the written status', () => {
    const w = engine.cache.get(Widget, ns, 'alpha');
    return w?.status?.observedGeneration === widget.metadata.generation ? w : undefined;
  });
  const entries = (cached.metadata.managedFields ?? []) as Array<{
    manager?: string;
    operation?: string;
    subresource?: string;
  }>;
  assert.equal(
    entries.map((e) => [e.manager, e.operation, e.subresource]),
    [['loopline-operator', 'Apply', 'status']],
  );
  assert.ok(
    (widget.metadata.managedFields ?? []).length > entries.length,
    'the API server keeps more entries than the cache',
  );
});

test('a change to an owned object enqueues its owner, which puts it back', async () => {
  await waitFor('alpha configured', () => engine.cache.get(kinds.ConfigMap, ns, 'alpha-config'));
  await engine.waitIdle();
  reconciled.length = 0;
  await api.mergePatch(kinds.ConfigMap, ns, 'alpha-config', { data: { color: 'tampered' } }, 'someone-else');
  await waitFor(
    'color restored',
    async () => (await api.get<ConfigMap>(kinds.ConfigMap, ns, 'alpha-config')).data.color === 'green',
  );
  assert.ok(reconciled.includes(`${ns}/alpha`), `reconciled ${reconciled}`);
  await api.delete(kinds.ConfigMap, ns, 'alpha-config');
  await waitFor('deleted owned object recreated', async () =>
    (await api.list(kinds.ConfigMap, ns)).items.some(
      (c) => c.metadata.name === 'alpha-config' && !c.metadata.deletionTimestamp,
    ),
  );
});

test('a custom mapper turns an event on a watched kind into the key of the primary it concerns', async () => {
  await engine.waitIdle();
  reconciled.length = 0;
  await api.create(
    kinds.Secret,
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'creds', namespace: ns, labels: { widget: 'alpha' } },
      stringData: { k: 'v' },
    } as never,
    'engine-test',
  );
  await waitFor('alpha reconciled for its secret', () => reconciled.includes(`${ns}/alpha`) || undefined);
  assert.equal([...new Set(reconciled)], [`${ns}/alpha`], 'only the mapped primary');
});

test('a full resync with nothing changed reconciles every object and makes 0 API writes', async () => {
  for (const name of ['r1', 'r2', 'r3']) await createWidget(name, { color: name });
  await waitFor(
    'all configured',
    () =>
      ['r1', 'r2', 'r3'].every((n) => engine.cache.get(Widget, ns, n)?.status?.observedGeneration === 1) || undefined,
  );
  await engine.waitIdle();
  await sleep(300); // let the watch deliver our own last writes
  await engine.waitIdle();
  engine.writes.reset();
  reconciled.length = 0;
  engine.resync();
  await engine.waitIdle();
  const widgets = engine.cache.list(Widget, { namespace: ns }).length;
  assert.ok(reconciled.length >= widgets, `resync reconciled ${reconciled.length} of ${widgets}`);
  assert.is(engine.writes.total(), 0, `writes during resync: ${JSON.stringify(engine.writes.snapshot())}`);
});

test('a spec change writes once; lastTransitionTime moves only when the condition status changes', async () => {
  const before = await readWidget('r1');
  const firstTransition = readyOf(before)!.lastTransitionTime;
  await sleep(1100); // metav1.Time has second precision
  engine.writes.reset();
  await patchWidgetSpec('r1', { color: 'teal' });
  const updated = await waitFor('generation 2 observed', async () => {
    const w = await readWidget('r1');
    return w.status?.observedGeneration === 2 ? w : undefined;
  });
  assert.is(readyOf(updated)!.lastTransitionTime, firstTransition, 'still True: no transition');
  assert.is(readyOf(updated)!.observedGeneration, 2);
  assert.is(updated.status.color, 'teal');
  await engine.waitIdle();
  assert.is(engine.writes.total({ verb: 'apply', kind: 'ConfigMap' }), 1);
  assert.is(engine.writes.total({ verb: 'apply-status', kind: 'Widget' }), 1);

  await patchWidgetSpec('r1', { color: 'broken' });
  const broken = await waitFor('Ready False', async () => {
    const w = await readWidget('r1');
    return readyOf(w)?.status === 'False' ? w : undefined;
  });
  assert.is.not(readyOf(broken)!.lastTransitionTime, firstTransition);
  assert.is(broken.status.phase, 'Failed');
});

test('applyStatus removes a status field no longer applied, and skips an identical apply', async () => {
  await createWidget('manual', { unmanaged: true });
  const widget = await waitFor('manual cached', () => engine.cache.get(Widget, ns, 'manual'));
  const ready = [{ type: 'Ready', status: 'True', reason: 'Manual', message: 'set by the test' }];
  assert.ok((await engine.writer.applyStatus(widget, { phase: 'Ready', color: 'pink', conditions: ready })).changed);
  assert.is((await readWidget('manual')).status.color, 'pink');
  const { changed } = await engine.writer.applyStatus(widget, { phase: 'Ready', conditions: ready });
  assert.ok(changed, 'dropping a field is a change');
  const after = await readWidget('manual');
  assert.is(after.status.color, undefined, 'server-side apply removed the field Loopline no longer applies');
  assert.is(after.status.phase, 'Ready');
  assert.is(after.status.observedGeneration, after.metadata.generation);
  const again = await engine.writer.applyStatus(widget, { phase: 'Ready', conditions: ready });
  assert.not.ok(again.changed, 'identical status: no write');
});

test('an empty list in the desired status is no change on the next reconcile, set-typed (no ownership recorded for []) or atomic', async () => {
  await createWidget('empty-lists', { unmanaged: true });
  const widget = await waitFor('empty-lists cached', () => engine.cache.get(Widget, ns, 'empty-lists'));
  const ready = [{ type: 'Ready', status: 'True', reason: 'Manual', message: 'set by the test' }];
  const cachedAt = async (resourceVersion: string) =>
    waitFor('the cache to hold the write', () => {
      const cached = engine.cache.get(Widget, ns, 'empty-lists');
      return cached && Number(cached.metadata.resourceVersion) >= Number(resourceVersion) ? cached : undefined;
    });
  const first = await engine.writer.applyStatus(widget, { phase: 'Ready', tags: [], notes: [], conditions: ready });
  assert.ok(first.changed);
  await cachedAt(first.object.metadata.resourceVersion!);
  for (let i = 0; i < 3; i++) {
    const again = await engine.writer.applyStatus(widget, { phase: 'Ready', tags: [], notes: [], conditions: ready });
    assert.not.ok(again.changed, `apply ${i + 2} with the same empty list: no write`);
  }
  // A list that empties is still a change, and the emptied list then settles too.
  const filled = await engine.writer.applyStatus(widget, { phase: 'Ready', tags: ['a'], notes: [], conditions: ready });
  assert.ok(filled.changed);
  await cachedAt(filled.object.metadata.resourceVersion!);
  const emptied = await engine.writer.applyStatus(widget, { phase: 'Ready', tags: [], notes: [], conditions: ready });
  assert.ok(emptied.changed, 'emptying a list is a change');
  assert.equal((await readWidget('empty-lists')).status.tags ?? [], []);
  await cachedAt(emptied.object.metadata.resourceVersion!);
  assert.not.ok(
    (await engine.writer.applyStatus(widget, { phase: 'Ready', tags: [], notes: [], conditions: ready })).changed,
    'then no write',
  );
});

test('repeated events about the same object aggregate into one Event', async () => {
  const widget = engine.cache.get(Widget, ns, 'r3')!;
  const before = engine.writes.total({ kind: 'Event' });
  for (let i = 0; i < 5; i++) await engine.writer.event(widget, 'Warning', 'Flapping', 'the same thing again');
  await engine.writer.event(widget, 'Warning', 'Flapping', 'something else');
  const events = (await api.list(kinds.Event, ns)).items.filter(
    (e: KubeObject & { reason?: string; regarding?: { name?: string } }) =>
      e.reason === 'Flapping' && e.regarding?.name === 'r3',
  );
  assert.is(events.length, 2, 'one per distinct message');
  assert.is(engine.writes.total({ kind: 'Event' }) - before, 2, 'repeats inside the flush interval cost no write');
  const configured = (await api.list(kinds.Event, ns)).items.filter(
    (e: KubeObject & { reason?: string; regarding?: { name?: string }; reportingController?: string }) =>
      e.reason === 'Configured' && e.regarding?.name === 'alpha',
  );
  assert.ok(configured.length >= 1, 'the controller recorded its own event');
  assert.is((configured[0] as { reportingController?: string }).reportingController, 'loopline.dev/operator');
});

test('a failing reconcile is retried with growing backoff until it succeeds', async () => {
  const key = `${ns}/flaky`;
  failuresLeft.set(key, 4);
  await createWidget('flaky', { color: 'gold' });
  await waitFor('flaky configured', async () => (await readWidget('flaky')).status?.phase === 'Ready');
  const times = attemptTimes.get(key)!;
  assert.ok(times.length >= 5, `attempts ${times.length}`);
  const gaps = times.slice(1, 5).map((t, i) => t - times[i]);
  // Each retry waits at least its backoff (5 ms * 2^n, less timer slack); a busy machine can only add to that,
  // so the lower bounds hold however loaded it is, and together they prove the backoff doubles.
  gaps.forEach((gap, n) =>
    assert.ok(
      gap >= 5 * 2 ** n * 0.9,
      `retry ${n + 1} after >= ${5 * 2 ** n} ms: gaps ${gaps.map((g) => g.toFixed(1))}`,
    ),
  );
});

test('/metrics, /healthz and /readyz are served', async () => {
  const { port } = engine.httpAddress()!;
  const base = `http://127.0.0.1:${port}`;
  assert.is((await fetch(`${base}/healthz`)).status, 200);
  assert.is((await fetch(`${base}/readyz`)).status, 200);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /loopline_reconcile_total\{controller="widget",kind="Widget",result="success"\} \d+/);
  assert.match(metrics, /loopline_reconcile_errors_total\{controller="widget",kind="Widget"\} [1-9]/);
  assert.match(metrics, /loopline_reconcile_duration_seconds_bucket/);
  assert.match(metrics, /loopline_workqueue_depth\{controller="widget"\} \d+/);
  assert.match(metrics, /loopline_api_writes_total\{verb="apply",kind="ConfigMap"\} [1-9]/);
});

test('a watch that breaks is resumed without losing events', async () => {
  // Cut the running watch connections under the informers; the next change must still arrive.
  const informers = (engine as unknown as { informers: Map<string, { abort?: AbortController }> }).informers;
  for (const informer of informers.values()) informer.abort?.abort();
  await patchWidgetSpec('r3', { color: 'after-break' });
  await waitFor(
    'change after watch break reconciled',
    async () => (await readWidget('r3')).status?.color === 'after-break',
  );
});

test("patch merges into the object with the engine's field manager, skips what the cache already holds, and a null removes", async () => {
  await createWidget('patched', { color: 'red', promoteNow: true });
  await waitFor('the cache to hold the widget', () => engine.cache.get(Widget, ns, 'patched'));
  engine.writes.reset();
  const first = await engine.writer.patch(Widget, ns, 'patched', { spec: { promoteNow: false } });
  assert.ok(first.changed);
  const written = await readWidget('patched');
  assert.equal(written.spec, { color: 'red', promoteNow: false });
  const update = (written.metadata.managedFields ?? []).find(
    (f: { operation?: string; manager?: string }) => f.operation === 'Update' && f.manager === 'loopline-operator',
  );
  assert.ok(update, "the engine's field manager owns the patched field");
  await waitFor(
    'the cache to see the patch',
    () => engine.cache.get(Widget, ns, 'patched')?.spec?.promoteNow === false || undefined,
  );
  assert.not.ok(
    (await engine.writer.patch(Widget, ns, 'patched', { spec: { promoteNow: false } })).changed,
    'nothing to change: skipped',
  );
  assert.ok((await engine.writer.patch(Widget, ns, 'patched', { spec: { promoteNow: null } })).changed);
  assert.equal((await readWidget('patched')).spec, { color: 'red' });
  assert.is(engine.writes.total({ verb: 'patch', kind: 'Widget' }), 2);
});

test('raw API reads work for what the cache does not hold', async () => {
  const version = await engine.api.request<{ major: string }>(HttpMethod.GET, '/version');
  assert.ok(version.major);
});

test('a kind the API server does not serve leaves its cache empty instead of blocking start', async () => {
  const Ghost: ResourceKind = {
    apiVersion: 'nothere.loopline.dev/v1',
    kind: 'Ghost',
    plural: 'ghosts',
    namespaced: true,
  };
  const other = createEngine({
    kubeconfig: kc,
    namespace: ns,
    leaderElection: false,
    httpPort: false,
    resyncPeriodMs: 0,
    logger: quietLogger(),
  });
  other.register({ name: 'ghostly', for: Widget, reads: [Ghost], reconcile: async () => undefined });
  const started = await Promise.race([other.start().then(() => true), sleep(5000).then(() => false)]);
  try {
    assert.ok(started, 'start resolved');
    assert.ok(other.isReady());
    assert.equal(other.cache.list(Ghost), []);
  } finally {
    await other.stop();
  }
});

test.run();
