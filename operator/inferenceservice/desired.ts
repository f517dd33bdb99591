/**
 * What should exist for an InferenceService: pure functions from the resource, the ModelVersions it serves
 * and the rollout state to Deployments, Services, HPAs, the PDB and the route. One function per owned kind.
 */
import { driftSubject, GRPC_INFERENCE_SERVICE, LABELS, parseDuration } from '../api/contracts.ts';
import { STORAGE_ENV_NAMES, storagePodEnv, type StorageSettings } from '../api/storage-env.ts';
import { quantityValue } from '../engine/apply.ts';
import type { DesiredObject, KubeObject, OwnerReference } from '../engine/types.ts';
import type { InferenceService, ServedModel } from './resource.ts';
import { routerFor, type TrafficSplit } from './router/index.ts';

export const PREDICTOR_IMAGE = 'loopline/predictor:0.1.0';
export const PREDICTOR_PORT = 8080;
/** The Open Inference Protocol over gRPC (h2c), when spec.predictor.protocols lists grpc. */
export const PREDICTOR_GRPC_PORT = 8081;
/**
 * How long a predictor keeps answering after SIGTERM, with readiness false, before it closes its port
 * (SHUTDOWN_DELAY_MS). A deleted pod leaves a gateway's list only when the EndpointSlice change reaches the
 * gateway, which takes a moment after the kubelet has sent SIGTERM; a port closed at once answers the requests
 * routed meanwhile with connection refused (502 at the gateway). What a preStop sleep does for servers that have
 * no delay of their own. spec.predictor.env can set another.
 */
export const PREDICTOR_SHUTDOWN_DELAY_MS = 5000;
/** The delay, then up to 25 s for the requests in flight, before the kubelet sends SIGKILL. */
export const PREDICTOR_TERMINATION_GRACE_SECONDS = 30;

/** Whether the InferenceService's clients reach its predictors over gRPC too. */
export function servesGrpc(isvc: InferenceService): boolean {
  return (isvc.spec.predictor?.protocols ?? []).includes('grpc');
}

/** The Service ports of a predictor: http always (probes and /metrics too), grpc when asked for. */
function servicePorts(isvc: InferenceService): Array<Record<string, unknown>> {
  return [
    { name: 'http', port: PREDICTOR_PORT, targetPort: 'http', protocol: 'TCP' },
    ...(servesGrpc(isvc)
      ? [
          {
            name: 'grpc',
            port: PREDICTOR_GRPC_PORT,
            targetPort: 'grpc',
            protocol: 'TCP',
            appProtocol: 'kubernetes.io/h2c',
          },
        ]
      : []),
  ];
}
/** The distroless `nonroot` user of every Loopline image: a fixed non-zero uid satisfies runAsNonRoot without image metadata. */
const IMAGE_UID = 65532;

