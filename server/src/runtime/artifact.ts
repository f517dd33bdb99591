// Artifact fetching, one small store per URI scheme, and sha256 verification. Every store streams: the
// bytes are hashed as they arrive and copied once into a buffer of the announced size, so a 1 GB model
// needs 1 GB to fetch and verify, not two.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { S3Client } from '@aws-sdk/client-s3';
import { getObjectStream, s3ClientFromEnv } from '../../../operator/api/object-storage.ts';

export interface ArtifactStream {
  /** Length in bytes when the store knows it up front. */
  size: number | undefined;
  body: AsyncIterable<Uint8Array>;
}

export interface ArtifactStore {
  /** The artifact's bytes as a stream; rejects (or the stream throws) with a message naming the URI. */
  open(uri: string): Promise<ArtifactStream>;
}

const HTTP_TIMEOUT_MS = 60_000;
const FILE_CHUNK_BYTES = 1 << 20;

const fileStore: ArtifactStore = {
  async open(uri) {
    const path = fileURLToPath(uri);
    const { size } = await stat(path);
    return { size, body: createReadStream(path, { highWaterMark: FILE_CHUNK_BYTES }) };
  },
};

const httpStore: ArtifactStore = {
  async open(uri) {
    const response = await fetch(uri, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    if (!response.ok || !response.body) throw new Error(`GET ${uri} answered HTTP ${response.status}`);
    const length = response.headers.get('content-length');
    return { size: length === null ? undefined : Number(length), body: response.body };
  },
};

// One client per process, from the storage settings the operator put in the pod's environment.
let s3Client: S3Client | undefined;
const s3Store: ArtifactStore = {
  async open(uri) {
    s3Client ??= s3ClientFromEnv(process.env);
    return await getObjectStream(s3Client, uri);
  },
};

export const ARTIFACT_STORES: Record<string, ArtifactStore> = {
  'file:': fileStore,
  'http:': httpStore,
  'https:': httpStore,
  's3:': s3Store,
};

export class DigestMismatchError extends Error {
  constructor(
    readonly uri: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`artifact ${uri} has digest ${actual}, expected ${expected}; refusing to serve it`);
  }
}

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Every chunk into `hash` and into one buffer; of the announced size when known, else joined at the end. */
async function readHashing(uri: string, stream: ArtifactStream, hash: Hash): Promise<Uint8Array> {
  if (stream.size === undefined) {
    // No length announced (a chunked HTTP answer): the chunks and their join coexist for a moment.
    const chunks: Uint8Array[] = [];
    for await (const chunk of stream.body) {
      hash.update(chunk);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }
  const bytes = Buffer.allocUnsafe(stream.size);
  let offset = 0;
  for await (const chunk of stream.body) {
    if (offset + chunk.byteLength > bytes.byteLength)
      throw new Error(`artifact ${uri} is longer than the ${stream.size} bytes announced`);
    hash.update(chunk);
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  if (offset !== bytes.byteLength)
    throw new Error(`artifact ${uri} ended after ${offset} of the ${stream.size} bytes announced`);
  return bytes;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Fetch an artifact and check it against its expected `sha256:<hex>` digest before anyone may use it. */
export async function fetchVerified(uri: string, expectedDigest: string): Promise<Uint8Array> {
  if (!DIGEST.test(expectedDigest))
    throw new Error(`digest for ${uri} must look like sha256:<64 hex>, got "${expectedDigest}"`);
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new Error(`artifact URI "${uri}" is not a URL`);
  }
  const store = ARTIFACT_STORES[url.protocol];
  if (!store)
    throw new Error(
      `artifact URI ${uri}: scheme ${url.protocol} is not supported (${Object.keys(ARTIFACT_STORES).join(', ')})`,
    );
  const hash = createHash('sha256');
  let bytes: Uint8Array;
  try {
    bytes = await readHashing(uri, await store.open(uri), hash);
  } catch (error) {
    const message = (error as Error).message ?? String(error);
    throw message.includes(uri) ? error : new Error(`artifact ${uri}: ${message}`, { cause: error });
  }
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== expectedDigest) throw new DigestMismatchError(uri, expectedDigest, actual);
  return bytes;
}
