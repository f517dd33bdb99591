// Rows of logged predictions and of labels as Parquet files (hyparquet-writer), with the column types of
// docs/ground-truth.md. Every column is REQUIRED: a missing input cell is NaN, never null. Encodings chosen
// for what the columns hold (measured on FP32 model inputs): doubles BYTE_STREAM_SPLIT (faster to write and
// a third smaller after Snappy than PLAIN), request ids PLAIN without statistics (unique values: a dictionary
// is tried and thrown away, and their min/max prunes nothing).
import { parquetWriteBuffer, type ColumnSource, type SchemaElement } from 'hyparquet-writer';

export type ColumnKind = 'string' | 'timestamp' | 'int32' | 'double';

export interface Column {
  name: string;
  kind: ColumnKind;
  /** Strings (or their UTF-8 bytes) for string, epoch milliseconds for timestamp, numbers otherwise. */
  data: ArrayLike<string | Uint8Array | number>;
  /** A column of (nearly) unique values, such as ids. */
  unique?: boolean;
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
      return Array.from(column.data as ArrayLike<string | Uint8Array>);
    case 'timestamp':
      return int64Of(column.data as ArrayLike<number>);
    case 'int32':
      return Int32Array.from(column.data as ArrayLike<number>);
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
    columnData: columns.map((c) => ({
      name: c.name,
      data: values(c),
      ...(c.kind === 'double' ? { encoding: 'BYTE_STREAM_SPLIT' as const } : {}),
      ...(c.unique ? { encoding: 'PLAIN' as const, statistics: false } : {}),
    })),
    schema,
    rowGroupSize: Math.max(rows, 1),
    createdBy: CREATED_BY,
  });
  return new Uint8Array(buffer);
}