/** Pod security of every pod an InferenceService owns (predictors, batch runs, evaluators): the restricted standard. */
export function restrictedPodSecurity() {
  return {
    runAsNonRoot: true,
    runAsUser: IMAGE_UID,
    runAsGroup: IMAGE_UID,
    fsGroup: IMAGE_UID,
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** Their containers' security: no privilege escalation, a read-only root filesystem, no capabilities. */
export function restrictedContainerSecurity() {
  return {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** The root filesystem is read-only: downloads and scratch go to an emptyDir at /tmp. */
export const SCRATCH = { mount: { name: 'tmp', mountPath: '/tmp' }, volume: { name: 'tmp', emptyDir: {} } } as const;

export { LABELS };

/** Operator-wide settings that are not per InferenceService. */
export interface ServingConfig {
  natsUrl?: string;
  predictorImage?: string;
  /** Image of the quality evaluator CronJobs (the operator's own). */
  evaluatorImage?: string;
  /** cpu and memory of a predictor pod when the InferenceService sets none. */
  predictorResources?: { cpu?: string; memory?: string };
  /** Cluster DNS suffix for status.url when no hostname is routed. */
  clusterDomain?: string;
  /** Object storage the predictors fetch s3:// artifacts from. */
  storage?: StorageSettings;
}

export interface Serving {
  stable: ServedModel;
  /** Present while a canary (or shadow) runs. */
  canary?: ServedModel;
  canaryWeight: number;
  /** Shadow mode: mirror this percent of requests to the canary instead of weighting it. */
  mirrorPercent?: number;
}

export function ownerReference(isvc: InferenceService): OwnerReference {
  return {
    apiVersion: isvc.apiVersion,
    kind: isvc.kind,
    name: isvc.metadata.name,
    uid: isvc.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function versionName(isvc: InferenceService, version: number): string {
  return `${isvc.metadata.name}-v${version}`;
}

function commonLabels(isvc: InferenceService): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'loopline-predictor',
    'app.kubernetes.io/managed-by': 'loopline',
    [LABELS.inferenceService]: isvc.metadata.name,
    [LABELS.model]: isvc.spec.model,
  };
}

function metadata(isvc: InferenceService, name: string, labels: Record<string, string>) {
  return { name, namespace: isvc.metadata.namespace, labels, ownerReferences: [ownerReference(isvc)] };
}

function versionLabels(isvc: InferenceService, model: ServedModel): Record<string, string> {
  return { ...commonLabels(isvc), [LABELS.version]: String(model.version) };
}

export function usesAutoscaler(isvc: InferenceService): boolean {
  const predictor = isvc.spec.predictor;
  return predictor?.maxReplicas !== undefined;
}

/** Methods whose score is a p-value (drifted below the threshold) on the predictor, not a distance. */
const P_VALUE_METHODS = new Set(['ks', 'chisquare']);

/**
 * spec.drift as the predictor's DRIFT_* variables (server/src/main.ts). The CRD spells methods in camelCase, the
 * server in lower case. spec.drift.threshold is the share of drifted features (DRIFT_SHARE). The server has one
 * per-feature threshold for both feature types, compared as a distance or as a p-value depending on the method, so
 * featureThreshold (a distance) is only passed when both methods score distances; otherwise each method keeps
 * the server's default (p < 0.05 for ks and chiSquare).
 */
export function driftSettings(drift: NonNullable<InferenceService['spec']['drift']>): Array<[string, string]> {
  const numeric = drift.methods?.numeric?.toLowerCase();
  const categorical = drift.methods?.categorical?.toLowerCase();
  const settings: Array<[string, string | number | undefined]> = [
    ['DRIFT_WINDOW_SIZE', drift.window?.size],
    ['DRIFT_WINDOW_SECONDS', drift.window?.seconds],
    ['DRIFT_NUMERIC_METHOD', numeric],
    ['DRIFT_CATEGORICAL_METHOD', categorical],
    ['DRIFT_SHARE', drift.threshold],
  ];
  if (
    drift.featureThreshold !== undefined &&
    numeric &&
    categorical &&
    !P_VALUE_METHODS.has(numeric) &&
    !P_VALUE_METHODS.has(categorical)
  ) {
    settings.push(['DRIFT_THRESHOLD', drift.featureThreshold]);
  }
  return settings
    .filter((entry): entry is [string, string | number] => entry[1] !== undefined)
    .map(([name, value]) => [name, String(value)]);
}

/**
 * spec.logging as the predictor's INFERENCE_LOG_* variables (server/src/main.ts), with the pod's name for the
 * log's rows and part names; none when logging is off. The object storage keys come with the storage
 * settings, which every predictor gets.
 */
export function loggingSettings(logging: InferenceService['spec']['logging']): Array<Record<string, unknown>> {
  if (!logging?.enabled || !logging.uri) return [];
  const settings: Array<[string, string | number | undefined]> = [
    ['INFERENCE_LOG_URI', logging.uri],
    ['INFERENCE_LOG_SAMPLE_RATE', logging.sampleRate],
    [
      'INFERENCE_LOG_FLUSH_INTERVAL_MS',
      logging.flushInterval === undefined
        ? undefined
        : parseDuration('spec.logging.flushInterval', logging.flushInterval),
    ],
    ['INFERENCE_LOG_MAX_ROWS_PER_PART', logging.maxRowsPerPart],
    ['INFERENCE_LOG_MAX_BUFFERED_ROWS', logging.maxBufferedRows],
  ];
  return [
    ...settings
      .filter((entry): entry is [string, string | number] => entry[1] !== undefined)
      .map(([name, value]) => ({ name, value: String(value) })),
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
  ];
}

export function predictorDeployment(
  isvc: InferenceService,
  model: ServedModel,
  track: 'stable' | 'canary',
  config: ServingConfig,
): DesiredObject {
  const predictor = isvc.spec.predictor ?? {};
  const { name: isvcName, namespace } = isvc.metadata;
  const selector = versionLabels(isvc, model);
  const env: Array<Record<string, unknown>> = [
    { name: 'PORT', value: String(PREDICTOR_PORT) },
    { name: 'GRPC_PORT', value: servesGrpc(isvc) ? String(PREDICTOR_GRPC_PORT) : 'off' },
    // The pod IP rather than 0.0.0.0: on the local stand-in kubelet every pod is a process on its own loopback address.
    { name: 'HOST', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    { name: 'MODEL_NAME', value: isvc.spec.model },
    { name: 'MODEL_VERSION', value: String(model.version) },
    { name: 'MODEL_URI', value: model.uri },
    { name: 'MODEL_DIGEST', value: model.digest },
    { name: 'NAMESPACE', value: namespace },
    { name: 'INFERENCE_SERVICE', value: isvcName },
    // A small V8 young generation keeps the predictor near 140 MB resident instead of 170 MB under load (bench/results/server.md).
    { name: 'NODE_OPTIONS', value: '--max-semi-space-size=4' },
    { name: 'SHUTDOWN_DELAY_MS', value: String(PREDICTOR_SHUTDOWN_DELAY_MS) },
  ];
  if (model.signature !== undefined) env.push({ name: 'MODEL_SIGNATURE', value: JSON.stringify(model.signature) });
  const drift = isvc.spec.drift;
  if (model.referenceProfile && drift?.enabled) {
    env.push(
      { name: 'REFERENCE_PROFILE_URI', value: model.referenceProfile.uri },
      { name: 'REFERENCE_PROFILE_DIGEST', value: model.referenceProfile.digest },
    );
    if (config.natsUrl) {
      env.push(
        { name: 'NATS_URL', value: config.natsUrl },
        { name: 'DRIFT_SUBJECT', value: driftSubject(namespace, isvcName) },
      );
    }
    for (const [name, value] of driftSettings(drift)) env.push({ name, value });
  }
  env.push(...loggingSettings(isvc.spec.logging));
  const batching = predictor.batching;
  if (batching) {
    env.push({ name: 'BATCHING', value: batching.enabled === false ? 'off' : 'on' });
    if (batching.maxBatchSize !== undefined) env.push({ name: 'BATCH_MAX_SIZE', value: String(batching.maxBatchSize) });
    if (batching.maxWaitMs !== undefined) env.push({ name: 'BATCH_MAX_WAIT_MS', value: String(batching.maxWaitMs) });
  }
  // The CRD gives one figure per resource: it is both request and limit (Guaranteed QoS for memory-bound models).
  const cpu = predictor.resources?.cpu ?? config.predictorResources?.cpu ?? '500m';
  // One worker process per whole CPU of the limit (server/src/workers.ts): said here rather than left to the
  // server, which would take every core of a node where a runtime sets no cgroup CPU limit.
  env.push({ name: 'WORKERS', value: String(Math.max(1, Math.floor(quantityValue(cpu)) || 1)) });
  env.push(...storagePodEnv(config.storage));
  // Object storage settings are the operator's to give, never an InferenceService's.
  // A setting the InferenceService gives itself (e.g. WORKERS) replaces the operator's: one entry per name.
  for (const extra of predictor.env ?? []) {
    if (STORAGE_ENV_NAMES.has(extra.name)) continue;
    const given = env.findIndex((e) => e.name === extra.name);
    if (given >= 0) env.splice(given, 1);
    env.push({ name: extra.name, value: extra.value ?? '' });
  }

  const memory = predictor.resources?.memory ?? config.predictorResources?.memory ?? '512Mi';
  const resources: Record<string, Record<string, string>> = {
    requests: { cpu: String(cpu), memory: String(memory) },
    limits: { cpu: String(cpu), memory: String(memory) },
  };
  if (predictor.resources?.gpus) resources.limits!['nvidia.com/gpu'] = String(predictor.resources.gpus);

  const probe = (path: string, periodSeconds: number) => ({
    httpGet: { path, port: 'http' },
    periodSeconds,
    timeoutSeconds: 2,
    failureThreshold: 3,
  });
  const spec: Record<string, unknown> = {
    selector: { matchLabels: selector },
    template: {
      metadata: {
        // No track label on pods: promotion turns the canary into stable without restarting its pods.
        labels: selector,
        annotations: {
          'prometheus.io/scrape': 'true',
          'prometheus.io/port': String(PREDICTOR_PORT),
          'prometheus.io/path': '/metrics',
        },
      },
      spec: {
        ...(predictor.serviceAccountName ? { serviceAccountName: predictor.serviceAccountName } : {}),
        ...(predictor.nodeSelector ? { nodeSelector: predictor.nodeSelector } : {}),
        automountServiceAccountToken: false,
        terminationGracePeriodSeconds: PREDICTOR_TERMINATION_GRACE_SECONDS,
        securityContext: restrictedPodSecurity(),
        containers: [
          {
            name: 'predictor',
            image: predictor.image ?? config.predictorImage ?? PREDICTOR_IMAGE,
            ports: [
              { name: 'http', containerPort: PREDICTOR_PORT, protocol: 'TCP' },
              ...(servesGrpc(isvc) ? [{ name: 'grpc', containerPort: PREDICTOR_GRPC_PORT, protocol: 'TCP' }] : []),
            ],
            env,
            resources,
            readinessProbe: probe('/v2/health/ready', 5),
            livenessProbe: { ...probe('/v2/health/live', 10), initialDelaySeconds: 5 },
            securityContext: restrictedContainerSecurity(),
            // Model downloads and runtime scratch.
            volumeMounts: [SCRATCH.mount],
          },
        ],
        volumes: [SCRATCH.volume],
      },
    },
  };
  // With an HPA the replica count is the autoscaler's to set; applying it here would fight it.
  if (!usesAutoscaler(isvc)) spec.replicas = predictor.replicas ?? 1;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: metadata(isvc, versionName(isvc, model.version), { ...selector, [LABELS.track]: track }),
    spec,
  };
}

/**
 * The Service of one served version: the backend a route weighs against the other version.
 *
 * With Gateway API it is headless, and so with Traefik's own routes, which balance over the endpoints too. A Gateway
 * sends a backend's share to the Service's ready endpoints, and a headless backend is part of the Gateway API core
 * conformance suite (HTTPRouteServiceTypes), so every conforming implementation routes to it. A virtual IP would be unused, and not free: the API server allocates cluster IPs one
 * at a time (one lock per IP family around an IPAddress write), about 15-30 ms each on the local cluster against
 * 2 ms for a headless Service. Istio resolves a VirtualService destination through the host's virtual IP, so for
 * istio the version Services keep one. The whole Service always has one: it is the address clients use.
 */
export function versionService(isvc: InferenceService, model: ServedModel): DesiredObject {
  const labels = versionLabels(isvc, model);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(isvc, versionName(isvc, model.version), labels),
    spec: {
      ...(routerFor(isvc.spec.traffic).routesToClusterIP ? {} : { clusterIP: 'None' }),
      selector: labels,
      ports: servicePorts(isvc),
    },
  };
}

/**
 * What applying a desired Service does to the live one, whose spec.clusterIP the API server will not change:
 * `apply` as it is; `keepClusterIP`, apply without spec.clusterIP because the live Service already has a virtual IP
 * (a headless one is wanted, but a virtual IP routes the same, e.g. a Service made by an earlier Loopline);
 * `replace`, delete it first because it is headless and a virtual IP is now needed (the provider became istio).
 */
export function serviceAddressChange(
  desired: DesiredObject,
  live: KubeObject | undefined,
): 'apply' | 'keepClusterIP' | 'replace' {
  if (!live || desired.kind !== 'Service') return 'apply';
  const liveHeadless = live.spec?.clusterIP === 'None';
  const wantHeadless = (desired.spec as { clusterIP?: string } | undefined)?.clusterIP === 'None';
  if (wantHeadless && !liveHeadless) return 'keepClusterIP';
  if (!wantHeadless && liveHeadless) return 'replace';
  return 'apply';
}

/** The desired Service without spec.clusterIP: the live address stays as it is. */
export function withoutClusterIP(desired: DesiredObject): DesiredObject {
  const { clusterIP: _dropped, ...spec } = desired.spec as Record<string, unknown>;
  return { ...desired, spec };
}

/** The Service for the whole InferenceService: every ready predictor pod of any served version. */
export function wholeService(isvc: InferenceService): DesiredObject {
  const labels = commonLabels(isvc);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(isvc, isvc.metadata.name, labels),
    spec: {
      selector: { [LABELS.inferenceService]: isvc.metadata.name },
      ports: servicePorts(isvc),
    },
  };
}

export function autoscaler(isvc: InferenceService, model: ServedModel): DesiredObject {
  const predictor = isvc.spec.predictor!;
  const name = versionName(isvc, model.version);
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: metadata(isvc, name, versionLabels(isvc, model)),
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
      minReplicas: predictor.minReplicas ?? Math.max(1, predictor.replicas ?? 1),
      maxReplicas: predictor.maxReplicas,
      metrics: [
        {
          type: 'Resource',
          resource: {
            name: 'cpu',
            target: { type: 'Utilization', averageUtilization: predictor.targetUtilization ?? 80 },
          },
        },
      ],
    },
  };
}

