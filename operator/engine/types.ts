import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ResourceKind } from './kinds.ts';

/** The object a reconcile is about: a namespaced name plus its queue key `namespace/name` (or `name` for cluster-scoped). */
export interface Request {
  namespace: string;
  name: string;
  key: string;
}

/** What a reconcile asks for next: nothing (done), or another look after `requeueAfter` milliseconds. */
export interface Result {
  requeueAfter?: number;
}

/**
 * Any object as the API server returns it; `status` and `spec` stay untyped here on purpose, each controller narrows them.
 * Note: the engine hands out JSON as the server sent it, so `metadata.creationTimestamp`/`deletionTimestamp` are
 * RFC 3339 strings at runtime even though client-node's V1ObjectMeta types them as Date.
 */
export type KubeObject = KubernetesObject & {
  metadata: NonNullable<KubernetesObject['metadata']> & { name: string };
  spec?: any;
  status?: any;
  [field: string]: unknown;
};

/** The desired state of an object as a pure function produces it: kind, name, namespace and only the fields Loopline owns. */
export type DesiredObject = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
    finalizers?: string[];
  };
  [field: string]: unknown;
};

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** A metav1.Condition. `lastTransitionTime` and `observedGeneration` are filled in by the status writer when omitted. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime?: string;
  observedGeneration?: number;
}

/** Read access to the informer caches. Objects are shared with the cache: treat them as read-only. */
export interface ClusterCache {
  get<T extends KubeObject = KubeObject>(
    kind: ResourceKind,
    namespace: string | undefined,
    name: string,
  ): T | undefined;
  list<T extends KubeObject = KubeObject>(
    kind: ResourceKind,
    options?: { namespace?: string; labels?: Record<string, string> },
  ): T[];
  /** Objects of `kind` whose controller owner reference points at `owner` (by uid). */
  ownedBy<T extends KubeObject = KubeObject>(kind: ResourceKind, owner: KubeObject): T[];
}

export type EventType = 'Normal' | 'Warning';

/** The write side: every API write of the operator goes through here, so it is counted, fenced by leadership and skipped when nothing would change. */
export interface Writer {
  /**
   * Server-side apply of `desired` with the field manager `loopline-operator` (force).
   * Skipped (returns the cached object, `changed: false`) when the cached object already holds
   * every desired field and the set of applied fields is the one applied last time.
   */
  apply<T extends KubeObject = KubeObject>(desired: DesiredObject): Promise<{ object: T; changed: boolean }>;
  /**
   * Server-side apply of the whole status Loopline owns on `object` through the status subresource.
   * Sets `status.observedGeneration` to the object's generation when absent, keeps each condition's
   * `lastTransitionTime` unless its status changed, and skips the write when the cached status already matches.
   */
  applyStatus<T extends KubeObject = KubeObject>(
    object: KubeObject,
    status: Record<string, unknown>,
  ): Promise<{ object: T; changed: boolean }>;
  /**
   * JSON merge patch of part of the status through the status subresource (a null removes a field); skipped when
   * the cached status already matches.
   */
  patchStatus<T extends KubeObject = KubeObject>(
    object: KubeObject,
    status: Record<string, unknown>,
  ): Promise<{ object: T; changed: boolean }>;
  /**
   * JSON merge patch of the object itself (not its status), for what server-side apply cannot say: taking a value
   * out of a list another manager applied, or resetting a field a user set. A `metadata.resourceVersion` in the
   * patch makes it conditional (409 Conflict when the object changed since). Skipped when the cached object
   * already holds every field of the patch.
   */
  patch<T extends KubeObject = KubeObject>(
    kind: ResourceKind,
    namespace: string | undefined,
    name: string,
    patch: Record<string, unknown>,
  ): Promise<{ object: T; changed: boolean }>;
  /**
   * Create that tolerates AlreadyExists (reads the existing object back, `created: false`); for objects whose name the
   * API server must arbitrate. `readExisting: false` throws the AlreadyExists instead: for objects the operator must
   * never read (a Secret), named uniquely so a retry makes a new one.
   */
  create<T extends KubeObject = KubeObject>(
    object: DesiredObject,
    options?: { readExisting?: boolean },
  ): Promise<{ object: T; created: boolean }>;
  /** Delete; NotFound counts as done. */
  delete(
    kind: ResourceKind,
    namespace: string | undefined,
    name: string,
    options?: { propagationPolicy?: 'Foreground' | 'Background' | 'Orphan'; preconditionUid?: string },
  ): Promise<boolean>;
  /**
   * A Kubernetes Event about `regarding` (events.k8s.io/v1). Repeats of the same type/reason/message
   * within 10 minutes are aggregated into the event's series instead of new objects.
   */
  event(regarding: KubeObject, type: EventType, reason: string, message: string, action?: string): Promise<void>;
}

