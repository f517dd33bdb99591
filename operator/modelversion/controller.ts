// The ModelVersion controller: runs the registry state machine over every version of the model an
// event touched, rewrites the desired stage/aliases of versions another promotion displaced, then
// writes each version's status and Events, and publishes each new history entry as a lifecycle event.
import { publishLifecycle, type LifecyclePublisher } from '../events/publisher.ts';
import { kinds, type ControllerDefinition, type ReconcileContext } from '../engine/index.ts';
import { historyEvent } from './events.ts';
import { planRegistry } from './registry.ts';
import type { ModelVersion } from './resource.ts';

export interface ModelVersionControllerOptions {
  /** Lifecycle events on NATS; without one the registry works the same, silently. */
  publisher?: LifecyclePublisher;
}

export function modelVersionController(options: ModelVersionControllerOptions = {}): ControllerDefinition {
  // Versions of one model are planned together and one model at a time, so two promotions handled
  // by parallel workers cannot each archive the other.
  const models = new KeyedMutex();
  return {
    name: 'modelversion',
    for: kinds.ModelVersion,
    async reconcile({ namespace, name }, ctx) {
      const mv = ctx.cache.get<ModelVersion>(kinds.ModelVersion, namespace, name);
      // A deleted version holds nothing any more; the others need no change for it.
      if (!mv) return;
      await models.run(`${namespace}/${mv.spec.model}`, () => reconcileModel(namespace, mv.spec.model, ctx, options));
    },
  };
}

async function reconcileModel(
  namespace: string,
  model: string,
  ctx: ReconcileContext,
  options: ModelVersionControllerOptions,
): Promise<void> {
  const versions = ctx.cache
    .list<ModelVersion>(kinds.ModelVersion, { namespace })
    .filter((v) => v.spec?.model === model);
  const plans = planRegistry(versions, new Date());
  const byName = new Map(versions.map((v) => [v.metadata.name, v]));

  // Displaced requests first, each conditional on the version the plan was made from: if a user
  // changed it meanwhile the write fails with a conflict and the whole model is planned again.
  // A merge patch, because only an update can take an alias out of a list another manager applied.
  for (const plan of plans) {
    if (!plan.specPatch) continue;
    const current = byName.get(plan.name)!;
    const { object: written } = await ctx.patch(kinds.ModelVersion, namespace, plan.name, {
      metadata: { resourceVersion: current.metadata.resourceVersion },
      spec: plan.specPatch,
    });
    await cacheCaughtUp(ctx, namespace, plan.name, written.metadata.resourceVersion!);
  }
  // An alias that moves is written to its new holder first, so a watcher (an InferenceService's cache) never
  // sees it held by nobody; while two versions hold it, the one that gained it last is its holder (aliasHolder).
  // A version that gains one alias and gives up another (a swap) holds both until the second pass.
  for (const plan of plans) {
    const current = byName.get(plan.name)!;
    const held = current.status?.aliases ?? [];
    const planned = plan.status.aliases ?? [];
    if (!planned.some((a) => !held.includes(a))) continue;
    const aliases = [...new Set([...held, ...planned])].sort();
    await ctx.applyStatus(current, { ...plan.status, aliases });
  }
  for (const plan of plans) {
    const current = byName.get(plan.name)!;
    await ctx.applyStatus(current, plan.status);
    for (const e of plan.events) await ctx.event(current, e.type, e.reason, e.message);
    // After the status write: an entry is announced only once the registry has recorded it.
    for (const entry of plan.recorded) {
      await publishLifecycle(options.publisher, historyEvent(current, entry, plan.status.aliases ?? []), ctx.log);
    }
  }
}

/** Waits until the cache holds our write, so the next plan of this model never starts from older state. */
async function cacheCaughtUp(
  ctx: ReconcileContext,
  namespace: string,
  name: string,
  resourceVersion: string,
): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && !ctx.signal.aborted) {
    const cached = ctx.cache.get(kinds.ModelVersion, namespace, name);
    if (
      !cached ||
      cached.metadata.resourceVersion === resourceVersion ||
      Number(cached.metadata.resourceVersion) > Number(resourceVersion)
    )
      return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Runs tasks one at a time per key. */
class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const tail = new Promise<void>((resolve) => (release = resolve));
    this.tails.set(key, tail);
    await previous;
    try {
      return await task();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