/** One PDB over all predictor pods: voluntary evictions take at most one at a time. */
export function disruptionBudget(isvc: InferenceService): DesiredObject {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: metadata(isvc, isvc.metadata.name, commonLabels(isvc)),
    spec: { maxUnavailable: 1, selector: { matchLabels: { [LABELS.inferenceService]: isvc.metadata.name } } },
  };
}

export function trafficSplit(isvc: InferenceService, serving: Serving): TrafficSplit {
  return {
    stableService: versionName(isvc, serving.stable.version),
    ...(serving.canary ? { canaryService: versionName(isvc, serving.canary.version) } : {}),
    canaryWeight: serving.canary ? serving.canaryWeight : 0,
    ...(serving.canary && serving.mirrorPercent ? { mirrorPercent: serving.mirrorPercent } : {}),
    port: PREDICTOR_PORT,
    ...(servesGrpc(isvc) ? { grpc: { port: PREDICTOR_GRPC_PORT, service: GRPC_INFERENCE_SERVICE } } : {}),
  };
}

/** The provider's route objects for the current split (none without spec.traffic). */
export function routes(isvc: InferenceService, serving: Serving, config: ServingConfig = {}): DesiredObject[] {
  const traffic = isvc.spec.traffic;
  if (!traffic) return [];
  const owner = {
    name: isvc.metadata.name,
    namespace: isvc.metadata.namespace,
    labels: commonLabels(isvc),
    ownerReference: ownerReference(isvc),
    clusterDomain: config.clusterDomain ?? 'cluster.local',
  };
  return routerFor(traffic).routes(owner, traffic, trafficSplit(isvc, serving));
}

