// Configuration of one predictor process, read from the environment the operator
// gives the pod (see the table in main.ts).
import { hostname } from 'node:os';
import { driftSubject } from '../../operator/api/contracts.ts';
import type { DriftOptions } from './drift/detector.ts';
import { DEFAULT_DRIFT_OPTIONS } from './drift/detector.ts';
import type { Signature } from './runtime/tensors.ts';
import { defaultWorkers } from './cpus.ts';

/** Where and how the predictor logs sampled predictions (spec.logging; server/src/ground-truth/inference-log.ts). */
export interface InferenceLogOptions {
  /** Base URI (spec.logging.uri): s3://bucket/prefix or file:///dir. */
  uri: string;
  /** Share of prediction requests logged, 0..1 (every row of a sampled request is logged). */
  sampleRate: number;
  flushIntervalMs: number;
  maxRowsPerPart: number;
  maxBufferedRows: number;
  /** The pod name written in every row and part name. */
  pod: string;
  /** Longest wait on shutdown for storage to take the last parts; 10 s when not given. */
  shutdownFlushMs?: number;
}

export interface ArtifactRef {
  uri: string;
  digest: string;
}

export interface ModelConfig {
  name: string;
  version: string;
  artifact: ArtifactRef;
  signature?: Signature;
  referenceProfile?: ArtifactRef;
}

export interface ServerConfig {
  port: number;
  /** Processes serving the ports (node:cluster workers); 1: this process serves alone. */
  workers: number;
  /** Port of the Open Inference Protocol over gRPC; undefined: REST only. */
  grpcPort: number | undefined;
  host: string;
  model: ModelConfig;
  batching: boolean;
  batchMaxSize: number;
  batchMaxWaitMs: number;
  intraOpThreads: number;
  bodyLimitBytes: number;
  namespace: string;
  inferenceService: string;
  nats?: { url: string; subject: string; stream: string; bufferSize: number };
  drift: DriftOptions & { windowSize: number; windowSeconds: number };
  /** The inference log and the feedback endpoints (spec.logging); undefined: neither. */
  logging?: InferenceLogOptions;
  /** Enables PUT /admin/model (hot swap) for callers presenting this bearer token. */
  adminToken?: string;
  /** Time between readiness turning false and the listener closing on SIGTERM. */
  shutdownDelayMs: number;
  logLevel: string;
}

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

function required(env: Env, name: string): string {
  const value = env[name];
  if (!value) throw new ConfigError(`${name} is required`);
  return value;
}

function integer(env: Env, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min)
    throw new ConfigError(`${name} must be an integer ≥ ${min}, got "${raw}"`);
  return value;
}

function number(env: Env, name: string, fallback: number | undefined, min: number, max: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max)
    throw new ConfigError(`${name} must be a number in [${min}, ${max}], got "${raw}"`);
  return value;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!allowed.includes(raw as T)) throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, got "${raw}"`);
  return raw as T;
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (['on', 'true', '1', 'yes'].includes(raw)) return true;
  if (['off', 'false', '0', 'no'].includes(raw)) return false;
  throw new ConfigError(`${name} must be on or off, got "${env[name]}"`);
}

function loggingFromEnv(env: Env): InferenceLogOptions | undefined {
  const uri = env.INFERENCE_LOG_URI;
  if (!uri) return undefined;
  if (!/^(s3:\/\/[^/]+|file:\/\/\/.*)/.test(uri))
    throw new ConfigError(`INFERENCE_LOG_URI must be s3://<bucket>/<prefix> or file:///<directory>, got "${uri}"`);
  const maxRowsPerPart = integer(env, 'INFERENCE_LOG_MAX_ROWS_PER_PART', 10_000, 1);
  const maxBufferedRows = integer(env, 'INFERENCE_LOG_MAX_BUFFERED_ROWS', Math.max(50_000, maxRowsPerPart), 1);
  if (maxBufferedRows < maxRowsPerPart) {
    throw new ConfigError(
      `INFERENCE_LOG_MAX_BUFFERED_ROWS (${maxBufferedRows}) must be at least INFERENCE_LOG_MAX_ROWS_PER_PART (${maxRowsPerPart})`,
    );
  }
  const version = env.MODEL_VERSION ?? '';
  if (!/^\d+$/.test(version))
    throw new ConfigError(
      `MODEL_VERSION must be an integer when INFERENCE_LOG_URI is set (the log's version column), got "${version}"`,
    );
  return {
    uri,
    sampleRate: number(env, 'INFERENCE_LOG_SAMPLE_RATE', 1, 0, 1)!,
    flushIntervalMs: integer(env, 'INFERENCE_LOG_FLUSH_INTERVAL_MS', 30_000, 100),
    maxRowsPerPart,
    maxBufferedRows,
    pod: env.POD_NAME || hostname(),
  };
}

