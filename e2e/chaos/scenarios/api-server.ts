/**
 * (a) kube-apiserver restarted during a canary and during a burst of TrainingJobs: the operator's informers
 * resume (re-listing where their resourceVersion is too old), and no Job, ModelVersion or version number is
 * lost or duplicated, no canary weight moves backwards, no key is left stuck.
 */
import { startPrometheus } from '../../../test/support/prometheus.ts';
import { sleep } from '../../../test/support/local.ts';
import { SimulatedMetrics, checkCanary, startCanary, waitForCanary } from '../canary.ts';
import { restartApiServer } from '../control-plane.ts';
import { startChaos } from '../harness.ts';
import { ScenarioRecord, type ScenarioResult } from '../report.ts';
import { checkTrainingJobs, createTrainingJobs, reconcileProbe } from '../workload.ts';
import { checkQueuesDrain, watchRestarts } from './common.ts';

export interface ApiServerRestartOptions {
  /** TrainingJobs created at once before the first restart. */
  jobs: number;
  restarts: number;
  /** How long the API server stays down each time. */
  downMs: number;
}

export async function apiServerRestarts(options: ApiServerRestartOptions): Promise<ScenarioResult> {
  const record = new ScenarioRecord(
    'API server restarted',
    `kube-apiserver stopped (SIGTERM) and started again ${options.restarts}× for ${options.downMs / 1000} s, during a canary and a burst of ${options.jobs} TrainingJobs`,
  );
  const prometheus = await startPrometheus({ scrapeIntervalMs: 500 });
  const h = await startChaos('chaos-apiserver', {
    inferenceServices: { prometheusUrl: prometheus.url, scrapeIntervalMs: prometheus.scrapeIntervalMs },
  });
  const metrics = new SimulatedMetrics(prometheus);
  try {
    const canary = await startCanary(h, metrics, 'restarted', {
      steps: [10, 30, 60, 100],
      interval: `${Math.max(3, Math.ceil((options.downMs * options.restarts) / 4000) + 2)}s`,
    });
    await waitForCanary(canary, 'the canary progressing', (v) => v.phase === 'Progressing' && v.weight > 0, 60_000);
    const names = Array.from({ length: options.jobs }, (_, i) => `burst-${i + 1}`);
    await createTrainingJobs(h, 'burst', names);
    const relists = watchRestarts(h);
    for (let i = 0; i < options.restarts; i++) {
      // Into the middle of the work: Jobs being created and run, the canary at a step.
      await sleep(i === 0 ? 1500 : 3000);
      const { readyAt, stoppedAt } = await restartApiServer({ downMs: options.downMs });
      record.injected();
      record.recovered(await reconcileProbe(h, readyAt));
      record.note(
        `restart ${i + 1}: API server down ${((readyAt - stoppedAt) / 1000).toFixed(1)} s (stop, ${options.downMs / 1000} s down, start, ready)`,
      );
    }
    await checkTrainingJobs(h, record, 'burst', names);
    await checkCanary(h, record, canary);
    await checkQueuesDrain(h, record);
    record.note(
      `the operator's watches ended ${relists.ended()} times, ${relists.expired()} of them 410 Gone (re-listed)`,
    );
  } finally {
    await h.stop();
    await metrics.close();
    await prometheus.stop();
  }
  return record.result();
}
