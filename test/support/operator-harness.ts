// The in-process operator harness the TrainingJob and registry tests (and the benches) share on the local cluster: a namespace of their
// own, the CRDs and admission policy installed, the local-kubelet running that namespace's pods,
// (unless a test runs its own) the operator in-process, and Kueue queues of the test's own.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { HttpMethod, type KubeConfig } from '@kubernetes/client-node';
import { load } from 'js-yaml';
import { startLocalKubelet, type LocalKubelet } from '../../e2e/local-kubelet/kubelet.ts';
import { installCrds } from '../../operator/api/install.ts';
import {
  KubeApi,
  kinds,
  resourcePath,
  type Engine,
  type KubeObject,
  type ResourceKind,
} from '../../operator/engine/index.ts';
import { createOperator, type OperatorOptions } from '../../operator/main.ts';
import type { ModelVersion } from '../../operator/modelversion/resource.ts';
import type { TrainingJob, TrainingJobSpec } from '../../operator/trainingjob/resource.ts';
import { quietLogger as logger, requireKubeconfig, sleep, waitFor } from './local.ts';
import { createNamespace } from './namespaces.ts';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const GPU_PRODUCT = 'NVIDIA-A100-SXM4-80GB';

export { logger, requireKubeconfig, sleep, waitFor };

const MutatingAdmissionPolicy: ResourceKind = {
  apiVersion: 'admissionregistration.k8s.io/v1',
  kind: 'MutatingAdmissionPolicy',
  plural: 'mutatingadmissionpolicies',
  namespaced: false,
};
const MutatingAdmissionPolicyBinding: ResourceKind = {
  apiVersion: 'admissionregistration.k8s.io/v1',
  kind: 'MutatingAdmissionPolicyBinding',
  plural: 'mutatingadmissionpolicybindings',
  namespaced: false,
};

export interface Harness {
  kc: KubeConfig;
  api: KubeApi;
  namespace: string;
  /** A scratch directory for model artifacts (file:// output). */
  outputDir: string;
  kubelet?: LocalKubelet;
  operator?: Engine;
  /** ClusterQueues made by `createQueue`, deleted by `stop`. */
  clusterQueues: string[];
  stop(): Promise<void>;
}

/** Installs the CRDs and the admission policy that stamps who asks for ModelVersion changes. */
export async function installApi(kc: KubeConfig, api: KubeApi): Promise<void> {
  await installCrds(kc);
  const docs = (
    String(readFileSync(join(REPO_ROOT, 'crds/admission-policy.yaml'), 'utf8'))
      .split(/^---$/m)
      .map((d) => load(d)) as KubeObject[]
  ).filter(Boolean);
  for (const doc of docs) {
    const kind = doc.kind === 'MutatingAdmissionPolicy' ? MutatingAdmissionPolicy : MutatingAdmissionPolicyBinding;
    await api.apply(kind, doc, 'loopline-tests');
  }
}

/**
 * A policy just created takes a moment to reach the API server's admission chain (it loads policies
 * from an informer and recompiles them about once a second; longer on a busy machine). Probes the
 * policy with dry-run creates in `namespace` until it has mutated its probe, so no test races it.
 */
export async function waitForAdmissionPolicies(api: KubeApi, namespace: string): Promise<void> {
  await waitFor(
    'the admission policy of crds/admission-policy.yaml to be in effect',
    async () => {
      const version = await api.request<KubeObject>(HttpMethod.POST, resourcePath(kinds.ModelVersion, namespace), {
        query: { dryRun: 'All' },
        body: {
          apiVersion: 'loopline.dev/v1alpha1',
          kind: 'ModelVersion',
          metadata: { name: 'policy-probe-v1', namespace },
          spec: {
            model: 'policy-probe',
            version: 1,
            artifact: { uri: 'file:///probe/model.onnx', digest: `sha256:${'0'.repeat(64)}` },
          },
        },
      });
      return Boolean(version.metadata.annotations?.['loopline.dev/requested-by']) || undefined;
    },
    60_000,
  );
}

/**
 * A fresh namespace `<prefix>-<random>` on the test cluster, with the CRDs and admission policies installed and
 * enforced in it, and a local directory for what its jobs write.
 */
