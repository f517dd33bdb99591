import { randomBytes, randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import { type Logger, pino } from 'pino';
import type { Registry } from 'prom-client';
import { EventRecorder } from './events.ts';
import { listen, serveProbes } from './http.ts';
import { Informer } from './informer.ts';
import { controllerOf, keyOf, objectKey, parseKey } from './keys.ts';
import { groupOf, kindId, kinds as knownKinds, type ResourceKind } from './kinds.ts';
import { KubeApi, WriteCounter, isConflict, isNotFound, loadKubeConfig } from './kube.ts';
import { LeaderElector } from './leader.ts';
import { EngineMetrics } from './metrics.ts';
import { WorkQueue, defaultRateLimiter } from './queue.ts';
import type {
  ClusterCache,
  ControllerDefinition,
  EngineOptions,
  KubeObject,
  MapFunction,
  ReconcileContext,
  Writer,
} from './types.ts';
import { ClusterWriter, NotLeaderError, kindRegistry } from './writer.ts';

export interface Engine {
  /** Read access to every informer cache (after `start` resolved). */
  readonly cache: ClusterCache;
  /** Writes outside a reconcile (e.g. from a NATS consumer); same skip/count/fencing rules as in a reconcile. */
  readonly writer: Writer;
  /** Every API write, by verb and kind. */
  readonly writes: WriteCounter;
  /** Raw API access for reads that must bypass the cache. Writes go through `writer` (or a reconcile's context): only they are fenced. */
  readonly api: KubeApi;
  readonly log: Logger;
  /** This engine's prom-client registry (one per engine, so two engines can live in one process). */
  readonly metrics: Registry;
  /** Leader election identity. */
  readonly identity: string;

  /** Adds a controller; call before `start`. */
  register(controller: ControllerDefinition): void;
  /**
   * Adds something that runs beside the controllers on every replica, leader or not (an HTTP receiver):
   * started once the caches are synced, stopped before they are. Call before `start`.
   */
  add(runnable: Runnable): void;
  /** Starts informers and the HTTP endpoint, waits for the caches to sync, then campaigns for the lease (or starts workers). */
  start(): Promise<void>;
  /**
   * Graceful stop: stop taking work, let in-flight reconciles finish, release the lease, stop informers, close HTTP.
   * `{ releaseLease: false }` stops renewing without releasing and aborts in-flight work: what a crash looks like
   * to the other replicas.
   */
  stop(options?: { releaseLease?: boolean }): Promise<void>;
  /** Installs SIGTERM/SIGINT handlers that `stop()` and exit. */
  handleSignals(): void;

  isLeader(): boolean;
  /** Resolves once this engine holds the lease (immediately when leader election is off). */
  whenLeader(): Promise<void>;
  /** Caches synced (what /readyz reports). */
  isReady(): boolean;

  /** Puts a key on a controller's queue now or after `afterMs` (ignored while not leading). */
  enqueue(controller: string, key: string, afterMs?: number): void;
  /** Enqueues every primary object of every controller, as the periodic resync does. */
  resync(): void;
  /** Resolves when every queue is empty and no reconcile is running (delayed requeues may still be pending). */
  waitIdle(): Promise<void>;
  /** Where /metrics, /healthz and /readyz listen, once started. */
  httpAddress(): { host: string; port: number } | undefined;
}

/** A part of the operator process with a lifetime of its own, as controller-runtime's manager runs Runnables. */
export interface Runnable {
  name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createEngine(options: EngineOptions = {}): Engine {
  return new ControllerEngine(options);
}

/** One controller's running state: present only while this replica leads. */
interface Run {
  queue: WorkQueue;
  abort: AbortController;
  workers: Promise<void>[];
}

class ControllerEngine implements Engine {
  readonly writes = new WriteCounter();
  readonly api: KubeApi;
  readonly log: Logger;
  readonly identity: string;
  readonly cache: ClusterCache;
  readonly writer: Writer;
  private readonly kubeconfig: KubeConfig;
  private readonly telemetry: EngineMetrics;
  private readonly controllers = new Map<string, ControllerDefinition>();
  private readonly runnables: Runnable[] = [];
  private readonly runs = new Map<string, Run>();
  private readonly informers = new Map<string, Informer>();
  private readonly kindsById: Map<string, ResourceKind>;
  private readonly recorder: EventRecorder;
  private readonly elector: LeaderElector | undefined;
  private readonly fieldManager: string;
  private server: Server | undefined;
  private address: { host: string; port: number } | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private started = false;
  private stopping = false;
  /** True while a graceful stop lets in-flight reconciles finish their writes. */
  private draining = false;
  private synced = false;

  constructor(private readonly options: EngineOptions) {
    this.kubeconfig = options.kubeconfig ?? loadKubeConfig();
    this.kindsById = kindRegistry([...Object.values(knownKinds), ...(options.kinds ?? [])]);
    this.api = new KubeApi(this.kubeconfig, this.writes);
    this.fieldManager = options.fieldManager ?? 'loopline-operator';
    const election = options.leaderElection === false ? undefined : (options.leaderElection ?? {});
    this.identity = election?.identity ?? `${hostname()}_${randomBytes(4).toString('hex')}`;
    this.log = (options.logger ?? pino({ name: 'loopline-operator', level: process.env.LOG_LEVEL ?? 'info' })).child({
      identity: this.identity,
    });
    this.telemetry = new EngineMetrics(options.httpPort !== false);
    this.writes.onWrite((verb, kind) => this.telemetry.writes.inc({ verb, kind }));
    this.recorder = new EventRecorder(
      this.api,
      options.reportingController ?? 'loopline.dev/operator',
      this.identity,
      this.fieldManager,
      this.log,
    );
    if (election) {
      this.elector = new LeaderElector(
        this.api,
        election.name ?? 'loopline-operator',
        election.namespace ?? process.env.POD_NAMESPACE ?? 'loopline-system',
        this.identity,
        {
          leaseDurationMs: election.leaseDurationMs ?? 15_000,
          renewDeadlineMs: election.renewDeadlineMs ?? 10_000,
          retryPeriodMs: election.retryPeriodMs ?? 2_000,
        },
        { started: () => this.startLeading(), stopped: () => this.stopLeading() },
        this.log,
      );
    }
    this.cache = {
      get: <T extends KubeObject>(kind: ResourceKind, namespace: string | undefined, name: string) =>
        this.informer(kind).get(namespace, name) as T | undefined,
      list: <T extends KubeObject>(
        kind: ResourceKind,
        opts: { namespace?: string; labels?: Record<string, string> } = {},
      ) => this.informer(kind).list(opts.namespace, opts.labels) as T[],
      ownedBy: <T extends KubeObject>(kind: ResourceKind, owner: KubeObject) =>
        (owner.metadata.uid ? this.informer(kind).ownedBy(owner.metadata.uid) : []) as T[],
    };
    this.writer = new ClusterWriter({
      api: this.api,
      fieldManager: this.fieldManager,
      recorder: this.recorder,
      kindOf: (apiVersion, kind) => {
        const found = this.kindsById.get(`${apiVersion}/${kind}`);
        if (!found)
          throw new Error(`unknown kind ${apiVersion}/${kind}: add it to operator/engine/kinds.ts or watch it`);
        return found;
      },
      informerFor: (kind) => this.informers.get(kindId(kind)),
      fence: () => {
        if (this.stopping && !this.draining) throw new NotLeaderError();
        if (this.elector && !this.elector.isLeader()) throw new NotLeaderError();
      },
      skipped: (verb, kind) => this.telemetry.writesSkipped.inc({ verb, kind }),
    });
  }

  get metrics(): Registry {
    return this.telemetry.registry;
  }

  register(controller: ControllerDefinition): void {
    if (this.started) throw new Error(`register(${controller.name}) after start`);
    if (this.controllers.has(controller.name)) throw new Error(`controller ${controller.name} registered twice`);
    this.controllers.set(controller.name, controller);
    const primary = controller.for;
    this.watchKind(primary, {
      map: (object) => [objectKey(object)],
      controller: controller.name,
    });
    for (const owned of controller.owns ?? []) {
      this.watchKind(owned, {
        controller: controller.name,
        map: (object) => {
          const owner = controllerOf(object);
          if (!owner || owner.kind !== primary.kind || groupOf(owner.apiVersion) !== groupOf(primary.apiVersion))
            return [];
          return [keyOf(primary.namespaced ? object.metadata.namespace : undefined, owner.name)];
        },
      });
    }
    for (const watch of controller.watches ?? []) {
      this.watchKind(
        watch.kind,
        { controller: controller.name, map: watch.map ?? ((object) => [objectKey(object)]) },
        watch.allNamespaces,
      );
    }
    for (const read of controller.reads ?? []) this.informerOf(read);
  }

  add(runnable: Runnable): void {
    if (this.started) throw new Error(`add(${runnable.name}) after start`);
    this.runnables.push(runnable);
  }

  async start(): Promise<void> {
    if (this.started) throw new Error('engine already started');
    this.started = true;
    if (this.options.httpPort !== false) {
      this.server = serveProbes({
        registry: this.telemetry.registry,
        isReady: () => this.isReady(),
        isHealthy: () => !this.stopping,
      });
      const address = await listen(this.server, this.options.httpPort ?? 8080, this.options.httpHost ?? '0.0.0.0');
      this.address = { host: address.address, port: address.port };
    }
    for (const informer of this.informers.values()) informer.start();
    await Promise.all([...this.informers.values()].map((i) => i.whenSynced()));
    this.synced = true;
    this.log.info({ kinds: [...this.informers.keys()], address: this.address }, 'caches synced');
    if (this.stopping) return;
    for (const runnable of this.runnables) await runnable.start();
    if (this.elector) this.elector.start();
    else this.startLeading();
    const resyncMs = this.options.resyncPeriodMs ?? 10 * 60_000;
    if (resyncMs > 0) this.resyncTimer = setInterval(() => this.resync(), resyncMs).unref();
  }

  async stop(options: { releaseLease?: boolean } = {}): Promise<void> {
    if (this.stopping) return;
    const graceful = options.releaseLease !== false;
    this.stopping = true;
    this.draining = graceful;
    clearInterval(this.resyncTimer);
    this.log.info({ graceful }, 'stopping');
    if (graceful) {
      // Leadership is kept while in-flight reconciles finish, then handed back.
      await this.stopWorkers(false);
      this.draining = false;
      await this.recorder.flush();
      await this.elector?.stop(true);
    } else {
      // As in a crash: renewals stop now and nothing more is written; the lease is left to expire.
      this.recorder.discard();
      await Promise.all([this.elector?.stop(false), this.stopWorkers(true)]);
    }
    await Promise.all(this.runnables.map((r) => r.stop()));
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections();
    this.telemetry.leader.set(0);
    this.log.info('stopped');
  }

  handleSignals(): void {
    const onSignal = (signal: NodeJS.Signals) => {
      this.log.info({ signal }, 'shutting down');
      this.stop().then(
        () => process.exit(0),
        (err) => {
          this.log.error({ err: String(err) }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }

  isLeader(): boolean {
    return this.elector ? this.elector.isLeader() : this.synced && !this.stopping;
  }

  whenLeader(): Promise<void> {
    return this.elector ? this.elector.whenLeader() : Promise.resolve();
  }

  isReady(): boolean {
    return this.synced && !this.stopping;
  }

  enqueue(controller: string, key: string, afterMs = 0): void {
    const run = this.runs.get(controller);
    if (!run) return;
    if (afterMs > 0) run.queue.addAfter(key, afterMs);
    else run.queue.add(key);
  }

  resync(): void {
    for (const [name, controller] of this.controllers) {
      const run = this.runs.get(name);
      if (!run) continue;
      for (const object of this.informer(controller.for).list()) run.queue.add(objectKey(object));
    }
  }

  async waitIdle(): Promise<void> {
    // A reconcile can enqueue into another controller's queue; loop until all are idle at once.
    for (;;) {
      await Promise.all([...this.runs.values()].map((r) => r.queue.whenIdle()));
      if ([...this.runs.values()].every((r) => r.queue.length === 0 && r.queue.inFlight === 0)) return;
    }
  }

  httpAddress(): { host: string; port: number } | undefined {
    return this.address;
  }

  private informer(kind: ResourceKind): Informer {
    const informer = this.informers.get(kindId(kind));
    if (!informer) throw new Error(`${kind.kind} is not watched: list it in a controller's for/owns/watches/reads`);
    return informer;
  }

  private informerOf(kind: ResourceKind, allNamespaces = false): Informer {
    const id = kindId(kind);
    let informer = this.informers.get(id);
    if (!informer) {
      if (this.started) throw new Error(`cannot watch ${kind.kind} after start`);
      this.kindsById.set(id, kind);
      informer = new Informer(
        this.api,
        kind,
        kind.namespaced && !allNamespaces ? this.options.namespace : undefined,
        this.log,
      );
      const gauge = this.telemetry.cacheObjects;
      const counted = informer;
      informer.on({
        add: () => gauge.set({ kind: kind.kind }, counted.size),
        delete: () => gauge.set({ kind: kind.kind }, counted.size),
      });
      this.informers.set(id, informer);
    }
    return informer;
  }

  private watchKind(kind: ResourceKind, target: { controller: string; map: MapFunction }, allNamespaces = false): void {
    const enqueue = (object: KubeObject) => {
      const run = this.runs.get(target.controller);
      if (!run) return;
      for (const key of target.map(object, this.cache)) run.queue.add(key);
    };
    this.informerOf(kind, allNamespaces).on({
      add: enqueue,
      update: (previous, object) => {
        enqueue(object);
        // An owner reference or label a mapper uses may have changed: tell the old target too.
        if (previous !== object) enqueue(previous);
      },
      delete: enqueue,
    });
  }

  private startLeading(): void {
    if (this.stopping) return;
    this.telemetry.leader.set(1);
    for (const [name, controller] of this.controllers) {
      if (this.runs.has(name)) continue;
      const queue = new WorkQueue(
        defaultRateLimiter({
          baseMs: this.options.backoff?.baseMs,
          maxMs: this.options.backoff?.maxMs,
          qps: this.options.rateLimit?.qps,
          burst: this.options.rateLimit?.burst,
        }),
        {
          added: () => this.telemetry.queueAdds.inc({ controller: name }),
          depth: (depth) => this.telemetry.queueDepth.set({ controller: name }, depth),
          retried: () => this.telemetry.queueRetries.inc({ controller: name }),
        },
      );
      const run: Run = { queue, abort: new AbortController(), workers: [] };
      this.runs.set(name, run);
      // Whatever happened while another replica led is unknown here: look at everything once.
      for (const object of this.informer(controller.for).list()) queue.add(objectKey(object));
      const workers = controller.workers ?? 4;
      for (let i = 0; i < workers; i++) run.workers.push(this.work(controller, run));
    }
    this.log.info({ controllers: [...this.controllers.keys()] }, 'reconciling');
  }

  /** Leadership lost: stop at once; writes are already fenced, in-flight reconciles are told to abort. */
  private stopLeading(): void {
    this.telemetry.leader.set(0);
    // Event series counts still to be written back belong to a term that is over.
    this.recorder.discard();
    void this.stopWorkers(true);
  }

  private async stopWorkers(abort: boolean): Promise<void> {
    const runs = [...this.runs.values()];
    this.runs.clear();
    for (const run of runs) {
      run.queue.shutDown();
      if (abort) run.abort.abort(new NotLeaderError());
    }
    await Promise.all(runs.flatMap((r) => r.workers));
  }

  private async work(controller: ControllerDefinition, run: Run): Promise<void> {
    const { queue } = run;
    const labels = { controller: controller.name, kind: controller.for.kind };
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      const log = this.log.child({ controller: controller.name, key, reconcileID: randomUUID().slice(0, 8) });
      // A reconcile of a run that lost leadership must not write even if leadership came back meanwhile:
      // the new run may be reconciling the same key.
      const fenced =
        <A extends unknown[], R>(write: (...args: A) => Promise<R>) =>
        (...args: A): Promise<R> =>
          run.abort.signal.aborted ? Promise.reject(new NotLeaderError()) : write(...args);
      const w = this.writer;
      const ctx: ReconcileContext = {
        log,
        cache: this.cache,
        signal: run.abort.signal,
        controller: controller.name,
        apply: fenced((desired) => w.apply(desired)),
        applyStatus: fenced((object, status) => w.applyStatus(object, status)),
        patchStatus: fenced((object, status) => w.patchStatus(object, status)),
        patch: fenced((kind, namespace, name, patch) => w.patch(kind, namespace, name, patch)),
        create: fenced((object, options) => w.create(object, options)),
        delete: fenced((kind, namespace, name, options) => w.delete(kind, namespace, name, options)),
        event: fenced((regarding, type, reason, message, action) => w.event(regarding, type, reason, message, action)),
      };
      const endTimer = this.telemetry.reconcileDuration.startTimer(labels);
      try {
        const result = await controller.reconcile(parseKey(key), ctx);
        queue.forget(key);
        if (result?.requeueAfter && result.requeueAfter > 0) {
          queue.addAfter(key, result.requeueAfter);
          this.telemetry.reconciles.inc({ ...labels, result: 'requeue' });
        } else {
          this.telemetry.reconciles.inc({ ...labels, result: 'success' });
        }
      } catch (err) {
        this.telemetry.reconciles.inc({ ...labels, result: 'error' });
        this.telemetry.reconcileErrors.inc(labels);
        if (err instanceof NotLeaderError || run.abort.signal.aborted) {
          log.info('reconcile abandoned: no longer leading');
        } else if (isConflict(err) || isNotFound(err)) {
          // Races with other writers or with deletion: normal in a level-triggered loop, the retry sees the new state.
          log.info({ err: (err as Error).message, retries: queue.retries(key) }, 'reconcile raced; retrying');
          queue.addRateLimited(key);
        } else {
          log.error({ err: errorDetails(err), retries: queue.retries(key) }, 'reconcile failed; retrying with backoff');
          queue.addRateLimited(key);
        }
      } finally {
        endTimer();
        queue.done(key);
      }
    }
  }
}

function errorDetails(err: unknown): unknown {
  if (err instanceof Error) return { name: err.name, message: err.message, stack: err.stack };
  return String(err);
}
