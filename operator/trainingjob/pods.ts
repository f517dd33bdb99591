// What a TrainingJob's pods look like: the pod template of each attempt's Job (job.ts) — the trainer
// container with its rank, result contract and hyperparameters — and a headless Service for rank 0
// when training is distributed. Pure functions of the job.
import { createHash } from 'node:crypto';
import { LABELS } from '../api/contracts.ts';
import { STORAGE_ENV_NAMES, storagePodEnv, type PodEnvVar, type StorageSettings } from '../api/storage-env.ts';
import { PROGRESS_ENV } from '../api/training-progress.ts';
import type { DesiredObject, OwnerReference } from '../engine/types.ts';
import type { EnvVar, Toleration, TrainingJob } from './resource.ts';

export const LABEL_TRAININGJOB = LABELS.trainingJob;
export const LABEL_MODEL = LABELS.model;
export const LABEL_ATTEMPT = LABELS.attempt;
/** Set by the Job controller on every pod of an Indexed Job, as a label and an annotation: the pod's rank. */
export const COMPLETION_INDEX = 'batch.kubernetes.io/job-completion-index';
export const ANNOTATION_HYPERPARAMETERS = 'loopline.dev/hyperparameters';
export const GPU_RESOURCE = 'nvidia.com/gpu';
export const GPU_PRODUCT_LABEL = 'nvidia.com/gpu.product';
export const TRAINER_CONTAINER = 'trainer';
export const TERMINATION_MESSAGE_PATH = '/dev/termination-log';
export const DEFAULT_MASTER_PORT = 29500;

/**
 * Names the operator sets itself; a user env var of the same name would contradict the pod's rank or contract.
 * The object storage settings are the operator's to give (its configuration), never a TrainingJob's.
 */
const RESERVED_ENV = new Set([
  'PET_NNODES',
  'PET_NPROC_PER_NODE',
  'PET_NODE_RANK',
  'PET_MASTER_ADDR',
  'PET_MASTER_PORT',
  'MASTER_ADDR',
  'MASTER_PORT',
  'WORLD_SIZE',
  'RANK',
  'NPROC_PER_NODE',
  'LOOPLINE_HYPERPARAMETERS',
  'LOOPLINE_OUTPUT_URI',
  'LOOPLINE_RESULT_PATH',
  'LOOPLINE_DATASET_URI',
  'LOOPLINE_DATASET_HASH',
  ...STORAGE_ENV_NAMES,
  ...Object.values(PROGRESS_ENV),
]);

/** A label value (at most 63 characters) naming `name`; long names keep a readable prefix and a hash so they stay unique. */
export function labelValue(name: string): string {
  if (name.length <= 63) return name;
  return `${name.slice(0, 52).replace(/[-.]+$/, '')}-${shortHash(name)}`;
}

/** The headless Service's name: the job's name when it is a valid DNS-1035 label, else a stable derived one. */
export function serviceName(job: TrainingJob): string {
  const name = job.metadata.name;
  return /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/.test(name) ? name : `tj-${shortHash(name)}`;
}

export function workersOf(job: TrainingJob): number {
  return Math.max(1, job.spec.workers ?? 1);
}

export function distributed(job: TrainingJob): boolean {
  return workersOf(job) > 1;
}

/** Labels every Job and pod of the job carries; the selector for "pods of this job". */
export function jobLabels(job: TrainingJob): Record<string, string> {
  return { [LABEL_TRAININGJOB]: labelValue(job.metadata.name), [LABEL_MODEL]: job.spec.model };
}

/** Where attempt `attempt` writes its artifacts: below the job's output URI, one directory per namespace, job and attempt. */
export function outputUri(job: TrainingJob, attempt: number): string | undefined {
  const base = job.spec.output?.uri;
  if (!base) return undefined;
  return `${base.replace(/\/+$/, '')}/${job.metadata.namespace}/${job.metadata.name}/attempt-${attempt}`;
}

