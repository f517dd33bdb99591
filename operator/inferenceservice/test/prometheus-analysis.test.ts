// test: no cluster
/**
 * The analysis queries against a real Prometheus scraping real prom-client endpoints that expose the
 * predictor's metric names: proves the PromQL reads the canary's own numbers, not the stable's.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { analysisQueries, instantQuery, measureCanary } from '../analysis.ts';
import { judge } from '../canary.ts';
import { predictorMetrics, type PredictorMetrics } from '../../../test/support/predictor-metrics.ts';
import { startPrometheus, type TestPrometheus } from '../../../test/support/prometheus.ts';
import { waitFor } from '../../../test/support/local.ts';

let prometheus: TestPrometheus;
let stable: PredictorMetrics;
let canary: PredictorMetrics;

test.before(async () => {
  prometheus = await startPrometheus({ scrapeIntervalMs: 500 });
  stable = await predictorMetrics();
  canary = await predictorMetrics();
  const labels = { namespace: 'risk', inference_service: 'fraud' };
  prometheus.setTargets([
    { address: stable.address, labels },
    { address: canary.address, labels },
  ]);
  await prometheus.waitForTargets(2);
});

test.after(async () => {
  await prometheus.stop();
  for (const endpoint of [stable, canary]) await endpoint.close();
});

test('the canary measurement counts only the canary version: its errors and its slow tail', async () => {
  const serve = (endpoint: PredictorMetrics, version: string, outcome: string, seconds: number, count: number) => {
    for (let i = 0; i < count; i++) {
      endpoint.requests.inc({ model: 'fraud-detector', model_version: version, outcome });
      endpoint.latency.observe({ model: 'fraud-detector', model_version: version, outcome }, seconds);
    }
  };
  // Let Prometheus see a zero baseline of every outcome first (the predictor creates its series at 0 on
  // start): increase() cannot see the first increments of a series born after them.
  for (const outcome of ['success', 'error', 'unavailable', 'invalid_input']) {
    stable.requests.inc({ model: 'fraud-detector', model_version: '1', outcome }, 0);
    canary.requests.inc({ model: 'fraud-detector', model_version: '2', outcome }, 0);
  }
  serve(stable, '1', 'success', 0.004, 1);
  serve(canary, '2', 'success', 0.004, 1);
  // Six scrapes of that baseline (2.5 s at 500 ms) inside the 10 s window, then the traffic, seen by a scrape of
  // both endpoints: increase() extrapolates the last sample to the window's end, which over 2.5 s of samples
  // adds at most a fifth.
  const scraped = (query: string) => instantQuery(prometheus.url, query);
  await waitFor(
    'six scrapes of the baseline',
    async () => ((await scraped('min(count_over_time(prediction_requests_total{outcome="success"}[10s]))')) ?? 0) >= 6,
    30_000,
    100,
  );
  serve(stable, '1', 'success', 0.004, 400);
  serve(canary, '2', 'success', 0.4, 60);
  serve(canary, '2', 'error', 0.4, 40);
  serve(canary, '2', 'invalid_input', 0.004, 10);
  await waitFor(
    "a scrape of both endpoints' traffic",
    async () =>
      (await scraped('sum(prediction_requests_total{model_version="1"})')) === 401 &&
      (await scraped('sum(prediction_requests_total{model_version="2"})')) === 111,
    30_000,
    100,
  );

  const measurement = await measureCanary(
    prometheus.url,
    analysisQueries({ namespace: 'risk', inferenceService: 'fraud', model: 'fraud-detector', version: 2 }, '10s'),
  );
  assert.ok(!('error' in measurement), JSON.stringify(measurement));
  if ('error' in measurement) return;
  // increase() extrapolates over the window edges, so the counts are close, not exact.
  assert.ok(measurement.requests >= 100 && measurement.requests <= 140, `requests ${measurement.requests}`);
  assert.ok(Math.abs(measurement.errorRate! - 40 / 110) < 0.05, `errorRate ${measurement.errorRate}`);
  assert.ok(measurement.latencyP95Ms! > 250 && measurement.latencyP95Ms! <= 500, `p95 ${measurement.latencyP95Ms}`);
  const verdict = judge(measurement, { maxErrorRate: 0.05, maxLatencyP95Ms: 100, minRequests: 20 }, 0, new Date());
  assert.is(verdict.verdict, 'Failed');
  assert.match(verdict.reason, /error rate 0\.\d+ > maxErrorRate 0\.05/);

  const stableMeasured = await measureCanary(
    prometheus.url,
    analysisQueries({ namespace: 'risk', inferenceService: 'fraud', model: 'fraud-detector', version: 1 }, '10s'),
  );
  assert.ok(!('error' in stableMeasured));
  if ('error' in stableMeasured) return;
  assert.is(stableMeasured.errorRate, 0);
  assert.ok(stableMeasured.latencyP99Ms! < 10, `stable p99 ${stableMeasured.latencyP99Ms}`);
});

test('a version with no traffic measures as zero requests with no rates', async () => {
  const measurement = await measureCanary(
    prometheus.url,
    analysisQueries({ namespace: 'risk', inferenceService: 'fraud', model: 'fraud-detector', version: 9 }, '10s'),
  );
  assert.equal(measurement, { requests: 0, errorRate: null, latencyP95Ms: null, latencyP99Ms: null });
});

test('an unreachable Prometheus becomes a measurement error, not an exception', async () => {
  const measurement = await measureCanary(
    'http://127.0.0.1:1',
    analysisQueries({ namespace: 'risk', inferenceService: 'fraud', model: 'fraud-detector', version: 2 }, '10s'),
  );
  assert.ok('error' in measurement);
});

test.run();
