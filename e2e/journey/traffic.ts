/**
 * Client traffic for the journey. There is no Gateway API implementation on the local cluster, so
 * `Gateway` plays its data plane for one HTTPRoute: it splits requests over the route's backendRefs by
 * weight and sends each to a ready endpoint of that backend Service (a predictor pod's address from
 * its EndpointSlices), as a gateway's proxy would. `Traffic` is a steady stream of
 * credit-risk applications through it, drawn from the population the example trainer trains on.
 */
import { CustomObjectsApi, DiscoveryV1Api, KubeConfig } from '@kubernetes/client-node';
import { CREDIT_RISK_FEATURES, generateCreditRisk } from '../../examples/trainer/src/dataset.ts';

export interface Backend {
  service: string;
  weight: number;
  endpoints: string[];
}

export interface PredictResponse {
  status: number;
  endpoint: string;
  service: string;
  body: any;
}

/**
 * Ready endpoints (`ip:port`) of a Service's port, as the EndpointSlice controller published them: the
 * addresses of the ready, not terminating pods its selector matches, at the container port its targetPort names.
 */
export async function serviceEndpoints(kc: KubeConfig, namespace: string, service: string, portName = 'http'): Promise<string[]> {
  const slices = await kc.makeApiClient(DiscoveryV1Api).listNamespacedEndpointSlice({ namespace, labelSelector: `kubernetes.io/service-name=${service}` });
  const endpoints: string[] = [];
  for (const slice of slices.items) {
    const port = (slice.ports?.find((p) => p.name === portName) ?? slice.ports?.[0])?.port;
    if (!port) continue;
    for (const endpoint of slice.endpoints ?? []) {
      if (endpoint.conditions?.ready === false || endpoint.conditions?.terminating) continue;
      for (const address of endpoint.addresses) endpoints.push(`${address}:${port}`);
    }
  }
  return endpoints.sort();
}

export class Gateway {
  private backends: Backend[] = [];
  private refreshedAt = 0;
  private refreshing?: Promise<void>;
  private next = 0;

  constructor(private readonly kc: KubeConfig, readonly namespace: string, readonly route: string, private readonly refreshMs = 500) {}

  /** The route's backends with their weights and ready endpoints, as last read. */
  async current(): Promise<Backend[]> {
    if (Date.now() - this.refreshedAt > this.refreshMs) {
      this.refreshing ??= this.refresh().finally(() => (this.refreshing = undefined));
      await this.refreshing;
    }
    return this.backends;
  }

  private async refresh(): Promise<void> {
    const custom = this.kc.makeApiClient(CustomObjectsApi);
    const route = (await custom.getNamespacedCustomObject({ group: 'gateway.networking.k8s.io', version: 'v1', namespace: this.namespace, plural: 'httproutes', name: this.route })) as any;
    const refs: Array<{ name: string; weight?: number }> = route.spec?.rules?.[0]?.backendRefs ?? [];
    this.backends = await Promise.all(refs.map(async (ref) => ({ service: ref.name, weight: ref.weight ?? 1, endpoints: await serviceEndpoints(this.kc, this.namespace, ref.name) })));
    this.refreshedAt = Date.now();
  }

  /** Picks a backend by weight and one of its endpoints round-robin; 503 when the backend has none (as Envoy does). */
  async send(path: string, body: unknown): Promise<PredictResponse> {
    const backends = (await this.current()).filter((b) => b.weight > 0);
    const total = backends.reduce((sum, b) => sum + b.weight, 0);
    if (total === 0) return { status: 503, endpoint: '', service: '', body: { error: 'no backend with weight' } };
    let pick = Math.random() * total;
    const backend = backends.find((b) => (pick -= b.weight) < 0) ?? backends[backends.length - 1]!;
    if (backend.endpoints.length === 0) return { status: 503, endpoint: '', service: backend.service, body: { error: `no ready endpoint for ${backend.service}` } };
    const endpoint = backend.endpoints[this.next++ % backend.endpoints.length]!;
    return await postJson(endpoint, path, body, backend.service);
  }
}

export async function postJson(endpoint: string, path: string, body: unknown, service = ''): Promise<PredictResponse> {
  try {
    const response = await fetch(`http://${endpoint}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try { parsed = JSON.parse(text); } catch { /* not JSON: keep the text */ }
    return { status: response.status, endpoint, service, body: parsed };
  } catch (error) {
    return { status: 0, endpoint, service, body: { error: (error as Error).message } };
  }
}

/** One credit-risk application as the simple API takes it: feature name -> value. */
export type Application = Record<string, number>;

/** Applications from the example's population; `shift` moves it as the trainer's `shift` does (covariate drift). */
export function applications(count: number, shift: number, seed: number): Application[] {
  const data = generateCreditRisk({ rows: count, seed, shift });
  return data.x.map((row) => Object.fromEntries(CREDIT_RISK_FEATURES.map((f, i) => [f.name, row[i]!])));
}

export interface TrafficStats {
  sent: number;
  ok: number;
  failed: number;
  /** Successful predictions per model_version the predictor reported. */
  byVersion: Record<string, number>;
  lastError?: string;
}

/** A steady stream of `POST /predict` requests through the gateway, `rate` per second. */
export class Traffic {
  readonly stats: TrafficStats = { sent: 0, ok: 0, failed: 0, byVersion: {} };
  private timer?: NodeJS.Timeout;
  private pool: Application[] = [];
  private index = 0;
  private seed = 1000;
  private inFlight = new Set<Promise<void>>();

  constructor(private readonly gateway: Gateway, private rate: number, private shift = 0) {
    this.refill();
  }

  private refill(): void {
    this.pool = applications(2000, this.shift, this.seed++);
    this.index = 0;
  }

  /** From now on requests come from a population moved by `shift`. */
  setShift(shift: number): void {
    this.shift = shift;
    this.refill();
  }

  start(): void {
    if (this.timer) return;
    const tickMs = 50;
    let debt = 0;
    this.timer = setInterval(() => {
      debt += (this.rate * tickMs) / 1000;
      for (; debt >= 1; debt--) this.sendOne();
    }, tickMs);
  }

  private sendOne(): void {
    if (this.inFlight.size > 200) return;
    if (this.index >= this.pool.length) this.refill();
    const features = this.pool[this.index++]!;
    this.stats.sent++;
    const request = this.gateway.send('/predict', { features }).then(
      (response) => {
        if (response.status === 200) {
          this.stats.ok++;
          const version = String(response.body.model_version);
          this.stats.byVersion[version] = (this.stats.byVersion[version] ?? 0) + 1;
        } else {
          this.stats.failed++;
          this.stats.lastError = `${response.status} ${response.service} ${JSON.stringify(response.body).slice(0, 200)}`;
        }
      },
      (error) => {
        this.stats.failed++;
        this.stats.lastError = (error as Error).message;
      },
    );
    this.inFlight.add(request);
    void request.finally(() => this.inFlight.delete(request));
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await Promise.allSettled([...this.inFlight]);
  }
}
