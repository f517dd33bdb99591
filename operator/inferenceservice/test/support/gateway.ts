/**
 * What a Gateway API implementation would do on a real cluster, done by the test from the API server's own
 * objects: requests are split by the HTTPRoute's backendRef weights and sent to a ready endpoint of the chosen
 * Service (its selected pods whose Ready condition the kubelet set); a backend without a ready endpoint answers
 * 503 at the gateway, as Envoy's "no healthy upstream" does.
 */
import { kinds, type KubeApi } from '../../../engine/index.ts';
import { PREDICTOR_PORT } from '../../desired.ts';

export interface GatewayAnswer {
  status: number;
  /** The Service the gateway picked. */
  backend: string;
  /** x-model-version of the predictor that answered. */
  version?: string;
  body: any;
}

export class TestGateway {
  private pick = 0;

  constructor(
    private readonly api: KubeApi,
    private readonly namespace: string,
  ) {}

  async backends(route: string): Promise<Array<{ name: string; weight: number }>> {
    const httpRoute = await this.api.get(kinds.HTTPRoute, this.namespace, route);
    return (httpRoute.spec.rules[0].backendRefs as Array<{ name: string; weight?: number }>).map((b) => ({ name: b.name, weight: b.weight ?? 1 }));
  }

  /**
   * The ready endpoints of a Service as the EndpointSlice controller computes them: pods matching its selector with
   * condition Ready True and a pod IP. Read from the pods because the local cluster's pod IPs are loopback
   * addresses, which the API server refuses in EndpointSlices.
   */
  async readyAddresses(service: string): Promise<string[]> {
    const selector = (await this.api.get(kinds.Service, this.namespace, service)).spec.selector as Record<string, string>;
    const labelSelector = Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',');
    const pods = (await this.api.list(kinds.Pod, this.namespace, { labelSelector })).items;
    return pods
      .filter((pod) => pod.status?.podIP && !pod.metadata.deletionTimestamp && pod.status.conditions?.some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True'))
      .map((pod) => pod.status.podIP as string);
  }

  /** POST /predict through the route: a weighted choice of backend (spread evenly, not at random), then one of its ready endpoints. */
  async predict(route: string, instances: number[][]): Promise<GatewayAnswer> {
    const backends = (await this.backends(route)).filter((b) => b.weight > 0);
    const total = backends.reduce((sum, b) => sum + b.weight, 0);
    let slot = (this.pick++ * 37) % total;
    const backend = backends.find((b) => (slot -= b.weight) < 0)!;
    const addresses = await this.readyAddresses(backend.name);
    if (addresses.length === 0) return { status: 503, backend: backend.name, body: { error: 'no healthy upstream' } };
    const address = addresses[this.pick % addresses.length];
    const response = await fetch(`http://${address}:${PREDICTOR_PORT}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instances }),
      signal: AbortSignal.timeout(10_000),
    });
    const body = await response.json().catch(() => undefined);
    return { status: response.status, backend: backend.name, version: response.headers.get('x-model-version') ?? undefined, body };
  }
}
