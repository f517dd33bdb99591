/**
 * Client traffic for the journey: `Traffic` is a steady stream of credit-risk applications, drawn from the
 * population the example trainer trains on, sent through the local cluster's Gateway (Traefik) with the Host
 * the InferenceService routes, so the HTTPRoute's weights split it as they would on any cluster.
 */
import { DiscoveryV1Api, type KubeConfig } from '@kubernetes/client-node';
import { CREDIT_RISK_FEATURES, generateCreditRisk } from '../../examples/trainer/src/dataset.ts';
import type { GatewayClient } from '../../test/support/gateway.ts';

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
export async function serviceEndpoints(
  kc: KubeConfig,
  namespace: string,
  service: string,
  portName = 'http',
): Promise<string[]> {
  const slices = await kc
    .makeApiClient(DiscoveryV1Api)
    .listNamespacedEndpointSlice({ namespace, labelSelector: `kubernetes.io/service-name=${service}` });
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
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON: keep the text */
    }
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
  /** Labels the clients sent back through `POST /feedback` and had acknowledged, and those refused or lost. */
  labelled: number;
  labelFailures: number;
  /** Successful predictions per model_version the predictor reported. */
  byVersion: Record<string, number>;
  lastError?: string;
}

/** A steady stream of `POST /predict` requests through the gateway, `rate` per second. */
export class Traffic {
  readonly stats: TrafficStats = { sent: 0, ok: 0, failed: 0, labelled: 0, labelFailures: 0, byVersion: {} };
  private timer?: NodeJS.Timeout;
  private labelTimer?: NodeJS.Timeout;
  private labelOf?: (features: Application) => number;
  private pendingLabels: Array<{ request_id: string; label: number }> = [];
  private pool: Application[] = [];
  private index = 0;
  private seed = 1000;
  private inFlight = new Set<Promise<void>>();

  constructor(
    private readonly gateway: GatewayClient,
    private rate: number,
    private shift = 0,
  ) {
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

  /**
   * From now on the clients learn each answered application's outcome by `labelOf` and send it back, a batch a
   * second, to `POST /feedback` with the request id the prediction was answered with (docs/ground-truth.md).
   */
  sendLabels(labelOf: (features: Application) => number): void {
    this.labelOf = labelOf;
    this.labelTimer ??= setInterval(() => this.flushLabels(), 1000);
  }

  private flushLabels(): void {
    if (this.pendingLabels.length === 0) return;
    const batch = this.pendingLabels.splice(0, 10_000);
    const request = this.gateway.post('/feedback', batch, 10_000).then(
      (response) => {
        if (response.status === 200) this.stats.labelled += batch.length;
        else {
          this.stats.labelFailures += batch.length;
          this.stats.lastError = `feedback ${response.status} ${JSON.stringify(response.body).slice(0, 200)}`;
        }
      },
      (error) => {
        this.stats.labelFailures += batch.length;
        this.stats.lastError = `feedback: ${(error as Error).message}`;
      },
    );
    this.inFlight.add(request);
    void request.finally(() => this.inFlight.delete(request));
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
    const request = this.gateway.post('/predict', { features }, 5000).then(
      (response) => {
        if (response.status === 200) {
          this.stats.ok++;
          const version = String(response.body.model_version);
          this.stats.byVersion[version] = (this.stats.byVersion[version] ?? 0) + 1;
          if (this.labelOf && typeof response.body.request_id === 'string')
            this.pendingLabels.push({ request_id: response.body.request_id, label: this.labelOf(features) });
        } else {
          this.stats.failed++;
          this.stats.lastError = `${response.status} ${JSON.stringify(response.body).slice(0, 200)}`;
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
    clearInterval(this.labelTimer);
    this.labelTimer = undefined;
    this.flushLabels();
    await Promise.allSettled([...this.inFlight]);
  }
}