/** Every object the InferenceService should own right now. Objects not in this list are pruned. */
export function desiredObjects(isvc: InferenceService, serving: Serving, config: ServingConfig = {}): DesiredObject[] {
  const served: Array<[ServedModel, 'stable' | 'canary']> = [[serving.stable, 'stable']];
  if (serving.canary && serving.canary.version !== serving.stable.version) served.push([serving.canary, 'canary']);
  const objects: DesiredObject[] = [];
  for (const [model, track] of served) {
    objects.push(predictorDeployment(isvc, model, track, config), versionService(isvc, model));
    if (usesAutoscaler(isvc)) objects.push(autoscaler(isvc, model));
  }
  objects.push(wholeService(isvc), disruptionBudget(isvc), ...routes(isvc, serving, config));
  return objects;
}

/** The Gateway the HTTPRoute attaches to first: `namespace/name`, if spec.traffic names one. */
export function parentGateway(
  isvc: InferenceService,
): { namespace: string; name: string; sectionName?: string } | undefined {
  const traffic = isvc.spec.traffic;
  if (!routerFor(traffic).attachesToGateway) return undefined;
  const ref = traffic?.parentRefs?.find(
    (p) =>
      (p.group ?? 'gateway.networking.k8s.io') === 'gateway.networking.k8s.io' && (p.kind ?? 'Gateway') === 'Gateway',
  );
  if (!ref) return undefined;
  return {
    namespace: ref.namespace ?? isvc.metadata.namespace,
    name: ref.name,
    ...(ref.sectionName ? { sectionName: ref.sectionName } : {}),
  };
}

