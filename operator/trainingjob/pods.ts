// What a TrainingJob turns into: one pod per rank and attempt, plus a headless Service for rank 0
// when training is distributed. Pure functions of the job; the controller decides which to create.
import { createHash } from 'node:crypto';
import { STORAGE_ENV_NAMES, storagePodEnv, type StorageSettings } from '../api/storage-env.ts';
import type { DesiredObject, OwnerReference } from '../engine/types.ts';
import type { EnvVar, Toleration, TrainingJob } from './resource.ts';

export const LABEL_TRAININGJOB = 'loopline.dev/trainingjob';
export const LABEL_MODEL = 'loopline.dev/model';
export const LABEL_ATTEMPT = 'loopline.dev/attempt';
export const LABEL_RANK = 'loopline.dev/rank';
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
  'PET_NNODES', 'PET_NPROC_PER_NODE', 'PET_NODE_RANK', 'PET_MASTER_ADDR', 'PET_MASTER_PORT',
  'MASTER_ADDR', 'MASTER_PORT', 'WORLD_SIZE', 'RANK', 'NPROC_PER_NODE',
  'LOOPLINE_HYPERPARAMETERS', 'LOOPLINE_OUTPUT_URI', 'LOOPLINE_RESULT_PATH', 'LOOPLINE_DATASET_URI',
  ...STORAGE_ENV_NAMES,
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

/** Pod names are `<job>-<attempt>-<rank>`: deterministic, so a restarted operator finds (and never duplicates) them. */
export function podName(job: TrainingJob, attempt: number, rank: number): string {
  const suffix = `-${attempt}-${rank}`;
  const base = job.metadata.name;
  return base.length + suffix.length <= 253 ? base + suffix : `${base.slice(0, 240 - suffix.length)}-${shortHash(base)}${suffix}`;
}

export function workersOf(job: TrainingJob): number {
  return Math.max(1, job.spec.workers ?? 1);
}

export function distributed(job: TrainingJob): boolean {
  return workersOf(job) > 1;
}

/** Labels every pod of the job carries; the selector for "pods of this job". */
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

function rank0Host(job: TrainingJob): string {
  return hostnameOf(job, 0);
}

function hostnameOf(job: TrainingJob, rank: number): string {
  const svc = serviceName(job);
  const suffix = `-${rank}`;
  return svc.length + suffix.length <= 63 ? svc + suffix : `${svc.slice(0, 63 - suffix.length)}${suffix}`;
}

/** The address other ranks reach rank 0 at: its hostname under the headless Service (resolved via the pod's DNS search path). */
export function masterAddress(job: TrainingJob): string {
  return `${rank0Host(job)}.${serviceName(job)}`;
}

function rankEnv(job: TrainingJob, rank: number): EnvVar[] {
  const workers = workersOf(job);
  const nproc = String(Math.max(1, job.spec.resources?.gpus ?? 0));
  const env: EnvVar[] = [
    { name: 'RANK', value: String(rank) },
    { name: 'WORLD_SIZE', value: String(workers) },
  ];
  if (!distributed(job)) return env;
  const port = String(job.spec.masterPort ?? DEFAULT_MASTER_PORT);
  const addr = masterAddress(job);
  return [
    ...env,
    { name: 'MASTER_ADDR', value: addr },
    { name: 'MASTER_PORT', value: port },
    { name: 'NPROC_PER_NODE', value: nproc },
    { name: 'PET_NNODES', value: String(workers) },
    { name: 'PET_NPROC_PER_NODE', value: nproc },
    { name: 'PET_NODE_RANK', value: String(rank) },
    { name: 'PET_MASTER_ADDR', value: addr },
    { name: 'PET_MASTER_PORT', value: port },
  ];
}