/** `HP_<NAME>`: the hyperparameter name upper-cased with anything but letters and digits as `_`. */
export function hyperparameterEnvName(name: string): string {
  return `HP_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/** Where the other ranks reach rank 0: the Job controller names a pod's host `<job>-<index>`, resolved under the headless Service. */
export function masterAddress(job: TrainingJob, jobName: string): string {
  return `${jobName}-0.${serviceName(job)}`;
}

/** A pod reads its rank from its completion index, which the Job controller writes into an annotation of the pod. */
const RANK_FROM_INDEX = { fieldRef: { fieldPath: `metadata.annotations['${COMPLETION_INDEX}']` } };

function rankEnv(job: TrainingJob, jobName: string): EnvVar[] {
  const workers = workersOf(job);
  const nproc = String(Math.max(1, job.spec.resources?.gpus ?? 0));
  const env: EnvVar[] = [
    { name: 'RANK', valueFrom: RANK_FROM_INDEX },
    { name: 'WORLD_SIZE', value: String(workers) },
  ];
  if (!distributed(job)) return env;
  const port = String(job.spec.masterPort ?? DEFAULT_MASTER_PORT);
  const addr = masterAddress(job, jobName);
  return [
    ...env,
    { name: 'MASTER_ADDR', value: addr },
    { name: 'MASTER_PORT', value: port },
    { name: 'NPROC_PER_NODE', value: nproc },
    { name: 'PET_NNODES', value: String(workers) },
    { name: 'PET_NPROC_PER_NODE', value: nproc },
    { name: 'PET_NODE_RANK', valueFrom: RANK_FROM_INDEX },
    { name: 'PET_MASTER_ADDR', value: addr },
    { name: 'PET_MASTER_PORT', value: port },
  ];
}

function trainerEnv(
  job: TrainingJob,
  attempt: number,
  jobName: string,
  storage: StorageSettings | undefined,
  progress: PodEnvVar[],
): EnvVar[] {
  const hp = job.spec.hyperparameters ?? {};
  const env: EnvVar[] = [
    ...rankEnv(job, jobName),
    { name: 'LOOPLINE_HYPERPARAMETERS', value: JSON.stringify(hp) },
    { name: 'LOOPLINE_RESULT_PATH', value: TERMINATION_MESSAGE_PATH },
    ...storagePodEnv(storage),
    ...progress,
  ];
  const output = outputUri(job, attempt);
  if (output) env.push({ name: 'LOOPLINE_OUTPUT_URI', value: output });
  if (job.spec.dataset?.uri) env.push({ name: 'LOOPLINE_DATASET_URI', value: job.spec.dataset.uri });
  if (job.spec.dataset?.uri && job.spec.dataset.hash)
    env.push({ name: 'LOOPLINE_DATASET_HASH', value: job.spec.dataset.hash });
  const hpEnv = Object.keys(hp)
    .sort()
    .map((name) => ({ name: hyperparameterEnvName(name), value: hp[name] }));
  const own = new Set([...env, ...hpEnv].map((e) => e.name));
  const user = (job.spec.env ?? []).filter((e) => !RESERVED_ENV.has(e.name) && !own.has(e.name));
  return [...user, ...hpEnv, ...env];
}

function tolerationsOf(job: TrainingJob): Toleration[] {
  const tolerations = [...(job.spec.tolerations ?? [])];
  const gpus = job.spec.resources?.gpus ?? 0;
  if (
    gpus > 0 &&
    !tolerations.some((t) => t.key === GPU_RESOURCE && (t.operator === 'Exists' || t.operator === undefined))
  ) {
    tolerations.push({ key: GPU_RESOURCE, operator: 'Exists', effect: 'NoSchedule' });
  }
  return tolerations;
}

function resourcesOf(job: TrainingJob): Record<string, Record<string, string>> | undefined {
  const r = job.spec.resources ?? {};
  const limits: Record<string, string> = {};
  const requests: Record<string, string> = {};
  if (r.cpu !== undefined) limits.cpu = requests.cpu = String(r.cpu);
  if (r.memory !== undefined) limits.memory = requests.memory = String(r.memory);
  // Requested as well as limited: Kueue counts the requests of a Job's pod template against the quota.
  if ((r.gpus ?? 0) > 0) limits[GPU_RESOURCE] = requests[GPU_RESOURCE] = String(r.gpus);
  if (Object.keys(limits).length === 0) return undefined;
  return { limits, requests };
}

export interface PodTemplate {
  metadata: { labels: Record<string, string>; annotations: Record<string, string> };
  spec: Record<string, unknown>;
}

/**
 * The pod template of attempt `attempt`, run by the Job `jobName`: one for every rank, each pod reads its rank from
 * its completion index. `storage` is the operator's object storage configuration, `progress` the attempt's
 * progress endpoint and token reference (progress.ts).
 */
export function podTemplate(
  job: TrainingJob,
  attempt: number,
  jobName: string,
  storage?: StorageSettings,
  progress: PodEnvVar[] = [],
): PodTemplate {
  const nodeSelector = { ...(job.spec.nodeSelector ?? {}) };
  if (job.spec.resources?.gpuType) nodeSelector[GPU_PRODUCT_LABEL] = job.spec.resources.gpuType;
  const container: Record<string, unknown> = {
    name: TRAINER_CONTAINER,
    image: job.spec.image,
    env: trainerEnv(job, attempt, jobName, storage, progress),
    terminationMessagePath: TERMINATION_MESSAGE_PATH,
    terminationMessagePolicy: 'File',
  };
  if (job.spec.command?.length) container.command = job.spec.command;
  if (job.spec.args?.length) container.args = job.spec.args;
  const resources = resourcesOf(job);
  if (resources) container.resources = resources;
  if (distributed(job)) {
    container.ports = [
      { name: 'rendezvous', containerPort: job.spec.masterPort ?? DEFAULT_MASTER_PORT, protocol: 'TCP' },
    ];
  }
  const spec: Record<string, unknown> = { restartPolicy: 'Never', containers: [container] };
  if (Object.keys(nodeSelector).length > 0) spec.nodeSelector = nodeSelector;
  const tolerations = tolerationsOf(job);
  if (tolerations.length > 0) spec.tolerations = tolerations;
  if (job.spec.priorityClassName) spec.priorityClassName = job.spec.priorityClassName;
  if (job.spec.serviceAccountName) spec.serviceAccountName = job.spec.serviceAccountName;
  if (distributed(job)) spec.subdomain = serviceName(job);
  return {
    metadata: {
      labels: { ...jobLabels(job), [LABEL_ATTEMPT]: String(attempt) },
      annotations: { [ANNOTATION_HYPERPARAMETERS]: JSON.stringify(job.spec.hyperparameters ?? {}) },
    },
    spec,
  };
}

/** The headless Service that gives rank 0 a stable DNS name; only for distributed jobs. */
export function desiredService(job: TrainingJob, owner: OwnerReference): DesiredObject | undefined {
  if (!distributed(job)) return undefined;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: serviceName(job),
      namespace: job.metadata.namespace,
      labels: jobLabels(job),
      ownerReferences: [owner],
    },
    spec: {
      clusterIP: 'None',
      // Ranks must resolve rank 0 while it starts, before anything is ready.
      publishNotReadyAddresses: true,
      selector: { [LABEL_TRAININGJOB]: labelValue(job.metadata.name), [COMPLETION_INDEX]: '0' },
      ports: [
        {
          name: 'rendezvous',
          port: job.spec.masterPort ?? DEFAULT_MASTER_PORT,
          targetPort: job.spec.masterPort ?? DEFAULT_MASTER_PORT,
          protocol: 'TCP',
        },
      ],
    },
  };
}

export function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 10);
}
