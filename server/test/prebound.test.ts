// The prebound counter and histogram (server/src/metrics/prebound.ts) expose exactly what
// prom-client's own Counter and Histogram expose for the same observations: same lines in the
// same order, through the same Registry.
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Counter, Histogram, Registry } from 'prom-client';
import { PreboundCounter, PreboundHistogram } from '../src/metrics/prebound.ts';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const OBSERVATIONS: Array<[string, number]> = [
  ['success', 0.0005],
  ['success', 0.001],
  ['success', 0.0011],
  ['error', 0.5],
  ['success', 0.02],
  ['success', 7],
  ['error', 0.1],
];

function both() {
  const ours = new Registry();
  const theirs = new Registry();
  const labelNames = ['model', 'outcome'] as const;
  return {
    ours,
    theirs,
    counter: new PreboundCounter({ name: 'requests_total', help: 'Requests.', labelNames, registers: [ours] }),
    histogram: new PreboundHistogram({
      name: 'latency_seconds',
      help: 'Latency.',
      labelNames,
      buckets: [...BUCKETS].reverse(),
      registers: [ours],
    }),
    promCounter: new Counter({ name: 'requests_total', help: 'Requests.', labelNames, registers: [theirs] }),
    promHistogram: new Histogram({
      name: 'latency_seconds',
      help: 'Latency.',
      labelNames,
      buckets: BUCKETS,
      registers: [theirs],
    }),
  };
}

test('prebound counter and histogram expose what prom-client exposes for the same observations', async () => {
  const m = both();
  for (const [outcome, seconds] of OBSERVATIONS) {
    m.counter.series({ model: 'credit', outcome }).inc();
    m.histogram.series({ model: 'credit', outcome }).observe(seconds);
    m.promCounter.inc({ model: 'credit', outcome });
    m.promHistogram.observe({ model: 'credit', outcome }, seconds);
  }
  const expected = await m.theirs.metrics();
  assert.match(
    expected,
    /latency_seconds_bucket\{le="0.01",model="credit",outcome="success"\} 3/,
    'the reference exposition is the one the test means',
  );
  assert.is(await m.ours.metrics(), expected);
});

test('a prebound series is the same object for the same label values, whatever the order they were given in', () => {
  const m = both();
  const a = m.histogram.series({ model: 'credit', outcome: 'success' });
  assert.is(m.histogram.series({ outcome: 'success', model: 'credit' }), a);
  assert.is.not(m.histogram.series({ model: 'credit', outcome: 'error' }), a);
});

test('a prebound series refuses a missing label and drops a non-finite observation instead of poisoning _sum', async () => {
  const m = both();
  assert.throws(() => m.counter.series({ model: 'credit' } as never), /label outcome needs a string value/);
  const series = m.histogram.series({ model: 'credit', outcome: 'success' });
  series.observe(Number.NaN);
  series.observe(Number.POSITIVE_INFINITY);
  series.observe(0.5);
  const text = await m.ours.metrics();
  assert.match(text, /latency_seconds_count\{model="credit",outcome="success"\} 1\n/);
  assert.match(text, /latency_seconds_sum\{model="credit",outcome="success"\} 0.5\n/);
});

test('resetting the registry zeroes prebound series that were already handed out, and they go on counting', async () => {
  const m = both();
  const requests = m.counter.series({ model: 'credit', outcome: 'success' });
  const latency = m.histogram.series({ model: 'credit', outcome: 'success' });
  requests.inc(5);
  latency.observe(0.2);
  m.ours.resetMetrics();
  requests.inc();
  latency.observe(0.002);
  const text = await m.ours.metrics();
  assert.match(text, /requests_total\{model="credit",outcome="success"\} 1\n/);
  assert.match(text, /latency_seconds_bucket\{le="0.01",model="credit",outcome="success"\} 1\n/);
  assert.match(text, /latency_seconds_bucket\{le="1",model="credit",outcome="success"\} 1\n/);
  assert.match(text, /latency_seconds_count\{model="credit",outcome="success"\} 1\n/);
});

test.run();
