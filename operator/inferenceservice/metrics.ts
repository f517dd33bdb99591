// InferenceService state as Prometheus series, read from the informer cache at scrape time (as kube-state-metrics
// does): one series per phase with 1 on the current one, the canary weight, and each version's live quality. Alerts and dashboards key on them
// (charts/loopline/files/alerts.yaml: a rollback), so they hold across operator restarts and count nothing twice.
import { Gauge } from 'prom-client';
import { kinds, type Engine } from '../engine/index.ts';
import type { InferenceServiceStatus } from '../api/types.ts';
import { QUALITY_METRICS } from '../events/quality-event.ts';

const PHASES: ReadonlyArray<NonNullable<InferenceServiceStatus['phase']>> = [
  'Stable',
  'Progressing',
  'Promoted',
  'RolledBack',
  'Degraded',
];

export function registerInferenceServiceMetrics(engine: Pick<Engine, 'cache' | 'metrics' | 'isReady'>): void {
  const services = () =>
    (engine.isReady() ? engine.cache.list(kinds.InferenceService) : []).map((isvc) => ({
      namespace: isvc.metadata.namespace ?? '',
      inferenceservice: isvc.metadata.name,
      status: isvc.status as InferenceServiceStatus | undefined,
    }));
  new Gauge({
    name: 'loopline_inferenceservice_phase',
    help: 'InferenceService phase: 1 for the phase in status, 0 for the others.',
    labelNames: ['namespace', 'inferenceservice', 'phase'] as const,
    registers: [engine.metrics],
    collect() {
      this.reset();
      for (const { status, ...service } of services()) {
        if (!status?.phase) continue;
        for (const phase of PHASES) this.set({ ...service, phase }, phase === status.phase ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'loopline_inferenceservice_canary_weight',
    help: 'Percent of traffic the route sends to the canary (status.canaryWeight).',
    labelNames: ['namespace', 'inferenceservice'] as const,
    registers: [engine.metrics],
    collect() {
      this.reset();
      for (const { status, ...service } of services()) this.set(service, status?.canaryWeight ?? 0);
    },
  });
  new Gauge({
    name: 'loopline_model_quality',
    help: 'Live quality of a served version from its labelled predictions (status.quality): accuracy, auc, logLoss, brier, precision, recall, calibrationError, and count (labelled predictions).',
    labelNames: ['namespace', 'inferenceservice', 'metric', 'version'] as const,
    registers: [engine.metrics],
    collect() {
      this.reset();
      for (const { status, ...service } of services()) {
        for (const entry of status?.quality?.versions ?? []) {
          const version = String(entry.version);
          this.set({ ...service, metric: 'count', version }, entry.count ?? 0);
          for (const metric of QUALITY_METRICS) {
            const value = entry[metric];
            // An undefined metric (no labels yet, one class only) is no series rather than a made-up number.
            if (typeof value === 'number') this.set({ ...service, metric, version }, value);
          }
        }
      }
    },
  });
}
