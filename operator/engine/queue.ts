/**
 * A work queue with client-go's semantics: a key is queued at most once (dedup), a key handed to a
 * worker is never handed to another until `done`, and a key added while being processed is queued
 * again on `done` ("dirty while processing"). Delayed adds keep the earliest due time per key.
 * Retries go through a rate limiter: per-key exponential backoff combined with a global token bucket.
 */

export interface RateLimiter {
  /** Delay before `key` may be retried; counts a failure. */
  when(key: string): number;
  /** The key succeeded: reset its backoff. */
  forget(key: string): void;
  retries(key: string): number;
}

/** Per-key exponential backoff: base * 2^failures, capped. */
export class ExponentialBackoff implements RateLimiter {
  private readonly failures = new Map<string, number>();
  constructor(
    private readonly baseMs = 5,
    private readonly maxMs = 1_000_000,
  ) {}

  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    // 2^n overflows to Infinity quickly, which Math.min caps correctly.
    return Math.min(this.baseMs * 2 ** n, this.maxMs);
  }
  forget(key: string): void {
    this.failures.delete(key);
  }
  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/** Global token bucket: `qps` tokens per second, at most `burst` saved; each retry reserves one token. */
export class TokenBucket implements RateLimiter {
  private tokens: number;
  private last: number;
  constructor(
    private readonly qps = 10,
    private readonly burst = 100,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  when(): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.qps) / 1000);
    this.last = t;
    // Reserve the token even if it is not there yet: the caller waits for it (tokens go negative).
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.qps;
  }
  forget(): void {}
  retries(): number {
    return 0;
  }
}

/** The slowest of several limiters wins (client-go's MaxOfRateLimiter). */
export class MaxOf implements RateLimiter {
  private readonly limiters: RateLimiter[];
  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }
  when(key: string): number {
    return Math.max(...this.limiters.map((l) => l.when(key)));
  }
  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }
  retries(key: string): number {
    return Math.max(...this.limiters.map((l) => l.retries(key)));
  }
}

export function defaultRateLimiter(options?: {
  baseMs?: number;
  maxMs?: number;
  qps?: number;
  burst?: number;
}): RateLimiter {
  return new MaxOf(
    new ExponentialBackoff(options?.baseMs ?? 5, options?.maxMs ?? 1_000_000),
    new TokenBucket(options?.qps ?? 10, options?.burst ?? 100),
  );
}

export interface QueueObserver {
  added?(key: string): void;
  depth?(depth: number): void;
  retried?(key: string): void;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly waiting = new Map<string, { due: number; timer: NodeJS.Timeout }>();
  private readonly getters: Array<(key: string | undefined) => void> = [];
  private readonly idleWaiters: Array<() => void> = [];
  private shuttingDown = false;

  constructor(
    readonly rateLimiter: RateLimiter = defaultRateLimiter(),
    private readonly observer: QueueObserver = {},
  ) {}

  add(key: string): void {
    if (this.shuttingDown) return;
    const delayed = this.waiting.get(key);
    if (delayed) {
      clearTimeout(delayed.timer);
      this.waiting.delete(key);
    }
    if (this.dirty.has(key)) return;
    this.dirty.add(key);
    this.observer.added?.(key);
    if (this.processing.has(key)) return;
    this.push(key);
  }

  /** Adds `key` after `delayMs`; an earlier pending due time for the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const due = performance.now() + delayMs;
    const pending = this.waiting.get(key);
    if (pending && pending.due <= due) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
      this.notifyIdle();
    }, delayMs);
    this.waiting.set(key, { due, timer });
  }

  /** Adds `key` after the rate limiter's delay (per-key backoff and the global bucket). */
  addRateLimited(key: string): void {
    this.observer.retried?.(key);
    this.addAfter(key, this.rateLimiter.when(key));
  }

  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  retries(key: string): number {
    return this.rateLimiter.retries(key);
  }

  /** The next key to process, or `undefined` once shut down. The caller must call `done(key)`. */
  get(): Promise<string | undefined> {
    if (this.queue.length > 0) return Promise.resolve(this.take());
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.getters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) this.push(key);
    else this.notifyIdle();
  }

  /** Keys queued and not yet handed out (the metric "queue depth"). */
  get length(): number {
    return this.queue.length;
  }
  get inFlight(): number {
    return this.processing.size;
  }
  get delayed(): number {
    return this.waiting.size;
  }

  /** Resolves when nothing is queued or in flight (delayed keys may still be pending). */
  whenIdle(): Promise<void> {
    if (this.queue.length === 0 && this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops handing out keys (waiting `get`s get `undefined`) and drops delayed ones; in-flight keys may still call `done`. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.waiting.values()) clearTimeout(timer);
    this.waiting.clear();
    this.queue.length = 0;
    this.dirty.clear();
    for (const getter of this.getters.splice(0)) getter(undefined);
    this.observer.depth?.(0);
    this.notifyIdle();
  }

  private push(key: string): void {
    const getter = this.getters.shift();
    if (getter) {
      this.dirty.delete(key);
      this.processing.add(key);
      getter(key);
      return;
    }
    this.queue.push(key);
    this.observer.depth?.(this.queue.length);
  }

  private take(): string {
    const key = this.queue.shift()!;
    this.dirty.delete(key);
    this.processing.add(key);
    this.observer.depth?.(this.queue.length);
    return key;
  }

  private notifyIdle(): void {
    if (this.queue.length === 0 && this.processing.size === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }
}
