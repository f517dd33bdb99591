// The rows of one model version's next inference-log part, kept column by column in typed arrays that grow by
// doubling up to the part size: logging a row writes a few numbers and the request id's bytes, and makes no
// object. A full or flushed batch becomes a PartJob, plain data whose buffers move to the encoder thread
// (part-encoder.ts) without a copy and come back with the part's bytes, to be written into again by a later
// batch: in a steady stream of parts the serving thread allocates no buffers. (V8 counts new ArrayBuffer
// memory towards its next full collection: fresh buffers for every part, about 2 MB per 10,000 rows, made the
// serving isolate mark its whole heap every few parts.) tableOf turns a job into the part's Parquet columns
// (docs/ground-truth.md).
import type { Column } from './parquet.ts';

/** A sealed batch: everything the encoder needs for one part, transferable to a worker thread. */
export interface PartJob {
  rows: number;
  model: string;
  version: number;
  pod: string;
  /** UTF-8 bytes of the request ids, row after row; row i ends at idEnds[i]. */
  ids: Uint8Array;
  idEnds: Int32Array;
  /** Epoch milliseconds. */
  times: Float64Array;
  scores: Float64Array;
  inputNames: string[];
  inputs: Float64Array[];
  outputNames: string[];
  outputs: Float64Array[];
}

/** A job's arrays once encoded, for a new batch to reuse; their contents are garbage. */
const COLUMN_FIELDS = ['ids', 'idEnds', 'times', 'scores', 'inputs', 'outputs'] as const;
export type Columns = Pick<PartJob, (typeof COLUMN_FIELDS)[number]>;

/** The job's column arrays, without its other fields: what goes back to be filled again. */
export function columnsOf(job: PartJob): Columns {
  const { ids, idEnds, times, scores, inputs, outputs } = job;
  return { ids, idEnds, times, scores, inputs, outputs } satisfies Record<(typeof COLUMN_FIELDS)[number], unknown>;
}

/** The buffers a job's column arrays live in (each once), for a transfer list. */
export function buffersOf(job: PartJob): ArrayBuffer[] {
  const arrays = COLUMN_FIELDS.flatMap((field) => job[field]);
  return [...new Set(arrays.map((a) => a.buffer as ArrayBuffer))];
}

/** The part's columns, in the order and types of docs/ground-truth.md. */
export function tableOf(job: PartJob): Column[] {
  const { rows } = job;
  const ids = new Array<Uint8Array>(rows);
  let start = 0;
  for (let i = 0; i < rows; i++) {
    const end = job.idEnds[i];
    ids[i] = job.ids.subarray(start, end);
    start = end;
  }
  const upTo = (values: Float64Array) => values.subarray(0, rows);
  return [
    { name: 'request_id', kind: 'string', data: ids, unique: true },
    { name: 'time', kind: 'timestamp', data: upTo(job.times) },
    { name: 'model', kind: 'string', data: new Array(rows).fill(job.model), constant: true },
    { name: 'version', kind: 'int32', data: new Int32Array(rows).fill(job.version), constant: true },
    { name: 'pod', kind: 'string', data: new Array(rows).fill(job.pod), constant: true },
    { name: 'score', kind: 'double', data: upTo(job.scores) },
    ...job.inputNames.map((name, j) => ({ name, kind: 'double' as const, data: upTo(job.inputs[j]) })),
    ...job.outputNames.map((name, k) => ({ name, kind: 'double' as const, data: upTo(job.outputs[k]) })),
  ];
}

const INITIAL_ROWS = 256;
const COLON = 0x3a;
const ZERO = 0x30;
const utf8 = new TextEncoder();

function grown(values: Float64Array, capacity: number): Float64Array {
  const next = new Float64Array(capacity);
  next.set(values);
  return next;
}

