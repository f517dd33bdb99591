// The local cluster's S3 server (versitygw, started by e2e/cluster/cluster.sh) as `cluster.sh env` describes
// it, for suites that put artifacts there: its settings as a pod gets them, a client, and a prefix per test run.
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { STORAGE_ENV, s3ClientFromEnv } from '../../operator/api/object-storage.ts';
import { uniqueName } from './local.ts';

export interface LocalS3 {
  bucket: string;
  endpoint: string;
  region: string;
  /** The root secret access key: what no status, Event, log line or metric may ever show. */
  secretAccessKey: string;
  /** The storage variables (endpoint, region, path style, keys) as the operator gives them to a pod. */
  env: Record<string, string>;
  /**
   * The operator's STORAGE_S3_* settings (what the chart's objectStorage values become) for pods that reach this
   * server with the keys in Secret `secretName`: the one place the endpoint pods get is decided.
   */
  operatorEnv(secretName: string): Record<string, string>;
  /** A Secret holding this server's keys as the operator's settings expect them. */
  secret(name: string, namespace: string): Record<string, unknown>;
  client: S3Client;
  /** `s3://<bucket>/<prefix>/<key>`, under a prefix of this run. */
  uri(key: string): string;
  /** Puts `body` at uri(key) and returns that URI. */
  put(key: string, body: Uint8Array | string): Promise<string>;
}

export function requireS3(prefix = 'test'): LocalS3 {
  const names = Object.values(STORAGE_ENV);
  const missing = [...names, 'LOOPLINE_S3_BUCKET'].filter((name) => !process.env[name]);
  if (missing.length > 0) {
    throw new Error(
      `${missing.join(', ')} not set: run through \`npm test\`, or \`eval "$(bash e2e/cluster/cluster.sh env)"\` after \`cluster.sh up\``,
    );
  }
  const env = Object.fromEntries(names.map((name) => [name, process.env[name]!]));
  const bucket = process.env.LOOPLINE_S3_BUCKET!;
  const client = s3ClientFromEnv(env);
  const run = uniqueName(prefix);
  const uri = (key: string) => `s3://${bucket}/${run}/${key}`;
  return {
    bucket,
    endpoint: env[STORAGE_ENV.endpoint],
    region: env[STORAGE_ENV.region],
    secretAccessKey: env[STORAGE_ENV.secretAccessKey],
    env,
    operatorEnv: (secretName) => ({
      STORAGE_S3_ENDPOINT: env[STORAGE_ENV.endpoint],
      STORAGE_S3_REGION: env[STORAGE_ENV.region],
      STORAGE_S3_FORCE_PATH_STYLE: 'true',
      STORAGE_S3_SECRET: secretName,
    }),
    secret: (name, namespace) => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace },
      stringData: {
        [STORAGE_ENV.accessKeyId]: env[STORAGE_ENV.accessKeyId],
        [STORAGE_ENV.secretAccessKey]: env[STORAGE_ENV.secretAccessKey],
      },
    }),
    client,
    uri,
    async put(key, body) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${run}/${key}`, Body: body }));
      return uri(key);
    },
  };
}
