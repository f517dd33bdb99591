// Composition of one predictor process: logger, metrics, the model slot, the drift event
// publisher and the fastify app with its protocol plugins. Tests and the benchmark call
// startServer in-process; main.ts calls it with the configuration from the environment.
import { randomBytes } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import type { ModelConfig, ServerConfig } from './config.ts';
import type { DriftReport } from './drift/monitor.ts';
import { driftCloudEvent } from './events/drift-event.ts';
import { EventPublisher } from './events/publisher.ts';
import { InferenceLog } from './ground-truth/inference-log.ts';
import { LabelWriter } from './ground-truth/labels.ts';
import { partStoreFor } from './ground-truth/store.ts';
import { ServerMetrics } from './metrics/metrics.ts';
import { installMetrics } from './metrics/routes.ts';
import { adminRoutes } from './protocol/admin.ts';
import { MODEL_VERSION_HEADER, REQUEST_ID_HEADER, givenRequestId, type ProtocolContext } from './protocol/context.ts';
import { installErrorHandling } from './protocol/errors.ts';
import { feedbackRoutes } from './protocol/feedback.ts';
import { startGrpcServer } from './protocol/grpc.ts';
import { rowRoutes } from './protocol/rows.ts';
import { v2Routes } from './protocol/v2.ts';
import { ModelSlot } from './serving.ts';
import { isWorker, workerBridge } from './workers.ts';

export interface RunningServer {
  /** Base URL, e.g. http://127.0.0.1:40123. */
  url: string;
  port: number;
  /** Port of the Open Inference Protocol over gRPC, when it is served. */
  grpcPort: number | undefined;
  app: FastifyInstance;
  slot: ModelSlot;
  metrics: ServerMetrics;
  publisher: EventPublisher | undefined;
  inferenceLog: InferenceLog | undefined;
  /** Settles when the first model version finished loading: true when it is being served. */
  loaded: Promise<boolean>;
  swap(model: ModelConfig): Promise<{ previous: string | undefined }>;
  /** Graceful shutdown: readiness false, wait, stop listening, drain in-flight requests, flush the log and events. */
  close(): Promise<void>;
}

const EVENT_FLUSH_MS = 2000;
/** Longest wait on shutdown for object storage to take the inference log's last parts, unless configured. */
const LOG_FLUSH_MS = 10_000;
/** Longest wait for in-flight gRPC calls on shutdown before their streams are cut. */
const GRPC_DRAIN_MS = 10_000;

/**
 * Request ids in UUID form without 16 random bytes per request: a random version-4 prefix
 * per process and a counter in the last 12 hex digits (unique for 2^48 requests).
 */
