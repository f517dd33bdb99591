// The summaries every benchmark and the chaos report state: median and nearest-rank percentile.
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { median, percentile } from '../figures.ts';

test('median: the middle of an odd count, the mean of the two middle values of an even one, unsorted input', () => {
  assert.is(median([9, 1, 5]), 5);
  assert.is(median([4, 1, 3, 2]), 2.5);
  assert.is(median([7]), 7);
  assert.ok(Number.isNaN(median([])));
});

test('percentile by nearest rank: p50 and p99 of 1..100, the ends, and one value', () => {
  const values = Array.from({ length: 100 }, (_, i) => 100 - i);
  assert.is(percentile(values, 50), 50);
  assert.is(percentile(values, 99), 99);
  assert.is(percentile(values, 100), 100);
  assert.is(percentile(values, 0), 1);
  assert.is(percentile([3, 1, 2], 50), 2);
  assert.is(percentile([42], 99), 42);
  assert.ok(Number.isNaN(percentile([], 50)));
});

test.run();
