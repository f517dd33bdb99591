import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { KubeApi, WriteCounter } from './kube.ts';
import type { ClusterCache, ControllerDefinition, EngineOptions, Writer } from './types.ts';

export interface Engine {
  /** Read access to every informer cache (after `start` resolved). */
  readonly cache: ClusterCache;
  /** Writes outside a reconcile (e.g. from a NATS consumer); same skip/count/fencing rules as in a reconcile. */
  readonly writer: Writer;
  /** Every API write, by verb and kind. */
  readonly writes: WriteCounter;
  /** Raw API access for what the writer does not cover (reads that must bypass the cache, optimistic-concurrency updates). */
  readonly api: KubeApi;
  readonly log: Logger;
  /** This engine's prom-client registry (one per engine, so two engines can live in one process). */
  readonly metrics: Registry;
  /** Leader election identity. */
  readonly identity: string;

  /** Adds a controller; call before `start`. */
  register(controller: ControllerDefinition): void;
  /** Starts informers and the HTTP endpoint, waits for the caches to sync, then campaigns for the lease (or starts workers). */
  start(): Promise<void>;
  /**
   * Graceful stop: stop taking work, let in-flight reconciles finish, release the lease, stop informers, close HTTP.
   * `{ releaseLease: false }` leaves the lease to expire (what a crash looks like to the other replicas).
   */
  stop(options?: { releaseLease?: boolean }): Promise<void>;
  /** Installs SIGTERM/SIGINT handlers that `stop()` and exit. */
  handleSignals(): void;

  isLeader(): boolean;
  /** Resolves once this engine holds the lease (immediately when leader election is off). */
  whenLeader(): Promise<void>;
  /** Caches synced (what /readyz reports). */
  isReady(): boolean;

  /** Puts a key on a controller's queue now or after `afterMs`. */
  enqueue(controller: string, key: string, afterMs?: number): void;
  /** Enqueues every primary object of every controller, as the periodic resync does. */
  resync(): void;
  /** Resolves when every queue is empty and no reconcile is running (delayed requeues may still be pending). */
  waitIdle(): Promise<void>;
  /** Where /metrics, /healthz and /readyz listen, once started. */
  httpAddress(): { host: string; port: number } | undefined;
}

export function createEngine(_options: EngineOptions = {}): Engine {
  throw new Error('engine implementation lands in the next commit');
}
