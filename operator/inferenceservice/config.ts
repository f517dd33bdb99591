/**
 * The InferenceService side of the operator process, configured from the environment the Helm chart sets
 * (charts/loopline/templates/deployment.yaml): which Prometheus the canary analysis asks, which NATS carries
 * drift and lifecycle events, which object storage pods read and write, and what predictor pods look like when
 * an InferenceService does not say.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { driftSubjects, parseDuration, qualitySubjects } from '../api/contracts.ts';
import { storageSettingsFromEnv } from '../api/storage-env.ts';
import { connectNats } from '../events/connect.ts';
import type { Engine } from '../engine/index.ts';
import type { EventConsumer, InferenceServiceEventKind } from '../events/consumer.ts';
import type { StreamOptions } from '../events/stream.ts';
import { PREDICTOR_IMAGE, type ServingConfig } from './desired.ts';
import { registerInferenceServices, startDriftLoop, startQualityLoop } from './index.ts';

export interface InferenceServiceSettings {
  prometheusUrl: string;
  scrapeIntervalMs?: number;
  /** Without NATS there are no drift events (no closed loop) and no lifecycle events. */
  nats?: { url: string; credsFile?: string };
  stream: StreamOptions;
  serving: ServingConfig;
  /** Parallel reconciles of different InferenceServices (default DEFAULT_WORKERS of controller.ts, 16). */
  workers?: number;
  /** An operator watching one namespace consumes only that namespace's drift events, under its own durable name. */
  namespace?: string;
}

type Env = Record<string, string | undefined>;

const set = (value: string | undefined) => (value !== undefined && value !== '' ? value : undefined);

/**
 *   PROMETHEUS_URL                query endpoint of the Prometheus scraping the predictors (http://localhost:9090)
 *   PROMETHEUS_SCRAPE_INTERVAL    its scrape interval; analysis windows span at least two (15s)
 *   NATS_URL, NATS_CREDS_FILE     NATS with JetStream; unset: no drift loop, no lifecycle events
 *   NATS_STREAM, NATS_STREAM_MAX_AGE, NATS_STREAM_MAX_BYTES   the stream for loopline.> (LOOPLINE, 168h, -1)
 *   PREDICTOR_IMAGE               image of predictor pods (loopline/predictor:0.1.0)
 *   EVALUATOR_IMAGE               image of the quality evaluator CronJobs (the operator's: loopline/operator:0.1.0)
 *   PREDICTOR_CPU, PREDICTOR_MEMORY   their cpu/memory when the InferenceService sets none (500m, 512Mi)
 *   CLUSTER_DOMAIN                DNS suffix in status.url (cluster.local)
 *   STORAGE_S3_*                  object storage for trainer and predictor pods (operator/api/storage-env.ts)
 *   INFERENCESERVICE_WORKERS      parallel reconciles (DEFAULT_WORKERS of controller.ts)
 */
