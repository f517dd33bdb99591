// The progress endpoint training pods POST to (contract: operator/api/training-progress.ts), and the coalescing
// that keeps a chatty trainer from flooding the API server: at most one status write per job per interval,
// the latest report winning. Every replica serves it, so the Service may send a pod to any of them; only the
// leader writes (through the engine's fenced writer), the others answer 503 with Retry-After, which the
// example trainer honours. A report is accepted (202) before it is written.
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { parseProgressPath, parseProgressReport, progressStatus } from '../api/training-progress.ts';
import type { TrainingJobProgressStatus } from '../api/types.ts';
import { NotLeaderError, kinds, keyOf, type ClusterCache, type Runnable, type Writer } from '../engine/index.ts';
import { authorizeProgress, bearerToken } from './progress.ts';
import type { TrainingJob } from './resource.ts';

/** A report is a few hundred bytes; this leaves room for 32 metrics with long names. */
const MAX_BODY_BYTES = 16 * 1024;
export const DEFAULT_PROGRESS_INTERVAL_MS = 5_000;

/**
 * Per key, at most one `write` per interval, each with the latest value offered: the first value of a quiet key
 * is written at once, values offered meanwhile replace each other and the last is written when the interval is up.
 * An `immediate` value skips the wait (never a write in flight): for the one value a reader must not miss.
 */
export class Coalescer<T> {
  private readonly entries = new Map<
    string,
    { pending?: T; lastWrite: number; timer?: NodeJS.Timeout; writing: boolean; immediate?: boolean }
  >();

  constructor(
    private readonly intervalMs: number,
    private readonly write: (key: string, value: T) => Promise<void>,
  ) {}

  offer(key: string, value: T, immediate = false): void {
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { lastWrite: -Infinity, writing: false };
      this.entries.set(key, entry);
    }
    entry.pending = value;
    if (immediate) {
      entry.immediate = true;
      if (!entry.writing) {
        clearTimeout(entry.timer);
        entry.timer = undefined;
      }
    }
    this.schedule(key);
  }

  /** Keys with a value waiting or being written. */
  get size(): number {
    return this.entries.size;
  }

  stop(): void {
    for (const entry of this.entries.values()) clearTimeout(entry.timer);
    this.entries.clear();
  }

  private schedule(key: string): void {
    const entry = this.entries.get(key)!;
    if (entry.writing || entry.timer) return;
    entry.timer = setTimeout(() => void this.flush(key), this.wait(entry));
  }

  /** Milliseconds until the interval since the last write is up, rounded up (0 for an immediate value). */
  private wait(entry: { lastWrite: number; immediate?: boolean }): number {
    return entry.immediate ? 0 : Math.max(0, Math.ceil(entry.lastWrite + this.intervalMs - performance.now()));
  }

  private async flush(key: string): Promise<void> {
    const entry = this.entries.get(key);
    if (!entry) return;
    entry.timer = undefined;
    // Timers run on the event loop's clock, cached in whole milliseconds, so one may fire a little before the
    // interval is up by performance.now(): wait out the rest rather than write early.
    const early = this.wait(entry);
    if (early > 0) {
      entry.timer = setTimeout(() => void this.flush(key), early);
      return;
    }
    const value = entry.pending;
    entry.pending = undefined;
    if (value === undefined) {
      // Quiet for a whole interval: forget the key.
      this.entries.delete(key);
      return;
    }
    entry.writing = true;
    entry.immediate = false;
    entry.lastWrite = performance.now();
    try {
      await this.write(key, value);
    } finally {
      entry.writing = false;
      if (this.entries.get(key) === entry) {
        // Come back after the interval either way (at once for an immediate value): to write what arrived meanwhile, or to forget the key.
        entry.timer = setTimeout(() => void this.flush(key), this.wait(entry));
      }
    }
  }
}

export interface ProgressReceiverOptions {
  port: number;
  host: string;
  /** At most one status write per job per this many milliseconds. Default 5 s. */
  intervalMs?: number;
  cache: ClusterCache;
  writer: Writer;
  isLeader(): boolean;
  log: Logger;
  /** Where `loopline_progress_reports_total` is registered. */
  registry?: Registry;
}

type Outcome = 'accepted' | 'unauthorized' | 'forbidden' | 'invalid' | 'not_leader' | 'not_found';

export class ProgressReceiver implements Runnable {
  readonly name = 'progress';
  private server: Server | undefined;
  private address: AddressInfo | undefined;
  private readonly coalescer: Coalescer<{ status: TrainingJobProgressStatus }>;
  private readonly reports: Counter<'outcome'>;
  private readonly finals = new Set<string>();