// Subject tokens must not contain NATS wildcards or separators.
const SUBJECT_TOKEN = /^[A-Za-z0-9_-]+$/;

export function configFromEnv(env: Env): ServerConfig {
  const name = required(env, 'MODEL_NAME');
  let signature: Signature | undefined;
  if (env.MODEL_SIGNATURE) {
    try {
      signature = JSON.parse(env.MODEL_SIGNATURE);
    } catch (error) {
      throw new ConfigError(`MODEL_SIGNATURE is not JSON: ${(error as Error).message}`);
    }
  }
  const referenceProfile = env.REFERENCE_PROFILE_URI
    ? { uri: env.REFERENCE_PROFILE_URI, digest: required(env, 'REFERENCE_PROFILE_DIGEST') }
    : undefined;
  const namespace = env.NAMESPACE || 'default';
  const inferenceService = env.INFERENCE_SERVICE || name;
  const windowSize = integer(env, 'DRIFT_WINDOW_SIZE', 1000, 1);
  const subject = env.DRIFT_SUBJECT || driftSubject(namespace, inferenceService);
  if (!env.DRIFT_SUBJECT && !(SUBJECT_TOKEN.test(namespace) && SUBJECT_TOKEN.test(inferenceService))) {
    throw new ConfigError(
      `NAMESPACE and INFERENCE_SERVICE must be plain subject tokens, got "${namespace}" and "${inferenceService}"`,
    );
  }
  return {
    port: integer(env, 'PORT', 8080),
    workers: integer(env, 'WORKERS', defaultWorkers(), 1),
    grpcPort: env.GRPC_PORT?.toLowerCase() === 'off' ? undefined : integer(env, 'GRPC_PORT', 8081),
    host: env.HOST || '127.0.0.1',
    model: {
      name,
      version: required(env, 'MODEL_VERSION'),
      artifact: { uri: required(env, 'MODEL_URI'), digest: required(env, 'MODEL_DIGEST') },
      signature,
      referenceProfile,
    },
    batching: flag(env, 'BATCHING', true),
    batchMaxSize: integer(env, 'BATCH_MAX_SIZE', 64, 1),
    batchMaxWaitMs: integer(env, 'BATCH_MAX_WAIT_MS', 2),
    intraOpThreads: integer(env, 'ORT_INTRA_OP_THREADS', 1, 1),
    bodyLimitBytes: integer(env, 'BODY_LIMIT_BYTES', 1024 * 1024, 1024),
    namespace,
    inferenceService,
    nats: env.NATS_URL
      ? {
          url: env.NATS_URL,
          subject,
          stream: env.NATS_STREAM || 'LOOPLINE',
          bufferSize: integer(env, 'EVENT_BUFFER_SIZE', 1000, 1),
        }
      : undefined,
    drift: {
      ...DEFAULT_DRIFT_OPTIONS,
      windowSize,
      minRows: integer(env, 'DRIFT_MIN_ROWS', Math.min(DEFAULT_DRIFT_OPTIONS.minRows, windowSize), 0),
      windowSeconds: integer(env, 'DRIFT_WINDOW_SECONDS', 60, 1),
      driftShare: number(env, 'DRIFT_SHARE', DEFAULT_DRIFT_OPTIONS.driftShare, 0, 1)!,
      threshold: number(env, 'DRIFT_THRESHOLD', undefined, 0, Number.MAX_VALUE),
      numericMethod: oneOf(
        env,
        'DRIFT_NUMERIC_METHOD',
        ['auto', 'ks', 'psi', 'wasserstein', 'jensenshannon'] as const,
        'auto',
      ),
      categoricalMethod: oneOf(
        env,
        'DRIFT_CATEGORICAL_METHOD',
        ['auto', 'chisquare', 'psi', 'jensenshannon'] as const,
        'auto',
      ),
    },
    logging: loggingFromEnv(env),
    adminToken: env.ADMIN_TOKEN || undefined,
    shutdownDelayMs: integer(env, 'SHUTDOWN_DELAY_MS', 0),
    logLevel: env.LOG_LEVEL || 'info',
  };
}
