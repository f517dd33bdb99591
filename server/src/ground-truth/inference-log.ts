// The inference log: a sample of what this process answered, kept off the request path. A prediction is
// copied into an in-memory batch of its model version (a few array pushes, nothing awaited); batches are
// sealed into Parquet parts when they reach maxRowsPerPart rows or every flushInterval, and on shutdown, and
// each part is written once under a unique name (layout.ts). Memory is bounded: rows beyond maxBufferedRows
// (buffered plus sealed but not yet written, e.g. while storage is down) are dropped and counted. A part that
// fails to write is retried under the same name until it is written, or dropped at shutdown.
import type { Logger } from 'pino';
import type { InferenceLogOptions } from '../config.ts';
import type { ServerMetrics } from '../metrics/metrics.ts';
import type { Feeds } from '../runtime/batcher.ts';
import type { ServedModel } from '../serving.ts';
import { inferenceLogKey, partNamer, type Scope } from './layout.ts';
import { encodeParquet, type Column } from './parquet.ts';
import type { PartStore } from './store.ts';

export type { InferenceLogOptions };

/** Which columns a model version's rows have: set once per served version. */
interface Columns {
  version: number;
  inputNames: string[];
  outputNames: string[];
  /** Signature outputs (by index) logged as output_<name>, one value per row. */
  outputs: number[];
}

/** The rows of one model version since the last seal, column by column. */
class Batch {
  ids: string[] = [];
  times: number[] = [];
  scores: number[] = [];
  inputs: number[][];
  outputs: number[][];
  constructor(
    readonly served: ServedModel,
    readonly columns: Columns,
  ) {
    this.inputs = columns.inputNames.map(() => []);
    this.outputs = columns.outputNames.map(() => []);
  }
  get rows(): number {
    return this.ids.length;
  }
}

interface Part {
  uri: string;
  rows: number;
  bytes: Uint8Array;
  model: string;
  version: string;
}

export interface PredictionInput {
  /** Row-major values of the model's [rows, features] input as it was given. */
  data: ArrayLike<number>;
  features: number;
}

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;
const PARQUET = 'application/vnd.apache.parquet';

/** The score of row r: the first output's value, or the positive class's of a two-class probability output. */
function scoreOf(data: ArrayLike<unknown>, width: number, r: number): number {
  if (width === 1) return Number(data[r]);
  if (width === 2) return Number(data[r * 2 + 1]);
  return NaN;
}

export class InferenceLog {
  private readonly batches = new Map<ServedModel, Batch>();
  private readonly columnsOf = new WeakMap<ServedModel, Columns | null>();
  private readonly sealed: Part[] = [];
  private bufferedRows = 0;
  private sealedRows = 0;
  private readonly nextPart: (now: number) => string;
  private timer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
  private flushQueued = false;
  private failures = 0;
  private retryAt = 0;
  private closing = false;

  constructor(
    private readonly options: InferenceLogOptions,
    private readonly scope: Scope,
    private readonly store: PartStore,
    private readonly metrics: ServerMetrics,
    private readonly log: Logger,
  ) {
    this.nextPart = partNamer(options.pod);
  }

  start(): void {
    this.timer = setInterval(() => this.flush(), this.options.flushIntervalMs);
    this.timer.unref();
  }

  /** Rows held in memory, buffered or sealed and waiting to be written. */
  get pendingRows(): number {
    return this.bufferedRows + this.sealedRows;
  }

  /**
   * Log a prediction of `rows` rows, if the request is sampled. `requestId` names the request; with several
   * rows row i is `<requestId>:<i>`, or `rowId(i)` when given (stream rows keep their line number).
   */
  record(
    served: ServedModel,
    requestId: string,
    input: PredictionInput | undefined,
    outputs: Feeds,
    rows: number,
    rowId?: (i: number) => string,
  ): void {
    if (rows === 0 || this.closing) return;
    const rate = this.options.sampleRate;
    if (rate < 1 && !(Math.random() < rate)) return;
    const columns = this.columnsFor(served);
    if (!columns) return;
    if (this.bufferedRows + this.sealedRows + rows > this.options.maxBufferedRows) {
      this.metrics.inferenceLogDropped.inc({ reason: 'buffer_full' }, rows);
      return;
    }
    let batch = this.batches.get(served);
    if (!batch) this.batches.set(served, (batch = new Batch(served, columns)));
    const now = Date.now();
    const specs = served.model.signature.outputs;
    const first = outputs[specs[0].name];
    // A BYTES output has no score.
    const firstWidth = first.datatype === 'BYTES' ? 0 : first.data.length / rows;
    const features = columns.inputNames.length;
    for (let r = 0; r < rows; r++) {
      batch.ids.push(rowId ? rowId(r) : rows === 1 ? requestId : `${requestId}:${r}`);
      batch.times.push(now);
      batch.scores.push(scoreOf(first.data, firstWidth, r));
      if (input && features > 0) for (let j = 0; j < features; j++) batch.inputs[j].push(input.data[r * features + j]);
      else for (let j = 0; j < features; j++) batch.inputs[j].push(NaN);
      for (let k = 0; k < columns.outputs.length; k++)
        batch.outputs[k].push(Number(outputs[specs[columns.outputs[k]].name].data[r]));
    }
    this.bufferedRows += rows;
    this.metrics.inferenceLogBuffered.set(this.bufferedRows + this.sealedRows);
    if (batch.rows >= this.options.maxRowsPerPart && !this.flushQueued) {
      this.flushQueued = true;
      setImmediate(() => this.flush());
    }
  }