function requestIdGenerator(): () => string {
  const hex = randomBytes(10).toString('hex');
  const prefix = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16)}${hex.slice(17, 20)}-`;
  let sequence = 0;
  return () => prefix + (++sequence).toString(16).padStart(12, '0');
}

export async function startServer(
  config: ServerConfig,
  log: Logger = pino({ level: config.logLevel }),
): Promise<RunningServer> {
  const metrics = new ServerMetrics();
  const publisher = config.nats
    ? new EventPublisher({
        servers: config.nats.url,
        stream: config.nats.stream,
        bufferSize: config.nats.bufferSize,
        log: log.child({ component: 'events' }),
        metrics,
      })
    : undefined;
  publisher?.start();

  const onDriftReport = (report: DriftReport) => {
    const labels = { model: report.model, model_version: report.modelVersion };
    for (const f of report.features) {
      if (Number.isFinite(f.score)) metrics.driftScore.set({ ...labels, feature: f.name, method: f.method }, f.score);
      metrics.driftFeatureDrifted.set({ ...labels, feature: f.name }, f.drifted ? 1 : 0);
    }
    metrics.driftShare.set(labels, report.score);
    metrics.driftWindows.inc({ ...labels, drifted: String(report.drifted) });
    log.info(
      {
        version: report.modelVersion,
        window: report.window,
        drifted: report.drifted,
        score: report.score,
        driftedFeatures: report.driftedFeatures,
      },
      'drift window closed',
    );
    if (publisher && config.nats) {
      const event = driftCloudEvent(report, config.namespace, config.inferenceService);
      publisher.publish(config.nats.subject, event.id, event);
    }
  };

  const slot = new ModelSlot({
    runtime: {
      batching: config.batching,
      maxBatchSize: config.batchMaxSize,
      maxWaitMs: config.batchMaxWaitMs,
      intraOpThreads: config.intraOpThreads,
    },
    drift: { windowSize: config.drift.windowSize, windowSeconds: config.drift.windowSeconds, drift: config.drift },
    onDriftReport,
    log,
    metrics,
  });

  const scope = { namespace: config.namespace, inferenceService: config.inferenceService };
  const store = config.logging ? partStoreFor(config.logging.uri) : undefined;
  const inferenceLog =
    config.logging && store
      ? new InferenceLog(config.logging, scope, store, metrics, log.child({ component: 'inference-log' }))
      : undefined;
  inferenceLog?.start();
  const labels =
    config.logging && store ? new LabelWriter(config.logging.uri, scope, store, config.logging.pod) : undefined;

  const nextRequestId = requestIdGenerator();
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // A log line per request would cost more than the prediction; metrics count requests instead.
    logController: new LogController({ disableRequestLogging: true }),
    // request.log is used only for failures, which log reqId themselves: no pino child per request.
    childLoggerFactory: (logger) => logger,
    bodyLimit: config.bodyLimitBytes,
    requestIdHeader: false,
    genReqId: (request) => givenRequestId(request.headers[REQUEST_ID_HEADER]) ?? nextRequestId(),
    routerOptions: { ignoreTrailingSlash: true },
    // Validation must reject, never repair: no type coercion, no silent removal of unknown fields.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false, allowUnionTypes: true } },
  });

  // A worker of a multi-process pod (workers.ts) swaps and reports metrics pod-wide, through the primary.
  const bridge = isWorker() ? await workerBridge(metrics.registry, (model) => slot.swap(model)) : undefined;
  const ctx: ProtocolContext = {
    slot,
    metrics,
    config,
    inferenceLog,
    swap: bridge?.swap ?? ((model) => slot.swap(model)),
  };
  // A callback hook: an async one would cost a promise per request.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    reply.header(MODEL_VERSION_HEADER, slot.current?.version ?? config.model.version);
    done();
  });
  installErrorHandling(app, ctx);
  installMetrics(app, metrics, bridge?.metrics);
  await app.register(v2Routes, ctx);
  await app.register(rowRoutes, ctx);
  await app.register(feedbackRoutes, { ...ctx, labels });
  if (config.adminToken) await app.register(adminRoutes, { ...ctx, token: config.adminToken });

  const loaded = slot.start(config.model).then((ok) => {
    if (ok) log.info({ model: config.model.name, version: config.model.version }, 'model loaded; ready');
    return ok;
  });
  // A worker takes connections only once it can answer them: until then the pod's other workers carry the
  // traffic, and a pod whose workers are all loading has no listener, so it is not ready either.
  if (bridge) await loaded;
  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  const grpcServer =
    config.grpcPort === undefined
      ? undefined
      : await startGrpcServer(ctx, {
          host: config.host,
          port: config.grpcPort,
          maxMessageBytes: config.bodyLimitBytes,
          nextRequestId,
          log: log.child({ component: 'grpc' }),
        });
  log.info(
    {
      url,
      grpcPort: grpcServer?.port,
      model: config.model.name,
      version: config.model.version,
      batching: config.batching,
    },
    'predictor listening',
  );

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await loaded;
      // Readiness false at once, predictions still answered: the pod's endpoint is being removed from the gateway's
      // list (and every other load balancer's) while requests already routed to it keep arriving. Only after
      // SHUTDOWN_DELAY_MS does the listener close; then the requests in flight are answered and the model freed.
      slot.drain();
      if (config.shutdownDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, config.shutdownDelayMs));
      // Keep-alive connections that finish a request after close() began would otherwise
      // hold the listener open for the whole keep-alive timeout.
      const sweep = setInterval(() => app.server.closeIdleConnections(), 50);
      try {
        await Promise.all([app.close(), grpcServer?.close(GRPC_DRAIN_MS)]);
      } finally {
        clearInterval(sweep);
      }
      await slot.stop();
      // Every request has been answered: the log holds every row it will get.
      await Promise.all([
        inferenceLog?.close(config.logging?.shutdownFlushMs ?? LOG_FLUSH_MS),
        publisher?.close(EVENT_FLUSH_MS),
      ]);
      log.info('predictor stopped');
    })();
    return closing;
  };

  return {
    url,
    port,
    grpcPort: grpcServer?.port,
    app,
    slot,
    metrics,
    publisher,
    inferenceLog,
    loaded,
    swap: ctx.swap,
    close,
  };
}
