// A pod's container as a podman container: what a kubelet with a CRI runtime would ask runc for, read from
// the pod spec the chart or the operator produces (security context, resources, env, volumes, termination
// message). Anything in the spec it cannot honour here is an error naming the field, never silently dropped.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { quantityValue } from '../../operator/engine/apply.ts';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface ContainerRun {
  /** Container name (podman's). */
  name: string;
  /** `host` (the node's network: the local API server on loopback) or a pod's network namespace (e2e/local-kubelet/network.ts). */
  network: 'host' | { netns: string };
  /** Values of the `valueFrom.fieldRef` paths the container's env uses (metadata.namespace, status.podIP). */
  fieldRefs?: Record<string, string>;
  /** The Secrets `valueFrom.secretKeyRef` env reads: name -> key -> value. */
  secrets?: Record<string, Record<string, string>>;
  /** The projected ServiceAccount token volume and the in-cluster API server address, as the kubelet mounts them. */
  serviceAccount?: { token: string; caCert: string; namespace: string; apiHost: string; apiPort: number };
  /** Host directory this run may write into: the termination message file and the token volume live there. */
  scratch: string;
  /** Extended resources (nvidia.com/gpu) that exist only on simulated nodes: accepted, and not enforced. */
  simulatedResources?: string[];
}

export interface PodmanRun {
  args: string[];
  /** Host file bound at the container's terminationMessagePath. */
  terminationMessageFile: string;
}

type Spec = Record<string, any>;

const KNOWN_POD_SECURITY = new Set(['runAsNonRoot', 'runAsUser', 'runAsGroup', 'fsGroup', 'seccompProfile']);
const KNOWN_CONTAINER_SECURITY = new Set([
  'allowPrivilegeEscalation',
  'readOnlyRootFilesystem',
  'runAsNonRoot',
  'runAsUser',
  'runAsGroup',
  'capabilities',
  'seccompProfile',
]);

/** The hard limit of `ulimit -H -<flag>` of this machine: a container may not be given more without CAP_SYS_RESOURCE. */
export function hardLimit(flag: 'n' | 'u'): number {
  const out = spawnSync('bash', ['-c', `ulimit -H -${flag}`], { encoding: 'utf8' }).stdout.trim();
  return out === 'unlimited' ? 1_048_576 : Number(out);
}

/**
 * Open-file and process limits for containers, inside the hard limits podman's conmon (and so runc) runs
 * with: this machine's (`ulimit -H`), and at most 32768 processes, which conmon caps itself to. More
 * fails in runc with EPERM: raising a hard limit needs CAP_SYS_RESOURCE.
 */
export const containerLimits = { nofile: hardLimit('n'), nproc: Math.min(hardLimit('u'), 32768) };

/** Local images are named localhost/<name> in the containers storage; a pod names them loopline/<name>:<tag>. */
export function localImage(image: string): string {
  return image.startsWith('loopline/') ? `localhost/${image}` : image;
}

function seccomp(profile: Spec | undefined, where: string): string[] {
  if (!profile) return [];
  if (profile.type === 'RuntimeDefault') return []; // podman's default profile is containers-common's RuntimeDefault
  if (profile.type === 'Unconfined') return ['--security-opt', 'seccomp=unconfined'];
  throw new Error(`${where}.seccompProfile.type ${profile.type}: only RuntimeDefault and Unconfined can be run here`);
}

function unknownKeys(object: Spec | undefined, known: Set<string>, where: string): void {
  for (const key of Object.keys(object ?? {}))
    if (!known.has(key)) throw new Error(`${where}.${key} is not translated to podman: add it to e2e/images/podman.ts`);
}

