// Where the trainer reads its data set and writes its artifacts: a file:// directory, or s3:// object storage
// reached with the settings the operator puts in the pod's environment (operator/api/object-storage.ts).
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
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
import { datasetParts, namesParts } from '../../../operator/api/dataset-parts.ts';

/** Objects at least this large go up in parts of this size (S3's minimum part is 5 MiB). */
export const PART_BYTES = 8 * 1024 * 1024;

let client: S3Client | undefined;
const s3 = () => (client ??= s3ClientFromEnv(process.env));

export interface DataPart {
  uri: string;
  bytes: Buffer;
}

/**
 * The parts of the data set `uri` names, in the order they are read (operator/api/dataset-parts.ts): one file or
 * object, or every *.csv below a directory (file://) or a prefix ending in "/" (s3://), e.g. one file per day.
 */
export async function readDataParts(uri: string): Promise<DataPart[]> {
  const parts = await namesParts(uri);
  if (uri.startsWith('file://')) return parts ? readFileParts(uri) : [{ uri, bytes: readFileSync(fileURLToPath(uri)) }];
  return parts ? readObjectParts(uri) : [{ uri, bytes: await readObject(uri) }];
}

function readFileParts(uri: string): DataPart[] {
  const root = fileURLToPath(uri);
  const keys = readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)).split(sep).join('/'));
  const parts = datasetParts(keys);
  if (parts.length === 0) throw new Error(`${root}: directory has no .csv files`);
  return parts.map((key) => {
    const file = join(root, ...key.split('/'));
    return { uri: pathToFileURL(file).href, bytes: readFileSync(file) };
  });
}

async function readObject(uri: string): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of (await getObjectStream(s3(), uri)).body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function readObjectParts(uri: string): Promise<DataPart[]> {
  const { bucket, key: prefix } = parseS3Uri(uri);
  const keys: string[] = [];
  try {
    for await (const page of paginateListObjectsV2({ client: s3() }, { Bucket: bucket, Prefix: prefix })) {
      for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key.slice(prefix.length));
    }
  } catch (error) {
    throw storageError(uri, 'LIST', error);
  }
  const parts = datasetParts(keys);
  if (parts.length === 0) throw new Error(`${uri}: no .csv objects under this prefix`);
  return Promise.all(
    parts.map(async (k) => {
      const part = s3Uri({ bucket, key: prefix + k });
      return { uri: part, bytes: await readObject(part) };
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
