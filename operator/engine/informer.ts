import type { Logger } from 'pino';
import { keyOf } from './keys.ts';
import { ApiError, type KubeApi, isGone, isNotFound } from './kube.ts';
import { type ResourceKind, resourcePath } from './kinds.ts';
import type { KubeObject } from './types.ts';

export interface InformerHandlers {
  add?(object: KubeObject): void;
  update?(previous: KubeObject, object: KubeObject): void;
  delete?(object: KubeObject): void;
}

const PAGE_SIZE = 500;
const MIN_RETRY_MS = 500;
/**
 * A handful of informers per operator retrying every 5 s is no load on an API server that is down, while a
 * longer cap is how long the operator stays blind after it is back (measured by e2e/chaos: 8 s after a cut of
 * a few seconds with a 30 s cap).
 */
const MAX_RETRY_MS = 5_000;

/**
 * List+watch of one kind into a local store, client-go's reflector in small: lists (paged), then watches
 * from the list's resourceVersion with bookmarks; a 410 Gone re-lists (and reports objects deleted while
 * away); any other failure retries with backoff (0.5 s doubling to 5 s, from the start again once a watch is
 * established), resuming the watch where it stopped.
 */
export class Informer {
  private readonly store = new Map<string, KubeObject>();
  private readonly owned = new Map<string, Set<string>>();
  private readonly handlers: InformerHandlers[] = [];
  private resourceVersion = '';
  private synced = false;
  private readonly syncWaiters: Array<() => void> = [];
  private stopped = true;
  private abort: AbortController | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private wakeRetry: (() => void) | undefined;
  private retryMs = MIN_RETRY_MS;
  private running: Promise<void> | undefined;

  constructor(
    private readonly api: KubeApi,
    readonly kind: ResourceKind,
    /** Only this namespace (namespaced kinds); undefined = all. */
    private readonly namespace: string | undefined,
    private readonly log: Logger,
  ) {}

  on(handlers: InformerHandlers): void {
    this.handlers.push(handlers);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.running = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    clearTimeout(this.retryTimer);
    this.wakeRetry?.();
    await this.running;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  whenSynced(): Promise<void> {
    return this.synced ? Promise.resolve() : new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  get(namespace: string | undefined, name: string): KubeObject | undefined {
    return this.store.get(keyOf(this.kind.namespaced ? namespace : undefined, name));
  }

  list(namespace?: string, labels?: Record<string, string>): KubeObject[] {
    const result: KubeObject[] = [];
    for (const object of this.store.values()) {
      if (namespace && object.metadata.namespace !== namespace) continue;
      if (labels && !Object.entries(labels).every(([k, v]) => object.metadata.labels?.[k] === v)) continue;
      result.push(object);
    }
    return result;
  }

  ownedBy(ownerUid: string): KubeObject[] {
    const keys = this.owned.get(ownerUid);
    if (!keys) return [];
    return [...keys].map((k) => this.store.get(k)!).filter(Boolean);
  }

  get size(): number {
    return this.store.size;
  }

  /**
   * Takes the API server's answer to one of our writes into the store right away, so the next reconcile
   * does not compare against the state before it (and write again) while the watch event is on its way.
   * Handlers are not called: the watch event will do that.
   */
  observeWrite(object: KubeObject): void {
    const key = this.keyOf(object);
    const current = this.store.get(key);
    if (current && (compareVersions(object, current) ?? 1) <= 0) return;
    this.put(key, this.typed(object));
  }

  private keyOf(object: KubeObject): string {
    return keyOf(this.kind.namespaced ? object.metadata.namespace : undefined, object.metadata.name);
  }

  /**
   * List items come without apiVersion/kind; the cache hands out complete objects. managedFields are
   * dropped on the way in except the Apply entries of status subresources (what `ownedStatusFields`
   * reads): the rest is often larger than the object itself and nothing here reads it.
   */
  private typed(object: KubeObject): KubeObject {
    const managed = object.metadata?.managedFields as Array<{ operation?: string; subresource?: string }> | undefined;
    if (managed) {
      const kept = managed.filter((e) => e.operation === 'Apply' && e.subresource === 'status');
      if (kept.length) object.metadata.managedFields = kept;
      else delete object.metadata.managedFields;
    }
    if (object.apiVersion && object.kind) return object;
    return { ...object, apiVersion: this.kind.apiVersion, kind: this.kind.kind };
  }

  private put(key: string, object: KubeObject): void {
    const previous = this.store.get(key);
    if (previous) this.unindex(key, previous);
    this.store.set(key, object);
    for (const ref of object.metadata.ownerReferences ?? []) {
      if (!ref.controller) continue;
      let keys = this.owned.get(ref.uid);
      if (!keys) this.owned.set(ref.uid, (keys = new Set()));
      keys.add(key);
    }
  }

  private remove(key: string): void {
    const previous = this.store.get(key);
    if (previous) this.unindex(key, previous);
    this.store.delete(key);
  }

  private unindex(key: string, object: KubeObject): void {
    for (const ref of object.metadata.ownerReferences ?? []) {
      const keys = this.owned.get(ref.uid);
      keys?.delete(key);
      if (keys?.size === 0) this.owned.delete(ref.uid);
    }
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if (!this.resourceVersion) await this.relist();
        await this.watch();
        this.retryMs = MIN_RETRY_MS;
      } catch (err) {
        if (this.stopped) break;
        if (isGone(err)) {
          this.log.info({ kind: this.kind.kind }, 'watch expired (410 Gone); re-listing');
          this.resourceVersion = '';
          continue;
        }
        if (isNotFound(err) && !this.resourceVersion) {
          // The API is not served (e.g. Gateway API CRDs not installed). Count the empty cache as synced so
          // the rest of the operator runs, and keep looking: once the CRD appears the kind is picked up.
          if (!this.synced)
            this.log.warn(
              { kind: this.kind.kind, apiVersion: this.kind.apiVersion },
              'kind not served by the API server; its cache stays empty until it is',
            );
          this.markSynced();
        }
        this.log.warn({ kind: this.kind.kind, err: String(err), retryMs: this.retryMs }, 'list/watch failed; retrying');
        await new Promise<void>((resolve) => {
          this.wakeRetry = resolve;
          this.retryTimer = setTimeout(resolve, this.retryMs);
        });
        this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
      }
    }
  }