/**
 * Where clients reach the service. Through a Gateway that reports an address: that address and the port of the
 * listener the route attaches to (requests carry the Host of spec.traffic.hostnames). Otherwise the first routed
 * hostname, else the whole-service DNS name.
 */
export function serviceUrl(isvc: InferenceService, config: ServingConfig = {}, gateway?: KubeObject): string {
  const parent = parentGateway(isvc);
  const address: string | undefined = gateway?.status?.addresses?.[0]?.value;
  const listeners: Array<{ name: string; port: number; protocol: string }> = gateway?.spec?.listeners ?? [];
  const listener =
    listeners.find((l) => l.name === parent?.sectionName) ??
    listeners.find((l) => l.protocol === 'HTTP' || l.protocol === 'HTTPS');
  if (address && listener) {
    const scheme = listener.protocol === 'HTTPS' ? 'https' : 'http';
    const host = address.includes(':') ? `[${address}]` : address;
    const port = listener.port === (scheme === 'https' ? 443 : 80) ? '' : `:${listener.port}`;
    return `${scheme}://${host}${port}`;
  }
  const host = isvc.spec.traffic?.hostnames?.[0];
  if (host) return `http://${host}`;
  return `http://${isvc.metadata.name}.${isvc.metadata.namespace}.svc.${config.clusterDomain ?? 'cluster.local'}:${PREDICTOR_PORT}`;
}
