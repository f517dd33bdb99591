/** The resource kinds the operator reads or writes, with the REST path parts the informers and writers need. */
export interface ResourceKind {
  /** `group/version`, or `v1` for the core group. */
  apiVersion: string;
  kind: string;
  /** Lower-case plural used in REST paths (`pods`, `trainingjobs`). */
  plural: string;
  namespaced: boolean;
}

export const LOOPLINE_API_VERSION = 'loopline.dev/v1alpha1';

export const kinds = {
  Pod: { apiVersion: 'v1', kind: 'Pod', plural: 'pods', namespaced: true },
  Service: { apiVersion: 'v1', kind: 'Service', plural: 'services', namespaced: true },
  ConfigMap: { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true },
  Secret: { apiVersion: 'v1', kind: 'Secret', plural: 'secrets', namespaced: true },
  ServiceAccount: { apiVersion: 'v1', kind: 'ServiceAccount', plural: 'serviceaccounts', namespaced: true },
  Namespace: { apiVersion: 'v1', kind: 'Namespace', plural: 'namespaces', namespaced: false },
  Node: { apiVersion: 'v1', kind: 'Node', plural: 'nodes', namespaced: false },
  PriorityClass: {
    apiVersion: 'scheduling.k8s.io/v1',
    kind: 'PriorityClass',
    plural: 'priorityclasses',
    namespaced: false,
  },
  Deployment: { apiVersion: 'apps/v1', kind: 'Deployment', plural: 'deployments', namespaced: true },
  ReplicaSet: { apiVersion: 'apps/v1', kind: 'ReplicaSet', plural: 'replicasets', namespaced: true },
  Job: { apiVersion: 'batch/v1', kind: 'Job', plural: 'jobs', namespaced: true },
  HorizontalPodAutoscaler: {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    plural: 'horizontalpodautoscalers',
    namespaced: true,
  },
  Lease: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', plural: 'leases', namespaced: true },
  Event: { apiVersion: 'events.k8s.io/v1', kind: 'Event', plural: 'events', namespaced: true },
  HTTPRoute: { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', plural: 'httproutes', namespaced: true },
  GRPCRoute: { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GRPCRoute', plural: 'grpcroutes', namespaced: true },
  Gateway: { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', plural: 'gateways', namespaced: true },
  IngressRoute: { apiVersion: 'traefik.io/v1alpha1', kind: 'IngressRoute', plural: 'ingressroutes', namespaced: true },
  TraefikService: {
    apiVersion: 'traefik.io/v1alpha1',
    kind: 'TraefikService',
    plural: 'traefikservices',
    namespaced: true,
  },
  VirtualService: {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    plural: 'virtualservices',
    namespaced: true,
  },
  /** Kueue's unit of admission; the operator makes one of each queued Job (kueue.ts desiredWorkload). */
  Workload: { apiVersion: 'kueue.x-k8s.io/v1beta2', kind: 'Workload', plural: 'workloads', namespaced: true },
  TrainingJob: { apiVersion: LOOPLINE_API_VERSION, kind: 'TrainingJob', plural: 'trainingjobs', namespaced: true },
  ModelVersion: { apiVersion: LOOPLINE_API_VERSION, kind: 'ModelVersion', plural: 'modelversions', namespaced: true },
  InferenceService: {
    apiVersion: LOOPLINE_API_VERSION,
    kind: 'InferenceService',
    plural: 'inferenceservices',
    namespaced: true,
  },
} as const satisfies Record<string, ResourceKind>;

/** REST path of a collection (`namespace` omitted: across all namespaces) or of one object. */
export function resourcePath(kind: ResourceKind, namespace?: string, name?: string): string {
  const root = kind.apiVersion.includes('/') ? `/apis/${kind.apiVersion}` : `/api/${kind.apiVersion}`;
  const ns = kind.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  const tail = name === undefined ? '' : `/${encodeURIComponent(name)}`;
  return `${root}${ns}/${kind.plural}${tail}`;
}

/** Stable identity of a kind, e.g. `apps/v1/Deployment`; used as map key and metric label source. */
export function kindId(kind: Pick<ResourceKind, 'apiVersion' | 'kind'>): string {
  return `${kind.apiVersion}/${kind.kind}`;
}

/** Group part of an apiVersion (`''` for core). */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}
