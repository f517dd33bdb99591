// The rows a batch run scores, read from object storage in chunks: Parquet through hyparquet (one row group at a
// time, fetched with ranged GETs, so a file larger than memory is fine) or CSV through csv-parse (streamed).
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { parse } from 'csv-parse';
import { parquetMetadataAsync, parquetReadObjects, parquetSchema, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { Readable } from 'node:stream';
import { getObjectStream, parseS3Uri, storageError } from '../../../operator/api/object-storage.ts';

export type Row = Record<string, unknown>;

export interface RowSource {
  /** Column names of the input, in file order. */
  columns: string[];
  /** The rows in chunks of about `chunkRows`, in file order. */
  chunks(chunkRows: number): AsyncGenerator<Row[]>;
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
        const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${last}` }));
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
      let rowStart = 0;
      for (const group of metadata.row_groups) {
        const groupEnd = rowStart + Number(group.num_rows);
        // A row group is read whole (its column chunks are contiguous); handed on in chunks of chunkRows.
        const rows = await parquetReadObjects({ file, metadata, columns: wanted, rowStart, rowEnd: groupEnd, compressors });
        for (let i = 0; i < rows.length; i += chunkRows) yield rows.slice(i, i + chunkRows);
        rowStart = groupEnd;
      }
    },
  };
}

/** A CSV cell as the model input validation should see it: empty is missing, a number is a number, anything else stays text. */
function csvValue(cell: string): unknown {
  if (cell === '') return null;
  const value = Number(cell);
  return Number.isNaN(value) && cell.trim() !== 'NaN' ? cell : value;
}

async function csvSource(client: S3Client, uri: string, wanted: string[], numeric: ReadonlySet<string>): Promise<RowSource> {
  const object = await getObjectStream(client, uri);
  const parser = Readable.from(object.body).pipe(parse({ columns: true, skip_empty_lines: true, bom: true, relax_column_count: false }));
  const iterator = parser[Symbol.asyncIterator]();
  const first = await iterator.next();
  const columns = first.done ? [] : Object.keys(first.value as Row);
  checkColumns(uri, columns, wanted);
  const convert = (raw: Record<string, string>): Row => {
    const row: Row = {};
    for (const name of wanted) row[name] = numeric.has(name) ? csvValue(raw[name]) : raw[name];
    return row;
  };
  return {
    columns,
    async *chunks(chunkRows) {
      if (first.done) return;
      let chunk: Row[] = [convert(first.value as Record<string, string>)];
      try {
        for (;;) {
          const next = await iterator.next();
          if (next.done) break;
          chunk.push(convert(next.value as Record<string, string>));
          if (chunk.length >= chunkRows) {
            yield chunk;
            chunk = [];
          }
        }
      } catch (error) {
        throw new Error(`${uri}: ${(error as Error).message}`, { cause: error });
      }
      if (chunk.length) yield chunk;
    },
  };
}

function checkColumns(uri: string, columns: string[], wanted: string[]): void {
  const missing = wanted.filter((name) => !columns.includes(name));
  if (missing.length) {
    throw new Error(`${uri} has no column${missing.length > 1 ? 's' : ''} ${missing.map((m) => `"${m}"`).join(', ')} (it has ${columns.map((c) => `"${c}"`).join(', ') || 'none'}): correct spec.batch[].features or columns, or the input`);
  }
}

/**
 * The input's rows with only the `wanted` columns. `features` are the model's inputs: CSV cells of them are read
 * as numbers where they are numbers (text stays text, for validation to reject with the reason).
 */
export async function openInput(client: S3Client, input: { uri: string; format: 'parquet' | 'csv' }, wanted: string[], features: readonly string[]): Promise<RowSource> {
  return input.format === 'csv' ? csvSource(client, input.uri, wanted, new Set(features)) : parquetSource(client, input.uri, wanted);
}