  private async relist(): Promise<void> {
    const items: KubeObject[] = [];
    let continueToken: string | undefined;
    let resourceVersion = '';
    do {
      const page = await this.api.list(this.kind, this.namespace, { limit: PAGE_SIZE, continue: continueToken });
      items.push(...page.items);
      continueToken = page.metadata.continue || undefined;
      resourceVersion = page.metadata.resourceVersion ?? '';
    } while (continueToken);

    const seen = new Set<string>();
    for (const raw of items) {
      const object = this.typed(raw);
      const key = this.keyOf(object);
      seen.add(key);
      const previous = this.store.get(key);
      this.put(key, object);
      if (!previous) this.emit('add', object);
      else if (previous.metadata.resourceVersion !== object.metadata.resourceVersion)
        this.emit('update', object, previous);
    }
    for (const [key, object] of [...this.store]) {
      if (seen.has(key)) continue;
      this.remove(key);
      this.emit('delete', object);
    }
    this.resourceVersion = resourceVersion;
    this.markSynced();
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    for (const resolve of this.syncWaiters.splice(0)) resolve();
  }

  private watch(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let gone = false;
      const onEvent = (type: string, raw: KubeObject | { code?: number; message?: string }) => {
        if (type === 'ERROR') {
          const status = raw as { code?: number; message?: string };
          if (status.code === 410) gone = true;
          else this.log.warn({ kind: this.kind.kind, status }, 'watch error event');
          return;
        }
        const object = raw as KubeObject;
        if (object.metadata?.resourceVersion) this.resourceVersion = object.metadata.resourceVersion;
        if (type === 'BOOKMARK') return;
        const typed = this.typed(object);
        const key = this.keyOf(typed);
        const previous = this.store.get(key);
        if (type === 'DELETED') {
          this.remove(key);
          this.emit('delete', typed);
          return;
        }
        // A write of ours may already be in the store (observeWrite); never step back to an older version.
        if (!previous || (compareVersions(previous, typed) ?? -1) <= 0) this.put(key, typed);
        if (type === 'ADDED' && !previous) this.emit('add', typed);
        else this.emit('update', typed, previous ?? typed);
      };
      const onDone = (err: unknown) => {
        this.abort = undefined;
        if (gone) return reject(new ApiError(410, 'Expired', 'watch resourceVersion too old'));
        const status = (err as { statusCode?: number } | null)?.statusCode;
        if (status === 410) return reject(new ApiError(410, 'Expired', 'watch resourceVersion too old'));
        // The client's inactivity timeout ends quiet watches; resuming from the last resourceVersion is the normal path.
        if (!err || (err as Error).name === 'TimeoutError' || (err as Error).name === 'AbortError') return resolve();
        reject(err);
      };
      this.api.watcher
        .watch(
          resourcePath(this.kind, this.namespace),
          { resourceVersion: this.resourceVersion, allowWatchBookmarks: true },
          onEvent,
          onDone,
        )
        .then((controller) => {
          if (this.stopped) controller.abort();
          else this.abort = controller;
          // The API server answered: a later failure of this watch is a new outage, not more of the last one.
          if (!controller.signal.aborted) this.retryMs = MIN_RETRY_MS;
        }, reject);
    });
  }

  private emit(event: 'add' | 'update' | 'delete', object: KubeObject, previous?: KubeObject): void {
    for (const handler of this.handlers) {
      try {
        if (event === 'add') handler.add?.(object);
        else if (event === 'update') handler.update?.(previous!, object);
        else handler.delete?.(object);
      } catch (err) {
        this.log.error({ kind: this.kind.kind, err: String(err) }, 'informer handler failed');
      }
    }
  }
}

/**
 * resourceVersions are opaque to clients in general, but etcd's are increasing integers: compare them when
 * both are (sign of a - b), otherwise `undefined` (unknown order).
 */
function compareVersions(a: KubeObject, b: KubeObject): number | undefined {
  const x = a.metadata.resourceVersion;
  const y = b.metadata.resourceVersion;
  if (!x || !y || !/^\d+$/.test(x) || !/^\d+$/.test(y)) return undefined;
  const d = BigInt(x) - BigInt(y);
  return d > 0n ? 1 : d < 0n ? -1 : 0;
}
