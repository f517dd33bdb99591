// Dynamic batching: concurrent requests for the same model are coalesced into one
// session run, because a run costs about the same for 1 row as for 64.
// Runs are synchronous (see session.ts), so the runtime is never busy when a request
// arrives. A pending batch runs when it is full, at the end of the event-loop turn that
// read its first request (so requests parsed together ride together and are answered in
// that same turn), or — in a turn long enough to read many requests — before a request
// joins it once its oldest request has waited maxWaitMs, whichever comes first.
import { performance } from 'node:perf_hooks';
import type { TensorData } from './tensors.ts';
import { allocate, type Datatype } from './tensors.ts';

export interface TensorValue {
  datatype: Datatype;
  shape: number[];
  data: TensorData;
}

export type Feeds = Record<string, TensorValue>;

/** Runs the model on a full set of inputs, in the call; the batcher only concatenates and slices along dimension 0. */
export type RunModel = (feeds: Feeds) => Feeds;

export interface BatchOptions {
  maxBatchSize: number;
  /** Longest the oldest request of a batch waits for it to fill; 0: only the turn that read it. */
  maxWaitMs: number;
  /** Called with the rows of every run, for the batch-size histogram. */
  onRun?: (rows: number) => void;
}

interface Pending {
  feeds: Feeds;
  rows: number;
  resolve: (outputs: Feeds) => void;
  reject: (error: unknown) => void;
}

interface Batch {
  /** The first request's feeds: later ones must agree on everything but dimension 0. */
  layout: Feeds;
  items: Pending[];
  rows: number;
  /** performance.now() when the first request joined. */
  since: number;
}

export class Batcher {
  private pending: Batch | undefined;
  private turnEndScheduled = false;
  private idleWaiters: Array<() => void> = [];
  private active = 0;

  constructor(
    private readonly run: RunModel,
    private readonly options: BatchOptions,
  ) {}

  /** Requests not yet answered. */
  get activeRequests(): number {
    return this.active;
  }

  infer(feeds: Feeds, rows: number): Promise<Feeds> {
    this.active++;
    return new Promise<Feeds>((resolve, reject) => this.enqueue({ feeds, rows, resolve, reject }));
  }

  /** Hand one request its answer (or its error); the count drops without a .finally() promise per request. */
  private answer(item: Pending, outputs: Feeds | undefined, error?: unknown): void {
    if (outputs) item.resolve(outputs);
    else item.reject(error);
    if (--this.active === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** Resolves once every accepted request has been answered. */
  idle(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private enqueue(item: Pending): void {
    const pending = this.pending;
    if (
      pending &&
      (!sameLayout(pending.layout, item.feeds) ||
        pending.rows + item.rows > this.options.maxBatchSize ||
        (this.options.maxWaitMs > 0 && performance.now() - pending.since >= this.options.maxWaitMs))
    ) {
      this.dispatch();
    }
    if (!this.pending) {
      this.pending = {
        layout: item.feeds,
        items: [],
        rows: 0,
        since: this.options.maxWaitMs > 0 ? performance.now() : 0,
      };
      this.scheduleTurnEnd();
    }
    this.pending.items.push(item);
    this.pending.rows += item.rows;
    if (this.pending.rows >= this.options.maxBatchSize) this.dispatch();
  }

  /** setImmediate runs after the I/O callbacks of this loop turn: every request read in it has joined. */
  private scheduleTurnEnd(): void {
    if (this.turnEndScheduled) return;
    this.turnEndScheduled = true;
    setImmediate(() => {
      this.turnEndScheduled = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    const batch = this.pending;
    if (!batch) return;
    this.pending = undefined;
    this.options.onRun?.(batch.rows);
    try {
      if (batch.items.length === 1) {
        this.answer(batch.items[0], this.run(batch.items[0].feeds));
        return;
      }
      const outputs = this.run(concatenate(batch.items, batch.rows));
      // Slice every answer before handing any over, so a model that cannot be batched fails them all alike.
      const answers: Feeds[] = [];
      let offset = 0;
      for (const item of batch.items) {
        answers.push(sliceRows(outputs, offset, item.rows, batch.rows));
        offset += item.rows;
      }
      for (let i = 0; i < answers.length; i++) this.answer(batch.items[i], answers[i]);
    } catch (error) {
      for (const item of batch.items) this.answer(item, undefined, error);
    }
  }
}

/** Requests can share a run only when every input agrees on datatype and on all dimensions but the first. */
function sameLayout(a: Feeds, b: Feeds): boolean {
  let inputs = 0;
  for (const name in a) {
    const x = a[name];
    const y = b[name];
    if (!y || x.datatype !== y.datatype || x.shape.length !== y.shape.length) return false;
    for (let d = 1; d < x.shape.length; d++) if (x.shape[d] !== y.shape[d]) return false;
    inputs++;
  }
  for (const _ in b) inputs--;
  return inputs === 0;
}

function concatenate(items: Pending[], rows: number): Feeds {
  const feeds: Feeds = {};
  for (const name in items[0].feeds) {
    const first = items[0].feeds[name];
    const rowSize = rowLength(first.shape);
    const data = allocate(first.datatype, rows * rowSize);
    let offset = 0;
    for (const item of items) {
      const part = item.feeds[name].data;
      if (Array.isArray(data)) {
        for (let i = 0; i < part.length; i++) data[offset + i] = (part as string[])[i];
      } else {
        (data as Float32Array).set(part as Float32Array, offset);
      }
      offset += part.length;
    }
    feeds[name] = { datatype: first.datatype, shape: [rows, ...first.shape.slice(1)], data };
  }
  return feeds;
}

function sliceRows(outputs: Feeds, start: number, rows: number, totalRows: number): Feeds {
  const sliced: Feeds = {};
  for (const name in outputs) {
    const out = outputs[name];
    if (out.shape[0] !== totalRows)
      throw new Error(
        `output ${name} has ${out.shape[0]} rows for a batch of ${totalRows}; the model cannot be batched`,
      );
    const rowSize = rowLength(out.shape);
    const data = out.data.slice(start * rowSize, (start + rows) * rowSize) as TensorData;
    sliced[name] = { datatype: out.datatype, shape: [rows, ...out.shape.slice(1)], data };
  }
  return sliced;
}

function rowLength(shape: number[]): number {
  let n = 1;
  for (let i = 1; i < shape.length; i++) n *= shape[i];
  return n;
}