/** Rows of one version since its last part; at most `limit` of them. */
export class LogBatch {
  rows = 0;
  private capacity: number;
  private ids: Uint8Array;
  private idBytes = 0;
  private idEnds: Int32Array;
  /** Columns, written at index `rows`: times, scores, then the inputs, then the outputs. */
  times: Float64Array;
  scores: Float64Array;
  inputs: Float64Array[];
  outputs: Float64Array[];

  constructor(
    readonly limit: number,
    readonly model: string,
    readonly version: number,
    readonly pod: string,
    readonly inputNames: string[],
    readonly outputNames: string[],
    /** Arrays of an encoded job to write into, when they have these columns. */
    reuse?: Columns,
  ) {
    if (reuse && reuse.inputs.length === inputNames.length && reuse.outputs.length === outputNames.length) {
      this.capacity = Math.min(limit, reuse.idEnds.length);
      this.ids = reuse.ids;
      this.idEnds = reuse.idEnds;
      this.times = reuse.times;
      this.scores = reuse.scores;
      this.inputs = reuse.inputs;
      this.outputs = reuse.outputs;
      return;
    }
    this.capacity = Math.min(limit, INITIAL_ROWS);
    this.ids = new Uint8Array(this.capacity * 40);
    this.idEnds = new Int32Array(this.capacity);
    this.times = new Float64Array(this.capacity);
    this.scores = new Float64Array(this.capacity);
    this.inputs = inputNames.map(() => new Float64Array(this.capacity));
    this.outputs = outputNames.map(() => new Float64Array(this.capacity));
  }

  get full(): boolean {
    return this.rows >= this.limit;
  }

  /** Make room for one more row (call before writing the columns at index `rows`). */
  reserve(): void {
    if (this.rows < this.capacity) return;
    const capacity = Math.min(this.limit, this.capacity * 2);
    this.times = grown(this.times, capacity);
    this.scores = grown(this.scores, capacity);
    this.inputs = this.inputs.map((c) => grown(c, capacity));
    this.outputs = this.outputs.map((c) => grown(c, capacity));
    const ends = new Int32Array(capacity);
    ends.set(this.idEnds);
    this.idEnds = ends;
    this.capacity = capacity;
  }

  /**
   * The id of the row at index `rows`: `id`, or `<id>:<suffix>` when suffix >= 0. Call once per row, after
   * its columns are written; it counts the row.
   */
  endRow(id: string, suffix: number): void {
    // Worst case: 3 UTF-8 bytes per UTF-16 unit, a colon and 16 digits.
    const need = this.idBytes + id.length * 3 + 17;
    if (need > this.ids.length) {
      const bytes = new Uint8Array(Math.max(need, this.ids.length * 2));
      bytes.set(this.ids.subarray(0, this.idBytes));
      this.ids = bytes;
    }
    const ids = this.ids;
    let at = this.idBytes;
    let ascii = true;
    for (let i = 0; i < id.length; i++) {
      const c = id.charCodeAt(i);
      if (c >= 0x80) {
        ascii = false;
        break;
      }
      ids[at++] = c;
    }
    if (!ascii) at = this.idBytes + utf8.encodeInto(id, ids.subarray(this.idBytes)).written;
    if (suffix >= 0) {
      ids[at++] = COLON;
      let digits = 1;
      for (let p = 10; p <= suffix; p *= 10) digits++;
      let n = suffix;
      for (let d = digits - 1; d >= 0; d--) {
        ids[at + d] = ZERO + (n % 10);
        n = Math.floor(n / 10);
      }
      at += digits;
    }
    this.idBytes = at;
    this.idEnds[this.rows++] = at;
  }

  /** The batch as a job; the batch must not be used after. */
  job(): PartJob {
    return {
      rows: this.rows,
      model: this.model,
      version: this.version,
      pod: this.pod,
      ids: this.ids,
      idEnds: this.idEnds,
      times: this.times,
      scores: this.scores,
      inputNames: this.inputNames,
      inputs: this.inputs,
      outputNames: this.outputNames,
      outputs: this.outputs,
    };
  }
}
