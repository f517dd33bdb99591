// The rows a batch run scores, read from object storage in chunks of columns: Parquet through hyparquet (one row
// group at a time, fetched with ranged GETs, so a file larger than memory is fine) or CSV through csv-parse
// (streamed). Columns, not row objects: a million objects cost more to make and collect than to score.
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { parse } from 'csv-parse';
import { parquetMetadataAsync, parquetRead, parquetSchema, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { Readable } from 'node:stream';
import { getObjectStream, parseS3Uri, storageError } from '../../../operator/api/object-storage.ts';

export type Row = Record<string, unknown>;

/** Consecutive rows, by column: `columns[name][i]` is row i's value; every wanted column has `rows` values. */
export interface ColumnChunk {
  rows: number;
  columns: Record<string, ArrayLike<unknown>>;
}

export interface RowSource {
  /** Column names of the input, in file order. */
  columns: string[];
  /** The wanted columns' values in chunks of at most `chunkRows` rows, in file order. */
  chunks(chunkRows: number): AsyncGenerator<ColumnChunk>;
}

/** Row `i` of a chunk as an object of its columns (for a rejected row's record). */
export function rowOf(chunk: ColumnChunk, i: number): Row {
  const row: Row = {};
  for (const name in chunk.columns) row[name] = chunk.columns[name][i];
  return row;
}

type Column = ArrayLike<unknown> & { slice(start: number, end: number): ArrayLike<unknown> };

/** Rows [start, end) of every column; typed arrays are viewed, not copied. */
function window(columns: Record<string, Column>, start: number, end: number): ColumnChunk {
  const out: Record<string, ArrayLike<unknown>> = {};
  for (const name in columns) {
    const column = columns[name];
    out[name] = ArrayBuffer.isView(column)
      ? (column as unknown as Float64Array).subarray(start, end)
      : column.slice(start, end);
  }
  return { rows: end - start, columns: out };
}

/** An S3 object as hyparquet's AsyncBuffer: each slice one ranged GET. */
async function s3AsyncBuffer(client: S3Client, uri: string): Promise<AsyncBuffer> {
  const { bucket, key } = parseS3Uri(uri);
  let byteLength: number;
  try {
    byteLength = (await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ContentLength ?? 0;
  } catch (error) {
    throw storageError(uri, 'HEAD', error);
  }
  return {
    byteLength,
    async slice(start: number, end?: number): Promise<ArrayBuffer> {
      const last = (end ?? byteLength) - 1;
      try {
        const response = await client.send(
          new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${last}` }),
        );
        const bytes = await response.Body!.transformToByteArray();
        return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
      } catch (error) {
        throw storageError(uri, `GET bytes ${start}-${last} of`, error);
      }
    },
  };
}

async function parquetSource(client: S3Client, uri: string, wanted: string[]): Promise<RowSource> {
  const file = await s3AsyncBuffer(client, uri);
  let metadata: FileMetaData;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (error) {
    throw new Error(`${uri} is not a Parquet file: ${(error as Error).message}`);
  }
  const columns = parquetSchema(metadata).children.map((child) => child.element.name);
  checkColumns(uri, columns, wanted);
  return {
    columns,
    async *chunks(chunkRows) {
      let groupStart = 0;
      for (const group of metadata.row_groups) {
        const groupRows = Number(group.num_rows);
        const groupEnd = groupStart + groupRows;
        // A row group is read whole, column by column (its column chunks are contiguous), and handed on in
        // windows of chunkRows: no object per row.
        const pieces: Record<string, Array<{ at: number; data: Column }>> = Object.fromEntries(
          wanted.map((name) => [name, []]),
        );
        await parquetRead({
          file,
          metadata,
          columns: wanted,
          rowStart: groupStart,
          rowEnd: groupEnd,
          compressors,
          onChunk: (chunk) => pieces[chunk.columnName]?.push({ at: chunk.rowStart, data: chunk.columnData as Column }),
        });
        const columns: Record<string, Column> = {};
        for (const name of wanted) columns[name] = joinPieces(pieces[name], groupStart, groupRows);
        for (let i = 0; i < groupRows; i += chunkRows) yield window(columns, i, Math.min(i + chunkRows, groupRows));
        groupStart = groupEnd;
      }
    },
  };
}

/** One column of a row group from the pieces hyparquet decoded (usually one), each placed at its first row. */
function joinPieces(pieces: Array<{ at: number; data: Column }>, groupStart: number, groupRows: number): Column {
  if (pieces.length === 1 && pieces[0].at === groupStart && pieces[0].data.length === groupRows) return pieces[0].data;
  const joined = new Array<unknown>(groupRows).fill(null);
  for (const { at, data } of pieces) {
    for (let i = 0; i < data.length; i++) {
      const row = at - groupStart + i;
      if (row >= 0 && row < groupRows) joined[row] = data[i];
    }
  }
  return joined;
}

/** A CSV cell as the model input validation should see it: empty is missing, a finite number is a number, anything else stays text. */
function csvValue(cell: string): unknown {
  if (cell === '') return null;
  const value = Number(cell);
  return Number.isFinite(value) && cell.trim() !== '' ? value : cell;
}

async function csvSource(
  client: S3Client,
  uri: string,
  wanted: string[],
  numeric: ReadonlySet<string>,
): Promise<RowSource> {
  const object = await getObjectStream(client, uri);
  const parser = Readable.from(object.body).pipe(
    parse({ skip_empty_lines: true, bom: true, relax_column_count: false }),
  );
  const records = parser[Symbol.asyncIterator]() as AsyncIterator<string[]>;
  const header = await records.next().catch((error: Error) => {
    throw new Error(`${uri}: ${error.message}`, { cause: error });
  });
  const columns = header.done ? [] : header.value;
  checkColumns(uri, columns, wanted);
  const positions = wanted.map((name) => columns.indexOf(name));
  const convert = wanted.map((name) => numeric.has(name));
  return {
    columns,
    async *chunks(chunkRows) {
      let values: unknown[][] = wanted.map(() => []);
      let rows = 0;
      const flush = (): ColumnChunk => {
        const chunk = { rows, columns: Object.fromEntries(wanted.map((name, c) => [name, values[c]])) };
        values = wanted.map(() => []);
        rows = 0;
        return chunk;
      };
      try {
        for (;;) {
          const next = await records.next();
          if (next.done) break;
          for (let c = 0; c < wanted.length; c++) {
            const cell = next.value[positions[c]];
            values[c].push(convert[c] ? csvValue(cell) : cell);
          }
          if (++rows >= chunkRows) yield flush();
        }
      } catch (error) {
        throw new Error(`${uri}: ${(error as Error).message}`, { cause: error });
      }
      if (rows > 0) yield flush();
    },
  };
}

function checkColumns(uri: string, columns: string[], wanted: string[]): void {
  const missing = wanted.filter((name) => !columns.includes(name));
  if (missing.length) {
    throw new Error(
      `${uri} has no column${missing.length > 1 ? 's' : ''} ${missing.map((m) => `"${m}"`).join(', ')} (it has ${columns.map((c) => `"${c}"`).join(', ') || 'none'}): correct spec.batch[].features or columns, or the input`,
    );
  }
}

/**
 * The input's rows with only the `wanted` columns. `features` are the model's inputs: CSV cells of them are read
 * as numbers where they are numbers (text stays text, for validation to reject with the reason).
 */
export async function openInput(
  client: S3Client,
  input: { uri: string; format: 'parquet' | 'csv' },
  wanted: string[],
  features: readonly string[],
): Promise<RowSource> {
  return input.format === 'csv'
    ? csvSource(client, input.uri, wanted, new Set(features))
    : parquetSource(client, input.uri, wanted);
}
