// Every core of the pod: with WORKERS > 1 the process started by main.ts becomes a small primary that
// forks that many worker processes (node:cluster). Each worker is a whole predictor (startServer): its own
// onnxruntime session, batcher, drift windows and event publisher, listening on the shared HTTP and gRPC
// ports (the primary hands connections out round-robin). The primary runs no model; it
//   - answers a worker's /metrics with every worker's metrics aggregated (prom-client's AggregatorRegistry:
//     counters and histograms summed, gauges by the aggregator each one declares), so Prometheus scrapes one
//     target per pod;
//   - carries a hot swap that reached one worker's admin route to every worker, and forks a worker that died
//     with the version being served;
//   - passes SIGTERM on to the workers, which shut down gracefully, and exits when they have.
// Drift windows stay per worker, as they are per pod when a Deployment has several replicas: each worker's
// window holds DRIFT_WINDOW_SIZE of the rows it served, is judged on them and published as its own event
// (unique id, the same model and version labels); see docs/predictor.md.
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { ModelConfig } from './config.ts';

// ---- messages between the primary and its workers ----
type ToPrimary =
  | { loopline: 'metrics'; id: number }
  | { loopline: 'swap'; id: number; model: ModelConfig }
  | { loopline: 'swapped'; id: number; previous?: string; error?: string; conflict?: boolean };
type ToWorker =
  | { loopline: 'metrics'; id: number; text?: string; error?: string }
  | { loopline: 'swap'; id: number; model: ModelConfig }
  | { loopline: 'swapResult'; id: number; previous?: string; error?: string; conflict?: boolean };

const isMessage = (m: unknown): m is { loopline: string; id: number } =>
  typeof m === 'object' && m !== null && 'loopline' in m;

/** The model settings of main.ts's environment, so a worker forked after a swap starts on the swapped version. */
function modelEnv(model: ModelConfig): Record<string, string> {
  return {
    MODEL_VERSION: model.version,
    MODEL_URI: model.artifact.uri,
    MODEL_DIGEST: model.artifact.digest,
    MODEL_SIGNATURE: model.signature ? JSON.stringify(model.signature) : '',
    REFERENCE_PROFILE_URI: model.referenceProfile?.uri ?? '',
    REFERENCE_PROFILE_DIGEST: model.referenceProfile?.digest ?? '',
  };
}

const RESTART_DELAY_MS = 1000;

export function runPrimary(workers: number, model: ModelConfig, log: Logger): void {
  const aggregator = new AggregatorRegistry();
  let current = model;
  let stopping = false;
  let swapping = false;
  const fork = (env: Record<string, string> = {}) => cluster.fork({ ...env, LOOPLINE_WORKER: '1' });

  /** Ask every live worker to swap; the answer is the first failure, else the previous version. */
  const swapEverywhere = async (
    next: ModelConfig,
  ): Promise<Omit<Extract<ToWorker, { loopline: 'swapResult' }>, 'loopline' | 'id'>> => {
    if (swapping) return { error: 'another model swap is in progress', conflict: true };
    swapping = true;
    try {
      const results = await Promise.all(
        Object.values(cluster.workers ?? {})
          .filter((w): w is Worker => !!w?.isConnected())
          .map((w) => request<Extract<ToPrimary, { loopline: 'swapped' }>>(w, { loopline: 'swap', model: next })),
      );
      const failed = results.find((r) => r.error !== undefined);
      if (failed) return { error: failed.error, conflict: failed.conflict };
      current = next;
      return { previous: results[0]?.previous };
    } finally {
      swapping = false;
    }
  };

  let nextId = 0;
  const pending = new Map<number, (message: any) => void>();
  function request<T>(worker: Worker, message: Record<string, unknown>): Promise<T> {
    const id = ++nextId;
    return new Promise<T>((resolve) => {
      pending.set(id, resolve);
      worker.send({ ...message, id });
    });
  }

  cluster.on('message', (worker, message: unknown) => {
    if (!isMessage(message)) return;
    const m = message as ToPrimary;
    if (m.loopline === 'swapped') {
      pending.get(m.id)?.(m);
      pending.delete(m.id);
    } else if (m.loopline === 'metrics') {
      aggregator.clusterMetrics().then(
        (text) => worker.send({ loopline: 'metrics', id: m.id, text } satisfies ToWorker),
        (error: Error) => worker.send({ loopline: 'metrics', id: m.id, error: error.message } satisfies ToWorker),
      );
    } else if (m.loopline === 'swap') {
      void swapEverywhere(m.model).then((result) =>
        worker.send({ loopline: 'swapResult', id: m.id, ...result } satisfies ToWorker),
      );
    }
  });

  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        log.info('every worker stopped; predictor stopped');
        process.exit(0);
      }
      return;
    }
    log.error({ pid: worker.process.pid, code, signal }, `a worker died; starting another in ${RESTART_DELAY_MS} ms`);
    setTimeout(() => {
      if (!stopping) fork(current === model ? {} : modelEnv(current));
    }, RESTART_DELAY_MS);
  });

  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal; exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info(
      { signal, workers: Object.keys(cluster.workers ?? {}).length },
      'shutting down: passing the signal to every worker',
    );
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  // Structured clone instead of JSON for the messages (metrics text, model configs).
  cluster.setupPrimary({ serialization: 'advanced' });
  log.info({ workers, model: model.name, version: model.version }, 'predictor primary forking workers');
  for (let i = 0; i < workers; i++) fork();
}

