// Reports training progress to the operator (operator/api/training-progress.ts) when the pod was given
// LOOPLINE_PROGRESS_URL and LOOPLINE_PROGRESS_TOKEN. Best effort by design: a report never delays or fails
// training. Reports are sent in the background one at a time, a newer one replacing any not yet sent; each
// try has a short timeout; a 503 (an operator replica that is not the leader) is tried again after its
// Retry-After (with the newer report if one has come meanwhile); a refused token stops reporting.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { PROGRESS_ENV, type ProgressReport } from '../../../operator/api/progress-report.ts';

export interface ReporterOptions {
  /** Per try. */
  timeoutMs?: number;
  /** Tries of one report when the operator answers 503 or 429. */
  maxTries?: number;
  /** Longest Retry-After honoured. */
  maxRetryAfterMs?: number;
}

export class ProgressReporter {
  private pending: ProgressReport | undefined;
  private sending: Promise<void> | undefined;
  private disabled = false;
  private readonly closed = new AbortController();
  private warnedUnreachable = false;
  private readonly timeoutMs: number;
  private readonly maxTries: number;
  private readonly maxRetryAfterMs: number;

  constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly log: Logger,
    options: ReporterOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.maxTries = options.maxTries ?? 5;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 5000;
  }

  /** A reporter from the pod's environment, or undefined when the operator gave it no progress endpoint. */
  static fromEnv(env: NodeJS.ProcessEnv, log: Logger, options?: ReporterOptions): ProgressReporter | undefined {
    const url = env[PROGRESS_ENV.url];
    const token = env[PROGRESS_ENV.token];
    if (!url || !token) return undefined;
    return new ProgressReporter(url, token, log, options);
  }

  /** Queues `report` for sending; returns at once. */
  report(report: ProgressReport): void {
    if (this.disabled) return;
    this.pending = report;
    this.sending ??= this.drain().finally(() => (this.sending = undefined));
  }

  /** Waits for what is queued to be sent, at most `timeoutMs`. */
  async flush(timeoutMs: number): Promise<void> {
    if (!this.sending) return;
    const timer = new AbortController();
    await Promise.race([this.sending, sleep(timeoutMs, undefined, { signal: timer.signal }).catch(() => undefined)]);
    timer.abort();
  }

  /** Drops what is not sent yet and cuts a report in flight short: nothing of it outlives training. */
  close(): void {
    this.disabled = true;
    this.pending = undefined;
    this.closed.abort();
  }

  private async drain(): Promise<void> {
    while (this.pending && !this.disabled) {
      const report = this.pending;
      this.pending = undefined;
      await this.send(report);
    }
  }

  private async send(report: ProgressReport): Promise<void> {
    for (let attempt = 1; attempt <= this.maxTries; attempt++) {
      let response: Response;
      let text: string;
      try {
        response = await fetch(this.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${this.token}` },
          body: JSON.stringify(report),
          signal: AbortSignal.any([AbortSignal.timeout(this.timeoutMs), this.closed.signal]),
        });
        text = await response.text();
      } catch (err) {
        if (this.closed.signal.aborted) return;
        if (!this.warnedUnreachable) {
          this.warnedUnreachable = true;
          this.log.warn(
            { url: this.url, err: (err as Error).message },
            'progress endpoint unreachable; training goes on without reporting',
          );
        }
        return;
      }
      if (response.ok) return;
      if (response.status === 401 || response.status === 403) {
        this.disabled = true;
        this.log.warn(
          { url: this.url, status: response.status },
          "progress endpoint refused this pod's token; no more progress reports",
        );
        return;
      }
      if ((response.status === 503 || response.status === 429) && attempt < this.maxTries) {
        // Nothing goes to the endpoint before its Retry-After; then the newest report (this one, unless replaced).
        const seconds = Number(response.headers.get('retry-after'));
        const wait = Math.min(this.maxRetryAfterMs, Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 1000);
        await sleep(wait, undefined, { signal: this.closed.signal }).catch(() => undefined);
        if (this.pending || this.disabled) return;
        continue;
      }
      this.log.warn(
        { url: this.url, status: response.status, error: text.slice(0, 500) },
        'progress report not accepted',
      );
      return;
    }
  }
}
