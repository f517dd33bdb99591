// Shared by the chart tests: the helm and kubectl binaries of the local cluster, rendering the chart,
// and the paths of the chart and the repository.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAll } from 'js-yaml';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CHART = join(ROOT, 'charts/loopline');
/** The Kubernetes version of the local cluster; `helm template` has no cluster to ask. */
export const KUBE_VERSION = process.env.KUBE_VERSION ?? 'v1.36.3';

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown };
  [field: string]: any;
}

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** A binary from the local cluster's cache, else from PATH (after `eval "$(bash e2e/cluster/cluster.sh env)"`). */
function binary(name: string): string {
  const cache = process.env.LOOPLINE_CACHE ?? join(process.env.HOME ?? '/root', '.cache/loopline');
  const cached = join(cache, 'bin', `kube-${KUBE_VERSION}`, name);
  if (existsSync(cached)) return cached;
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
  if (!found)
    throw new Error(
      `${name} not found in ${cached} nor on PATH: run \`bash e2e/cluster/cluster.sh up\` and \`eval "$(bash e2e/cluster/cluster.sh env)"\``,
    );
  return found;
}

export const HELM = binary('helm');
export const KUBECTL = binary('kubectl');

export function run(command: string, args: string[], input?: string): Run {
  const result = spawnSync(command, args, { cwd: ROOT, encoding: 'utf8', input, timeout: 90_000, env: process.env });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export function helm(...args: string[]): Run {
  return run(HELM, args);
}

/** kubectl that throws with its stderr when it fails. */
export function kubectl(args: string[], input?: string): string {
  const result = run(KUBECTL, args, input);
  if (result.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr || result.stdout}`);
  return result.stdout;
}

export function requireKubeconfig(): void {
  if (!process.env.KUBECONFIG) {
    throw new Error(
      'KUBECONFIG is not set: run through `npm test`, or `eval "$(bash e2e/cluster/cluster.sh env)"` first',
    );
  }
}

/** `--set`/`--set-json` style flags from a list of `path=value` strings (`--set-json` when the value is JSON with a prefix `json:`). */
export function valueFlags(values: string[] = []): string[] {
  return values.flatMap((v) => (v.startsWith('json:') ? ['--set-json', v.slice(5)] : ['--set', v]));
}

/** `helm template` of the chart; throws with helm's stderr when rendering fails. */
export function render(
  values: string[] = [],
  options: { release?: string; namespace?: string; apiVersions?: string[] } = {},
): Manifest[] {
  const result = helm(
    'template',
    options.release ?? 'loopline',
    CHART,
    '--namespace',
    options.namespace ?? 'loopline-system',
    '--kube-version',
    KUBE_VERSION,
    ...(options.apiVersions ?? []).flatMap((v) => ['--api-versions', v]),
    ...valueFlags(values),
  );
  if (result.status !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  return (loadAll(result.stdout) as Array<Manifest | null>).filter(
    (m): m is Manifest => m !== null && typeof m === 'object',
  );
}

export function find(manifests: Manifest[], kind: string, name?: string): Manifest {
  const found = manifests.find((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
  if (!found)
    throw new Error(
      `no ${kind}${name ? ` ${name}` : ''} in the rendered chart (${manifests.map((m) => m.kind).join(', ')})`,
    );
  return found;
}

/** A namespace name unique to this test process. */
export function uniqueNamespace(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36).slice(-4)}`;
}

/**
 * Deletes a test namespace. Pods of `loopline/...` images are left by KWOK to a local kubelet that is not
 * running here, so nothing would ever confirm their termination: they are force-deleted first.
 */
export function deleteNamespace(namespace: string): void {
  run(KUBECTL, ['delete', 'pods', '--all', '-n', namespace, '--force', '--grace-period=0']);
  run(KUBECTL, ['delete', 'namespace', namespace, '--wait=false']);
}
