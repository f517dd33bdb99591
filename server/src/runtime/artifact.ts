// Artifact fetching, one small store per URI scheme, and sha256 verification.
// A new backend (s3:// next) is one more entry in ARTIFACT_STORES.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export interface ArtifactStore {
  /** The whole artifact as bytes; rejects with a message naming the URI when it cannot be read. */
  fetch(uri: URL): Promise<Uint8Array>;
}

const HTTP_TIMEOUT_MS = 60_000;

const fileStore: ArtifactStore = {
  async fetch(uri) {
    return new Uint8Array(await readFile(fileURLToPath(uri)));
  },
};

const httpStore: ArtifactStore = {
  async fetch(uri) {
    const response = await fetch(uri, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    if (!response.ok) throw new Error(`GET ${uri.href} answered HTTP ${response.status}`);
    return new Uint8Array(await response.arrayBuffer());
  },
};

export const ARTIFACT_STORES: Record<string, ArtifactStore> = {
  'file:': fileStore,
  'http:': httpStore,
  'https:': httpStore,
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

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Fetch an artifact and check it against its expected `sha256:<hex>` digest before anyone may use it. */
export async function fetchVerified(uri: string, expectedDigest: string): Promise<Uint8Array> {
  if (!DIGEST.test(expectedDigest)) throw new Error(`digest for ${uri} must look like sha256:<64 hex>, got "${expectedDigest}"`);
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new Error(`artifact URI "${uri}" is not a URL`);
  }
  const store = ARTIFACT_STORES[url.protocol];
  if (!store) throw new Error(`artifact URI ${uri}: scheme ${url.protocol} is not supported (${Object.keys(ARTIFACT_STORES).join(', ')})`);
  const bytes = await store.fetch(url);
  const actual = sha256Digest(bytes);
  if (actual !== expectedDigest) throw new DigestMismatchError(uri, expectedDigest, actual);
  return bytes;
}
