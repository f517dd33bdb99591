// The names Loopline's parts agree on — NATS subjects, label keys, time and duration formats — in one place,
// imported by the operator, the predictor server and the CLI alike (DESIGN.md, "Events over NATS").

/** Lifecycle events of one object: `loopline.events.<namespace>.<kind>.<name>`. */
export function lifecycleSubject(kind: string, namespace: string, name: string): string {
  return `loopline.events.${namespace}.${kind}.${name}`;
}

/** Drift reports of one InferenceService's predictors: `loopline.drift.<namespace>.<inferenceservice>`. */
export function driftSubject(namespace: string, inferenceService: string): string {
  return `loopline.drift.${namespace}.${inferenceService}`;
}

/** Quality reports of one InferenceService (docs/ground-truth.md): `loopline.quality.<namespace>.<inferenceservice>`. */
export function qualitySubject(namespace: string, inferenceService: string): string {
  return `loopline.quality.${namespace}.${inferenceService}`;
}

/** Every drift subject, or those of one namespace. */
export function driftSubjects(namespace?: string): string {
  return namespace === undefined ? 'loopline.drift.>' : `loopline.drift.${namespace}.>`;
}

/** Every quality subject, or those of one namespace. */
export function qualitySubjects(namespace?: string): string {
  return namespace === undefined ? 'loopline.quality.>' : `loopline.quality.${namespace}.>`;
}

/** CloudEvents `type` of a drift report (server/src/events/drift-event.ts). */
export const DRIFT_EVENT_TYPE = 'dev.loopline.drift.window.v1';

/** CloudEvents `type` of a quality report (docs/ground-truth.md). */
export const QUALITY_EVENT_TYPE = 'dev.loopline.inferenceservice.quality';

/** Lifecycle events are typed `dev.loopline.<kind>.<reason>` (operator/events/publisher.ts). */
export const LIFECYCLE_EVENT_TYPE_PREFIX = 'dev.loopline.';

/**
 * The predictor's metrics and labels that canary analysis, the CLI and the shipped alerts query: renaming one in
 * server/src/metrics breaks them, so both sides read the names from here.
 */
export const PREDICTOR_METRICS = {
  requests: 'prediction_requests_total',
  latencySeconds: 'prediction_latency_seconds',
  outcomeLabel: 'outcome',
  modelLabel: 'model',
  versionLabel: 'model_version',
} as const;

/** Labels the operator puts on what it creates; selectors and other tools read them. */
export const LABELS = {
  inferenceService: 'loopline.dev/inferenceservice',
  trainingJob: 'loopline.dev/trainingjob',
  trainingJobUid: 'loopline.dev/trainingjob-uid',
  model: 'loopline.dev/model',
  version: 'loopline.dev/model-version',
  attempt: 'loopline.dev/attempt',
  track: 'loopline.dev/track',
  /** A spec.batch entry's CronJob, its Jobs and pods: the entry's name. */
  batch: 'loopline.dev/batch',
} as const;

/**
 * The gRPC service of the predictor's Open Inference Protocol port (`package.Service` of
 * server/src/protocol/grpc_predict_v2.proto, fixed by the protocol): the one service gRPC routes send there.
 */
export const GRPC_INFERENCE_SERVICE = 'inference.GRPCInferenceService';

/** metav1.Time: RFC 3339 with second precision, which is what the API server stores. */
export function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** metav1.MicroTime (Events' eventTime, Leases' renewTime): RFC 3339 with microseconds. */
export function rfc3339Micro(date: Date): string {
  return date.toISOString().replace(/Z$/, '000Z');
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A Go-style duration (`250ms`, `30s`, `5m`, `1h30m`, and `7d` for days) in milliseconds. `field` names the
 * setting in the error, which says what a duration looks like.
 */
export function parseDuration(field: string, text: string): number {
  const trimmed = text.trim();
  let total = 0;
  let rest = trimmed;
  while (rest !== '') {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)/.exec(rest);
    if (!match) break;
    total += Number(match[1]) * DURATION_UNITS[match[2]!]!;
    rest = rest.slice(match[0].length);
  }
  if (trimmed === '' || rest !== '')
    throw new Error(`${field}: "${text}" is not a duration: use e.g. 500ms, 30s, 5m, 1h30m or 7d`);
  return total;
}

/** An optional duration field of a spec: its value in milliseconds, or the default when it is unset. */
export function durationOr(field: string, text: string | undefined, fallbackMs: number): number {
  return text === undefined || text === '' ? fallbackMs : parseDuration(field, text);
}