  constructor(private readonly options: ProgressReceiverOptions) {
    this.coalescer = new Coalescer(options.intervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS, (key, { status }) =>
      this.write(key, status),
    );
    this.reports = new Counter({
      name: 'loopline_progress_reports_total',
      help: 'Progress reports from training pods by outcome (accepted, unauthorized, forbidden, invalid, not_leader, not_found).',
      labelNames: ['outcome'] as const,
      registers: options.registry ? [options.registry] : [],
    });
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      // A client that goes away mid-body, or a bug here, answers 500 (when it still can) and never takes the process down.
      this.handle(req, res).catch((err: unknown) => {
        this.options.log.warn(
          { err: (err as Error).message, path: (req.url ?? '').split('?')[0] },
          'progress request failed',
        );
        if (!res.headersSent) this.answer(res, undefined, 500, { error: 'internal error' });
        else res.destroy();
      });
    });
    this.server = server;
    this.address = await new Promise<AddressInfo>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => resolve(server.address() as AddressInfo));
    });
    this.options.log.info({ address: `${this.address.address}:${this.address.port}` }, 'progress endpoint listening');
  }

  async stop(): Promise<void> {
    this.coalescer.stop();
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
  }

  /** Where it listens, once started. */
  listening(): { host: string; port: number } | undefined {
    return this.address ? { host: this.address.address, port: this.address.port } : undefined;
  }

  private answer(
    res: ServerResponse,
    outcome: Outcome | undefined,
    status: number,
    body: Record<string, unknown>,
    headers: Record<string, string> = {},
  ): void {
    if (outcome) this.reports.inc({ outcome });
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = parseProgressPath((req.url ?? '/').split('?')[0]);
    if (!target)
      return this.answer(res, 'not_found', 404, {
        error: 'not a progress endpoint: POST /v1/namespaces/<namespace>/trainingjobs/<name>/progress',
      });
    if (req.method !== 'POST') return this.answer(res, undefined, 405, { error: 'only POST' }, { allow: 'POST' });
    const key = keyOf(target.namespace, target.name);
    const job = this.options.cache.get<TrainingJob>(kinds.TrainingJob, target.namespace, target.name);
    const jobs = job ? this.options.cache.ownedBy(kinds.Job, job) : [];
    const verdict = authorizeProgress(job, jobs, bearerToken(req.headers.authorization), key);
    if (!verdict.ok) {
      req.resume();
      const headers: Record<string, string> = verdict.status === 401 ? { 'www-authenticate': 'Bearer' } : {};
      return this.answer(
        res,
        verdict.status === 401 ? 'unauthorized' : 'forbidden',
        verdict.status,
        { error: verdict.reason },
        headers,
      );
    }
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      req.resume();
      return this.answer(res, 'invalid', 415, { error: 'send the report as JSON: Content-Type: application/json' });
    }
    const text = await readBody(req);
    if (text === undefined)
      return this.answer(
        res,
        'invalid',
        413,
        { error: `the report is larger than ${MAX_BODY_BYTES} bytes` },
        { connection: 'close' },
      );
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      return this.answer(res, 'invalid', 400, { error: `the body is not JSON: ${(err as Error).message}` });
    }
    const parsed = parseProgressReport(body);
    if (!parsed.ok) return this.answer(res, 'invalid', 400, { error: parsed.errors.join('; '), errors: parsed.errors });
    if (!this.options.isLeader()) {
      // Any replica can check a report; only the leader may write it. The trainer tries again, likely reaching another replica.
      return this.answer(
        res,
        'not_leader',
        503,
        { error: 'this operator replica is not the leader; retry' },
        { 'retry-after': '1' },
      );
    }
    // The report that ends training is written at once (once per attempt), so a finished job shows its last epoch.
    const final = parsed.report.epoch === parsed.report.totalEpochs && this.firstFinal(`${key}#${verdict.attempt}`);
    this.coalescer.offer(key, { status: progressStatus(parsed.report, verdict.attempt, new Date()) }, final);
    return this.answer(res, 'accepted', 202, { accepted: true });
  }

  /** Whether this is the first final report of an attempt (the memory of them is bounded: old ones are forgotten). */
  private firstFinal(attempt: string): boolean {
    if (this.finals.has(attempt)) return false;
    if (this.finals.size >= 10_000) this.finals.delete(this.finals.values().next().value!);
    this.finals.add(attempt);
    return true;
  }

  /** status.progress of `key` ← `status`; fields and metrics the new report leaves out are removed (a merge patch keeps them). */
  private async write(key: string, status: TrainingJobProgressStatus): Promise<void> {
    const [namespace, name] = key.split('/');
    const job = this.options.cache.get<TrainingJob>(kinds.TrainingJob, namespace, name);
    if (!job) return;
    const before: Partial<TrainingJobProgressStatus> = job.status?.progress ?? {};
    const progress: Record<string, unknown> = { ...status };
    for (const field of ['loss', 'eta', 'metrics'] as const)
      if (before[field] !== undefined && status[field] === undefined) progress[field] = null;
    if (before.metrics && status.metrics) {
      progress.metrics = {
        ...Object.fromEntries(
          Object.keys(before.metrics)
            .filter((m) => !(m in status.metrics!))
            .map((m) => [m, null]),
        ),
        ...status.metrics,
      };
    }
    // A progress write says nothing about the spec: keep the generation the last reconcile observed.
    const observed = job.status?.observedGeneration;
    try {
      await this.options.writer.patchStatus(job, {
        progress,
        ...(observed !== undefined ? { observedGeneration: observed } : {}),
      });
    } catch (err) {
      if (err instanceof NotLeaderError) return;
      this.options.log.warn({ key, err: (err as Error).message }, 'could not write training progress');
    }
  }
}

/** The body as text, or undefined when it is larger than MAX_BODY_BYTES. */
async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
