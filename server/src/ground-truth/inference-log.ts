// The inference log: a sample of what this process answered, kept off the request path. A prediction's rows
// are written into typed-array columns of its model version's batch (log-batch.ts: a few stores per row, no
// object, nothing awaited); a batch is sealed when it reaches maxRowsPerPart rows, every flushInterval and on
// shutdown, and encoded into a Parquet part on the encoder thread (part-encoder.ts), so the serving thread
// never encodes. Each part is written once under a unique name (layout.ts). Memory is bounded: rows beyond
// maxBufferedRows (buffered, being encoded, or encoded but not yet written, e.g. while storage is down) are
// dropped and counted. A part that fails to write is retried under the same name until it is written, or
// dropped at shutdown.
import type { Logger } from 'pino';
import type { InferenceLogOptions } from '../config.ts';
import type { ServerMetrics } from '../metrics/metrics.ts';
import type { Feeds } from '../runtime/batcher.ts';
import type { ServedModel } from '../serving.ts';
import { inferenceLogKey, partNamer, type Scope } from './layout.ts';
import { LogBatch, type Columns as BatchColumns } from './log-batch.ts';
import { PartEncoder } from './part-encoder.ts';
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
/** Encoded jobs' arrays kept for new batches (see log-batch.ts): enough for a part being filled while one encodes. */
const SPARE_ARRAYS = 2;
const RETRY_MAX_MS = 30_000;
const PARQUET = 'application/vnd.apache.parquet';

/**
 * Wait `ms`, or less when `settled` settles first; the timer is cleared either way, so a wait cut short does
 * not keep the process alive for the rest of it.
 */
