// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ExponentialBackoff, MaxOf, TokenBucket, WorkQueue, defaultRateLimiter } from '../queue.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('a key added many times before it is taken is queued once', async () => {
  const queue = new WorkQueue();
  for (let i = 0; i < 5; i++) queue.add('ns/a');
  queue.add('ns/b');
  assert.is(queue.length, 2);
  assert.is(await queue.get(), 'ns/a');
  assert.is(await queue.get(), 'ns/b');
  assert.is(queue.length, 0);
});

test('a key added while processing is not handed out again until done, then exactly once', async () => {
  const queue = new WorkQueue();
  queue.add('k');
  const first = await queue.get();
  assert.is(first, 'k');
  queue.add('k');
  queue.add('k');
  assert.is(queue.length, 0, 'dirty key must wait for done');
  let second: string | undefined;
  void queue.get().then((k) => (second = k));
  await sleep(5);
  assert.is(second, undefined, 'no worker may get a key that is being processed');
  queue.done('k');
  await sleep(0);
  assert.is(second, 'k');
  queue.done('k');
  assert.is(queue.length, 0);
  assert.is(queue.inFlight, 0);
});

test('N workers never process the same key concurrently and every add after processing starts is seen', async () => {
  const queue = new WorkQueue();
  const active = new Set<string>();
  let overlaps = 0;
  const processed: string[] = [];
  const workers = Array.from({ length: 4 }, async () => {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      if (active.has(key)) overlaps++;
      active.add(key);
      await sleep(Math.random() * 3);
      processed.push(key);
      active.delete(key);
      queue.done(key);
    }
  });
  for (let round = 0; round < 20; round++) {
    for (const key of ['a', 'b', 'c']) queue.add(key);
    await sleep(1);
  }
  await queue.whenIdle();
  queue.shutDown();
  await Promise.all(workers);
  assert.is(overlaps, 0);
  for (const key of ['a', 'b', 'c']) assert.ok(processed.includes(key));
  // Dedup: far fewer reconciles than the 60 adds.
  assert.ok(processed.length < 60, `processed ${processed.length}`);
});

test('addAfter delays the key, and the earliest due time wins', async () => {
  const queue = new WorkQueue();
  const t0 = performance.now();
  queue.addAfter('late', 80);
  queue.addAfter('late', 20);
  queue.addAfter('late', 200);
  assert.is(queue.length, 0);
  assert.is(queue.delayed, 1);
  const key = await queue.get();
  const waited = performance.now() - t0;
  assert.is(key, 'late');
  assert.ok(waited >= 18 && waited < 70, `waited ${waited} ms`);
  queue.done('late');
  await sleep(220);
  assert.is(queue.length, 0, 'later due times were folded into the earliest one');
});

test('a plain add of a delayed key makes it ready now', async () => {
  const queue = new WorkQueue();
  queue.addAfter('k', 10_000);
  queue.add('k');
  assert.is(queue.length, 1);
  assert.is(queue.delayed, 0);
  assert.is(await queue.get(), 'k');
});

test('per-key exponential backoff doubles from the base up to the cap and forget resets it', () => {
  const backoff = new ExponentialBackoff(5, 1_000_000);
  const delays = Array.from({ length: 6 }, () => backoff.when('k'));
  assert.equal(delays, [5, 10, 20, 40, 80, 160]);
  assert.is(backoff.when('other'), 5, 'keys back off independently');
  for (let i = 0; i < 40; i++) backoff.when('k');
  assert.is(backoff.when('k'), 1_000_000);
  assert.is(backoff.retries('k'), 47);
  backoff.forget('k');
  assert.is(backoff.when('k'), 5);
});

test('token bucket allows the burst, then spaces retries at 1/qps', () => {
  let now = 0;
  const bucket = new TokenBucket(10, 3, () => now);
  assert.equal([bucket.when(), bucket.when(), bucket.when()], [0, 0, 0]);
  assert.is(bucket.when(), 100);
  assert.is(bucket.when(), 200);
  now = 1000; // 10 tokens refill, minus the 2 owed, capped at burst 3
  assert.is(bucket.when(), 0);
});

test('the combined limiter takes the slower of backoff and bucket', () => {
  const now = 0;
  const limiter = new MaxOf(new ExponentialBackoff(5, 1000), new TokenBucket(1, 1, () => now));
  assert.is(limiter.when('a'), 5);
  assert.is(limiter.when('b'), 1000, 'bucket empty: next token in 1 s');
});

test('addRateLimited retries a failing key with growing delays; forget after success resets', async () => {
  const queue = new WorkQueue(defaultRateLimiter({ baseMs: 10, maxMs: 1000 }));
  const times: number[] = [];
  const t0 = performance.now();
  queue.add('k');
  for (let attempt = 0; attempt < 4; attempt++) {
    const key = (await queue.get())!;
    times.push(performance.now() - t0);
    queue.done(key);
    if (attempt < 3) queue.addRateLimited(key);
    else queue.forget(key);
  }
  const gaps = times.slice(1).map((t, i) => t - times[i]);
  // 10, 20, 40 ms (timers may fire a little late, never early)
  assert.ok(gaps[0] >= 9 && gaps[1] >= 19 && gaps[2] >= 39, `gaps ${gaps.map((g) => g.toFixed(1))}`);
  assert.ok(gaps[2] > gaps[0], 'backoff grows');
  assert.is(queue.retries('k'), 0);
});

test('the global bucket limits the retry rate across keys', async () => {
  const queue = new WorkQueue(defaultRateLimiter({ baseMs: 1, maxMs: 10, qps: 50, burst: 5 }));
  const t0 = performance.now();
  for (let i = 0; i < 15; i++) queue.addRateLimited(`k${i}`);
  for (let i = 0; i < 15; i++) queue.done((await queue.get())!);
  const elapsed = performance.now() - t0;
  // 5 from the burst, 10 more at 50/s = 200 ms
  assert.ok(elapsed >= 190, `15 retries took ${elapsed.toFixed(0)} ms`);
});

test('shutDown wakes waiting workers with undefined and ignores later adds', async () => {
  const queue = new WorkQueue();
  const waiting = queue.get();
  queue.shutDown();
  assert.is(await waiting, undefined);
  queue.add('k');
  assert.is(queue.length, 0);
  assert.is(await queue.get(), undefined);
});

test('whenIdle waits for in-flight keys', async () => {
  const queue = new WorkQueue();
  queue.add('k');
  const key = (await queue.get())!;
  let idle = false;
  void queue.whenIdle().then(() => (idle = true));
  await sleep(5);
  assert.is(idle, false);
  queue.done(key);
  await sleep(0);
  assert.is(idle, true);
});

test.run();
