import { applyIsNoop, isSubset, ownedStatusFields, withFingerprint } from './apply.ts';
import { mergeConditions } from './conditions.ts';
import type { EventRecorder } from './events.ts';
import type { Informer } from './informer.ts';
import { type ResourceKind, kindId } from './kinds.ts';
import { type KubeApi, type WriteVerb, isAlreadyExists, isNotFound } from './kube.ts';
import type { Condition, DesiredObject, EventType, KubeObject, Writer } from './types.ts';

/** Thrown by every write once this replica is not the leader: a deposed leader must not touch the cluster. */
export class NotLeaderError extends Error {
  constructor() {
    super('not the leader: write refused');
    this.name = 'NotLeaderError';
  }
}

export interface WriterDeps {
  api: KubeApi;
  fieldManager: string;
  recorder: EventRecorder;
  /** Kind by `apiVersion/kind`, for objects whose plural is needed. */
  kindOf(apiVersion: string, kind: string): ResourceKind;
  informerFor(kind: ResourceKind): Informer | undefined;
  /** Throws when writes are not allowed (lost leadership, stopped). */
  fence(): void;
  skipped(verb: WriteVerb, kind: string): void;
}

export class ClusterWriter implements Writer {
  constructor(private readonly deps: WriterDeps) {}

  async apply<T extends KubeObject = KubeObject>(desired: DesiredObject): Promise<{ object: T; changed: boolean }> {
    const kind = this.deps.kindOf(desired.apiVersion, desired.kind);
    const current = await this.current(kind, desired.metadata.namespace, desired.metadata.name);
    if (applyIsNoop(desired, current)) {
      this.deps.skipped('apply', kind.kind);
      return { object: current as T, changed: false };
    }
    this.deps.fence();
    const object = await this.deps.api.apply<T>(kind, withFingerprint(desired), this.deps.fieldManager);
    this.deps.informerFor(kind)?.observeWrite(object);
    return { object, changed: true };
  }

  async applyStatus<T extends KubeObject = KubeObject>(
    object: KubeObject,
    status: Record<string, unknown>,
  ): Promise<{ object: T; changed: boolean }> {
    const { kind, current, desired } = await this.statusOf(object, status);
    const owned = ownedStatusFields(current, this.deps.fieldManager);
    const sameFields = owned !== undefined && sameKeys(owned, desired);
    if (sameFields && isSubset(desired, current.status)) {
      this.deps.skipped('apply-status', kind.kind);
      return { object: current as T, changed: false };
    }
    this.deps.fence();
    const body = {
      apiVersion: object.apiVersion,
      kind: object.kind,
      metadata: { name: object.metadata.name, namespace: object.metadata.namespace },
      status: desired,
    };
    const written = await this.deps.api.apply<T>(kind, body, this.deps.fieldManager, 'status');
    this.deps.informerFor(kind)?.observeWrite(written);
    return { object: written, changed: true };
  }

  async patchStatus<T extends KubeObject = KubeObject>(
    object: KubeObject,
    status: Record<string, unknown>,
  ): Promise<{ object: T; changed: boolean }> {
    const { kind, current, desired } = await this.statusOf(object, status);
    if (!containsNull(status) && isSubset(desired, current.status)) {
      this.deps.skipped('patch-status', kind.kind);
      return { object: current as T, changed: false };
    }
    this.deps.fence();
    const written = await this.deps.api.mergePatch<T>(
      kind,
      object.metadata.namespace,
      object.metadata.name,
      { status: desired },
      this.deps.fieldManager,
      'status',
    );
    this.deps.informerFor(kind)?.observeWrite(written);
    return { object: written, changed: true };
  }

  async patch<T extends KubeObject = KubeObject>(
    kind: ResourceKind,
    namespace: string | undefined,
    name: string,
    patch: Record<string, unknown>,
  ): Promise<{ object: T; changed: boolean }> {
    const current = await this.current(kind, namespace, name);
    // A null removes a field, which a subset test cannot see as done.
    if (current && !containsNull(patch) && isSubset(patch, current)) {
      this.deps.skipped('patch', kind.kind);
      return { object: current as T, changed: false };
    }
    this.deps.fence();
    const written = await this.deps.api.mergePatch<T>(kind, namespace, name, patch, this.deps.fieldManager);
    this.deps.informerFor(kind)?.observeWrite(written);
    return { object: written, changed: true };
  }

