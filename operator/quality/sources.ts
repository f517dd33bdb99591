/**
 * The files an evaluation reads, found under the ground-truth base URI (docs/ground-truth.md): the inference-log
 * parts of the window's days and every label file. `s3://` objects are downloaded to a local directory (the query
 * engine reads local files; its S3 extension would be fetched at run time), `file://` ones are read where they are.
 */
import { ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { getObjectStream, parseS3Uri, storageError } from '../api/object-storage.ts';

/** One object of the layout and where it can be read locally. */
export interface SourceFile {
  /** Key below the base URI, e.g. `labels/risk/fraud/date=2026-12-01/…parquet`. */
  key: string;
  /** A local path the engine reads. */
  path: string;
  /** The object's LastModified, in ms since the epoch: when a label file without a time column was recorded. */
  modifiedMs: number;
  size: number;
}

export function inferenceLogPrefix(namespace: string, service: string): string {
  return `inference-log/${namespace}/${service}/`;
}

export function labelsPrefix(namespace: string, service: string): string {
  return `labels/${namespace}/${service}/`;
}

/** `date=<yyyy-mm-dd>` in a key, if any: the UTC day of the part's first row. */
export function partitionDay(key: string): string | undefined {
  return /(?:^|\/)date=(\d{4}-\d{2}-\d{2})\//.exec(key)?.[1];
}

const DAY_MS = 86_400_000;
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * Whether an inference-log part may hold rows answered in (startMs, endMs]. Its `date=` is the day of its first
 * row, and a part written across midnight holds rows of the next day too, so the day before the window counts.
 */
export function partMayOverlap(key: string, startMs: number | null, endMs: number): boolean {
  const partDay = partitionDay(key);
  if (!partDay) return true;
  if (partDay > day(endMs)) return false;
  return startMs === null || partDay >= day(startMs - DAY_MS);
}

interface Listed {
  key: string;
  modifiedMs: number;
  size: number;
}

export interface Storage {
  /** Objects below `<base>/<prefix>`, keys relative to the base. */
  list(prefix: string): Promise<Listed[]>;
  /** A local path holding the object (downloaded into `dir` when remote). */
  local(object: Listed, dir: string): Promise<string>;
  /** The object's URI, for messages. */
  uri(key: string): string;
  /** Writes an object below the base (a file:// one appears whole: written aside, then renamed). */
  put(key: string, body: Uint8Array, contentType: string): Promise<void>;
}

export function storageFor(base: string, s3?: () => S3Client): Storage {
  const trimmed = base.replace(/\/+$/, '');
  if (trimmed.startsWith('file://')) return fileStorage(fileURLToPath(`${trimmed}/`), trimmed);
  if (trimmed.startsWith('s3://')) {
    if (!s3) throw new Error(`${base}: an s3:// base needs object storage settings`);
    return s3Storage(trimmed, s3());
  }
  throw new Error(
    `--uri ${base} is neither s3://<bucket>/<prefix> nor file:///<path>: give spec.logging.uri as one of them`,
  );
}

function fileStorage(root: string, base: string): Storage {
  return {
    uri: (key) => `${base}/${key}`,
    async list(prefix) {
      const out: Listed[] = [];
      const add = async (path: string) => {
        const info = await stat(path);
        out.push({ key: relative(root, path).split(sep).join('/'), modifiedMs: info.mtimeMs, size: info.size });
      };
      const walk = async (dir: string): Promise<void> => {
        const entries = await readdir(dir, { withFileTypes: true }).catch(async (error: NodeJS.ErrnoException) => {
          if (error.code === 'ENOENT') return [];
          if (error.code !== 'ENOTDIR') throw error;
          // The prefix names a file (as an S3 prefix may name one object): that file.
          await add(dir);
          return [];
        });
        for (const entry of entries) {
          const path = join(dir, entry.name);
          if (entry.isDirectory()) await walk(path);
          else if (entry.isFile()) await add(path);
        }
      };
      await walk(join(root, prefix));
      return out.sort((a, b) => (a.key < b.key ? -1 : 1));
    },
    local: async (object) => join(root, object.key),
    async put(key, body) {
      const path = join(root, ...key.split('/'));
      await mkdir(dirname(path), { recursive: true });
      const aside = `${path}.${process.pid}.partial`;
      await writeFile(aside, body, { flush: true });
      await rename(aside, path);
    },
  };
}

function s3Storage(base: string, client: S3Client): Storage {
  const { bucket, key: basePrefix } = parseS3Uri(base);
  const root = basePrefix === '' ? '' : `${basePrefix}/`;
  const uri = (key: string) => `s3://${bucket}/${root}${key}`;
  return {
    uri,
    async list(prefix) {
      const out: Listed[] = [];
      let token: string | undefined;
      do {
        let page;
        try {
          page = await client.send(
            new ListObjectsV2Command({ Bucket: bucket, Prefix: `${root}${prefix}`, ContinuationToken: token }),
          );
        } catch (error) {
          throw storageError(uri(prefix), 'LIST', error);
        }
        for (const object of page.Contents ?? []) {
          if (!object.Key || object.Key.endsWith('/')) continue;
          out.push({
            key: object.Key.slice(root.length),
            modifiedMs: object.LastModified?.getTime() ?? 0,
            size: object.Size ?? 0,
          });
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return out;
    },
    async local(object, dir) {
      const path = join(dir, ...object.key.split('/'));
      await mkdir(dirname(path), { recursive: true });
      const { body } = await getObjectStream(client, uri(object.key));
      await pipeline(body, createWriteStream(path));
      return path;
    },
    async put(key, body, contentType) {
      try {
        await client.send(
          new PutObjectCommand({ Bucket: bucket, Key: `${root}${key}`, Body: body, ContentType: contentType }),
        );
      } catch (error) {
        throw storageError(uri(key), 'PUT', error);
      }
    },
  };
}

/** Runs `work` over `items`, at most `limit` at a time, results in order. */
async function mapLimited<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i]!);
      }
    }),
  );
  return results;
}

export interface EvaluationSources {
  predictions: SourceFile[];
  labelParquet: SourceFile[];
  labelCsv: SourceFile[];
}

/** Lists the window's inference-log parts and every label file, and makes each readable locally. */
export async function gatherSources(
  storage: Storage,
  options: {
    namespace: string;
    service: string;
    startMs: number | null;
    endMs: number;
    dir: string;
    concurrency?: number;
  },
): Promise<EvaluationSources> {
  const [logged, labels] = await Promise.all([
    storage.list(inferenceLogPrefix(options.namespace, options.service)),
    storage.list(labelsPrefix(options.namespace, options.service)),
  ]);
  const parts = logged.filter(
    (o) => o.key.endsWith('.parquet') && partMayOverlap(o.key, options.startMs, options.endMs),
  );
  const labelFiles = labels.filter((o) => o.key.endsWith('.parquet') || o.key.endsWith('.csv'));
  const fetched = await mapLimited([...parts, ...labelFiles], options.concurrency ?? 8, async (object) => ({
    ...object,
    path: await storage.local(object, options.dir),
  }));
  const predictions = fetched.slice(0, parts.length);
  const rest = fetched.slice(parts.length);
  return {
    predictions,
    labelParquet: rest.filter((f) => f.key.endsWith('.parquet')),
    labelCsv: rest.filter((f) => f.key.endsWith('.csv')),
  };
}