  /** Seal every batch into parts and start writing them; never throws. */
  flush(): void {
    this.flushQueued = false;
    for (const batch of this.batches.values()) this.seal(batch);
    this.batches.clear();
    this.drain();
  }

  /** Stop taking rows; write what is held within `deadlineMs`, and count what could not be written as dropped. */
  async close(deadlineMs: number): Promise<void> {
    this.closing = true;
    clearInterval(this.timer);
    const deadline = Date.now() + deadlineMs;
    this.flush();
    const until = (ms: number) =>
      new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(ms, deadline - Date.now()))));
    while (this.sealed.length > 0 && Date.now() < deadline) {
      // A write that hangs must not hold the shutdown past the deadline.
      await Promise.race([this.draining, until(Infinity)]);
      if (this.sealed.length === 0 || Date.now() >= deadline) break;
      await until(RETRY_MIN_MS);
      this.retryAt = 0;
      this.drain();
    }
    if (this.sealedRows > 0) {
      this.log.error(
        { rows: this.sealedRows, parts: this.sealed.length },
        'inference log: storage did not take the last parts before shutdown; their rows are lost',
      );
      this.metrics.inferenceLogDropped.inc({ reason: 'shutdown' }, this.sealedRows);
      this.sealed.length = 0;
      this.sealedRows = 0;
      this.metrics.inferenceLogBuffered.set(0);
    }
  }

  private columnsFor(served: ServedModel): Columns | null {
    let columns = this.columnsOf.get(served);
    if (columns !== undefined) return columns;
    const version = Number(served.version);
    if (!Number.isInteger(version) || Math.abs(version) > 2 ** 31 - 1) {
      this.log.warn(
        { version: served.version },
        'inference log: the version is not an integer; its predictions are not logged',
      );
      columns = null;
    } else {
      const layout = typeof served.rows === 'string' ? undefined : served.rows.layout;
      const inputNames = layout
        ? Array.from({ length: layout.features }, (_, j) => `input_${layout.featureNames?.[j] ?? j}`)
        : [];
      const outputs: number[] = [];
      served.model.signature.outputs.forEach((spec, k) => {
        const perRow = spec.shape.slice(1).reduce((a, b) => a * b, 1);
        if (spec.datatype !== 'BYTES' && perRow === 1) outputs.push(k);
      });
      columns = {
        version,
        inputNames,
        outputNames: outputs.map((k) => `output_${served.model.signature.outputs[k].name}`),
        outputs,
      };
    }
    this.columnsOf.set(served, columns);
    return columns;
  }

  private seal(batch: Batch): void {
    const size = this.options.maxRowsPerPart;
    for (let start = 0; start < batch.rows; start += size) {
      const end = Math.min(batch.rows, start + size);
      const slice = <T>(values: T[]) => (start === 0 && end === values.length ? values : values.slice(start, end));
      const rows = end - start;
      const { served, columns } = batch;
      const table: Column[] = [
        { name: 'request_id', kind: 'string', data: slice(batch.ids), unique: true },
        { name: 'time', kind: 'timestamp', data: slice(batch.times) },
        { name: 'model', kind: 'string', data: new Array(rows).fill(served.name) },
        { name: 'version', kind: 'int32', data: new Int32Array(rows).fill(columns.version) },
        { name: 'pod', kind: 'string', data: new Array(rows).fill(this.options.pod) },
        { name: 'score', kind: 'double', data: slice(batch.scores) },
        ...columns.inputNames.map((name, j) => ({ name, kind: 'double' as const, data: slice(batch.inputs[j]) })),
        ...columns.outputNames.map((name, k) => ({ name, kind: 'double' as const, data: slice(batch.outputs[k]) })),
      ];
      const firstRow = batch.times[start];
      let bytes: Uint8Array;
      try {
        bytes = encodeParquet(table);
      } catch (error) {
        this.log.error({ err: error, rows }, 'inference log: encoding a part failed; its rows are lost');
        this.metrics.inferenceLogDropped.inc({ reason: 'encoding' }, rows);
        this.bufferedRows -= rows;
        continue;
      }
      const uri = inferenceLogKey(this.options.uri, this.scope, served.version, firstRow, this.nextPart(Date.now()));
      this.sealed.push({ uri, rows, bytes, model: served.name, version: served.version });
      this.bufferedRows -= rows;
      this.sealedRows += rows;
    }
  }

  /** Write sealed parts one at a time, oldest first; after a failure wait (backing off) before the next try. */
  private drain(): void {
    if (this.draining || this.sealed.length === 0 || Date.now() < this.retryAt) return;
    this.draining = (async () => {
      while (this.sealed.length > 0) {
        const part = this.sealed[0];
        try {
          await this.store.put(part.uri, part.bytes, PARQUET);
        } catch (error) {
          this.failures++;
          const wait = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (this.failures - 1));
          this.retryAt = Date.now() + wait;
          this.metrics.inferenceLogWriteFailures.inc();
          this.log.warn(
            { uri: part.uri, err: (error as Error).message, retryInMs: wait, pendingRows: this.pendingRows },
            'inference log: writing a part failed; retrying',
          );
          // retryAt is cleared by the timer itself: timers may fire a millisecond before Date.now() says.
          setTimeout(() => {
            this.retryAt = 0;
            this.drain();
          }, wait).unref();
          return;
        }
        this.failures = 0;
        this.sealed.shift();
        this.sealedRows -= part.rows;
        this.metrics.inferenceLogParts.inc();
        this.metrics.inferenceLogRows.inc({ model: part.model, model_version: part.version }, part.rows);
        this.metrics.inferenceLogBuffered.set(this.bufferedRows + this.sealedRows);
      }
    })().finally(() => {
      this.draining = undefined;
    });
  }
}
