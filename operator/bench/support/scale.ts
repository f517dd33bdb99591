/**
 * What both InferenceService scale benchmarks share: the simulated nodes the predictor pods land on, the service range
 * they need, the InferenceServices they create and how many at a time, and the CPU the control plane spent (read from /proc: the local
 * cluster runs its components as processes on this machine).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { kinds, type KubeApi, type KubeObject } from '../../engine/index.ts';
import { cpuSecondsOf, sleep } from '../../../test/support/local.ts';
import { deleteNamespace } from '../../../test/support/namespaces.ts';

export const SIMULATED_IMAGE = 'registry.local/loopline-predictor-simulated:0.1.0';
export const NODE_LABEL = 'loopline.dev/bench';
const PODS_PER_NODE = 250;
/** A cluster-IP Service per InferenceService outgrows the local cluster's /24 service range: a ServiceCIDR adds room. */
const ServiceCIDR = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'ServiceCIDR',
  plural: 'servicecidrs',
  namespaced: false,
} as const;
const BENCH_SERVICE_CIDR = '10.100.0.0/20';

function benchNode(name: string): KubeObject {
  const capacity = { cpu: '1000', memory: '4000Gi', pods: String(PODS_PER_NODE) };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { 'kwok.x-k8s.io/node': 'fake' },
      labels: { [NODE_LABEL]: 'inferenceservice', 'kubernetes.io/hostname': name, type: 'kwok' },
    },
    status: { capacity, allocatable: capacity },
  } as unknown as KubeObject;
}

/** Simulated nodes for `count` predictor pods and the service range for their Services. */
export async function addCapacity(
  api: KubeApi,
  namespace: string,
  count: number,
): Promise<{ remove(): Promise<void> }> {
  const nodes = Array.from({ length: Math.ceil(count / PODS_PER_NODE) }, (_, i) => `${namespace}-node-${i}`);
  for (const node of nodes) await api.create(kinds.Node, benchNode(node) as never, 'loopline-bench');
  await api.create(
    ServiceCIDR,
    {
      apiVersion: ServiceCIDR.apiVersion,
      kind: ServiceCIDR.kind,
      metadata: { name: namespace },
      spec: { cidrs: [BENCH_SERVICE_CIDR] },
    } as never,
    'loopline-bench',
  );
  return {
    async remove() {
      await deleteNamespace(api, namespace);
      // Pods on the bench nodes go with the namespace; the nodes after them.
      for (let i = 0; i < 120; i++) {
        const left = (await api.list(kinds.Pod, namespace, { limit: 1 })).items.length;
        if (left === 0) break;
        await sleep(1000);
      }
      for (const node of nodes) await api.delete(kinds.Node, undefined, node).catch(() => undefined);
      // Deleted once its addresses are free (the API server holds it with a finalizer until then).
      await api.delete(ServiceCIDR, undefined, namespace).catch(() => undefined);
    },
  };
}

export function benchInferenceService(namespace: string, name: string): KubeObject {
  return {
    apiVersion: 'loopline.dev/v1alpha1',
    kind: 'InferenceService',
    metadata: { name, namespace },
    spec: {
      model: 'bench-model',
      stable: { alias: 'production' },
      predictor: { resources: { cpu: '10m', memory: '16Mi' }, nodeSelector: { [NODE_LABEL]: 'inferenceservice' } },
      traffic: { provider: 'gatewayAPI', parentRefs: [{ name: 'edge' }] },
    },
  } as unknown as KubeObject;
}

const COMPONENTS = ['kube-apiserver', 'kube-controller', 'kube-scheduler', 'etcd', 'kwok-controller'];

/** CPU seconds (user + system) each control-plane process has used so far, by its /proc comm name. */
export function controlPlaneCpu(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      if (!COMPONENTS.includes(comm)) continue;
      out[comm] = (out[comm] ?? 0) + cpuSecondsOf(pid);
    } catch {
      // The process ended between listing and reading.
    }
  }
  return out;
}

/** CPU seconds spent by each component between two controlPlaneCpu() readings, and their total. */
export function cpuSpent(
  after: Record<string, number>,
  before: Record<string, number>,
): { byComponent: Record<string, number>; total: number } {
  const byComponent = Object.fromEntries(
    Object.entries(after).map(([k, v]) => [k, Math.round((v - (before[k] ?? 0)) * 10) / 10]),
  );
  return { byComponent, total: Math.round(Object.values(byComponent).reduce((a, b) => a + b, 0) * 10) / 10 };
}

/**
 * The benchmark's InferenceService names, each handed to `work` with 16 in flight: the client side of the benchmark,
 * as a busy `kubectl apply` of many files (or the operator's 16 workers) would go.
 */
export async function forEachInferenceService(count: number, work: (name: string) => Promise<void>): Promise<void> {
  const names = Array.from({ length: count }, (_, i) => `isvc-${String(i).padStart(4, '0')}`);
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let name = names[next++]; name !== undefined; name = names[next++]) await work(name);
    }),
  );
}

/** loopline_api_writes_total by `verb kind`, from the operator's /metrics. */
export async function operatorWrites(port: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^loopline_api_writes_total\{([^}]*)\} (\d+(?:\.\d+)?)$/gm)) {
    const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    out.set(`${labels.verb} ${labels.kind}`, Number(m[2]));
  }
  return out;
}
