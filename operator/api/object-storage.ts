// Artifacts in object storage behind the S3 API, as trainer and predictor pods reach it: the client the
// storage variables the operator sets (storage-env.ts) describe, and errors a user can act on. Credentials
// come from the SDK's default chain: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (from a Secret), web
// identity (IRSA: AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE), or instance metadata.
import { GetObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { STORAGE_ENV } from './storage-env.ts';

export { STORAGE_ENV };

/** A connection that is not accepted in this time fails (and is retried) instead of hanging. */
const CONNECT_TIMEOUT_MS = 5_000;
/** A socket that carries no data for this long fails, so a stalled download never holds a pod forever. */
const IDLE_TIMEOUT_MS = 60_000;

type Env = Record<string, string | undefined>;

export interface S3Location {
  bucket: string;
  /** The object key, or a prefix ending in "/" (or "" for the whole bucket). */
  key: string;
}

/** `s3://bucket/key` -> bucket and key; the key is taken as written (S3 URIs are not percent-encoded). */
export function parseS3Uri(uri: string): S3Location {
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(uri);
  if (!match) throw new Error(`${uri} is not an s3:// URI (s3://<bucket>/<key>)`);
  const [, bucket, key = ''] = match;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new Error(
      `${uri}: "${bucket}" is not a bucket name (3-63 characters: lower-case letters, digits, dots and hyphens)`,
    );
  }
  return { bucket, key };
}

export function s3Uri(location: S3Location): string {
  return `s3://${location.bucket}/${location.key}`;
}

/**
 * The client the storage settings in `env` describe. Keys in `env` are used as given (the SDK's environment
 * provider would read the same from process.env); without them the SDK's default chain finds credentials.
 */
export function s3ClientFromEnv(env: Env): S3Client {
  const endpoint = env[STORAGE_ENV.endpoint] || undefined;
  const accessKeyId = env[STORAGE_ENV.accessKeyId];
  const secretAccessKey = env[STORAGE_ENV.secretAccessKey];
  const pathStyle = env[STORAGE_ENV.forcePathStyle];
  if (pathStyle !== undefined && pathStyle !== '' && pathStyle !== 'true' && pathStyle !== 'false') {
    throw new Error(`${STORAGE_ENV.forcePathStyle}="${pathStyle}" must be true or false`);
  }
  return new S3Client({
    ...(endpoint ? { endpoint } : {}),
    ...(env[STORAGE_ENV.region] ? { region: env[STORAGE_ENV.region] } : {}),
    ...(accessKeyId && secretAccessKey
      ? {
          credentials: {
            accessKeyId,
            secretAccessKey,
            ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
          },
        }
      : {}),
    forcePathStyle: pathStyle === 'true',
    requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, requestTimeout: IDLE_TIMEOUT_MS },
  });
}

/** What to do about an S3 error code, for the codes a misconfigured deployment meets. */
const FIXES: Record<string, string> = {
  NoSuchBucket: 'the bucket does not exist: create it or correct the URI',
  NoSuchKey: 'no object has that key: correct the URI, or check that the writer finished',
  NotFound: 'no such object or bucket: correct the URI',
  InvalidAccessKeyId: 'the storage server does not know the access key id: check the keys in the storage Secret',
  // versitygw's answer to an access key id it does not know.
  XAdminUserNotFound: 'the storage server does not know the access key id: check the keys in the storage Secret',
  SignatureDoesNotMatch: 'the secret access key is wrong: check the keys in the storage Secret',
  AccessDenied: 'the credentials may not do this: grant them access to the bucket',
  Forbidden: 'access refused: check the credentials and their access to the bucket',
  CredentialsProviderError: `no credentials found: set ${STORAGE_ENV.accessKeyId}/${STORAGE_ENV.secretAccessKey} (the storage Secret) or a web identity`,
  ECONNREFUSED: 'nothing listens at the storage endpoint: check the endpoint setting',
  ENOTFOUND: "the storage endpoint's host name does not resolve: check the endpoint setting",
  ETIMEDOUT: 'the storage endpoint did not answer in time: check the endpoint setting and the network',
  TimeoutError: 'the storage endpoint did not answer in time: check the endpoint setting and the network',
};

/**
 * An object storage failure as a user can act on it: the URI, the S3 error code (or the network error),
 * and the fix. S3 error messages carry no secret, and neither does anything added here.
 */
export class ObjectStorageError extends Error {
  constructor(
    readonly uri: string,
    readonly code: string,
    readonly operation: string,
    detail: string,
  ) {
    const fix = FIXES[code];
    super(`${operation} ${uri} failed: ${code}${detail ? ` (${detail})` : ''}${fix ? `; ${fix}` : ''}`);
  }
}

/** `error` from the SDK while doing `operation` on `uri`, as an ObjectStorageError. */
export function storageError(uri: string, operation: string, error: unknown): ObjectStorageError {
  if (error instanceof ObjectStorageError) return error;
  if (error instanceof S3ServiceException) {
    const status = error.$metadata.httpStatusCode;
    // Answers without a body (HEAD, some 403s) carry only the status: its message is the status's name.
    const detail = [
      status ? `HTTP ${status}` : '',
      error.message && error.message !== error.name && error.message !== 'UnknownError' ? error.message : '',
    ]
      .filter(Boolean)
      .join(': ');
    return new ObjectStorageError(uri, error.name, operation, detail);
  }
  const err = error as NodeJS.ErrnoException & { name?: string };
  const code = err?.code ?? err?.name ?? 'Error';
  return new ObjectStorageError(uri, code, operation, err?.message ?? String(error));
}

export interface ObjectStream {
  /** Bytes the server announced (Content-Length). */
  size: number | undefined;
  body: AsyncIterable<Uint8Array>;
}

/** GetObject as a stream of chunks; failures, on the request or while streaming, are ObjectStorageErrors. */
export async function getObjectStream(client: S3Client, uri: string): Promise<ObjectStream> {
  const { bucket, key } = parseS3Uri(uri);
  if (key === '' || key.endsWith('/')) throw new Error(`${uri} names a prefix, not an object`);
  let response;
  try {
    response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  } catch (error) {
    throw storageError(uri, 'GET', error);
  }
  const body = response.Body as Readable | undefined;
  if (!body) throw new ObjectStorageError(uri, 'EmptyBody', 'GET', 'the answer had no body');
  return {
    size: response.ContentLength,
    body: (async function* () {
      try {
        for await (const chunk of body) yield chunk as Uint8Array;
      } catch (error) {
        throw storageError(uri, 'GET', error);
      }
    })(),
  };
}
