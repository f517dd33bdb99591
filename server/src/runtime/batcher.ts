// Dynamic batching: concurrent requests for the same model are coalesced into one
// session.run, because a run costs about the same for 1 row as for 64.
// A pending batch is dispatched when it is full, when the runtime is idle (checked
// after the current I/O phase, so requests parsed together ride together), as soon as
// the run before it finished, or when its oldest request has waited maxWaitMs while
// another batch runs, whichever comes first.
import type { TensorData } from './tensors.ts';
import { allocate, type Datatype } from './tensors.ts';

export interface TensorValue {
  datatype: Datatype;
  shape: number[];
  data: TensorData;
}

export type Feeds = Record<string, TensorValue>;

/** Runs the model on a full set of inputs; the batcher only concatenates and slices along dimension 0. */
export type RunModel = (feeds: Feeds) => Promise<Feeds>;

export interface BatchOptions {
  maxBatchSize: number;
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
  timer?: NodeJS.Timeout;
}

/** Runs at most this many batches at once unless maxWaitMs forces another; more would only queue inside onnxruntime. */
const RUNS_IN_FLIGHT = 1;

export class Batcher {
  private pending: Batch | undefined;
  private inFlight = 0;
  private idleCheckScheduled = false;
  private idleWaiters: Array<() => void> = [];
  private active = 0;

  constructor(
    private readonly run: RunModel,
    private readonly options: BatchOptions,
  ) {}

  /** Requests not yet answered, queued or running. */
  get activeRequests(): number {
    return this.active;
  }

  infer(feeds: Feeds, rows: number): Promise<Feeds> {
    this.active++;
    return new Promise<Feeds>((resolve, reject) => {
      // The count drops when the answer is handed over, without a .finally() promise per request.
      this.enqueue({
        feeds,
        rows,
        resolve: (outputs) => {
          this.answered();
          resolve(outputs);
        },
        reject: (error) => {
          this.answered();
          reject(error);
        },
      });
    });
  }

  private answered(): void {
    if (--this.active === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** Resolves once every accepted request has been answered. */
  idle(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private enqueue(item: Pending): void {
    if (this.pending && (!sameLayout(this.pending.layout, item.feeds) || this.pending.rows + item.rows > this.options.maxBatchSize)) {
      this.dispatch();
    }
    if (!this.pending) {
      this.pending = { layout: item.feeds, items: [], rows: 0 };
      // With the runtime idle the idle check below dispatches this turn; a timer is only
      // needed while another batch runs (and that run's end dispatches too, usually first).
      if (this.inFlight >= RUNS_IN_FLIGHT) this.pending.timer = setTimeout(() => this.dispatch(), this.options.maxWaitMs);
    }
    this.pending.items.push(item);
    this.pending.rows += item.rows;
    if (this.pending.rows >= this.options.maxBatchSize) this.dispatch();
    else if (this.inFlight < RUNS_IN_FLIGHT) this.scheduleIdleCheck();
  }

  private scheduleIdleCheck(): void {
    if (this.idleCheckScheduled) return;
    this.idleCheckScheduled = true;
    setImmediate(() => {
      this.idleCheckScheduled = false;
      if (this.inFlight < RUNS_IN_FLIGHT) this.dispatch();
    });
  }

  private dispatch(): void {
    const batch = this.pending;
    if (!batch) return;
    this.pending = undefined;
    clearTimeout(batch.timer);
    this.inFlight++;
    this.options.onRun?.(batch.rows);
    this.runBatch(batch).finally(() => {
      this.inFlight--;
      if (this.pending && this.inFlight < RUNS_IN_FLIGHT) this.dispatch();
    });
  }

  private async runBatch(batch: Batch): Promise<void> {
    try {
      if (batch.items.length === 1) {
        const item = batch.items[0];
        item.resolve(await this.run(item.feeds));
        return;
      }
      const outputs = await this.run(concatenate(batch.items, batch.rows));
      let offset = 0;
      for (const item of batch.items) {
        item.resolve(sliceRows(outputs, offset, item.rows, batch.rows));
        offset += item.rows;
      }
    } catch (error) {
      for (const item of batch.items) item.reject(error);
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
    if (out.shape[0] !== totalRows) throw new Error(`output ${name} has ${out.shape[0]} rows for a batch of ${totalRows}; the model cannot be batched`);
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
