// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { GRPC_INFERENCE_SERVICE } from '../../api/contracts.ts';
import {
  desiredObjects,
  predictorDeployment,
  serviceAddressChange,
  serviceUrl,
  versionService,
  wholeService,
  withoutClusterIP,
} from '../desired.ts';
import { inferenceService, servedModel } from './support/fixtures.ts';

const kinds = (objects: Array<{ kind: string; metadata: { name: string } }>) =>
  objects.map((o) => `${o.kind}/${o.metadata.name}`);
const env = (deployment: any) =>
  Object.fromEntries(deployment.spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value ?? e.valueFrom]));

const table = [
  {
    name: 'a stable-only service owns a Deployment and Service for its version, the whole Service and a PDB',
    spec: {},
    canary: false,
    expect: ['Deployment/fraud-v1', 'Service/fraud-v1', 'Service/fraud', 'PodDisruptionBudget/fraud'],
  },
  {
    name: 'a canary adds a Deployment and Service for its version',
    spec: {},
    canary: true,
    expect: [
      'Deployment/fraud-v1',
      'Service/fraud-v1',
      'Deployment/fraud-v2',
      'Service/fraud-v2',
      'Service/fraud',
      'PodDisruptionBudget/fraud',
    ],
  },
  {
    name: 'min/max replicas add one HPA per served version',
    spec: { predictor: { minReplicas: 1, maxReplicas: 4 } },
    canary: true,
    expect: [
      'Deployment/fraud-v1',
      'Service/fraud-v1',
      'HorizontalPodAutoscaler/fraud-v1',
      'Deployment/fraud-v2',
      'Service/fraud-v2',
      'HorizontalPodAutoscaler/fraud-v2',
      'Service/fraud',
      'PodDisruptionBudget/fraud',
    ],
  },
  {
    name: 'Gateway API traffic adds an HTTPRoute',
    spec: { traffic: { provider: 'gatewayAPI' as const, parentRefs: [{ name: 'edge' }] } },
    canary: false,
    expect: [
      'Deployment/fraud-v1',
      'Service/fraud-v1',
      'Service/fraud',
      'PodDisruptionBudget/fraud',
      'HTTPRoute/fraud',
    ],
  },
  {
    name: 'Gateway API traffic with grpc in protocols adds a GRPCRoute of the same name',
    spec: {
      predictor: { protocols: ['rest' as const, 'grpc' as const] },
      traffic: { provider: 'gatewayAPI' as const, parentRefs: [{ name: 'edge' }] },
    },
    canary: true,
    expect: [
      'Deployment/fraud-v1',
      'Service/fraud-v1',
      'Deployment/fraud-v2',
      'Service/fraud-v2',
      'Service/fraud',
      'PodDisruptionBudget/fraud',
      'HTTPRoute/fraud',
      'GRPCRoute/fraud',
    ],
  },
  {
    name: 'Istio traffic adds a VirtualService',
    spec: { traffic: { provider: 'istio' as const } },
    canary: false,
    expect: [
      'Deployment/fraud-v1',
      'Service/fraud-v1',
      'Service/fraud',
      'PodDisruptionBudget/fraud',
      'VirtualService/fraud',
    ],
  },
];
for (const row of table) {
  test(row.name, () => {
    const objects = desiredObjects(inferenceService(row.spec), {
      stable: servedModel(1),
      ...(row.canary ? { canary: servedModel(2) } : {}),
      canaryWeight: 10,
    });
    assert.equal(kinds(objects), row.expect);
    for (const object of objects) {
      assert.is(object.metadata.namespace, 'risk');
      assert.equal(object.metadata.ownerReferences, [
        {
          apiVersion: 'loopline.dev/v1alpha1',
          kind: 'InferenceService',
          name: 'fraud',
          uid: '0000-1111',
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
    }
  });
}

test('the predictor runs non-root with a read-only root filesystem, no capabilities and RuntimeDefault seccomp', () => {
  const deployment: any = predictorDeployment(inferenceService(), servedModel(1), 'stable', {});
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  assert.is(pod.securityContext.runAsNonRoot, true);
  assert.ok(pod.securityContext.runAsUser > 0);
  assert.is(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
  assert.is(container.securityContext.readOnlyRootFilesystem, true);
  assert.is(container.securityContext.allowPrivilegeEscalation, false);
  assert.equal(container.securityContext.capabilities.drop, ['ALL']);
  assert.is(container.readinessProbe.httpGet.path, '/v2/health/ready');
  assert.is(container.livenessProbe.httpGet.path, '/v2/health/live');
});

test("the predictor gets the operator's object storage settings, the keys by reference to their Secret; an InferenceService cannot set them", () => {
  const isvc = inferenceService({
    predictor: {
      env: [
        { name: 'AWS_ENDPOINT_URL_S3', value: 'http://elsewhere:9000' },
        { name: 'EXTRA', value: '1' },
      ],
    },
  });
  const storage = {
    endpoint: 'http://versitygw:7070',
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { secretName: 'loopline-s3', accessKeyIdKey: 'id', secretAccessKeyKey: 'secret' },
  };
  const container = (predictorDeployment(isvc, servedModel(1), 'stable', { storage }) as any).spec.template.spec
    .containers[0];
  const named = (name: string) => container.env.filter((e: any) => e.name === name);
  assert.equal(named('AWS_ENDPOINT_URL_S3'), [{ name: 'AWS_ENDPOINT_URL_S3', value: 'http://versitygw:7070' }]);
  assert.equal(named('AWS_REGION'), [{ name: 'AWS_REGION', value: 'us-east-1' }]);
  assert.equal(named('S3_FORCE_PATH_STYLE'), [{ name: 'S3_FORCE_PATH_STYLE', value: 'true' }]);
  assert.equal(named('AWS_ACCESS_KEY_ID'), [
    { name: 'AWS_ACCESS_KEY_ID', valueFrom: { secretKeyRef: { name: 'loopline-s3', key: 'id' } } },
  ]);
  assert.equal(named('AWS_SECRET_ACCESS_KEY'), [
    { name: 'AWS_SECRET_ACCESS_KEY', valueFrom: { secretKeyRef: { name: 'loopline-s3', key: 'secret' } } },
  ]);
  assert.equal(named('EXTRA'), [{ name: 'EXTRA', value: '1' }]);
  const none = (predictorDeployment(isvc, servedModel(1), 'stable', {}) as any).spec.template.spec.containers[0].env;
  assert.not.ok(
    none.some((e: any) => e.name.startsWith('AWS_')),
    "no settings: the SDK defaults (AWS S3, the pod's credential chain)",
  );
});

test('the predictor gets the model URI, digest, signature and drift settings in the variables the server reads', () => {
  const isvc = inferenceService({
    drift: {
      enabled: true,
      threshold: 0.3,
      window: { size: 500, seconds: 30 },
      methods: { numeric: 'psi', categorical: 'chiSquare' },
      featureThreshold: 0.2,
    },
    predictor: { batching: { enabled: true, maxBatchSize: 16 } },
  });
  const vars = env(predictorDeployment(isvc, servedModel(3), 'canary', { natsUrl: 'nats://nats:4222' }));
  assert.is(vars.MODEL_NAME, 'fraud-detector');
  assert.is(vars.MODEL_VERSION, '3');
  assert.is(vars.MODEL_URI, 'file:///models/fraud/v3/model.onnx');
  assert.is(vars.MODEL_DIGEST, servedModel(3).digest);
  assert.equal(JSON.parse(vars.MODEL_SIGNATURE), servedModel(3).signature);
  assert.is(vars.REFERENCE_PROFILE_URI, 'file:///models/fraud/v3/profile.json');
  assert.is(vars.REFERENCE_PROFILE_DIGEST, servedModel(3).referenceProfile!.digest);
  assert.is(vars.NATS_URL, 'nats://nats:4222');
  assert.is(vars.DRIFT_SUBJECT, 'loopline.drift.risk.fraud');
  assert.is(vars.INFERENCE_SERVICE, 'fraud');
  assert.is(vars.NAMESPACE, 'risk');
  assert.is(vars.BATCHING, 'on');
  assert.is(vars.BATCH_MAX_SIZE, '16');
  assert.is(vars.DRIFT_WINDOW_SIZE, '500');
  assert.is(vars.DRIFT_WINDOW_SECONDS, '30');
  // The CRD's camelCase method names in the server's spelling; threshold is the share of drifted features.
  assert.is(vars.DRIFT_NUMERIC_METHOD, 'psi');
  assert.is(vars.DRIFT_CATEGORICAL_METHOD, 'chisquare');
  assert.is(vars.DRIFT_SHARE, '0.3');
  // chiSquare decides on a p-value: a distance threshold would be misread for it.
  assert.is(vars.DRIFT_THRESHOLD, undefined);
  assert.equal(vars.HOST, { fieldRef: { fieldPath: 'status.podIP' } });
  assert.is(vars.NODE_OPTIONS, '--max-semi-space-size=4');
});

test('a per-feature distance threshold reaches the predictor only when both methods score distances', () => {
  const isvc = inferenceService({
    drift: { enabled: true, methods: { numeric: 'wasserstein', categorical: 'jensenShannon' }, featureThreshold: 0.15 },
  });
  const vars = env(predictorDeployment(isvc, servedModel(1), 'stable', {}));
  assert.is(vars.DRIFT_THRESHOLD, '0.15');
  assert.is(vars.DRIFT_CATEGORICAL_METHOD, 'jensenshannon');
});

test('GPUs become nvidia.com/gpu limits and cpu/memory are both request and limit', () => {
  const isvc = inferenceService({ predictor: { resources: { cpu: 2, memory: '4Gi', gpus: 1 } } });
  const container: any = (predictorDeployment(isvc, servedModel(1), 'stable', {}) as any).spec.template.spec
    .containers[0];
  assert.equal(container.resources, {
    requests: { cpu: '2', memory: '4Gi' },
    limits: { cpu: '2', memory: '4Gi', 'nvidia.com/gpu': '1' },
  });
  const cpuOnly: any = (predictorDeployment(inferenceService(), servedModel(1), 'stable', {}) as any).spec.template.spec
    .containers[0];
  assert.is(cpuOnly.resources.limits['nvidia.com/gpu'], undefined);
});

test('spec.logging reaches the predictor as INFERENCE_LOG_* with the pod name; logging off or without a uri sets none', () => {
  const isvc = inferenceService({
    logging: {
      enabled: true,
      uri: 's3://loopline/ground-truth',
      sampleRate: 0.25,
      flushInterval: '1m30s',
      maxRowsPerPart: 500,
      maxBufferedRows: 2000,
    },
  });
  const storage = {
    endpoint: 'http://s3.local:7070',
    credentials: {
      secretName: 'storage',
      accessKeyIdKey: 'AWS_ACCESS_KEY_ID',
      secretAccessKeyKey: 'AWS_SECRET_ACCESS_KEY',
    },
  };
  const vars = env(predictorDeployment(isvc, servedModel(3), 'stable', { storage }));
  assert.is(vars.INFERENCE_LOG_URI, 's3://loopline/ground-truth');
  assert.is(vars.INFERENCE_LOG_SAMPLE_RATE, '0.25');
  assert.is(vars.INFERENCE_LOG_FLUSH_INTERVAL_MS, '90000');
  assert.is(vars.INFERENCE_LOG_MAX_ROWS_PER_PART, '500');
  assert.is(vars.INFERENCE_LOG_MAX_BUFFERED_ROWS, '2000');
  assert.equal(vars.POD_NAME, { fieldRef: { fieldPath: 'metadata.name' } });
  // The parts go to the storage whose keys the predictor gets.
  assert.is(vars.AWS_ENDPOINT_URL_S3, 'http://s3.local:7070');
  assert.equal(vars.AWS_SECRET_ACCESS_KEY, { secretKeyRef: { name: 'storage', key: 'AWS_SECRET_ACCESS_KEY' } });
  // Defaults are the server's own: only what the spec says is passed.
  const defaults = env(
    predictorDeployment(
      inferenceService({ logging: { enabled: true, uri: 'file:///var/log/loopline' } }),
      servedModel(3),
      'stable',
      {},
    ),
  );
  assert.is(defaults.INFERENCE_LOG_URI, 'file:///var/log/loopline');
  assert.is(defaults.INFERENCE_LOG_SAMPLE_RATE, undefined);
  for (const logging of [undefined, { enabled: false, uri: 's3://loopline/gt' }]) {
    const off = env(predictorDeployment(inferenceService(logging ? { logging } : {}), servedModel(3), 'stable', {}));
    assert.is(off.INFERENCE_LOG_URI, undefined);
    assert.is(off.POD_NAME, undefined);
  }
});

test('drift monitoring off gives the predictor no reference profile and no NATS', () => {
  const vars = env(predictorDeployment(inferenceService(), servedModel(1), 'stable', { natsUrl: 'nats://nats:4222' }));
  assert.is(vars.REFERENCE_PROFILE_URI, undefined);
  assert.is(vars.NATS_URL, undefined);
});

test('a predictor keeps answering 5 s after SIGTERM (readiness false) within a 30 s grace period; an InferenceService may set its own delay', () => {
  const deployment = predictorDeployment(inferenceService({}), servedModel(1), 'stable', {}) as any;
  assert.is(env(deployment).SHUTDOWN_DELAY_MS, '5000', 'gateways drop the endpoint before the port closes');
  assert.is(deployment.spec.template.spec.terminationGracePeriodSeconds, 30);
  const own = predictorDeployment(
    inferenceService({ predictor: { env: [{ name: 'SHUTDOWN_DELAY_MS', value: '15000' }] } }),
    servedModel(1),
    'stable',
    {},
  ) as any;
  assert.equal(
    own.spec.template.spec.containers[0].env.filter((e: any) => e.name === 'SHUTDOWN_DELAY_MS'),
    [{ name: 'SHUTDOWN_DELAY_MS', value: '15000' }],
  );
});

test('a predictor runs one worker per whole CPU of its limit, and an InferenceService may set WORKERS itself', () => {
  const workers = (predictor: Record<string, unknown>, config = {}) =>
    env(predictorDeployment(inferenceService({ predictor }), servedModel(1), 'stable', config)).WORKERS;
  assert.is(workers({}), '1', 'the default 500m');
  assert.is(workers({ resources: { cpu: '1500m' } }), '1', '1.5 CPUs: one worker, not two throttled ones');
  assert.is(workers({ resources: { cpu: 4 } }), '4');
  assert.is(workers({}, { predictorResources: { cpu: '2' } }), '2', "the operator's default resources");
  const own = (
    predictorDeployment(
      inferenceService({ predictor: { resources: { cpu: 4 }, env: [{ name: 'WORKERS', value: '2' }] } }),
      servedModel(1),
      'stable',
      {},
    ) as any
  ).spec.template.spec.containers[0].env;
  assert.equal(
    own.filter((e: any) => e.name === 'WORKERS'),
    [{ name: 'WORKERS', value: '2' }],
    "one entry, the InferenceService's",
  );
});

test("protocols: rest alone turns the predictor's gRPC off; grpc adds port 8081 (h2c) to the pods and Services", () => {
  const restOnly = inferenceService();
  assert.is(env(predictorDeployment(restOnly, servedModel(1), 'stable', {})).GRPC_PORT, 'off');
  assert.equal(
    (versionService(restOnly, servedModel(1)) as any).spec.ports.map((p: any) => p.name),
    ['http'],
  );
  const both = inferenceService({ predictor: { protocols: ['rest', 'grpc'] } });
  const deployment: any = predictorDeployment(both, servedModel(1), 'stable', {});
  assert.is(env(deployment).GRPC_PORT, '8081');
  assert.equal(deployment.spec.template.spec.containers[0].ports, [
    { name: 'http', containerPort: 8080, protocol: 'TCP' },
    { name: 'grpc', containerPort: 8081, protocol: 'TCP' },
  ]);
  for (const service of [versionService(both, servedModel(1)), wholeService(both)] as any[]) {
    assert.equal(service.spec.ports[1], {
      name: 'grpc',
      port: 8081,
      targetPort: 'grpc',
      protocol: 'TCP',
      appProtocol: 'kubernetes.io/h2c',
    });
  }
});

test("the gRPC service the routes match is the one the predictor's proto declares", () => {
  const proto = readFileSync(new URL('../../../server/src/protocol/grpc_predict_v2.proto', import.meta.url), 'utf8');
  const pkg = /^package\s+([\w.]+);/m.exec(proto)?.[1];
  const service = /^service\s+(\w+)\s*\{/m.exec(proto)?.[1];
  assert.is(`${pkg}.${service}`, GRPC_INFERENCE_SERVICE);
});

test('with an HPA the Deployment leaves replicas to the autoscaler; without, it sets them', () => {
  const scaled: any = predictorDeployment(
    inferenceService({ predictor: { maxReplicas: 5 } }),
    servedModel(1),
    'stable',
    {},
  );
  assert.is(scaled.spec.replicas, undefined);
  const fixed: any = predictorDeployment(
    inferenceService({ predictor: { replicas: 3 } }),
    servedModel(1),
    'stable',
    {},
  );
  assert.is(fixed.spec.replicas, 3);
});

test('promotion does not change the pod template (no restart of the promoted pods)', () => {
  const asCanary: any = predictorDeployment(inferenceService(), servedModel(2), 'canary', {});
  const asStable: any = predictorDeployment(inferenceService(), servedModel(2), 'stable', {});
  assert.equal(asCanary.spec, asStable.spec);
  assert.is.not(asCanary.metadata.labels['loopline.dev/track'], asStable.metadata.labels['loopline.dev/track']);
});

test('the url is the routed hostname, else the cluster DNS name of the whole Service', () => {
  assert.is(
    serviceUrl(inferenceService({ traffic: { hostnames: ['fraud.example.com'] } })),
    'http://fraud.example.com',
  );
  assert.is(serviceUrl(inferenceService()), 'http://fraud.risk.svc.cluster.local:8080');
});

test('through a Gateway the url is its address and the port of the listener the route attaches to', () => {
  const gateway = (addresses: Array<{ value: string }>) => ({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: 'edge', namespace: 'gateways' },
    spec: {
      listeners: [
        { name: 'https', protocol: 'HTTPS', port: 443 },
        { name: 'http', protocol: 'HTTP', port: 8313 },
      ],
    },
    status: { addresses },
  });
  const routed = (sectionName?: string) =>
    inferenceService({
      traffic: {
        parentRefs: [{ name: 'edge', namespace: 'gateways', ...(sectionName ? { sectionName } : {}) }],
        hostnames: ['fraud.example.com'],
      },
    });
  assert.is(serviceUrl(routed('http'), {}, gateway([{ value: '127.0.0.1' }])), 'http://127.0.0.1:8313');
  assert.is(serviceUrl(routed(), {}, gateway([{ value: 'lb.example.net' }])), 'https://lb.example.net');
  assert.is(serviceUrl(routed('http'), {}, gateway([{ value: 'fd00::1' }])), 'http://[fd00::1]:8313');
  // Not programmed yet (no address): the hostname.
  assert.is(serviceUrl(routed('http'), {}, gateway([])), 'http://fraud.example.com');
});

test('version Services are headless behind Gateway API and have a cluster IP behind Istio; the whole Service always has one', () => {
  const spec = (objects: any[], name: string) =>
    objects.find((o) => o.kind === 'Service' && o.metadata.name === name).spec;
  const gateway = desiredObjects(
    inferenceService({ traffic: { provider: 'gatewayAPI', parentRefs: [{ name: 'edge' }] } }),
    { stable: servedModel(1), canary: servedModel(2), canaryWeight: 10 },
  );
  assert.is(spec(gateway, 'fraud-v1').clusterIP, 'None');
  assert.is(spec(gateway, 'fraud-v2').clusterIP, 'None');
  assert.is(spec(gateway, 'fraud').clusterIP, undefined);
  const istio = desiredObjects(inferenceService({ traffic: { provider: 'istio' } }), {
    stable: servedModel(1),
    canary: servedModel(2),
    canaryWeight: 10,
  });
  assert.is(spec(istio, 'fraud-v1').clusterIP, undefined);
  assert.is(spec(istio, 'fraud-v2').clusterIP, undefined);
  assert.is(spec(istio, 'fraud').clusterIP, undefined);
});

test('a live Service keeps its cluster IP when a headless one is wanted, and a headless one is replaced when a cluster IP is needed', () => {
  const headless = versionService(inferenceService(), servedModel(1));
  const addressed = versionService(inferenceService({ traffic: { provider: 'istio' } }), servedModel(1));
  const live = (clusterIP: string) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'fraud-v1', uid: 'u' },
    spec: { clusterIP },
  });
  assert.is(serviceAddressChange(headless, undefined), 'apply');
  assert.is(serviceAddressChange(headless, live('None')), 'apply');
  assert.is(serviceAddressChange(headless, live('10.96.0.12')), 'keepClusterIP');
  assert.is(serviceAddressChange(addressed, live('10.96.0.12')), 'apply');
  assert.is(serviceAddressChange(addressed, live('None')), 'replace');
  const kept: any = withoutClusterIP(headless);
  assert.is('clusterIP' in kept.spec, false);
  assert.equal(kept.spec.selector, (headless as any).spec.selector);
  assert.is('clusterIP' in (headless as any).spec, true, 'the desired object itself is not changed');
});

test.run();
