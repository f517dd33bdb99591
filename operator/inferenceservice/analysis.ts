/**
 * Canary analysis through PromQL: the queries for the canary's request count, error rate and p95/p99 latency
 * over one interval, and a small client for Prometheus' instant-query API.
 */
import { PREDICTOR_METRICS } from '../api/contracts.ts';
import type { Measurement } from './canary.ts';

/** Label matchers identifying one served version's series: the predictor's own labels plus the scrape target's. */
export interface SeriesSelector {
  namespace: string;
  inferenceService: string;
  model: string;
  version: number;
}

/** Metric and label names, as the predictor (server/src/metrics) exposes them and the scrape config labels targets. */
export interface MetricNames {
  requests: string;
  latencySeconds: string;
  outcomeLabel: string;
  /** Regex of outcomes that count as errors: the server's fault, not the client's (invalid input is not one). */
  errorOutcomes: string;
  namespaceLabel: string;
  inferenceServiceLabel: string;
  modelLabel: string;
  versionLabel: string;
}

export const DEFAULT_METRIC_NAMES: MetricNames = {
  requests: PREDICTOR_METRICS.requests,
  latencySeconds: PREDICTOR_METRICS.latencySeconds,
  outcomeLabel: PREDICTOR_METRICS.outcomeLabel,
  errorOutcomes: 'error|unavailable',
  namespaceLabel: 'namespace',
  inferenceServiceLabel: 'inference_service',
  modelLabel: PREDICTOR_METRICS.modelLabel,
  versionLabel: PREDICTOR_METRICS.versionLabel,
};

export interface AnalysisQueries {
  requests: string;
  errorRate: string;
  latencyP95Ms: string;
  latencyP99Ms: string;
}

/** Prometheus range selectors need whole seconds and at least two scrapes; callers pass the rollout interval. */
export function rangeFor(intervalMs: number, scrapeIntervalMs: number): string {
  return `${Math.max(Math.ceil(intervalMs / 1000), Math.ceil((2 * scrapeIntervalMs) / 1000))}s`;
}

export function analysisQueries(
  selector: SeriesSelector,
  range: string,
  names: MetricNames = DEFAULT_METRIC_NAMES,
): AnalysisQueries {
  const matchers = [
    `${names.namespaceLabel}=${quote(selector.namespace)}`,
    `${names.inferenceServiceLabel}=${quote(selector.inferenceService)}`,
    `${names.modelLabel}=${quote(selector.model)}`,
    `${names.versionLabel}=${quote(String(selector.version))}`,
  ];
  const all = `{${matchers.join(',')}}`;
  const errors = `{${[...matchers, `${names.outcomeLabel}=~${quote(names.errorOutcomes)}`].join(',')}}`;
  const quantile = (q: number) =>
    `histogram_quantile(${q}, sum by (le) (rate(${names.latencySeconds}_bucket${all}[${range}]))) * 1000`;
  return {
    requests: `sum(increase(${names.requests}${all}[${range}]))`,
    // `or vector(0)`: a canary without errors has no error series at all, which is a rate of 0, not "no data".
    errorRate: `(sum(increase(${names.requests}${errors}[${range}])) or vector(0)) / sum(increase(${names.requests}${all}[${range}]))`,
    latencyP95Ms: quantile(0.95),
    latencyP99Ms: quantile(0.99),
  };
}

/** PromQL string literal: double-quoted with backslash escapes. */
function quote(value: string): string {
  return JSON.stringify(value);
}

/** How long one query may take, whatever the caller's signal says: a Prometheus that hangs must not hold a reconcile. */
export const QUERY_TIMEOUT_MS = 10_000;

/**
 * Runs one instant query. An empty vector means "no data" (null); NaN (0/0, a quantile of no samples) too.
 * Throws with Prometheus' own message on an error response so it reaches status.
 */
export async function instantQuery(
  prometheusUrl: string,
  query: string,
  signal?: AbortSignal,
  timeoutMs = QUERY_TIMEOUT_MS,
): Promise<number | null> {
  const url = new URL('/api/v1/query', prometheusUrl);
  const timeout = AbortSignal.timeout(timeoutMs);
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ query }),
    signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
  }).catch((error: Error) => {
    if (timeout.aborted) throw new Error(`no answer from ${url.origin} within ${timeoutMs} ms`);
    throw new Error(`${url.origin} unreachable: ${(error.cause as Error | undefined)?.message ?? error.message}`);
  });
  const body = (await response.json().catch(() => ({}))) as {
    status?: string;
    error?: string;
    data?: { resultType: string; result: Array<{ value: [number, string] }> };
  };
  if (!response.ok || body.status !== 'success' || !body.data) {
    throw new Error(`prometheus query failed (HTTP ${response.status}): ${body.error ?? 'no body'}`);
  }
  const first = body.data.result[0];
  if (!first) return null;
  const value = Number(first.value[1]);
  return Number.isFinite(value) ? value : null;
}

/** Measures the canary: a failed query becomes a Measurement error (a failed check), never an exception. */
export async function measureCanary(
  prometheusUrl: string,
  queries: AnalysisQueries,
  signal?: AbortSignal,
): Promise<Measurement> {
  try {
    const [requests, errorRate, latencyP95Ms, latencyP99Ms] = await Promise.all([
      instantQuery(prometheusUrl, queries.requests, signal),
      instantQuery(prometheusUrl, queries.errorRate, signal),
      instantQuery(prometheusUrl, queries.latencyP95Ms, signal),
      instantQuery(prometheusUrl, queries.latencyP99Ms, signal),
    ]);
    return { requests: Math.round(requests ?? 0), errorRate, latencyP95Ms, latencyP99Ms };
  } catch (error) {
    return { error: (error as Error).message };
  }
}
