// Prometheus metrics of one predictor process. Names follow the Prometheus conventions
// (base units, _total counters) and `promtool check metrics` is run on them in the tests.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { PREDICTOR_METRICS } from '../../../operator/api/contracts.ts';
import { PreboundCounter, PreboundHistogram } from './prebound.ts';

// Sub-millisecond resolution: a batched prediction on a small model takes well under 1 ms.
const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

export const OUTCOMES = ['success', 'invalid_input', 'unavailable', 'error'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export class ServerMetrics {
  readonly registry = new Registry();

  // Updated on every request: prebound (see prebound.ts). The rest change per window, load or scrape.
  readonly predictionRequests = new PreboundCounter({
    name: PREDICTOR_METRICS.requests,
    help: 'Prediction requests (V2 infer over REST and gRPC, /predict, /predict/stream) by model, model version and outcome.',
    labelNames: ['model', 'model_version', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly predictionLatency = new PreboundHistogram({
    name: PREDICTOR_METRICS.latencySeconds,
    help: 'Time from a prediction request arriving to its answer being ready, by model, model version and outcome.',
    labelNames: ['model', 'model_version', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  private readonly predictionSeries = new SeriesCache((model, model_version, outcome) => ({
    requests: this.predictionRequests.series({ model, model_version, outcome }),
    latency: this.predictionLatency.series({ model, model_version, outcome }),
  }));

  /**
   * A model version now serving: model_loaded 1, and its request series exposed at 0 for every outcome before the
   * first request. Prometheus' increase() counts only from a series' first sample, so a series born with a
   * canary's first requests would hide those before its first scrape from the canary analysis.
   */
  modelServing(model: string, version: string): void {
    this.modelLoaded.set({ model, model_version: version }, 1);
    for (const outcome of OUTCOMES) this.predictionSeries.get(model, version, outcome);
  }

  /** One prediction request of `model` `version` with its outcome and latency in seconds. */
  recordPrediction(model: string, version: string, outcome: Outcome, seconds: number): void {
    const series = this.predictionSeries.get(model, version, outcome);
    series.requests.inc();
    series.latency.observe(seconds);
  }

  readonly batchSize = new PreboundHistogram({
    name: 'prediction_batch_size_rows',
    help: 'Rows per onnxruntime session run (dynamic batching coalesces requests).',
    labelNames: ['model', 'model_version'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    registers: [this.registry],
  });

  // Across a pod's workers (workers.ts) each gauge aggregates as its `aggregator` says; counters and histograms sum.
  readonly modelLoaded = new Gauge({
    name: 'model_loaded',
    help: '1 while this model version is loaded and serving (in every worker of the pod), 0 after it was swapped out or failed to load.',
    labelNames: ['model', 'model_version'] as const,
    aggregator: 'min',
    registers: [this.registry],
  });

  readonly httpRequestDuration = new PreboundHistogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by method, route and status code (what Flagger-style canary checks query).',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly grpcRequestDuration = new PreboundHistogram({
    name: 'grpc_server_handling_seconds',
    help: 'gRPC call duration by method and status code (the Open Inference Protocol over gRPC).',
    labelNames: ['grpc_method', 'grpc_code'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly driftScore = new Gauge({
    name: 'drift_score',
    help: "Score of the deciding drift test per feature in the last closed window (a p-value for ks and chisquare, else a distance or PSI; the mean of the workers' last windows).",
    labelNames: ['model', 'model_version', 'feature', 'method'] as const,
    aggregator: 'average',
    registers: [this.registry],
  });

  readonly driftFeatureDrifted = new Gauge({
    name: 'drift_feature_drifted',
    help: '1 when the feature drifted in the last closed window (of any worker).',
    labelNames: ['model', 'model_version', 'feature'] as const,
    aggregator: 'max',
    registers: [this.registry],
  });

  readonly driftShare = new Gauge({
    name: 'drift_drifted_feature_ratio',
    help: "Share of features that drifted in the last closed window (the largest of the workers').",
    labelNames: ['model', 'model_version'] as const,
    aggregator: 'max',
    registers: [this.registry],
  });

  readonly driftWindows = new Counter({
    name: 'drift_windows_total',
    help: 'Closed drift windows by whether the window drifted.',
    labelNames: ['model', 'model_version', 'drifted'] as const,
    registers: [this.registry],
  });

  readonly schemaViolations = new Counter({
    name: 'prediction_schema_violations_total',
    help: 'Prediction requests rejected because their input did not match the model signature.',
    labelNames: ['model', 'model_version'] as const,
    registers: [this.registry],
  });

  readonly eventsPublished = new Counter({
    name: 'drift_events_published_total',
    help: 'Drift events acknowledged by NATS JetStream.',
    registers: [this.registry],
  });

  readonly eventsDropped = new Counter({
    name: 'drift_events_dropped_total',
    help: 'Drift events dropped because the buffer was full while NATS was unreachable.',
    registers: [this.registry],
  });

  readonly eventsBuffered = new Gauge({
    name: 'drift_events_buffered',
    help: 'Drift events waiting to be published.',
    registers: [this.registry],
  });

  readonly natsConnected = new Gauge({
    name: 'drift_events_nats_connected',
    help: "1 while the drift event publisher is connected to NATS (every worker's).",
    aggregator: 'min',
    registers: [this.registry],
  });

  readonly inferenceLogRows = new Counter({
    name: 'inference_log_rows_total',
    help: 'Logged prediction rows written to object storage (in parts of the inference log).',
    labelNames: ['model', 'model_version'] as const,
    registers: [this.registry],
  });

  readonly inferenceLogParts = new Counter({
    name: 'inference_log_parts_total',
    help: 'Parts (Parquet files) of the inference log written to object storage.',
    registers: [this.registry],
  });

  readonly inferenceLogDropped = new Counter({
    name: 'inference_log_rows_dropped_total',
    help: 'Sampled prediction rows not logged: buffer_full (maxBufferedRows held while storage was slow or down), shutdown (storage did not take them before exit), encoding.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  private inferenceLogPending: (() => number) | undefined;
  readonly inferenceLogBuffered = new Gauge({
    name: 'inference_log_buffered_rows',
    help: 'Sampled prediction rows held in memory, not yet written to object storage (summed across workers).',
    aggregator: 'sum',
    registers: [this.registry],
    // Read when scraped: the log does not pay a gauge update per request.
    collect: () => {
      if (this.inferenceLogPending) this.inferenceLogBuffered.set(this.inferenceLogPending());
    },
  });

  /** The inference log's rows held in memory, read at each scrape. */
  reportInferenceLogBuffered(pending: () => number): void {
    this.inferenceLogPending = pending;
  }

  readonly inferenceLogWriteFailures = new Counter({
    name: 'inference_log_write_failures_total',
    help: 'Failed attempts to write a part of the inference log (each is retried under the same name).',
    registers: [this.registry],
  });

  readonly feedbackLabels = new Counter({
    name: 'feedback_labels_total',
    help: 'Labels received on the feedback endpoints and written to object storage.',
    registers: [this.registry],
  });

  readonly workers = new Gauge({
    name: 'predictor_workers',
    help: 'Processes serving in this pod (each counts 1; summed across its workers).',
    registers: [this.registry],
  });

  constructor() {
    this.workers.set(1);
    collectDefaultMetrics({ register: this.registry });
    // prom-client exports these gauges with a _total suffix, which the Prometheus
    // conventions (and promtool) reserve for counters.
    for (const name of [
      'nodejs_active_handles_total',
      'nodejs_active_requests_total',
      'nodejs_active_resources_total',
    ]) {
      this.registry.removeSingleMetric(name);
    }
  }
}

/**
 * Series by three label values, resolved once and then found with three Map lookups: no key string
 * or labels object is built per request. The label values here come from route patterns, status
 * codes, outcomes and loaded model versions, so the maps stay small.
 */
export class SeriesCache<T> {
  private readonly series = new Map<string, Map<string, Map<string, T>>>();
  constructor(private readonly resolve: (a: string, b: string, c: string) => T) {}

  get(a: string, b: string, c: string): T {
    let byA = this.series.get(a);
    if (!byA) this.series.set(a, (byA = new Map()));
    let byB = byA.get(b);
    if (!byB) byA.set(b, (byB = new Map()));
    let found = byB.get(c);
    if (!found) byB.set(c, (found = this.resolve(a, b, c)));
    return found;
  }
}
