// Where a batch run's scores go, each in one all-or-nothing step per run:
//  - a PostgreSQL table: one transaction that deletes the previous rows and COPYs this run's in (pg +
//    pg-copy-streams). Readers see the previous rows until COMMIT; a run that fails anywhere rolls back and the
//    previous rows stay.
//  - an s3:// object: a Parquet file (hyparquet-writer) put once at the end; a failed run puts nothing.
import { once } from 'node:events';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { parquetWriteBuffer, type ColumnSource } from 'hyparquet-writer';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { SCORE_COLUMNS } from '../../../operator/api/batch-run.ts';
import { parseS3Uri, storageError } from '../../../operator/api/object-storage.ts';

/**
 * Rows scored in one model run, by column. Output row i is chunk row `rowIndex[i]`: its carried values
 * `carried[c][rowIndex[i]]`, then `scores[i]`, `segments[i]`, the model version and the time scored.
 */
export interface ScoredRows {
  /** One array per carried column, indexed by the chunk's rows. */
  carried: ArrayLike<unknown>[];
  rowIndex: ArrayLike<number>;
  scores: ArrayLike<number>;
  segments: Array<string | null>;
  count: number;
}

export interface ScoreSink {
  /** Rows scored in one model run; resolves when the sink can take more. */
  write(rows: ScoredRows): Promise<void>;
  /** Makes every row written visible at once. */
  commit(): Promise<void>;
  /** Leaves the output as it was before the run. */
  abort(): Promise<void>;
}

export interface RunStamp {
  version: number;
  scoredAt: Date;
}

/** A value in COPY's text format: \N for null; backslash, tab, newline and carriage return escaped. */
export function copyText(value: unknown): string {
  if (value === null || value === undefined) return '\\N';
  const text =
    value instanceof Date ? value.toISOString() : typeof value === 'object' ? JSON.stringify(value) : String(value);
  return /[\\\t\n\r]/.test(text)
    ? text.replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c]!)
    : text;
}

/** `schema.table` or `table`, each part quoted as an identifier. */
function tableIdentifier(table: string): string {
  return table
    .split('.')
    .map((part) => pg.escapeIdentifier(part))
    .join('.');
}

/** A PostgreSQL error as the run reports it: the server's message and code, never the connection string. */
function postgresError(table: string, step: string, error: unknown): Error {
  const e = error as { message?: string; code?: string; where?: string };
  return new Error(
    `PostgreSQL ${step} ${step === 'connection' ? 'for' : 'of'} table ${table} failed: ${e.message ?? String(error)}${e.code ? ` (SQLSTATE ${e.code})` : ''}${e.where ? `; ${e.where}` : ''}`,
    { cause: error },
  );
}

/**
 * The table, created when missing with the carried columns as text. An existing table keeps its own column types:
 * COPY converts each value (a customer_id column of type bigint takes "123"; a value it cannot convert fails the
 * run and rolls it back).
 */
export async function postgresSink(
  connectionString: string,
  table: string,
  carried: string[],
  stamp: RunStamp,
): Promise<ScoreSink> {
  const client = new pg.Client({ connectionString, application_name: 'loopline-batch' });
  // An error on the idle connection (the server went away) surfaces on the next query; it must not crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    throw postgresError(table, 'connection', error);
  }
  const name = tableIdentifier(table);
  const columns = [...carried, ...SCORE_COLUMNS].map((c) => pg.escapeIdentifier(c));
  const stampText = `\t${stamp.version}\t${stamp.scoredAt.toISOString()}\n`;
  let step = 'BEGIN';
  let copy: ReturnType<typeof copyFrom> | undefined;
  let copyFailed: Error | undefined;
  try {
    await client.query('BEGIN');
    step = 'CREATE';
    const definitions = [
      ...carried.map((c) => `${pg.escapeIdentifier(c)} text`),
      'score double precision NOT NULL',
      'segment text',
      'model_version integer NOT NULL',
      'scored_at timestamptz NOT NULL',
    ];
    await client.query(`CREATE TABLE IF NOT EXISTS ${name} (${definitions.join(', ')})`);
    step = 'DELETE';
    await client.query(`DELETE FROM ${name}`);
    step = 'COPY';
    copy = client.query(copyFrom(`COPY ${name} (${columns.join(', ')}) FROM STDIN`));
    copy.on('error', (error: Error) => {
      copyFailed = error;
    });
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    await client.end().catch(() => undefined);
    throw postgresError(table, step, error);
  }
  const stream = copy;
  const finished = new Promise<void>((resolve, reject) => {
    stream.on('finish', resolve);
    stream.on('error', reject);
  });
  finished.catch(() => undefined);
  return {
    async write(rows) {
      if (copyFailed) throw postgresError(table, 'COPY', copyFailed);
      let text = '';
      for (let i = 0; i < rows.count; i++) {
        const row = rows.rowIndex[i];
        for (const column of rows.carried) text += `${copyText(column[row])}\t`;
        const segment = rows.segments[i];
        text += `${rows.scores[i]}\t${segment === null ? '\\N' : copyText(segment)}${stampText}`;
      }
      try {
        if (!stream.write(text)) await Promise.race([once(stream, 'drain'), finished]);
      } catch (error) {
        throw postgresError(table, 'COPY', copyFailed ?? error);
      }
      if (copyFailed) throw postgresError(table, 'COPY', copyFailed);
    },
    async commit() {
      try {
        stream.end();
        await finished;
        step = 'COMMIT';
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw postgresError(table, step === 'COMMIT' ? 'COMMIT' : 'COPY', error);
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    async abort() {
      // Ending the COPY with an error makes the server fail it; the rollback then undoes the DELETE too.
      if (!copyFailed && stream.writable) stream.destroy(new Error('batch run aborted'));
      await finished.catch(() => undefined);
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end().catch(() => undefined);
    },
  };
}

/** The run's rows as one Parquet object, put when the run commits. */
export function parquetSink(s3: S3Client, uri: string, carried: string[], stamp: RunStamp): ScoreSink {
  const carriedData: unknown[][] = carried.map(() => []);
  const scores: number[] = [];
  const segments: Array<string | null> = [];
  return {
    async write(rows) {
      for (let i = 0; i < rows.count; i++) {
        const row = rows.rowIndex[i];
        for (let c = 0; c < carried.length; c++) carriedData[c].push(rows.carried[c][row] ?? null);
        scores.push(rows.scores[i]);
        segments.push(rows.segments[i]);
      }
    },
    async commit() {
      const n = scores.length;
      const columnData: ColumnSource[] = [
        ...carried.map((name, c) => ({ name, data: carriedData[c] as ColumnSource['data'] })),
        { name: 'score', data: scores, type: 'DOUBLE', nullable: false },
        { name: 'segment', data: segments, type: 'STRING' },
        { name: 'model_version', data: new Array(n).fill(stamp.version), type: 'INT32', nullable: false },
        { name: 'scored_at', data: new Array(n).fill(stamp.scoredAt), type: 'TIMESTAMP', nullable: false },
      ];
      const body = new Uint8Array(parquetWriteBuffer({ columnData }));
      const { bucket, key } = parseS3Uri(uri);
      try {
        await s3.send(
          new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/vnd.apache.parquet' }),
        );
      } catch (error) {
        throw storageError(uri, 'PUT', error);
      }
    },
    async abort() {},
  };
}