async function waitAtMost(ms: number, settled?: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const elapsed = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  try {
    await (settled ? Promise.race([settled, elapsed]) : elapsed);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Whether a request is in the sample: by a hash of its id (FNV-1a, then murmur3's finalizer to spread similar
 * ids), not a coin, so every version a request reaches decides alike: in shadow mode stable and canary log the
 * same requests, which the paired comparison needs (a coin each would pair only rate² of them).
 */
export function sampled(id: string, rate: number): boolean {
  if (rate >= 1) return true;
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296 < rate;
}

/** The score of row r: the first output's value, or the positive class's of a two-class probability output. */
function scoreOf(data: ArrayLike<unknown>, width: number, r: number): number {
  if (width === 1) return Number(data[r]);
  if (width === 2) return Number(data[r * 2 + 1]);
  return NaN;
}

export class InferenceLog {
  private readonly batches = new Map<ServedModel, LogBatch>();
  private readonly columnsOf = new WeakMap<ServedModel, Columns | null>();
  private readonly sealed: Part[] = [];
  private readonly encoder = new PartEncoder();
  /** Arrays of encoded parts for new batches to write into, largest last. */
  private readonly spare: BatchColumns[] = [];
  /** Parts handed to the encoder and not yet back. */
  private readonly encoding = new Set<Promise<void>>();
  private bufferedRows = 0;
  private encodingRows = 0;
  private sealedRows = 0;
  private readonly nextPart: (now: number) => string;
  private timer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
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
    metrics.reportInferenceLogBuffered(() => this.pendingRows);
  }

  start(): void {
    this.timer = setInterval(() => this.flush(), this.options.flushIntervalMs);
    this.timer.unref();
  }

  /** Rows held in memory: buffered, being encoded, or encoded and waiting to be written. */
  get pendingRows(): number {
    return this.bufferedRows + this.encodingRows + this.sealedRows;
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
    // A stream's chunk is sampled on its own, by its first row's id.
    if (!sampled(rowId ? rowId(0) : requestId, this.options.sampleRate)) return;
    const columns = this.columnsFor(served);
    if (!columns) return;
    if (this.pendingRows + rows > this.options.maxBufferedRows) {
      this.metrics.inferenceLogDropped.inc({ reason: 'buffer_full' }, rows);
      return;
    }
    const now = Date.now();
    const specs = served.model.signature.outputs;
    const first = outputs[specs[0].name];
    // A BYTES output has no score.
    const firstWidth = first.datatype === 'BYTES' ? 0 : first.data.length / rows;
    const features = columns.inputNames.length;
    const logged = columns.outputs.map((k) => outputs[specs[k].name].data);
    const values = input && features > 0 ? input.data : undefined;
    let batch = this.batches.get(served);
    for (let r = 0; r < rows; r++) {
      if (!batch) {
        batch = new LogBatch(
          this.options.maxRowsPerPart,
          served.name,
          columns.version,
          this.options.pod,
          columns.inputNames,
          columns.outputNames,
          this.spare.pop(),
        );
        this.batches.set(served, batch);
      }
      batch.reserve();
      const at = batch.rows;
      batch.times[at] = now;
      batch.scores[at] = scoreOf(first.data, firstWidth, r);
      for (let j = 0; j < features; j++) batch.inputs[j][at] = values ? values[r * features + j] : NaN;
      for (let k = 0; k < logged.length; k++) batch.outputs[k][at] = Number(logged[k][r]);
      if (rowId) batch.endRow(rowId(r), -1);
      else batch.endRow(requestId, rows === 1 ? -1 : r);
      this.bufferedRows++;
      if (batch.full) {
        this.batches.delete(served);
        this.seal(served, batch);
        batch = undefined;
      }
    }
  }

  /** Seal every batch into parts and start writing them; never throws. */
  flush(): void {
    for (const [served, batch] of this.batches) this.seal(served, batch);
    this.batches.clear();
    this.drain();
  }

  /** Stop taking rows; write what is held within `deadlineMs`, and count what could not be written as dropped. */
  async close(deadlineMs: number): Promise<void> {
    this.closing = true;
    clearInterval(this.timer);
    const deadline = Date.now() + deadlineMs;
    this.flush();
    const left = () => Math.max(0, deadline - Date.now());
    if (this.encoding.size > 0) await waitAtMost(left(), Promise.all(this.encoding));
    while (this.sealed.length > 0 && Date.now() < deadline) {
      // A write that hangs must not hold the shutdown past the deadline.
      if (this.draining) await waitAtMost(left(), this.draining);
      if (this.sealed.length === 0 || Date.now() >= deadline) break;
      await waitAtMost(Math.min(RETRY_MIN_MS, left()));
      this.retryAt = 0;
      this.drain();
    }
    const lost = this.encodingRows + this.sealedRows;
    if (lost > 0) {
      this.log.error(
        { rows: lost, parts: this.sealed.length + this.encoding.size },
        'inference log: storage did not take the last parts before shutdown; their rows are lost',
      );
      this.metrics.inferenceLogDropped.inc({ reason: 'shutdown' }, lost);
      this.sealed.length = 0;
      this.sealedRows = 0;
      this.encodingRows = 0;
    }
    this.encoding.clear();
    await this.encoder.close();
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

  /** Hand `batch` to the encoder; its part joins the write queue in sealing order once encoded. */
  private seal(served: ServedModel, batch: LogBatch): void {
    const rows = batch.rows;
    if (rows === 0) return;
    // Named now, so parts keep the order their rows came in.
    const uri = inferenceLogKey(
      this.options.uri,
      this.scope,
      served.version,
      batch.times[0],
      this.nextPart(Date.now()),
    );
    this.bufferedRows -= rows;
    this.encodingRows += rows;
    const settle = () => {
      this.encodingRows -= rows;
      this.encoding.delete(done);
    };
    const done: Promise<void> = this.encoder.encode(batch.job()).then(
      ({ bytes, columns }) => {
        // Counted as lost at shutdown already.
        if (!this.encoding.has(done)) return;
        settle();
        this.keepSpare(columns);
        this.sealed.push({ uri, rows, bytes, model: served.name, version: served.version });
        this.sealedRows += rows;
        this.drain();
      },
      (error: Error) => {
        if (!this.encoding.has(done)) return;
        settle();
        this.log.error({ err: error, rows }, 'inference log: encoding a part failed; its rows are lost');
        this.metrics.inferenceLogDropped.inc({ reason: 'encoding' }, rows);
      },
    );
    this.encoding.add(done);
  }

  /** Keep an encoded part's arrays for a later batch: the largest SPARE_ARRAYS of them. */
  private keepSpare(columns: BatchColumns): void {
    if (this.closing) return;
    const rows = (c: BatchColumns) => c.idEnds.length;
    this.spare.push(columns);
    this.spare.sort((a, b) => rows(a) - rows(b));
    if (this.spare.length > SPARE_ARRAYS) this.spare.shift();
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
      }
    })().finally(() => {
      this.draining = undefined;
    });
  }
}
