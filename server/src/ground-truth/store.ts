// Writing a finished part to object storage, once: s3:// through the AWS SDK (the client the storage
// variables of the pod describe), file:// as a temporary file renamed into place after fsync, so a reader
// never sees half a part and a crash leaves none behind under the part's name.
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand, S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { parseS3Uri, s3ClientFromEnv, storageError } from '../../../operator/api/object-storage.ts';

export interface PartStore {
  /** Resolves once `bytes` are durable at `uri`; rejects with a message naming the URI (and no secret). */
  put(uri: string, bytes: Uint8Array, contentType: string): Promise<void>;
}

async function putFile(uri: string, bytes: Uint8Array): Promise<void> {
  const path = fileURLToPath(uri);
  const temporary = `${dirname(path)}/.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await mkdir(dirname(path), { recursive: true });
    const file = await open(temporary, 'wx');
    try {
      await file.writeFile(bytes);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw new Error(`writing ${uri} failed: ${(error as Error).message}`, { cause: error });
  }
}

async function putS3(client: S3Client, uri: string, bytes: Uint8Array, contentType: string): Promise<void> {
  const { bucket, key } = parseS3Uri(uri);
  try {
    // If-None-Match: a part is created, never replaced.
    await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, ContentType: contentType, IfNoneMatch: '*' }),
    );
  } catch (error) {
    // The object exists: an earlier attempt of this very write got through but its answer was lost (names are
    // unique per write, so nobody else wrote it).
    if (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 412) return;
    throw storageError(uri, 'PUT', error);
  }
}

/** The store for a base URI's scheme, or an error saying which schemes there are. */
export function partStoreFor(base: string, env: Record<string, string | undefined> = process.env): PartStore {
  if (base.startsWith('file://')) return { put: (uri, bytes) => putFile(uri, bytes) };
  if (base.startsWith('s3://')) {
    parseS3Uri(base);
    let client: S3Client | undefined;
    return {
      put: (uri, bytes, contentType) => {
        client ??= s3ClientFromEnv(env);
        return putS3(client, uri, bytes, contentType);
      },
    };
  }
  throw new Error(`${base}: the inference log goes to s3://<bucket>/<prefix> or file:///<directory>`);
}
