/**
 * (d) Prometheus slow, unreachable, and hanging at a canary's analysis (Toxiproxy between the operator and
 * Prometheus): slow but answering, the analysis decides as usual; unreachable or hanging, the step holds,
 * Inconclusive, neither promoted nor rolled back, and status says so; once Prometheus answers again the
 * rollout goes on and ends promoted.
 */
import { kinds } from '../../../operator/engine/index.ts';
import { QUERY_TIMEOUT_MS } from '../../../operator/inferenceservice/analysis.ts';
import { startPrometheus } from '../../../test/support/prometheus.ts';
import { sleep } from '../../../test/support/local.ts';
import { SimulatedMetrics, checkCanary, startCanary, waitForCanary, type CanaryView } from '../canary.ts';
import { PROXY, startChaos } from '../harness.ts';
import { ScenarioRecord, type ScenarioResult } from '../report.ts';
import { checkQueuesDrain } from './common.ts';

export interface PrometheusOutageOptions {
  /** Prometheus unreachable (proxy disabled) for this long, at step 1. */
  outageMs: number;
  /** Prometheus hanging (requests never answered) for this long, at step 2: longer than the interval and the query timeout together. */
  stallMs: number;
  /** Answers delayed by this much at step 0 (slow, but within the query timeout). */
  latencyMs: number;
}

export async function prometheusOutage(options: PrometheusOutageOptions): Promise<ScenarioResult> {
  const record = new ScenarioRecord(
    'Prometheus slow, down, hanging',
    `operator → Prometheus: +${options.latencyMs} ms latency at step 0, unreachable ${options.outageMs / 1000} s at step 1, requests unanswered ${options.stallMs / 1000} s at step 2`,
  );
  const prometheus = await startPrometheus({ scrapeIntervalMs: 500 });
  const h = await startChaos('chaos-prometheus', {
    inferenceServices: {
      prometheusUrl: prometheus.url,
      scrapeIntervalMs: prometheus.scrapeIntervalMs,
      prometheusProxy: true,
    },
  });
  const metrics = new SimulatedMetrics(prometheus);
  try {
    await h.toxiproxy.addToxic(PROXY.prometheus, {
      name: 'slow',
      type: 'latency',
      attributes: { latency: options.latencyMs, jitter: 0 },
    });
    record.injected();
    const steps = [10, 30, 60, 100];
    const canary = await startCanary(h, metrics, 'analysed', { steps, interval: '3s' });
    // Status moves to a step before the route does: a step is reached when the route carries its weight.
    const atStep = (step: number, what: string) =>
      waitForCanary(canary, what, (v) => v.step === step && v.weight === steps[step], 60_000);
    await atStep(1, 'step 1 after a slow analysis');
    await h.toxiproxy.removeToxic(PROXY.prometheus, 'slow');
    record.check(true, 'a slow Prometheus (answering within the query timeout) still lets a step pass');

    // Unreachable at step 1.
    await h.toxiproxy.setEnabled(PROXY.prometheus, false);
    record.injected();
    const held = await holds(
      canary,
      record,
      options.outageMs,
      'unreachable',
      /^Inconclusive: metrics unavailable: .*unreachable/,
    );
    await h.toxiproxy.setEnabled(PROXY.prometheus, true);
    const back = Date.now();
    await waitForCanary(canary, 'step 2 once Prometheus is back', (v) => (v.step ?? 0) > held.step!, 60_000);
    record.recovered(Date.now() - back);
    await atStep(2, 'step 2 on the route');

    // Hanging at step 2: connections accepted, requests never answered.
    await h.toxiproxy.addToxic(PROXY.prometheus, {
      name: 'hang',
      type: 'timeout',
      stream: 'upstream',
      attributes: { timeout: 0 },
    });
    record.injected();
    const hung = await holds(
      canary,
      record,
      options.stallMs,
      'hanging',
      new RegExp(`^Inconclusive: metrics unavailable: no answer from .* within ${QUERY_TIMEOUT_MS} ms`),
    );
    await h.toxiproxy.removeToxic(PROXY.prometheus, 'hang');
    const answered = Date.now();
    await waitForCanary(
      canary,
      'step 3 once Prometheus answers',
      (v) => (v.step ?? 0) > hung.step! || v.phase === 'Promoted',
      60_000,
    );
    record.recovered(Date.now() - answered);

    const events = (
      (await h.api.list(kinds.Event, h.namespace)).items as Array<{ regarding?: { name: string }; reason?: string }>
    ).filter((e) => e.regarding?.name === canary.name && e.reason === 'AnalysisInconclusive');
    record.check(events.length >= 2, `an AnalysisInconclusive Event for each outage: ${events.length}`);
    await checkCanary(h, record, canary);
    await checkQueuesDrain(h, record);
  } finally {
    await h.stop();
    await metrics.close();
    await prometheus.stop();
  }
  return record.result();
}

/**
 * While Prometheus cannot answer for `ms`: the step, its weight and the failed-check count stay as they were,
 * the phase stays Progressing, and status.analysis.message says Inconclusive (matching `message`).
 */
async function holds(
  canary: Awaited<ReturnType<typeof startCanary>>,
  record: ScenarioRecord,
  ms: number,
  how: string,
  message: RegExp,
): Promise<CanaryView> {
  const at = (await canary.current())!;
  const from = canary.views.length;
  await sleep(ms);
  const seen = canary.views.slice(from);
  const moved = seen.find(
    (v) =>
      v.step !== at.step ||
      v.weight !== at.weight ||
      v.phase !== 'Progressing' ||
      (v.failedChecks ?? 0) !== (at.failedChecks ?? 0),
  );
  record.check(
    moved === undefined,
    `Prometheus ${how}: step ${at.step} held at ${at.weight}%, neither promoted nor rolled back, no failed check counted: saw ${JSON.stringify(moved)}`,
  );
  const said = seen.filter((v) => message.test(v.message ?? ''));
  record.check(
    said.length > 0,
    `Prometheus ${how}: status.analysis.message says Inconclusive (${message}): last said ${JSON.stringify(seen.at(-1)?.message)}`,
  );
  return at;
}
