import { HttpMethod, IsomorphicFetchHttpLibrary, KubeConfig, RequestContext, Watch } from '@kubernetes/client-node';
import { type ResourceKind, resourcePath } from './kinds.ts';
import type { KubeObject } from './types.ts';

/** An API server error with its HTTP status and the Status object's reason (`NotFound`, `Conflict`, `AlreadyExists`, ...). */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    message: string,
    readonly body?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const isNotFound = (err: unknown) => err instanceof ApiError && err.statusCode === 404;
export const isConflict = (err: unknown) => err instanceof ApiError && err.statusCode === 409;
export const isAlreadyExists = (err: unknown) =>
  err instanceof ApiError && err.statusCode === 409 && err.reason === 'AlreadyExists';
export const isGone = (err: unknown) => err instanceof ApiError && err.statusCode === 410;

export type WriteVerb = 'apply' | 'apply-status' | 'patch-status' | 'patch' | 'create' | 'update' | 'delete';

/** Counts API writes by verb and kind; the benchmark and the tests read it in-process, /metrics exports it. */
export class WriteCounter {
  private readonly counts = new Map<string, number>();
  private readonly listeners: Array<(verb: WriteVerb, kind: string) => void> = [];

  record(verb: WriteVerb, kind: string): void {
    const key = `${verb} ${kind}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    for (const listener of this.listeners) listener(verb, kind);
  }

  onWrite(listener: (verb: WriteVerb, kind: string) => void): void {
    this.listeners.push(listener);
  }

  /** Writes matching the filter; `excludeKinds` is handy to leave out Lease renewals and Events. */
  total(filter: { verb?: WriteVerb; kind?: string; excludeKinds?: string[] } = {}): number {
    let sum = 0;
    for (const [key, n] of this.counts) {
      const [verb, kind] = key.split(' ') as [WriteVerb, string];
      if (filter.verb && filter.verb !== verb) continue;
      if (filter.kind && filter.kind !== kind) continue;
      if (filter.excludeKinds?.includes(kind)) continue;
      sum += n;
    }
    return sum;
  }

  /** `{ "apply Pod": 3, ... }` */
  snapshot(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }

  reset(): void {
    this.counts.clear();
  }
}

interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  /** Default application/json; e.g. the Table form kubectl get prints (`application/json;as=Table;g=meta.k8s.io;v=v1`). */
  accept?: string;
  signal?: AbortSignal;
}

export interface ListPage<T> {
  items: T[];
  metadata: { resourceVersion?: string; continue?: string };
}

/**
 * A thin client for the few REST calls the engine makes, on @kubernetes/client-node's authentication
 * and HTTP stack. Typed generated APIs are avoided on purpose: one generic path builder serves every kind,
 * including custom resources and subresources, and every write passes one place where it is counted.
 */
export class KubeApi {
  private readonly http = new IsomorphicFetchHttpLibrary();
  private dispatcher: ReturnType<RequestContext['getDispatcher']>;
  readonly watcher: Watch;

  constructor(
    readonly kubeconfig: KubeConfig,
    readonly writes: WriteCounter = new WriteCounter(),
  ) {
    this.watcher = new Watch(kubeconfig);
  }

  async request<T>(method: HttpMethod, path: string, options: RequestOptions = {}): Promise<T> {
    const cluster = this.kubeconfig.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const url = new URL(cluster.server.replace(/\/$/, '') + path);
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const ctx = new RequestContext(url.toString(), method);
    ctx.setHeaderParam('Accept', options.accept ?? 'application/json');
    if (options.body !== undefined) {
      ctx.setHeaderParam('Content-Type', options.contentType ?? 'application/json');
      ctx.setBody(JSON.stringify(options.body));
    }
    if (options.signal) ctx.setSignal(options.signal);
    await this.kubeconfig.applySecurityAuthentication(ctx);
    // client-node builds a new undici Agent (and so a new TLS connection) per request; one shared agent
    // keeps connections alive, which makes a request ~10x cheaper on the API server and here.
    this.dispatcher ??= ctx.getDispatcher();
    let statusCode: number;
    let text: string;
    if (this.dispatcher) {
      // The agent's own request() rather than fetch() over it: the same connection pool and TLS settings
      // without fetch's WHATWG Request/Response/stream objects, which cost more CPU than the request.
      const response = await this.dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: method as never,
        headers: ctx.getHeaders(),
        body: ctx.getBody() as string | undefined,
        signal: options.signal,
      });
      statusCode = response.statusCode;
      text = await response.body.text();
    } else {
      const response = await this.http.send(ctx).toPromise();
      statusCode = response.httpStatusCode;
      text = await response.body.text();
    }
    const parsed = text ? safeJson(text) : undefined;
    if (statusCode >= 400) {
      const status = (parsed ?? {}) as { reason?: string; message?: string };
      throw new ApiError(
        statusCode,
        status.reason ?? String(statusCode),
        `${method} ${path}: ${statusCode} ${status.message ?? text.slice(0, 300)}`,
        parsed,
      );
    }
    return parsed as T;
  }

  get<T extends KubeObject = KubeObject>(kind: ResourceKind, namespace: string | undefined, name: string): Promise<T> {
    return this.request<T>(HttpMethod.GET, resourcePath(kind, namespace, name));
  }

  list<T extends KubeObject = KubeObject>(
    kind: ResourceKind,
    namespace?: string,
    query: { labelSelector?: string; fieldSelector?: string; limit?: number; continue?: string } = {},
  ): Promise<ListPage<T>> {
    return this.request<ListPage<T>>(HttpMethod.GET, resourcePath(kind, namespace), { query });
  }

  /** Server-side apply (force, one field manager) of the object or, with `subresource: 'status'`, of its status. */
  async apply<T extends KubeObject = KubeObject>(
    kind: ResourceKind,
    body: { metadata: { name: string; namespace?: string } },
    fieldManager: string,
    subresource?: 'status',
  ): Promise<T> {
    const path =
      resourcePath(kind, body.metadata.namespace, body.metadata.name) + (subresource ? `/${subresource}` : '');
    const result = await this.request<T>(HttpMethod.PATCH, path, {
      query: { fieldManager, force: true },
      body,
      contentType: 'application/apply-patch+yaml',
    });
    this.writes.record(subresource ? 'apply-status' : 'apply', kind.kind);
    return result;
  }

  async mergePatch<T extends KubeObject = KubeObject>(
    kind: ResourceKind,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    fieldManager: string,
    subresource?: 'status',
  ): Promise<T> {
    const path = resourcePath(kind, namespace, name) + (subresource ? `/${subresource}` : '');
    const result = await this.request<T>(HttpMethod.PATCH, path, {
      query: { fieldManager },
      body: patch,
      contentType: 'application/merge-patch+json',
    });
    this.writes.record(subresource ? 'patch-status' : 'patch', kind.kind);
    return result;
  }

  async create<T extends KubeObject = KubeObject>(
    kind: ResourceKind,
    body: { metadata: { namespace?: string } },
    fieldManager: string,
  ): Promise<T> {
    // Count the attempt: a refused create (AlreadyExists) still cost the API server a write request.
    this.writes.record('create', kind.kind);
    return this.request<T>(HttpMethod.POST, resourcePath(kind, body.metadata.namespace), {
      query: { fieldManager },
      body,
    });
  }

  /** PUT with the body's resourceVersion: optimistic concurrency (409 Conflict when someone else wrote first). */
  async replace<T extends KubeObject = KubeObject>(
    kind: ResourceKind,
    body: KubeObject,
    fieldManager: string,
  ): Promise<T> {
    this.writes.record('update', kind.kind);
    return this.request<T>(HttpMethod.PUT, resourcePath(kind, body.metadata.namespace, body.metadata.name), {
      query: { fieldManager },
      body,
    });
  }

  async delete(
    kind: ResourceKind,
    namespace: string | undefined,
    name: string,
    options: { propagationPolicy?: string; preconditionUid?: string } = {},
  ): Promise<void> {
    this.writes.record('delete', kind.kind);
    await this.request(HttpMethod.DELETE, resourcePath(kind, namespace, name), {
      body: {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        ...(options.propagationPolicy ? { propagationPolicy: options.propagationPolicy } : {}),
        ...(options.preconditionUid ? { preconditions: { uid: options.preconditionUid } } : {}),
      },
    });
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function loadKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}
