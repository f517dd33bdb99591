// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { analysisQueries, rangeFor } from '../analysis.ts';

const selector = { namespace: 'risk', inferenceService: 'fraud', model: 'fraud-detector', version: 7 };

test('every query selects only the canary version of this InferenceService', () => {
  const queries = analysisQueries(selector, '30s');
  for (const query of Object.values(queries)) {
    for (const matcher of [
      'namespace="risk"',
      'inference_service="fraud"',
      'model="fraud-detector"',
      'model_version="7"',
    ])
      assert.ok(query.includes(matcher), `${query} lacks ${matcher}`);
    assert.ok(query.includes('[30s]'), query);
  }
});

test('the error rate divides error outcomes by all requests and reads no errors as 0', () => {
  const { errorRate } = analysisQueries(selector, '1m');
  assert.match(errorRate, /outcome=~"error\|unavailable"/);
  assert.match(errorRate, /or vector\(0\)\) \/ sum\(increase\(prediction_requests_total\{/);
});

test('latency quantiles come from the histogram buckets in milliseconds', () => {
  const { latencyP95Ms, latencyP99Ms } = analysisQueries(selector, '1m');
  assert.match(
    latencyP95Ms,
    /^histogram_quantile\(0\.95, sum by \(le\) \(rate\(prediction_latency_seconds_bucket\{.*\}\[1m\]\)\)\) \* 1000$/,
  );
  assert.match(latencyP99Ms, /^histogram_quantile\(0\.99,/);
});

test('label values are escaped as PromQL strings', () => {
  const { requests } = analysisQueries({ ...selector, inferenceService: 'a"b' }, '1m');
  assert.ok(requests.includes('inference_service="a\\"b"'), requests);
});

test('the range covers the interval and at least two scrapes', () => {
  assert.is(rangeFor(30_000, 5_000), '30s');
  assert.is(rangeFor(2_000, 5_000), '10s');
  assert.is(rangeFor(1_500, 500), '2s');
});

test.run();