function trainerEnv(job: TrainingJob, attempt: number, rank: number, storage: StorageSettings | undefined): EnvVar[] {
  const hp = job.spec.hyperparameters ?? {};
  const env: EnvVar[] = [
    ...rankEnv(job, rank),
    { name: 'LOOPLINE_HYPERPARAMETERS', value: JSON.stringify(hp) },
    { name: 'LOOPLINE_RESULT_PATH', value: TERMINATION_MESSAGE_PATH },
    ...storagePodEnv(storage),
  ];
  const output = outputUri(job, attempt);
  if (output) env.push({ name: 'LOOPLINE_OUTPUT_URI', value: output });
  if (job.spec.dataset?.uri) env.push({ name: 'LOOPLINE_DATASET_URI', value: job.spec.dataset.uri });
  const hpEnv = Object.keys(hp).sort().map((name) => ({ name: hyperparameterEnvName(name), value: hp[name] }));
  const own = new Set([...env, ...hpEnv].map((e) => e.name));
  const user = (job.spec.env ?? []).filter((e) => !RESERVED_ENV.has(e.name) && !own.has(e.name));
  return [...user, ...hpEnv, ...env];
}

function tolerationsOf(job: TrainingJob): Toleration[] {
  const tolerations = [...(job.spec.tolerations ?? [])];
  const gpus = job.spec.resources?.gpus ?? 0;
  if (gpus > 0 && !tolerations.some((t) => t.key === GPU_RESOURCE && (t.operator === 'Exists' || t.operator === undefined))) {
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
  if ((r.gpus ?? 0) > 0) limits[GPU_RESOURCE] = String(r.gpus);
  if (Object.keys(limits).length === 0) return undefined;
  return Object.keys(requests).length > 0 ? { limits, requests } : { limits };
}

/** The pod for one rank of one attempt; `storage` is the operator's object storage configuration. */
export function desiredPod(job: TrainingJob, owner: OwnerReference, attempt: number, rank: number, storage?: StorageSettings): DesiredObject {
  const nodeSelector = { ...(job.spec.nodeSelector ?? {}) };
  if (job.spec.resources?.gpuType) nodeSelector[GPU_PRODUCT_LABEL] = job.spec.resources.gpuType;
  const container: Record<string, unknown> = {
    name: TRAINER_CONTAINER,
    image: job.spec.image,
    env: trainerEnv(job, attempt, rank, storage),
    terminationMessagePath: TERMINATION_MESSAGE_PATH,
    terminationMessagePolicy: 'File',
  };
  if (job.spec.command?.length) container.command = job.spec.command;
  if (job.spec.args?.length) container.args = job.spec.args;
  const resources = resourcesOf(job);
  if (resources) container.resources = resources;
  if (distributed(job) && rank === 0) {
    container.ports = [{ name: 'rendezvous', containerPort: job.spec.masterPort ?? DEFAULT_MASTER_PORT, protocol: 'TCP' }];
  }
  const spec: Record<string, unknown> = { restartPolicy: 'Never', containers: [container] };
  if (Object.keys(nodeSelector).length > 0) spec.nodeSelector = nodeSelector;
  const tolerations = tolerationsOf(job);
  if (tolerations.length > 0) spec.tolerations = tolerations;
  if (job.spec.priorityClassName) spec.priorityClassName = job.spec.priorityClassName;
  if (job.spec.serviceAccountName) spec.serviceAccountName = job.spec.serviceAccountName;
  if (distributed(job)) {
    spec.hostname = hostnameOf(job, rank);
    spec.subdomain = serviceName(job);
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: podName(job, attempt, rank),
      namespace: job.metadata.namespace,
      labels: { ...jobLabels(job), [LABEL_ATTEMPT]: String(attempt), [LABEL_RANK]: String(rank) },
      annotations: { [ANNOTATION_HYPERPARAMETERS]: JSON.stringify(job.spec.hyperparameters ?? {}) },
      ownerReferences: [owner],
    },
    spec,
  };
}

/** Every rank's pod for `attempt`, rank 0 first. */
export function desiredPods(job: TrainingJob, owner: OwnerReference, attempt: number, storage?: StorageSettings): DesiredObject[] {
  return Array.from({ length: workersOf(job) }, (_, rank) => desiredPod(job, owner, attempt, rank, storage));
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
      selector: { [LABEL_TRAININGJOB]: labelValue(job.metadata.name), [LABEL_RANK]: '0' },
      ports: [{ name: 'rendezvous', port: job.spec.masterPort ?? DEFAULT_MASTER_PORT, targetPort: job.spec.masterPort ?? DEFAULT_MASTER_PORT, protocol: 'TCP' }],
    },
  };
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 10);
}
