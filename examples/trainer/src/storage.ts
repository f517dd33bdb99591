// Where the trainer reads its data set and writes its artifacts: a file:// directory, or s3:// object storage
// reached with the settings the operator puts in the pod's environment (operator/api/object-storage.ts).
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { paginateListObjectsV2, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import {
  getObjectStream,
  parseS3Uri,
  s3ClientFromEnv,
  s3Uri,
  storageError,
} from '../../../operator/api/object-storage.ts';

/** Objects at least this large go up in parts of this size (S3's minimum part is 5 MiB). */
export const PART_BYTES = 8 * 1024 * 1024;

let client: S3Client | undefined;
const s3 = () => (client ??= s3ClientFromEnv(process.env));

export interface TextSource {
  uri: string;
  text: string;
}

/**
 * The CSV text a data set URI names: one file or object, or, for a directory (file://) or a prefix ending in
 * "/" (s3://), every *.csv in it in name order (a data set landed in parts, e.g. one file per day).
 */
export async function readCsvParts(uri: string): Promise<TextSource[]> {
  if (uri.startsWith('file://')) return readFileParts(uri);
  if (uri.startsWith('s3://')) return readObjectParts(uri);
  throw new Error(`dataset uri ${uri}: only file:// and s3:// are supported`);
}

function readFileParts(uri: string): TextSource[] {
  const path = fileURLToPath(uri);
  if (!statSync(path).isDirectory()) return [{ uri, text: readFileSync(path, 'utf8') }];
  const parts = readdirSync(path)
    .filter((name) => name.endsWith('.csv'))
    .sort();
  if (parts.length === 0) throw new Error(`${path}: directory has no .csv files`);
  return parts.map((name) => {
    const file = join(path, name);
    return { uri: pathToFileURL(file).href, text: readFileSync(file, 'utf8') };
  });
}

async function readObject(uri: string): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of (await getObjectStream(s3(), uri)).body) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function readObjectParts(uri: string): Promise<TextSource[]> {
  const { bucket, key } = parseS3Uri(uri);
  if (key !== '' && !key.endsWith('/')) return [{ uri, text: await readObject(uri) }];
  const keys: string[] = [];
  try {
    for await (const page of paginateListObjectsV2({ client: s3() }, { Bucket: bucket, Prefix: key })) {
      for (const object of page.Contents ?? []) if (object.Key?.endsWith('.csv')) keys.push(object.Key);
    }
  } catch (error) {
    throw storageError(uri, 'LIST', error);
  }
  if (keys.length === 0) throw new Error(`${uri}: no .csv objects under this prefix`);
  keys.sort();
  return Promise.all(
    keys.map(async (k) => {
      const part = s3Uri({ bucket, key: k });
      return { uri: part, text: await readObject(part) };
    }),
  );
}

/** Checks that `uri` is a location the trainer can write to (before it spends time training). */
export function checkOutputUri(uri: string): void {
  if (uri.startsWith('file://')) return;
  if (uri.startsWith('s3://')) {
    parseS3Uri(uri);
    return;
  }
  throw new Error(`LOOPLINE_OUTPUT_URI="${uri}": only file:// and s3:// locations are supported`);
}

/** Writes `bytes` as `name` below the output location and returns its URI. */
export async function writeArtifact(outputUri: string, name: string, bytes: Uint8Array): Promise<string> {
  const base = outputUri.replace(/\/+$/, '');
  if (base.startsWith('file://')) {
    const dir = fileURLToPath(base);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, name), bytes);
    return pathToFileURL(join(dir, name)).href;
  }
  const uri = `${base}/${name}`;
  const { bucket, key } = parseS3Uri(uri);
  try {
    // One PUT below PART_BYTES, a multipart upload (parts in parallel, aborted on failure) above.
    await new Upload({
      client: s3(),
      params: { Bucket: bucket, Key: key, Body: bytes },
      partSize: PART_BYTES,
      queueSize: 2,
    }).done();
  } catch (error) {
    throw storageError(uri, 'PUT', error);
  }
  return uri;
}
