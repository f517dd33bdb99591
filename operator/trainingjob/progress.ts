// Training progress, the TrainingJob side (the contract itself is operator/api/training-progress.ts): each
// attempt gets a random token the operator keeps only as a digest on the attempt's Job, while the token
// itself goes into a Secret the TrainingJob owns and reaches the pods by secretKeyRef. Any replica can then
// tell a pod's report from a forged one with its Job cache alone: the operator never reads a Secret back.
// Pure functions, apart from drawing the token.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { PROGRESS_ENV, progressPath } from '../api/training-progress.ts';
import type { PodEnvVar } from '../api/storage-env.ts';
import type { DesiredObject, KubeObject, OwnerReference } from '../engine/types.ts';
import { attemptOf, currentAttempt } from './lifecycle.ts';
import { jobLabels, LABEL_ATTEMPT } from './pods.ts';
import type { TrainingJob } from './resource.ts';

/** On each attempt's Job: the sha256 (hex) of the attempt's progress token. */
export const ANNOTATION_PROGRESS_TOKEN_SHA256 = 'loopline.dev/progress-token-sha256';
const TOKEN_KEY = 'token';

/** What one attempt's pods get to report progress with. */
export interface ProgressCredentials {
  /** The Secret holding the token, named uniquely per draw (a retried create never meets an old token). */
  secretName: string;
  token: string;
  tokenSha256: string;
}

export function tokenDigest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** A new token (256 random bits) for the attempt run by the Job `jobName`, and the name of the Secret to keep it in. */
export function drawProgressCredentials(jobName: string): ProgressCredentials {
  const token = randomBytes(32).toString('base64url');
  return {
    secretName: `${jobName}-progress-${randomBytes(3).toString('hex')}`,
    token,
    tokenSha256: tokenDigest(token),
  };
}

/**
 * The Secret of an attempt's token. Created once (never applied: it must not change once a pod may have read it),
 * immutable, owned by the TrainingJob so the garbage collector removes it with the job.
 */
export function desiredTokenSecret(
  job: TrainingJob,
  owner: OwnerReference,
  attempt: number,
  credentials: ProgressCredentials,
): DesiredObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: credentials.secretName,
      namespace: job.metadata.namespace,
      labels: { ...jobLabels(job), [LABEL_ATTEMPT]: String(attempt) },
      ownerReferences: [owner],
    },
    type: 'Opaque',
    immutable: true,
    data: { [TOKEN_KEY]: Buffer.from(credentials.token).toString('base64') },
  };
}

/** Where the progress endpoint is and how a pod proves who it is: the URL as a value, the token only by reference. */
export function progressPodEnv(baseUrl: string, job: TrainingJob, secretName: string): PodEnvVar[] {
  return [
    {
      name: PROGRESS_ENV.url,
      value: `${baseUrl.replace(/\/+$/, '')}${progressPath(job.metadata.namespace!, job.metadata.name)}`,
    },
    { name: PROGRESS_ENV.token, valueFrom: { secretKeyRef: { name: secretName, key: TOKEN_KEY } } },
  ];
}

export type Verdict = { ok: true; attempt: number } | { ok: false; status: 401 | 403; reason: string };

/** The bearer token of an Authorization header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}

function sameDigest(a: string, b: string | undefined): boolean {
  if (!b || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/**
 * Whether `token` may report progress for `job`, given the Jobs it owns: only the token of its current attempt
 * may. The answer never says whether the job exists to a caller without a valid token.
 */
export function authorizeProgress(
  job: TrainingJob | undefined,
  jobs: readonly KubeObject[],
  token: string | undefined,
  key: string,
): Verdict {
  if (!token) return { ok: false, status: 401, reason: `no token: send Authorization: Bearer $${PROGRESS_ENV.token}` };
  const refused: Verdict = { ok: false, status: 403, reason: `the token is not one of TrainingJob ${key}` };
  if (!job) return refused;
  const digest = tokenDigest(token);
  const owner = jobs.find((j) => sameDigest(digest, j.metadata.annotations?.[ANNOTATION_PROGRESS_TOKEN_SHA256]));
  if (!owner) return refused;
  const attempt = attemptOf(owner);
  const current = currentAttempt(job, jobs);
  if (attempt !== current)
    return {
      ok: false,
      status: 403,
      reason: `the token is attempt ${attempt}'s; TrainingJob ${key} is on attempt ${current}`,
    };
  return { ok: true, attempt };
}