/** `podman run` arguments for container `containerName` (default: the first) of a pod spec. */
export function podmanRun(podSpec: Spec, run: ContainerRun, containerName?: string): PodmanRun {
  const container = containerName
    ? podSpec.containers.find((c: Spec) => c.name === containerName)
    : podSpec.containers[0];
  if (!container) throw new Error(`the pod has no container ${containerName}`);
  const pod = podSpec.securityContext ?? {};
  const own = container.securityContext ?? {};
  unknownKeys(pod, KNOWN_POD_SECURITY, 'spec.securityContext');
  unknownKeys(own, KNOWN_CONTAINER_SECURITY, `containers[${container.name}].securityContext`);
  const args = ['run', '--detach', '--name', run.name, '--runtime', 'runc', '--pull', 'never'];

  const uid = own.runAsUser ?? pod.runAsUser;
  const gid = own.runAsGroup ?? pod.runAsGroup;
  if (uid !== undefined) args.push('--user', gid !== undefined ? `${uid}:${gid}` : String(uid));
  if (pod.fsGroup !== undefined) args.push('--group-add', String(pod.fsGroup));
  if (own.readOnlyRootFilesystem) args.push('--read-only', '--read-only-tmpfs=false');
  if (own.allowPrivilegeEscalation === false) args.push('--security-opt', 'no-new-privileges');
  for (const cap of own.capabilities?.drop ?? []) args.push('--cap-drop', cap);
  for (const cap of own.capabilities?.add ?? []) args.push('--cap-add', cap);
  args.push(...seccomp(own.seccompProfile ?? pod.seccompProfile, 'securityContext'));
  // runAsNonRoot is the kubelet's check of the image user; the runtime only sees the resolved uid.
  if ((own.runAsNonRoot ?? pod.runAsNonRoot) && uid === 0)
    throw new Error('runAsNonRoot with runAsUser 0: the kubelet refuses to start it');
  args.push(
    '--ulimit',
    `nofile=${containerLimits.nofile}:${containerLimits.nofile}`,
    '--ulimit',
    `nproc=${containerLimits.nproc}:${containerLimits.nproc}`,
  );

  const { limits = {}, requests = {} } = container.resources ?? {};
  for (const name of new Set([...Object.keys(limits), ...Object.keys(requests)])) {
    if (!['cpu', 'memory', ...(run.simulatedResources ?? [])].includes(name))
      throw new Error(`resources ${name} cannot be given to a container here`);
  }
  if (limits.memory !== undefined) args.push('--memory', String(quantityValue(limits.memory)));
  if (limits.cpu !== undefined) args.push('--cpus', String(quantityValue(limits.cpu)));
  // The kubelet's cpu.shares for a request: 1024 per core, at least 2.
  const cpuRequest = requests.cpu ?? limits.cpu;
  if (cpuRequest !== undefined)
    args.push('--cpu-shares', String(Math.max(2, Math.round(quantityValue(cpuRequest) * 1024))));

  args.push('--network', run.network === 'host' ? 'host' : `ns:/run/netns/${run.network.netns}`);

  for (const variable of container.env ?? []) {
    let value = variable.value;
    const { fieldRef, secretKeyRef } = variable.valueFrom ?? {};
    if (fieldRef) {
      value = run.fieldRefs?.[fieldRef.fieldPath];
      if (value === undefined)
        throw new Error(
          `env ${variable.name}: fieldRef ${fieldRef.fieldPath} has no value here (give it in fieldRefs)`,
        );
    } else if (secretKeyRef) {
      value = run.secrets?.[secretKeyRef.name]?.[secretKeyRef.key];
      if (value === undefined)
        throw new Error(
          `env ${variable.name}: Secret ${secretKeyRef.name} key ${secretKeyRef.key} is not given (secrets)`,
        );
    } else if (variable.valueFrom) {
      throw new Error(
        `env ${variable.name}: valueFrom ${JSON.stringify(variable.valueFrom)} is not translated to podman`,
      );
    }
    args.push('--env', `${variable.name}=${value ?? ''}`);
  }

  const volumes = new Map<string, Spec>((podSpec.volumes ?? []).map((v: Spec) => [v.name, v]));
  for (const mount of container.volumeMounts ?? []) {
    const volume = volumes.get(mount.name);
    if (!volume?.emptyDir)
      throw new Error(
        `volumeMounts ${mount.name}: only emptyDir volumes are translated (got ${JSON.stringify(volume)})`,
      );
    const size = volume.emptyDir.sizeLimit !== undefined ? `,size=${quantityValue(volume.emptyDir.sizeLimit)}` : '';
    // An emptyDir is a fresh directory writable by anyone (mode 0777); the kubelet makes it group-owned by fsGroup.
    args.push('--tmpfs', `${mount.mountPath}:rw,nosuid,nodev,mode=0777${size}`);
  }

  mkdirSync(run.scratch, { recursive: true });
  if (run.serviceAccount && podSpec.automountServiceAccountToken !== false) {
    const sa = join(run.scratch, 'serviceaccount');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), run.serviceAccount.token, { mode: 0o644 });
    writeFileSync(join(sa, 'ca.crt'), run.serviceAccount.caCert, { mode: 0o644 });
    writeFileSync(join(sa, 'namespace'), run.serviceAccount.namespace, { mode: 0o644 });
    args.push('--volume', `${sa}:${SERVICE_ACCOUNT_DIR}:ro`);
    args.push(
      '--env',
      `KUBERNETES_SERVICE_HOST=${run.serviceAccount.apiHost}`,
      '--env',
      `KUBERNETES_SERVICE_PORT=${run.serviceAccount.apiPort}`,
    );
  }
  // The kubelet binds a file of its own at the termination message path, writable by the container's user.
  const terminationMessageFile = join(run.scratch, 'termination-log');
  writeFileSync(terminationMessageFile, '');
  chmodSync(terminationMessageFile, 0o666);
  args.push('--volume', `${terminationMessageFile}:${container.terminationMessagePath ?? '/dev/termination-log'}`);

  if (container.command?.length) args.push('--entrypoint', JSON.stringify(container.command));
  args.push(localImage(container.image), ...(container.args ?? []));
  return { args, terminationMessageFile };
}