/** A worker's side: the pod's metrics and pod-wide swaps through the primary, and the swaps it asks of this worker. */
export interface WorkerBridge {
  metrics(): Promise<string>;
  swap(model: ModelConfig): Promise<{ previous: string | undefined }>;
}

export const isWorker = () => cluster.isWorker && process.env.LOOPLINE_WORKER === '1';

const METRICS_TIMEOUT_MS = 10_000;
/** A swap waits for every worker to fetch, verify, load and warm the new version. */
const SWAP_TIMEOUT_MS = 10 * 60_000;

export async function workerBridge(
  registry: Registry,
  swapHere: (model: ModelConfig) => Promise<{ previous: string | undefined }>,
): Promise<WorkerBridge> {
  // Imported here: the primary never loads the model runtime.
  const { SwapInProgressError } = await import('./serving.ts');
  // prom-client answers the primary's metric requests from these registries, with the listener an
  // AggregatorRegistry installs when one is made.
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry();
  let nextId = 0;
  const pending = new Map<number, { resolve: (m: any) => void; timer: NodeJS.Timeout }>();
  process.on('message', (message: unknown) => {
    if (!isMessage(message)) return;
    const m = message as ToWorker;
    if (m.loopline === 'swap') {
      swapHere(m.model).then(
        ({ previous }) => process.send!({ loopline: 'swapped', id: m.id, previous } satisfies ToPrimary),
        (error: Error) =>
          process.send!({
            loopline: 'swapped',
            id: m.id,
            error: error.message,
            conflict: error instanceof SwapInProgressError,
          } satisfies ToPrimary),
      );
      return;
    }
    const waiting = pending.get(m.id);
    if (!waiting) return;
    pending.delete(m.id);
    clearTimeout(waiting.timer);
    waiting.resolve(m);
  });
  const ask = <T>(message: Record<string, unknown>, timeoutMs: number): Promise<T> => {
    const id = ++nextId;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`the predictor primary did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, { resolve, timer });
      process.send!({ ...message, id });
    });
  };
  return {
    metrics: async () => {
      const answer = await ask<Extract<ToWorker, { loopline: 'metrics' }>>({ loopline: 'metrics' }, METRICS_TIMEOUT_MS);
      if (answer.error !== undefined) throw new Error(`aggregating the workers' metrics failed: ${answer.error}`);
      return answer.text!;
    },
    swap: async (model) => {
      const answer = await ask<Extract<ToWorker, { loopline: 'swapResult' }>>(
        { loopline: 'swap', model },
        SWAP_TIMEOUT_MS,
      );
      if (answer.conflict) throw new SwapInProgressError(answer.error);
      if (answer.error !== undefined) throw new Error(answer.error);
      return { previous: answer.previous };
    },
  };
}
