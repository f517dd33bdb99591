// Reading what the predictor wrote with an independent Parquet reader, DuckDB (@duckdb/node-api): the part
// files of a file:// directory, or of an s3:// prefix copied to a temporary directory first (DuckDB's own S3
// support is an extension it would download).
import { mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { parseS3Uri } from '../../../operator/api/object-storage.ts';

/** Every file below `dir`, as paths relative to it. */
export function filesBelow(dir: string): string[] {
  let found: string[] = [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found = found.concat(filesBelow(path).map((p) => join(entry.name, p)));
    else found.push(entry.name);
  }
  return found;
}

/** Rows of `sql` run by DuckDB; `$parts` in it stands for the list of Parquet files given. */
export async function queryParquet(files: string[], sql: string): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const list = `[${files.map((f) => `'${f.replace(/'/g, "''")}'`).join(', ')}]`;
    const reader = await connection.runAndReadAll(
      sql.replaceAll('$parts', `read_parquet(${list}, hive_partitioning = false)`),
    );
    return reader.getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** Copies every object below the s3:// `prefix` into a new temporary directory; returns it. */
export async function downloadPrefix(client: S3Client, prefix: string): Promise<string> {
  const { bucket, key } = parseS3Uri(prefix);
  const dir = mkdtempSync(join(tmpdir(), 'loopline-parts-'));
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: key, ContinuationToken: token }));
    for (const object of page.Contents ?? []) {
      const body = await client.send(new GetObjectCommand({ Bucket: bucket, Key: object.Key! }));
      const path = join(dir, relative(key, object.Key!));
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, await body.Body!.transformToByteArray());
    }
    token = page.NextContinuationToken;
  } while (token);
  return dir;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
