// Rows of logged predictions and of labels as Parquet files (hyparquet-writer), with the column types of
// docs/ground-truth.md. Every column is REQUIRED: a missing input cell is NaN, never null. Options chosen for
// the encoder's CPU per row (server/bench/inference-log.bench.ts; measured on parts of FP32 model inputs, in
// µs per row 1.25 before, 0.65-0.8 after): ZSTD level 1 from node:zlib (native, where hyparquet-writer's
// Snappy is JavaScript; files a fifth smaller too); one page per column chunk (no page boundary sought value
// by value); doubles PLAIN (BYTE_STREAM_SPLIT is written byte by byte and saved 10% of the bytes under ZSTD)
// and time PLAIN (no dictionary tried on BigInt keys); statistics on time only (windows are cut by it;
// min/max on scores, inputs, unique ids or one-value columns prune nothing and cost a comparison per value);
// the columns of one value per part (model, version, pod) dictionary-encoded outright instead of sampled.
import { constants, zstdCompressSync } from 'node:zlib';
import { parquetWriteBuffer, type ColumnSource, type SchemaElement } from 'hyparquet-writer';

export type ColumnKind = 'string' | 'timestamp' | 'int32' | 'double';

export interface Column {
  name: string;
  kind: ColumnKind;
  /** Strings (or their UTF-8 bytes) for string, epoch milliseconds for timestamp, numbers otherwise. */
  data: ArrayLike<string | Uint8Array | number>;
  /** A column of (nearly) unique values, such as ids. */
  unique?: boolean;
  /** A column of one value, or very few (model, version, pod of a part). */
  constant?: boolean;
}

const ZSTD_LEVEL = { params: { [constants.ZSTD_c_compressionLevel]: 1 } };
const compressors = { ZSTD: (bytes: Uint8Array): Uint8Array => zstdCompressSync(bytes, ZSTD_LEVEL) };

/** What each kind of column is written with (see the top of this file). */
function options(column: Column): Partial<ColumnSource> {
  if (column.unique) return { encoding: 'PLAIN', statistics: false };
  if (column.constant) return { encoding: 'RLE_DICTIONARY', statistics: false };
  if (column.kind === 'timestamp') return { encoding: 'PLAIN' };
  if (column.kind === 'double') return { encoding: 'PLAIN', statistics: false };
  return {};
}

function element(column: Column): SchemaElement {
  const base = { name: column.name, repetition_type: 'REQUIRED' as const };
  switch (column.kind) {
    case 'string':
      return { ...base, type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' } };
    case 'timestamp':
      return {
        ...base,
        type: 'INT64',
        converted_type: 'TIMESTAMP_MILLIS',
        logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' },
      };
    case 'int32':
      return { ...base, type: 'INT32' };
    case 'double':
      return { ...base, type: 'DOUBLE' };
  }
}

function values(column: Column): ColumnSource['data'] {
  switch (column.kind) {
    case 'string':
      return Array.isArray(column.data) ? column.data : Array.from(column.data as ArrayLike<string | Uint8Array>);
    case 'timestamp':
      return int64Of(column.data as ArrayLike<number>);
    case 'int32':
      return column.data instanceof Int32Array ? column.data : Int32Array.from(column.data as ArrayLike<number>);
    case 'double':
      return column.data instanceof Float64Array ? column.data : Float64Array.from(column.data as ArrayLike<number>);
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Whole milliseconds (|ms| < 2^53) as int64, written as two 32-bit words: no BigInt made per value. */
function int64Of(ms: ArrayLike<number>): BigInt64Array {
  const out = new BigInt64Array(ms.length);
  const words = new Int32Array(out.buffer);
  const [lo, hi] = LITTLE_ENDIAN ? [0, 1] : [1, 0];
  for (let i = 0; i < ms.length; i++) {
    const v = Math.trunc(ms[i]);
    const high = Math.floor(v / 4294967296);
    words[2 * i + lo] = v - high * 4294967296;
    words[2 * i + hi] = high;
  }
  return out;
}

const CREATED_BY = 'loopline-predictor';

/** One Parquet file (one row group) holding `columns`, which must all have the same length. */
export function encodeParquet(columns: Column[]): Uint8Array {
  const rows = columns[0]?.data.length ?? 0;
  for (const c of columns)
    if (c.data.length !== rows) throw new Error(`column ${c.name} has ${c.data.length} rows, expected ${rows}`);
  const schema: SchemaElement[] = [{ name: 'root', num_children: columns.length }, ...columns.map(element)];
  const buffer = parquetWriteBuffer({
    columnData: columns.map((c) => ({ name: c.name, data: values(c), ...options(c) })),
    schema,
    codec: 'ZSTD',
    compressors,
    rowGroupSize: Math.max(rows, 1),
    pageSize: 0,
    createdBy: CREATED_BY,
  });
  return new Uint8Array(buffer);
}