export function inferenceServiceSettings(env: Env): InferenceServiceSettings {
  const natsUrl = set(env.NATS_URL);
  const maxBytes = set(env.NATS_STREAM_MAX_BYTES);
  if (maxBytes !== undefined && !/^-?\d+$/.test(maxBytes))
    throw new Error(`NATS_STREAM_MAX_BYTES: "${maxBytes}" is not a whole number of bytes`);
  const workers = set(env.INFERENCESERVICE_WORKERS);
  if (workers !== undefined && !/^[1-9]\d*$/.test(workers))
    throw new Error(`INFERENCESERVICE_WORKERS: "${workers}" is not a positive whole number`);
  return {
    ...(workers !== undefined ? { workers: Number(workers) } : {}),
    prometheusUrl: set(env.PROMETHEUS_URL) ?? 'http://localhost:9090',
    ...(set(env.PROMETHEUS_SCRAPE_INTERVAL)
      ? { scrapeIntervalMs: parseDuration('PROMETHEUS_SCRAPE_INTERVAL', env.PROMETHEUS_SCRAPE_INTERVAL!) }
      : {}),
    ...(natsUrl
      ? { nats: { url: natsUrl, ...(set(env.NATS_CREDS_FILE) ? { credsFile: env.NATS_CREDS_FILE } : {}) } }
      : {}),
    stream: {
      ...(set(env.NATS_STREAM) ? { name: env.NATS_STREAM } : {}),
      ...(set(env.NATS_STREAM_MAX_AGE)
        ? { maxAgeMs: parseDuration('NATS_STREAM_MAX_AGE', env.NATS_STREAM_MAX_AGE!) }
        : {}),
      ...(maxBytes !== undefined ? { maxBytes: Number(maxBytes) } : {}),
    },
    serving: {
      predictorImage: set(env.PREDICTOR_IMAGE) ?? PREDICTOR_IMAGE,
      ...(set(env.EVALUATOR_IMAGE) ? { evaluatorImage: env.EVALUATOR_IMAGE } : {}),
      ...(natsUrl ? { natsUrl } : {}),
      predictorResources: {
        ...(set(env.PREDICTOR_CPU) ? { cpu: env.PREDICTOR_CPU } : {}),
        ...(set(env.PREDICTOR_MEMORY) ? { memory: env.PREDICTOR_MEMORY } : {}),
      },
      ...(set(env.CLUSTER_DOMAIN) ? { clusterDomain: env.CLUSTER_DOMAIN } : {}),
      storage: storageSettingsFromEnv(env),
    },
  };
}

export interface InferenceServiceRuntime {
  /**
   * Starts consuming drift and quality events once this replica leads. Resolves when consuming (or at once without
   * NATS); never rejects: a failure is logged, as the controller keeps working without the closed loop.
   */
  startEventLoops(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Registers the controller (call before `engine.start()`). It uses `connection` when the caller already holds
 * one (the operator process keeps a single NATS connection), else connects when NATS is configured.
 */
export async function setUpInferenceServices(
  engine: Engine,
  settings: InferenceServiceSettings,
  connection?: NatsConnection,
): Promise<InferenceServiceRuntime> {
  const log = engine.log.child({ component: 'inferenceservice' });
  const ownsConnection = !connection && !!settings.nats;
  const nc = connection ?? (settings.nats ? await connectNats(settings.nats, 'loopline-operator') : undefined);
  if (nc) {
    log.info({ nats: settings.nats?.url }, 'connected to NATS');
  } else {
    log.warn(
      'NATS_URL is not set: no drift events are consumed (no retraining on drift) and no lifecycle events are published',
    );
  }
  await registerInferenceServices(engine, {
    prometheusUrl: settings.prometheusUrl,
    ...(settings.scrapeIntervalMs !== undefined ? { scrapeIntervalMs: settings.scrapeIntervalMs } : {}),
    serving: settings.serving,
    stream: settings.stream,
    ...(settings.workers !== undefined ? { workers: settings.workers } : {}),
    ...(nc ? { nats: nc } : {}),
  });
  const consumers: EventConsumer[] = [];
  let stopped = false;
  const start = async (
    kind: InferenceServiceEventKind,
    subjects: (namespace: string) => string,
    begin: typeof startQualityLoop,
  ) => {
    if (!nc) return;
    const scope = settings.namespace
      ? { filterSubject: subjects(settings.namespace), durable: `loopline-operator-${kind}-${settings.namespace}` }
      : {};
    let consumer: EventConsumer;
    try {
      consumer = await begin(engine, nc, { stream: settings.stream, ...scope });
    } catch (error) {
      log.error({ err: error }, `${kind} consumer did not start`);
      return;
    }
    consumers.push(consumer);
    if (stopped) await consumer.stop();
    void consumer.done.then(() => {
      if (!stopped) log.error(`${kind} consumer ended; restart the operator to resume consuming ${kind} events`);
    });
  };
  return {
    async startEventLoops() {
      await Promise.all([
        start('drift', driftSubjects, startDriftLoop),
        start('quality', qualitySubjects, startQualityLoop),
      ]);
    },
    async stop() {
      stopped = true;
      await Promise.all(consumers.map((consumer) => consumer.stop()));
      if (ownsConnection) await nc?.drain();
    },
  };
}