  async create<T extends KubeObject = KubeObject>(
    desired: DesiredObject,
    options: { readExisting?: boolean } = {},
  ): Promise<{ object: T; created: boolean }> {
    const kind = this.deps.kindOf(desired.apiVersion, desired.kind);
    this.deps.fence();
    try {
      const object = await this.deps.api.create<T>(kind, desired, this.deps.fieldManager);
      this.deps.informerFor(kind)?.observeWrite(object);
      return { object, created: true };
    } catch (err) {
      if (!isAlreadyExists(err) || options.readExisting === false) throw err;
      const object = await this.deps.api.get<T>(kind, desired.metadata.namespace, desired.metadata.name);
      return { object, created: false };
    }
  }

  async delete(
    kind: ResourceKind,
    namespace: string | undefined,
    name: string,
    options: { propagationPolicy?: 'Foreground' | 'Background' | 'Orphan'; preconditionUid?: string } = {},
  ): Promise<boolean> {
    const informer = this.deps.informerFor(kind);
    if (informer?.hasSynced()) {
      const current = informer.get(namespace, name);
      // Gone or already going: nothing to write.
      if (!current || current.metadata.deletionTimestamp) {
        this.deps.skipped('delete', kind.kind);
        return false;
      }
    }
    this.deps.fence();
    try {
      await this.deps.api.delete(kind, namespace, name, options);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async event(regarding: KubeObject, type: EventType, reason: string, message: string, action?: string): Promise<void> {
    this.deps.fence();
    await this.deps.recorder.record(regarding, type, reason, message, action);
  }

  /** The kind, the object as last seen (the given one if none is) and the status completed for it. */
  private async statusOf(object: KubeObject, status: Record<string, unknown>) {
    const kind = this.deps.kindOf(object.apiVersion!, object.kind!);
    const current = (await this.current(kind, object.metadata.namespace, object.metadata.name)) ?? object;
    return { kind, current, desired: completeStatus(current, status) };
  }

  /** The cached object when the kind is watched, else a read (a read is cheap; an unneeded write is not). */
  private async current(
    kind: ResourceKind,
    namespace: string | undefined,
    name: string,
  ): Promise<KubeObject | undefined> {
    const informer = this.deps.informerFor(kind);
    if (informer?.hasSynced()) return informer.get(namespace, name);
    try {
      return await this.deps.api.get(kind, namespace, name);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
}

function containsNull(value: unknown): boolean {
  if (value === null) return true;
  if (typeof value !== 'object') return false;
  return Object.values(value as Record<string, unknown>).some(containsNull);
}

/** Adds observedGeneration and the standard condition bookkeeping to a status a reconciler computed. */
function completeStatus(current: KubeObject, status: Record<string, unknown>): Record<string, unknown> {
  const generation = current.metadata.generation;
  const result: Record<string, unknown> = { ...status };
  if (result.observedGeneration === undefined && generation !== undefined) result.observedGeneration = generation;
  if (Array.isArray(status.conditions)) {
    result.conditions = mergeConditions(
      current.status?.conditions as Condition[] | undefined,
      status.conditions as Condition[],
      generation,
    );
  }
  return result;
}

/**
 * Whether the fields applied last time are the ones applied now. An empty list may or may not be owned:
 * the API server records no ownership for an empty set- or map-typed list (it does for an atomic one),
 * so its key is allowed either way; otherwise every reconcile would look like a change. A list that
 * empties is still a change (isSubset sees the items that are left).
 */
function sameKeys(owned: Set<string>, status: Record<string, unknown>): boolean {
  const present = Object.keys(status).filter((k) => status[k] !== undefined);
  const required = present.filter((k) => !(Array.isArray(status[k]) && (status[k] as unknown[]).length === 0));
  return required.every((k) => owned.has(k)) && [...owned].every((k) => present.includes(k));
}

export function kindRegistry(known: Iterable<ResourceKind>): Map<string, ResourceKind> {
  const map = new Map<string, ResourceKind>();
  for (const kind of known) map.set(kindId(kind), kind);
  return map;
}