/** What `reconcile` gets besides the key. */
export interface ReconcileContext extends Writer {
  log: Logger;
  cache: ClusterCache;
  /** Aborted when leadership is lost or the engine stops hard; long waits inside a reconcile should honour it. */
  signal: AbortSignal;
  /** Name of this controller, e.g. `trainingjob`. */
  controller: string;
}

/** Turns an event on a watched object into the keys (`namespace/name`) of primary objects to reconcile. */
export type MapFunction = (object: KubeObject, cache: ClusterCache) => string[];

export interface Watch {
  kind: ResourceKind;
  /** Defaults to the object's own key. */
  map?: MapFunction;
  /**
   * Watch this kind in every namespace even when the engine is restricted to one: for shared infrastructure
   * that lives in its own namespace (a Gateway API Gateway in the gateway team's namespace).
   */
  allNamespaces?: boolean;
}

export interface ControllerDefinition {
  /** Short lower-case name used in logs and metrics, e.g. `trainingjob`. */
  name: string;
  /** The primary kind; its events enqueue its own key. */
  for: ResourceKind;
  /** Kinds created by this controller; their events enqueue the controller owner of the matching `for` kind. */
  owns?: ResourceKind[];
  /** Other kinds whose events enqueue primaries through `map` (e.g. a ModelVersion change enqueues InferenceServices of its model). */
  watches?: Watch[];
  /** Kinds only read from the cache, with no events of interest. */
  reads?: ResourceKind[];
  /** Parallel reconciles of different keys (a key never runs concurrently with itself). Default 4. */
  workers?: number;
  /**
   * Reads the world (cache), computes what should exist, makes it so. Throwing retries the key with
   * per-key exponential backoff; `{ requeueAfter }` looks again later; anything else is done.
   */
  reconcile(request: Request, ctx: ReconcileContext): Promise<Result | void>;
}

export interface LeaderElectionOptions {
  /** Lease name; default `loopline-operator`. */
  name?: string;
  /** Namespace of the Lease; default POD_NAMESPACE or `loopline-system`. */
  namespace?: string;
  /** Unique per process; default `${hostname}_${random}`. */
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

export interface EngineOptions {
  /** Default: loaded from KUBECONFIG / in-cluster. */
  kubeconfig?: import('@kubernetes/client-node').KubeConfig;
  /** Restrict every namespaced watch to this namespace (tests, single-namespace installs). Default: all namespaces. */
  namespace?: string;
  /** `false` disables it (single replica, tests). Default: enabled with the defaults of LeaderElectionOptions. */
  leaderElection?: LeaderElectionOptions | false;
  /** Port of /metrics, /healthz, /readyz; 0 picks a free port; `false` serves nothing. Default 8080. */
  httpPort?: number | false;
  /** Host for the HTTP endpoint; default `0.0.0.0`. */
  httpHost?: string;
  /** Every primary object is enqueued again this often (level-triggered safety net). Default 10 minutes; 0 disables. */
  resyncPeriodMs?: number;
  /** Per-key backoff after errors: base and cap in ms. Default 5 ms .. 1000 s. */
  backoff?: { baseMs?: number; maxMs?: number };
  /** Global token bucket for retries and requeues. Default 10/s, burst 100. */
  rateLimit?: { qps?: number; burst?: number };
  logger?: Logger;
  /** Field manager for server-side apply; default `loopline-operator`. */
  fieldManager?: string;
  /** Kinds the writer may write without watching them, beyond those in `kinds` (kinds.ts). */
  kinds?: ResourceKind[];
  /** Name reported in Events' reportingController; default `loopline.dev/operator`. */
  reportingController?: string;
}
