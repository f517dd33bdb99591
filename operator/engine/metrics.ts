import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The engine's Prometheus metrics, in a registry of its own so several engines can share a process (tests). */
export class EngineMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({
    name: 'loopline_reconcile_total',
    help: 'Reconciles by controller, kind and result (success, requeue, error).',
    labelNames: ['controller', 'kind', 'result'] as const,
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: 'loopline_reconcile_errors_total',
    help: 'Reconciles that failed and were retried with backoff.',
    labelNames: ['controller', 'kind'] as const,
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: 'loopline_reconcile_duration_seconds',
    help: 'Time spent in reconcile.',
    labelNames: ['controller', 'kind'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'loopline_workqueue_depth',
    help: 'Keys waiting in the work queue.',
    labelNames: ['controller'] as const,
    registers: [this.registry],
  });
  readonly queueAdds = new Counter({
    name: 'loopline_workqueue_adds_total',
    help: 'Keys added to the work queue (after dedup).',
    labelNames: ['controller'] as const,
    registers: [this.registry],
  });
  readonly queueRetries = new Counter({
    name: 'loopline_workqueue_retries_total',
    help: 'Rate-limited re-adds after a failed reconcile.',
    labelNames: ['controller'] as const,
    registers: [this.registry],
  });
  readonly writes = new Counter({
    name: 'loopline_api_writes_total',
    help: 'Writes sent to the API server, by verb and kind.',
    labelNames: ['verb', 'kind'] as const,
    registers: [this.registry],
  });
  readonly writesSkipped = new Counter({
    name: 'loopline_api_writes_skipped_total',
    help: 'Writes not sent because the cached object already matched.',
    labelNames: ['verb', 'kind'] as const,
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: 'loopline_leader',
    help: '1 while this replica holds the leader lease.',
    registers: [this.registry],
  });
  readonly cacheObjects = new Gauge({
    name: 'loopline_cache_objects',
    help: 'Objects in the informer cache, by kind.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  constructor(defaultMetrics: boolean) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }
}
