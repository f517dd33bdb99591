// The object storage contract between the operator and its pods: the variables trainer and predictor pods
// get (the AWS SDKs' and CLI's own names, so any trainer image reads them the same way), and the operator's
// own settings they are made from. The settings come from the operator's environment, which the chart sets
// from its values (objectStorage.*), never from a CR spec:
//   STORAGE_S3_ENDPOINT               endpoint of an S3-compatible server; unset: AWS S3
//   STORAGE_S3_REGION                 region requests are signed for
//   STORAGE_S3_FORCE_PATH_STYLE       true: http://endpoint/bucket/key instead of http://bucket.endpoint/key
//   STORAGE_S3_SECRET                 Secret (in each pod's namespace) with the access keys; unset: the pods
//                                     find credentials through the SDK's chain (web identity, instance metadata)
//   STORAGE_S3_ACCESS_KEY_ID_KEY, STORAGE_S3_SECRET_ACCESS_KEY_KEY   its keys (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)
// No SDK here: the operator bundle needs none.

/** What a pod reads (operator/api/object-storage.ts builds its client from these). */
export const STORAGE_ENV = {
  endpoint: 'AWS_ENDPOINT_URL_S3',
  region: 'AWS_REGION',
  forcePathStyle: 'S3_FORCE_PATH_STYLE',
  accessKeyId: 'AWS_ACCESS_KEY_ID',
  secretAccessKey: 'AWS_SECRET_ACCESS_KEY',
} as const;

export const STORAGE_ENV_NAMES: ReadonlySet<string> = new Set(Object.values(STORAGE_ENV));

export interface StorageSettings {
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
  credentials?: { secretName: string; accessKeyIdKey: string; secretAccessKeyKey: string };
}

/** A type literal (not an interface) so it stays assignable to the plain records of desired objects. */
export type PodEnvVar = {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef: { name: string; key: string } };
};

type Env = Record<string, string | undefined>;
const set = (value: string | undefined) => (value !== undefined && value !== '' ? value : undefined);

/** The operator's storage settings from its environment (see the header); throws naming a malformed variable. */
export function storageSettingsFromEnv(env: Env): StorageSettings {
  const endpoint = set(env.STORAGE_S3_ENDPOINT);
  if (endpoint !== undefined && !/^https?:\/\/[^/\s]+\/?$/.test(endpoint)) {
    throw new Error(`STORAGE_S3_ENDPOINT: "${endpoint}" is not an endpoint URL (http(s)://host[:port], no path)`);
  }
  const pathStyle = set(env.STORAGE_S3_FORCE_PATH_STYLE);
  if (pathStyle !== undefined && pathStyle !== 'true' && pathStyle !== 'false') {
    throw new Error(`STORAGE_S3_FORCE_PATH_STYLE: "${pathStyle}" must be true or false`);
  }
  const secretName = set(env.STORAGE_S3_SECRET);
  return {
    ...(endpoint ? { endpoint } : {}),
    ...(set(env.STORAGE_S3_REGION) ? { region: env.STORAGE_S3_REGION } : {}),
    ...(pathStyle ? { forcePathStyle: pathStyle === 'true' } : {}),
    ...(secretName
      ? {
          credentials: {
            secretName,
            accessKeyIdKey: set(env.STORAGE_S3_ACCESS_KEY_ID_KEY) ?? STORAGE_ENV.accessKeyId,
            secretAccessKeyKey: set(env.STORAGE_S3_SECRET_ACCESS_KEY_KEY) ?? STORAGE_ENV.secretAccessKey,
          },
        }
      : {}),
  };
}

/** The variables a trainer or predictor container gets; the keys only by reference to their Secret. */
export function storagePodEnv(settings: StorageSettings | undefined): PodEnvVar[] {
  if (!settings) return [];
  const env: PodEnvVar[] = [];
  if (settings.endpoint) env.push({ name: STORAGE_ENV.endpoint, value: settings.endpoint });
  if (settings.region) env.push({ name: STORAGE_ENV.region, value: settings.region });
  if (settings.forcePathStyle !== undefined)
    env.push({ name: STORAGE_ENV.forcePathStyle, value: String(settings.forcePathStyle) });
  const credentials = settings.credentials;
  if (credentials) {
    env.push(
      {
        name: STORAGE_ENV.accessKeyId,
        valueFrom: { secretKeyRef: { name: credentials.secretName, key: credentials.accessKeyIdKey } },
      },
      {
        name: STORAGE_ENV.secretAccessKey,
        valueFrom: { secretKeyRef: { name: credentials.secretName, key: credentials.secretAccessKeyKey } },
      },
    );
  }
  return env;
}
