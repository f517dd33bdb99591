/**
 * Everything `loopline status` shows about one InferenceService, gathered from where it lives: the object and
 * its served ModelVersions and Events from the API server, live traffic and per-feature drift from Prometheus,
 * lifecycle and drift events from the NATS JetStream stream. Prometheus and NATS are optional: when one cannot
 * be reached the snapshot says why and the rest is still gathered.
 */
import { readFileSync } from 'node:fs';
import { DeliverPolicy, jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import { connect, credsAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import type { InferenceService, ModelVersion } from '../api/types.ts';
import { isNotFound, kinds, type KubeApi } from '../engine/index.ts';
import { parseCloudEvent, type CloudEvent } from '../events/cloudevents.ts';
import { lifecycleSubject } from '../events/publisher.ts';
import { DEFAULT_METRIC_NAMES as M } from '../inferenceservice/analysis.ts';

export type Role = 'stable' | 'canary';

export interface ServedVersion {
  role: Role;
  version: number;
  /** The registry record, or why it could not be read. */
  modelVersion?: ModelVersion;
  missing?: string;
}

/** Live figures of one version over the window; null where Prometheus has no samples. */
export interface VersionTraffic {
  requestsPerSecond: number | null;
  errorRate: number | null;
  latencyP50Ms: number | null;
  latencyP95Ms: number | null;
  latencyP99Ms: number | null;
}

export interface FeatureDrift {
  name: string;
  method?: string;
  score: number;
  threshold?: number;
  drifted: boolean;
}

export interface Traffic {
  prometheusUrl: string;
  window: string;
  /** Set when Prometheus could not answer; then byVersion is empty. */
  unavailable?: string;
  byVersion: Map<number, VersionTraffic>;
  /** drift_score per feature of the stable version, as the predictors export it. */
  driftFeatures: FeatureDrift[];
}

export interface ServiceEvent {
  time?: string;
  type: string;
  reason: string;
  note: string;
  count: number;
}

export interface NatsEvents {
  subject: string;
  /** Set when NATS is not configured or not reachable. */
  unavailable?: string;
  lifecycle: CloudEvent[];
  /** The newest drift window report for this service. */
  lastDrift?: CloudEvent<DriftEventData>;
}

/** The part of the predictor's drift event (server/src/events/drift-event.ts) the dashboard shows. */
export interface DriftEventData {
  modelVersion?: string;
  score?: number;
  drifted?: boolean;
  features?: Array<{ name: string; method?: string; score: number; threshold?: number; drifted: boolean }>;
}

export interface StatusSnapshot {
  namespace: string;
  name: string;
  service: InferenceService;
  versions: ServedVersion[];
  traffic: Traffic;
  events: ServiceEvent[];
  nats: NatsEvents;
}

export interface GatherOptions {
  prometheusUrl: string;
  /** PromQL range for rates and quantiles, e.g. 1m. */
  window: string;
  nats?: { url: string; credsFile?: string; stream: string };
  /** How many Kubernetes Events and lifecycle events to keep, newest last. */
  eventCount: number;
  timeoutMs?: number;
}

export async function gatherStatus(
  api: KubeApi,
  namespace: string,
  name: string,
  options: GatherOptions,
): Promise<StatusSnapshot> {
  const service = (await api.get(kinds.InferenceService, namespace, name).catch((error: unknown) => {
    throw isNotFound(error)
      ? new Error(`inferenceservice ${namespace}/${name} not found (kubectl get lisvc -n ${namespace})`)
      : error;
  })) as unknown as InferenceService;
  const roles: Array<[Role, number | undefined]> = [
    ['stable', service.status?.stableVersion],
    ['canary', service.status?.canaryVersion],
  ];
  const [versions, traffic, events, nats] = await Promise.all([
    Promise.all(
      roles
        .filter((r): r is [Role, number] => r[1] !== undefined)
        .map(([role, version]) => servedVersion(api, namespace, service.spec.model, role, version)),
    ),
    gatherTraffic(namespace, name, service, options),
    serviceEvents(api, namespace, name, options.eventCount),
    gatherNatsEvents(namespace, name, options),
  ]);
  return { namespace, name, service, versions, traffic, events, nats };
}

async function servedVersion(
  api: KubeApi,
  namespace: string,
  model: string,
  role: Role,
  version: number,
): Promise<ServedVersion> {
  try {
    const modelVersion = (await api.get(
      kinds.ModelVersion,
      namespace,
      `${model}-v${version}`,
    )) as unknown as ModelVersion;
    return { role, version, modelVersion };
  } catch (error) {
    return {
      role,
      version,
      missing: isNotFound(error) ? `ModelVersion ${model}-v${version} not found` : (error as Error).message,
    };
  }
}

/** The PromQL behind the traffic table, by model_version; label names are the ones the canary analysis uses. */
export function trafficQueries(namespace: string, name: string, model: string, window: string) {
  const selector = [
    `${M.namespaceLabel}=${JSON.stringify(namespace)}`,
    `${M.inferenceServiceLabel}=${JSON.stringify(name)}`,
    `${M.modelLabel}=${JSON.stringify(model)}`,
  ].join(',');
  const quantile = (q: number) =>
    `histogram_quantile(${q}, sum by (le, ${M.versionLabel}) (rate(${M.latencySeconds}_bucket{${selector}}[${window}]))) * 1000`;
  return {
    requestsPerSecond: `sum by (${M.versionLabel}) (rate(${M.requests}{${selector}}[${window}]))`,
    errorsPerSecond: `sum by (${M.versionLabel}) (rate(${M.requests}{${selector},${M.outcomeLabel}=~${JSON.stringify(M.errorOutcomes)}}[${window}]))`,
    latencyP50Ms: quantile(0.5),
    latencyP95Ms: quantile(0.95),
    latencyP99Ms: quantile(0.99),
    driftScore: `max by (${M.versionLabel}, feature, method) (drift_score{${selector}})`,
    featureDrifted: `max by (${M.versionLabel}, feature) (drift_feature_drifted{${selector}})`,
  };
}

type Sample = { labels: Record<string, string>; value: number };

/** One instant query returning a vector; NaN samples (a quantile of nothing) are dropped. */
async function queryVector(prometheusUrl: string, query: string, timeoutMs: number): Promise<Sample[]> {
  const response = await fetch(new URL('/api/v1/query', prometheusUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ query }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = (await response.json().catch(() => ({}))) as {
    status?: string;
    error?: string;
    data?: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
  };
  if (!response.ok || body.status !== 'success' || !body.data)
    throw new Error(`query failed (HTTP ${response.status}): ${body.error ?? 'no body'}`);
  return body.data.result
    .map((r) => ({ labels: r.metric, value: Number(r.value[1]) }))
    .filter((s) => Number.isFinite(s.value));
}

async function gatherTraffic(
  namespace: string,
  name: string,
  service: InferenceService,
  options: GatherOptions,
): Promise<Traffic> {
  const traffic: Traffic = {
    prometheusUrl: options.prometheusUrl,
    window: options.window,
    byVersion: new Map(),
    driftFeatures: [],
  };
  const queries = trafficQueries(namespace, name, service.spec.model, options.window);
  const timeoutMs = options.timeoutMs ?? 3000;
  let results: Record<keyof typeof queries, Sample[]>;
  try {
    const entries = await Promise.all(
      Object.entries(queries).map(
        async ([key, query]) => [key, await queryVector(options.prometheusUrl, query, timeoutMs)] as const,
      ),
    );
    results = Object.fromEntries(entries) as typeof results;
  } catch (error) {
    traffic.unavailable = reachabilityMessage(error);
    return traffic;
  }
  const byVersion = (samples: Sample[]) => new Map(samples.map((s) => [Number(s.labels[M.versionLabel]), s.value]));
  const rps = byVersion(results.requestsPerSecond);
  const errors = byVersion(results.errorsPerSecond);
  const p50 = byVersion(results.latencyP50Ms);
  const p95 = byVersion(results.latencyP95Ms);
  const p99 = byVersion(results.latencyP99Ms);
  for (const version of new Set([...rps.keys(), ...p50.keys()])) {
    if (!Number.isInteger(version)) continue;
    const requests = rps.get(version) ?? null;
    traffic.byVersion.set(version, {
      requestsPerSecond: requests,
      // No error series at all is a rate of zero, as long as there were requests.
      errorRate: requests ? (errors.get(version) ?? 0) / requests : null,
      latencyP50Ms: p50.get(version) ?? null,
      latencyP95Ms: p95.get(version) ?? null,
      latencyP99Ms: p99.get(version) ?? null,
    });
  }
  const stable = String(service.status?.stableVersion ?? '');
  const drifted = new Map(
    results.featureDrifted
      .filter((s) => s.labels[M.versionLabel] === stable)
      .map((s) => [s.labels.feature!, s.value === 1]),
  );
  traffic.driftFeatures = results.driftScore
    .filter((s) => s.labels[M.versionLabel] === stable)
    .map((s) => ({
      name: s.labels.feature!,
      method: s.labels.method,
      score: s.value,
      drifted: drifted.get(s.labels.feature!) ?? false,
    }));
  return traffic;
}

/** events.k8s.io Events about this InferenceService, oldest first, the newest `count`. */
async function serviceEvents(api: KubeApi, namespace: string, name: string, count: number): Promise<ServiceEvent[]> {
  type EventObject = {
    eventTime?: string;
    deprecatedLastTimestamp?: string;
    series?: { count: number; lastObservedTime: string };
    deprecatedCount?: number;
    metadata: { creationTimestamp?: string };
    type?: string;
    reason?: string;
    note?: string;
  };
  const list = await api.list(kinds.Event, namespace, {
    fieldSelector: `regarding.kind=InferenceService,regarding.name=${name}`,
  });
  return (list.items as unknown as EventObject[])
    .map((e) => ({
      time: e.series?.lastObservedTime ?? e.eventTime ?? e.deprecatedLastTimestamp ?? e.metadata.creationTimestamp,
      type: e.type ?? '',
      reason: e.reason ?? '',
      note: e.note ?? '',
      count: e.series?.count ?? e.deprecatedCount ?? 1,
    }))
    .sort((a, b) => Date.parse(a.time ?? '') - Date.parse(b.time ?? ''))
    .slice(-count);
}

async function gatherNatsEvents(namespace: string, name: string, options: GatherOptions): Promise<NatsEvents> {
  const subject = lifecycleSubject('inferenceservice', namespace, name);
  const result: NatsEvents = { subject, lifecycle: [] };
  if (!options.nats) {
    result.unavailable = 'NATS_URL is not set';
    return result;
  }
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: options.nats.url.split(','),
      name: 'loopline-cli',
      timeout: options.timeoutMs ?? 3000,
      reconnect: false,
      ...(options.nats.credsFile ? { authenticator: credsAuthenticator(readFileSync(options.nats.credsFile)) } : {}),
    });
  } catch (error) {
    result.unavailable = `unreachable at ${options.nats.url} (${reachabilityMessage(error)})`;
    return result;
  }
  try {
    const stream = options.nats.stream;
    result.lifecycle = await lastMessages(nc, stream, subject, options.eventCount);
    const jsm = await jetstreamManager(nc);
    const drift = await jsm.streams
      .getMessage(stream, { last_by_subj: `loopline.drift.${namespace}.${name}` })
      .catch(() => null);
    if (drift) result.lastDrift = parseCloudEvent(drift.data) as CloudEvent<DriftEventData>;
  } catch (error) {
    result.unavailable = `stream ${options.nats.stream} on ${options.nats.url}: ${(error as Error).message}`;
  } finally {
    await nc.close();
  }
  return result;
}

/**
 * The newest `count` messages on one subject. JetStream reads forward only, so an ordered consumer runs over
 * the subject and keeps the tail; a service has at most a few events per rollout step within the retention.
 */
async function lastMessages(nc: NatsConnection, stream: string, subject: string, count: number): Promise<CloudEvent[]> {
  const consumer = await jetstream(nc).consumers.get(stream, {
    filter_subjects: subject,
    deliver_policy: DeliverPolicy.All,
  });
  const pending = (await consumer.info(true)).num_pending;
  if (pending === 0) return [];
  const tail: CloudEvent[] = [];
  const messages = await consumer.fetch({ max_messages: pending, expires: 5000 });
  for await (const message of messages as AsyncIterable<JsMsg>) {
    try {
      tail.push(parseCloudEvent(message.data));
      if (tail.length > count) tail.shift();
    } catch {
      // Not a CloudEvent: someone else's message on our subject; nothing to show.
    }
    if (message.info.pending === 0) break;
  }
  return tail;
}

/** `connect ECONNREFUSED 127.0.0.1:9090` rather than node's bare "fetch failed". */
function reachabilityMessage(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.message) return cause.message;
  if ((error as Error).name === 'TimeoutError') return 'no answer within the timeout';
  return (error as Error).message;
}
