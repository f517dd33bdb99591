/**
 * The predictor server (image loopline/predictor): `npx tsx server/src/main.ts`.
 * With the argument `batch`, one batch scoring run instead (server/src/batch/main.ts, docs/batch.md).
 *
 * Environment (the operator sets these on every predictor pod):
 *   WORKERS                   processes serving the ports, each with its own model session (the cgroup CPU
 *                             limit rounded down, else the cores available; see workers.ts)
 *   PORT                      listen port of HTTP: Open Inference Protocol REST, /predict, /metrics (8080)
 *   GRPC_PORT                 listen port of the Open Inference Protocol over gRPC (8081); off: REST only
 *   HOST                      listen address (127.0.0.1; pods set 0.0.0.0)
 *   MODEL_NAME                model name, as in the V2 paths (required)
 *   MODEL_VERSION             version being served (required)
 *   MODEL_URI                 artifact: s3://, file://, http:// or https:// (required)
 *   MODEL_DIGEST              sha256:<hex> of the artifact; a mismatch keeps the server unready (required)
 *   MODEL_SIGNATURE           JSON {inputs, outputs} of the ModelVersion; read from the ONNX graph when unset
 *   REFERENCE_PROFILE_URI     drift reference profile (reference-profile.schema.json); drift is off when unset
 *   REFERENCE_PROFILE_DIGEST  sha256:<hex> of the profile (required with the URI)
 *   NAMESPACE                 namespace of the InferenceService (default)
 *   INFERENCE_SERVICE         InferenceService name (MODEL_NAME)
 *   NATS_URL                  NATS server(s) for drift events; without it drift is only logged and exported as metrics
 *   DRIFT_SUBJECT             subject of drift events (loopline.drift.<NAMESPACE>.<INFERENCE_SERVICE>)
 *   NATS_STREAM               JetStream stream created for loopline.> when none covers the subject (LOOPLINE)
 *   EVENT_BUFFER_SIZE         drift events held while NATS is unreachable; older ones are dropped beyond it (1000)
 *   BATCHING                  on|off dynamic batching (on)
 *   BATCH_MAX_SIZE            rows per batched session.run (64)
 *   BATCH_MAX_WAIT_MS         longest a batch is held open in one long event-loop turn (2); a batch
 *                             otherwise runs when full or at the end of the turn that read it
 *   ORT_INTRA_OP_THREADS      onnxruntime threads per run (1: the event loop needs the other core)
 *   BODY_LIMIT_BYTES          largest request body or gRPC message (1048576); /predict/stream is not limited
 *   DRIFT_WINDOW_SIZE         rows per drift window (1000)
 *   DRIFT_MIN_ROWS            a window with fewer rows is reported but never judged drifted (min(100, DRIFT_WINDOW_SIZE))
 *   DRIFT_WINDOW_SECONDS      a window also closes after this long, if it has rows (60)
 *   DRIFT_SHARE               share of drifted features that makes a window drift (0.5)
 *   DRIFT_NUMERIC_METHOD      auto|ks|psi|wasserstein|jensenshannon (auto: KS up to 1000 rows, else Wasserstein)
 *   DRIFT_CATEGORICAL_METHOD  auto|chisquare|psi|jensenshannon (auto: chi-square up to 1000 rows, else Jensen-Shannon)
 *   DRIFT_THRESHOLD           overrides the method's default threshold (p < 0.05; PSI and distances ≥ 0.1)
 *   INFERENCE_LOG_URI         base URI of the inference log and feedback labels: s3://<bucket>/<prefix> or
 *                             file:///<dir> (docs/ground-truth.md); unset: no log, and /feedback answers 409
 *   INFERENCE_LOG_SAMPLE_RATE share of prediction requests logged, 0..1 (1)
 *   INFERENCE_LOG_FLUSH_INTERVAL_MS  longest a logged row waits in memory before its part is written (30000)
 *   INFERENCE_LOG_MAX_ROWS_PER_PART  a part is written when a version's buffer reaches this many rows (10000)
 *   INFERENCE_LOG_MAX_BUFFERED_ROWS  rows held in memory, unwritten, at most; beyond it rows are dropped and
 *                             counted in inference_log_rows_dropped_total (max(50000, MAX_ROWS_PER_PART))
 *   POD_NAME                  the pod, in log rows and part names (the host name)
 *   ADMIN_TOKEN               enables PUT /admin/model (hot swap) for "Authorization: Bearer <token>"
 *   SHUTDOWN_DELAY_MS         on SIGTERM, time between readiness turning false and the listener closing (0)
 *   LOG_LEVEL                 pino level (info)
 *   AWS_ENDPOINT_URL_S3, AWS_REGION, S3_FORCE_PATH_STYLE, and credentials from the AWS SDK's chain:
 *                             object storage for s3:// URIs (operator/api/object-storage.ts)
 *
 * Recommended for pods: NODE_OPTIONS=--max-semi-space-size=4 (a small V8 young generation
 * keeps resident memory near 140 MB instead of 170 MB under load, at no measurable cost).
 */
import cluster from 'node:cluster';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { BATCH_MODE_ARG } from '../../operator/api/batch-run.ts';
import { ConfigError, configFromEnv } from './config.ts';
import { runPrimary } from './workers.ts';

async function main(): Promise<void> {
  const log = pino({ level: process.env.LOG_LEVEL || 'info' });
  if (process.argv[2] === BATCH_MODE_ARG) {
    const { batchMain } = await import('./batch/main.ts');
    process.exit(await batchMain(process.env, log));
  }
  let config;
  try {
    config = configFromEnv(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      log.fatal(`configuration error: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  if (config.workers > 1 && cluster.isPrimary) {
    runPrimary(config.workers, config.model, log);
    return;
  }
  // Imported here: a primary of several workers never loads the model runtime.
  const { startServer } = await import('./server.ts');
  const server = await startServer(config, log);
  let signals = 0;
  const shutdown = (signal: string) => {
    if (++signals > 1) {
      log.warn({ signal }, 'second signal; exiting now');
      process.exit(1);
    }
    log.info({ signal }, 'shutting down: readiness false, draining in-flight requests');
    server.close().then(
      () => process.exit(0),
      (error) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // A worker whose primary is gone has no one to pass it the pod's signals: it stops as on SIGTERM.
  if (cluster.isWorker) process.on('disconnect', () => shutdown('disconnect'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