export async function prepareNamespace(
  prefix: string,
  fieldManager: string,
): Promise<{ kc: KubeConfig; api: KubeApi; namespace: string; outputDir: string }> {
  const kc = requireKubeconfig();
  const api = new KubeApi(kc);
  const namespace = `${prefix}-${randomBytes(3).toString('hex')}`;
  await installApi(kc, api);
  await createNamespace(api, namespace, fieldManager);
  await waitForAdmissionPolicies(api, namespace);
  return { kc, api, namespace, outputDir: mkdtempSync(join(tmpdir(), `${prefix}-`)) };
}

export async function startHarness(
  prefix: string,
  options: { operator?: OperatorOptions | false; kubelet?: boolean } = {},
): Promise<Harness> {
  const { kc, api, namespace, outputDir } = await prepareNamespace(prefix, 'loopline-tests');
  const kubelet =
    options.kubelet === false
      ? undefined
      : await startLocalKubelet({ kubeconfig: kc, repoRoot: REPO_ROOT, namespace, logger: logger() });
  let operator: Engine | undefined;
  if (options.operator !== false) {
    operator = createOperator({
      kubeconfig: kc,
      namespace,
      leaderElection: false,
      httpPort: false,
      logger: logger(),
      lifecycle: { retryBaseMs: 300 },
      ...options.operator,
    });
    await operator.start();
  }
  const clusterQueues: string[] = [];
  return {
    kc,
    api,
    namespace,
    outputDir,
    kubelet,
    operator,
    clusterQueues,
    async stop() {
      await operator?.stop();
      for (const cq of clusterQueues) await api.delete(kueueKinds.ClusterQueue, undefined, cq).catch(() => undefined);
      await api.delete(kinds.Namespace, undefined, namespace).catch(() => undefined);
      // The local-kubelet carries out the pod deletions of the namespace before it stops.
      await waitFor(
        'pods of the namespace to be gone',
        async () => (await api.list(kinds.Pod, namespace)).items.length === 0 || undefined,
        20_000,
      ).catch(() => undefined);
      await kubelet?.stop();
      rmSync(outputDir, { recursive: true, force: true });
    },
  };
}

/** A TrainingJob of the example trainer on one A100, small enough to train in about a second. */
export function trainingJobObject(
  h: Pick<Harness, 'namespace' | 'outputDir'>,
  name: string,
  spec: Partial<TrainingJobSpec> = {},
): KubeObject {
  return {
    apiVersion: 'loopline.dev/v1alpha1',
    kind: 'TrainingJob',
    metadata: { name, namespace: h.namespace },
    spec: {
      model: 'credit-risk',
      image: 'loopline/example-trainer:0.1.0',
      resources: { gpus: 1, gpuType: GPU_PRODUCT },
      hyperparameters: { epochs: '40', rows: '800' },
      output: { uri: pathToFileURL(h.outputDir).href },
      backoffLimit: 0,
      ...spec,
    },
  };
}

export async function createJob(h: Harness, name: string, spec: Partial<TrainingJobSpec> = {}): Promise<void> {
  await h.api.create(kinds.TrainingJob, trainingJobObject(h, name, spec), 'loopline-tests');
}

export async function getJob(h: Harness, name: string): Promise<TrainingJob> {
  return (await h.api.get(kinds.TrainingJob, h.namespace, name)) as unknown as TrainingJob;
}

export async function waitForPhase(
  h: Harness,
  name: string,
  phases: string[],
  timeoutMs = 40_000,
): Promise<TrainingJob> {
  let last: TrainingJob | undefined;
  return waitFor(
    `TrainingJob ${name} to reach ${phases.join('|')}`,
    async () => {
      last = await getJob(h, name);
      return phases.includes(last.status?.phase ?? '') ? last : undefined;
    },
    timeoutMs,
  ).catch((err) => {
    throw new Error(`${err.message}; last status: ${JSON.stringify(last?.status)}`);
  });
}

export async function podsOf(h: Harness, job: string): Promise<KubeObject[]> {
  return (await h.api.list(kinds.Pod, h.namespace, { labelSelector: `loopline.dev/trainingjob=${job}` })).items;
}

export async function versionsOf(h: Harness, model: string): Promise<ModelVersion[]> {
  const items = (await h.api.list(kinds.ModelVersion, h.namespace)).items as unknown as ModelVersion[];
  return items.filter((v) => v.spec.model === model).sort((a, b) => a.spec.version - b.spec.version);
}

