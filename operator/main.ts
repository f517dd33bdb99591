// The operator process: the controller engine with Loopline's controllers registered.
//   npx tsx operator/main.ts evaluate ...   is the quality evaluator instead (operator/quality/evaluate.ts)
//   npx tsx operator/main.ts [--namespace NS] [--lease-namespace NS] [--lease-name NAME]
//                            [--http-port 8080] [--http-host 0.0.0.0] [--no-leader-election] [--retry-base-ms 10000]
//                            [--resync-period-ms 600000]
//                            [--progress-url URL] [--progress-port 8081] [--progress-host HOST] [--progress-interval-ms 5000]
// KUBECONFIG (or the in-cluster service account) says which cluster. --progress-url (PROGRESS_URL) is the base URL
// training pods reach the progress endpoint at (the chart's <release>-progress Service); without it there is none.
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import type { StorageSettings } from './api/storage-env.ts';
import { createEngine, type Engine, type EngineOptions } from './engine/index.ts';
import { connectNats } from './events/connect.ts';
import { LifecyclePublisher } from './events/publisher.ts';
import { inferenceServiceSettings, setUpInferenceServices } from './inferenceservice/config.ts';
import { modelVersionController } from './modelversion/controller.ts';
import type { LifecycleOptions } from './trainingjob/lifecycle.ts';
import { trainingJobController } from './trainingjob/controller.ts';
import { ProgressReceiver } from './trainingjob/progress-receiver.ts';

export interface OperatorOptions extends EngineOptions {
  /** Retry backoff of TrainingJobs (tests shorten it). */
  lifecycle?: Partial<LifecycleOptions>;
  /** Registry lifecycle events (registered, promoted, archived, ...) on NATS; none without it. */
  publisher?: LifecyclePublisher;
  /** Object storage settings for training pods (predictor pods get theirs through the InferenceService settings). */
  storage?: StorageSettings;
  /**
   * The training progress endpoint (trainingjob/progress-receiver.ts), served on every replica: `url` is its base
   * URL as training pods reach it, `port`/`host` where it listens, `intervalMs` the least time between two status
   * writes of one job.
   */
  progress?: { url: string; port: number; host?: string; intervalMs?: number };
}

/** The engine with every Loopline controller registered; call `start()` on it. */
export function createOperator(options: OperatorOptions = {}): Engine {
  const { lifecycle, publisher, storage, progress, ...engineOptions } = options;
  const engine = createEngine(engineOptions);
  engine.register(
    trainingJobController({ api: engine.api, lifecycle, publisher, storage, progressUrl: progress?.url }),
  );
  if (progress) {
    engine.add(
      new ProgressReceiver({
        port: progress.port,
        host: progress.host ?? engineOptions.httpHost ?? '0.0.0.0',
        intervalMs: progress.intervalMs,
        cache: engine.cache,
        writer: engine.writer,
        isLeader: () => engine.isLeader(),
        log: engine.log.child({ component: 'progress' }),
        registry: engine.metrics,
      }),
    );
  }
  engine.register(modelVersionController({ publisher }));
  return engine;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      namespace: { type: 'string' },
      'lease-namespace': { type: 'string' },
      'lease-name': { type: 'string' },
      'http-port': { type: 'string', default: process.env.LOOPLINE_HTTP_PORT ?? '8080' },
      // All interfaces in a pod (probes, Prometheus); loopback when run beside a local cluster.
      'http-host': { type: 'string', default: process.env.LOOPLINE_HTTP_HOST ?? '0.0.0.0' },
      'no-leader-election': { type: 'boolean', default: false },
      'retry-base-ms': { type: 'string' },
      'resync-period-ms': { type: 'string' },
      'progress-url': { type: 'string', default: process.env.PROGRESS_URL },
      'progress-port': { type: 'string', default: process.env.PROGRESS_PORT ?? '8081' },
      'progress-host': { type: 'string', default: process.env.PROGRESS_HOST },
      'progress-interval-ms': { type: 'string', default: process.env.PROGRESS_INTERVAL_MS },
    },
  });
  const progressUrl = values['progress-url'];
  if (progressUrl && !/^https?:\/\/[^/\s]+(\/\S*)?$/.test(progressUrl)) {
    throw new Error(`--progress-url (PROGRESS_URL): "${progressUrl}" is not an http(s) URL`);
  }
  const settings = inferenceServiceSettings(process.env);
  // One NATS connection for the process: registry lifecycle events, InferenceService events and the drift consumer.
  // setUpInferenceServices makes sure the stream exists before the engine starts, so before any event.
  const nats = settings.nats ? await connectNats(settings.nats, 'loopline-operator') : undefined;
  const engine = createOperator({
    namespace: values.namespace,
    httpPort: Number(values['http-port']),
    httpHost: values['http-host'],
    leaderElection: values['no-leader-election']
      ? false
      : { namespace: values['lease-namespace'], name: values['lease-name'] },
    lifecycle: values['retry-base-ms'] ? { retryBaseMs: Number(values['retry-base-ms']) } : undefined,
    resyncPeriodMs: values['resync-period-ms'] ? Number(values['resync-period-ms']) : undefined,
    publisher: nats ? new LifecyclePublisher(nats) : undefined,
    storage: settings.serving.storage,
    progress: progressUrl
      ? {
          url: progressUrl,
          port: Number(values['progress-port']),
          host: values['progress-host'] ?? values['http-host'],
          intervalMs: values['progress-interval-ms'] ? Number(values['progress-interval-ms']) : undefined,
        }
      : undefined,
  });
  // InferenceServices: Prometheus, NATS, object storage and predictor defaults from the environment (see inferenceservice/config.ts).
  const inferenceServices = await setUpInferenceServices(engine, { ...settings, namespace: values.namespace }, nats);
  engine.handleSignals();
  await engine.start();
  inferenceServices.startEventLoops();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[2] === 'evaluate') {
    // The quality evaluator, as the CronJobs the operator owns run this image. The image holds it as a bundle of
    // its own (operator/evaluate.js): the operator's bundle never parses it, its S3 client and DuckDB's loader.
    const evaluator = import.meta.url.endsWith('.ts') ? './quality/evaluate.ts' : './evaluate.js';
    const { runEvaluate } = (await import(evaluator)) as typeof import('./quality/evaluate.ts');
    process.exitCode = await runEvaluate(process.argv.slice(3));
  } else {
    main().catch((err) => {
      console.error(err);
      process.exit(1);
    });
  }
}
