/**
 * Predictor metrics with behaviour the test chooses: one prom-client endpoint per served version, exposing
 * the predictor's metric names, fed by a traffic loop. A real Prometheus scrapes them, so the controller's
 * PromQL reads what a canary that errs or lags would show.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Histogram, Registry } from 'prom-client';

export interface Behaviour {
  /** Requests per tick (100 ms). */
  rate: number;
  errorShare: number;
  latencySeconds: number;
}

export interface VersionEndpoint {
  address: string;
  behaviour: Behaviour;
  close(): Promise<void>;
}

const OUTCOMES = ['success', 'error', 'unavailable', 'invalid_input'];

/** A prom-client endpoint exposing the predictor's request counter and latency histogram, which the test feeds. */
export interface PredictorMetrics {
  requests: Counter<'model' | 'model_version' | 'outcome'>;
  latency: Histogram<'model' | 'model_version' | 'outcome'>;
  /** host:port, for a Prometheus target. */
  address: string;
  close(): Promise<void>;
}

export async function predictorMetrics(): Promise<PredictorMetrics> {
  const registry = new Registry();
  const requests = new Counter({
    name: 'prediction_requests_total',
    help: 'requests',
    labelNames: ['model', 'model_version', 'outcome'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'prediction_latency_seconds',
    help: 'latency',
    labelNames: ['model', 'model_version', 'outcome'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const server: Server = createServer(async (_req, res) => {
    res.setHeader('content-type', registry.contentType);
    res.end(await registry.metrics());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    requests,
    latency,
    address: `127.0.0.1:${(server.address() as { port: number }).port}`,
    // Prometheus scrapes over keep-alive connections: close them too, or close() waits for the next idle moment.
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export async function versionEndpoint(model: string, version: number, behaviour: Behaviour): Promise<VersionEndpoint> {
  const { requests, latency, address, close } = await predictorMetrics();
  const labels = { model, model_version: String(version) };
  for (const outcome of OUTCOMES) requests.inc({ ...labels, outcome }, 0);
  const endpoint: VersionEndpoint = { address, behaviour, close: async () => {} };
  let errorDebt = 0;
  const timer = setInterval(() => {
    const { rate, errorShare, latencySeconds } = endpoint.behaviour;
    for (let i = 0; i < rate; i++) {
      errorDebt += errorShare;
      const outcome = errorDebt >= 1 ? 'error' : 'success';
      if (outcome === 'error') errorDebt -= 1;
      requests.inc({ ...labels, outcome });
      latency.observe({ ...labels, outcome }, latencySeconds);
    }
  }, 100);
  endpoint.close = async () => {
    clearInterval(timer);
    await close();
  };
  return endpoint;
}