export async function jobsOf(h: Harness, job: string): Promise<KubeObject[]> {
  return (await h.api.list(kinds.Job, h.namespace, { labelSelector: `loopline.dev/trainingjob=${job}` })).items;
}

/** Kueue's kinds the tests make (kueue.x-k8s.io/v1beta2), and PriorityClass. */
export const kueueKinds = {
  ClusterQueue: {
    apiVersion: 'kueue.x-k8s.io/v1beta2',
    kind: 'ClusterQueue',
    plural: 'clusterqueues',
    namespaced: false,
  },
  LocalQueue: { apiVersion: 'kueue.x-k8s.io/v1beta2', kind: 'LocalQueue', plural: 'localqueues', namespaced: true },
  ResourceFlavor: {
    apiVersion: 'kueue.x-k8s.io/v1beta2',
    kind: 'ResourceFlavor',
    plural: 'resourceflavors',
    namespaced: false,
  },
  PriorityClass: {
    apiVersion: 'scheduling.k8s.io/v1',
    kind: 'PriorityClass',
    plural: 'priorityclasses',
    namespaced: false,
  },
} as const satisfies Record<string, ResourceKind>;

/** The ResourceFlavor of the GPU nodes that cluster.sh up makes (e2e/cluster/kueue-queues.yaml). */
export const GPU_FLAVOR = 'a100-80gb';

/**
 * A ClusterQueue of this test's own, `gpus` A100s of quota and only this namespace admitted, that preempts
 * lower priorities within itself; and the LocalQueue `name` in the test's namespace pointing at it.
 */
export async function createQueue(
  h: Harness,
  name: string,
  gpus: number,
  queueingStrategy: 'BestEffortFIFO' | 'StrictFIFO' = 'BestEffortFIFO',
): Promise<string> {
  const clusterQueue = `${h.namespace}-${name}`;
  await h.api.get(kueueKinds.ResourceFlavor, undefined, GPU_FLAVOR).catch(() => {
    throw new Error(
      `ResourceFlavor ${GPU_FLAVOR} is missing: start the cluster with e2e/cluster/cluster.sh up (it runs Kueue and applies e2e/cluster/kueue-queues.yaml)`,
    );
  });
  await h.api.apply(
    kueueKinds.ClusterQueue,
    clusterQueueObject(h, clusterQueue, gpus, queueingStrategy),
    'loopline-tests',
  );
  h.clusterQueues.push(clusterQueue);
  await h.api.apply(
    kueueKinds.LocalQueue,
    {
      apiVersion: 'kueue.x-k8s.io/v1beta2',
      kind: 'LocalQueue',
      metadata: { name, namespace: h.namespace },
      spec: { clusterQueue },
    } as KubeObject,
    'loopline-tests',
  );
  await waitFor(`LocalQueue ${name} to be active`, async () => {
    const lq = await h.api.get(kueueKinds.LocalQueue, h.namespace, name);
    return (
      lq.status?.conditions?.some(
        (c: { type: string; status: string }) => c.type === 'Active' && c.status === 'True',
      ) || undefined
    );
  });
  return clusterQueue;
}

export function clusterQueueObject(
  h: Harness,
  name: string,
  gpus: number,
  queueingStrategy: 'BestEffortFIFO' | 'StrictFIFO' = 'BestEffortFIFO',
): KubeObject {
  return {
    apiVersion: 'kueue.x-k8s.io/v1beta2',
    kind: 'ClusterQueue',
    metadata: { name },
    spec: {
      queueingStrategy,
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': h.namespace } },
      preemption: { withinClusterQueue: 'LowerPriority' },
      resourceGroups: [
        {
          coveredResources: ['cpu', 'memory', 'nvidia.com/gpu'],
          flavors: [
            {
              name: GPU_FLAVOR,
              resources: [
                { name: 'cpu', nominalQuota: '96' },
                { name: 'memory', nominalQuota: '1Ti' },
                { name: 'nvidia.com/gpu', nominalQuota: String(gpus) },
              ],
            },
          ],
        },
      ],
    },
  } as KubeObject;
}

/** Kueue's Workloads in the test's namespace. */
export async function workloadsOf(h: Harness): Promise<KubeObject[]> {
  return (await h.api.list(kinds.Workload, h.namespace)).items;
}
