// values.schema.json (and the one cross-field rule in the templates) turn a wrong value into a failed
// install whose message names the value; right values render into the manifests they should.
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inferenceServiceSettings } from '../../operator/inferenceservice/config.ts';
import { CHART, KUBE_VERSION, find, helm, render, valueFlags } from './support/chart.ts';

interface BadValue {
  what: string;
  set: string[];
  /** Every pattern must appear in helm's error: the value's path and why it is wrong. */
  says: RegExp[];
}

const bad: BadValue[] = [
  { what: 'replicas as a word', set: ['operator.replicas=two'], says: [/\/operator\/replicas/, /want integer/] },
  { what: 'zero replicas', set: ['operator.replicas=0'], says: [/\/operator\/replicas/, /minimum/] },
  {
    what: 'an unknown pull policy',
    set: ['operator.image.pullPolicy=Sometimes'],
    says: [/\/operator\/image\/pullPolicy/, /Always.*IfNotPresent.*Never/],
  },
  {
    what: 'an unknown top-level key',
    set: ['replicaCount=2'],
    says: [/additional propert(y|ies) 'replicaCount' not allowed/],
  },
  {
    what: 'a misspelt nested key',
    set: ['operator.leaderElection.enable=true'],
    says: [/\/operator\/leaderElection/, /'enable' not allowed/],
  },
  {
    what: 'a log level pino does not know',
    set: ['operator.logLevel=verbose'],
    says: [/\/operator\/logLevel/, /info/],
  },
  {
    what: 'a privileged port for a non-root process',
    set: ['operator.port=80'],
    says: [/\/operator\/port/, /minimum/],
  },
  { what: 'root as the operator user', set: ['operator.runAsUser=0'], says: [/\/operator\/runAsUser/] },
  {
    what: 'an image tag with a colon',
    set: ['operator.image.tag=v1:latest'],
    says: [/\/operator\/image\/tag/, /pattern/],
  },
  {
    what: 'a digest that is not sha256',
    set: ['predictor.image.digest=md5:abc'],
    says: [/\/predictor\/image\/digest/],
  },
  { what: 'an http URL for NATS', set: ['nats.url=http://nats:4222'], says: [/\/nats\/url/, /pattern/] },
  { what: 'a stream name with a dot', set: ['nats.stream.name=loopline.events'], says: [/\/nats\/stream\/name/] },
  { what: 'a retention in words', set: ['nats.stream.maxAge=7days'], says: [/\/nats\/stream\/maxAge/] },
  { what: 'a zero-byte stream', set: ['nats.stream.maxBytes=0'], says: [/\/nats\/stream\/maxBytes/] },
  { what: 'a Prometheus URL without scheme', set: ['prometheus.url=prometheus:9090'], says: [/\/prometheus\/url/] },
  {
    what: 'a predictor memory that is not a quantity',
    set: ['predictor.resources.memory=lots'],
    says: [/\/predictor\/resources\/memory/],
  },
  {
    what: 'a ServiceMonitor interval without unit',
    set: ['metrics.serviceMonitor.interval=30'],
    says: [/\/metrics\/serviceMonitor\/interval/],
  },
  {
    what: 'a Service type that does not exist',
    set: ['metrics.service.type=Internal'],
    says: [/\/metrics\/service\/type/],
  },
  {
    what: 'a secret name with capitals',
    set: ['nats.credentials.secretName=NatsCreds'],
    says: [/\/nats\/credentials\/secretName/],
  },
  {
    what: 'a storage endpoint without scheme',
    set: ['objectStorage.endpoint=minio:9000'],
    says: [/\/objectStorage\/endpoint/, /pattern/],
  },
  {
    what: 'a storage endpoint with a bucket path',
    set: ['objectStorage.endpoint=https://storage.googleapis.com/models'],
    says: [/\/objectStorage\/endpoint/],
  },
  {
    what: 'path style as a string',
    set: ['objectStorage.forcePathStyle=yes'],
    says: [/\/objectStorage\/forcePathStyle/, /want boolean/],
  },
  {
    what: 'a storage Secret name with capitals',
    set: ['objectStorage.credentials.secretName=S3Keys'],
    says: [/\/objectStorage\/credentials\/secretName/],
  },
  {
    what: 'dashboard as a string',
    set: ['grafanaDashboard.enabled=yes'],
    says: [/\/grafanaDashboard\/enabled/, /want boolean/],
  },
  {
    what: 'two replicas without leader election',
    set: ['operator.leaderElection.enabled=false'],
    says: [/operator\.replicas=2 needs operator\.leaderElection\.enabled=true/],
  },
  {
    what: 'a privileged progress port',
    set: ['trainingProgress.port=443'],
    says: [/\/trainingProgress\/port/, /minimum/],
  },
  {
    what: 'a progress interval of zero',
    set: ['trainingProgress.intervalSeconds=0'],
    says: [/\/trainingProgress\/intervalSeconds/, /minimum/],
  },
  {
    what: "the progress endpoint on the operator's own port",
    set: ['trainingProgress.port=8080'],
    says: [/trainingProgress\.port=8080 is operator\.port too/],
  },
  {
    what: 'no ServiceAccount to use',
    set: ['serviceAccount.create=false'],
    says: [/serviceAccount\.name is required when serviceAccount\.create=false/],
  },
];

for (const { what, set, says } of bad) {
  test(`install refuses ${what} (${set.join(' ')}) and names it`, () => {
    // The same values check as `helm install` (install.test.ts shows one refused by a real install).
    const result = helm(
      'template',
      'loopline',
      CHART,
      '--kube-version',
      KUBE_VERSION,
      '-n',
      'loopline-system',
      ...valueFlags(set),
    );
    assert.is.not(result.status, 0, `accepted: ${set.join(' ')}`);
    for (const pattern of says) assert.match(result.stderr, pattern);
  });
}

test('a values file with the same mistakes fails too (not only --set)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loopline-values-'));
  try {
    const file = join(dir, 'values.yaml');
    writeFileSync(file, 'operator:\n  replicas: "2"\n  image:\n    pullPolicy: always\n');
    const result = helm('template', 'loopline', CHART, '--kube-version', KUBE_VERSION, '-f', file);
    assert.is.not(result.status, 0);
    assert.match(result.stderr, /\/operator\/replicas/);
    assert.match(result.stderr, /\/operator\/image\/pullPolicy/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the defaults render: two operator replicas with leader election on its own Lease', () => {
  const manifests = render();
  const deployment = find(manifests, 'Deployment');
  assert.is(deployment.spec.replicas, 2);
  const container = deployment.spec.template.spec.containers[0];
  const env = Object.fromEntries(container.env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
  // operator/main.ts takes the Lease name as a flag and its namespace from POD_NAMESPACE.
  assert.equal(container.args, ['--http-port=8080', '--lease-name=loopline']);
  assert.equal(env.POD_NAMESPACE, { fieldRef: { fieldPath: 'metadata.namespace' } });
  const role = find(manifests, 'Role');
  assert.ok(role.rules.some((r: any) => r.resourceNames?.includes('loopline') && r.verbs.includes('update')));
});

test('NATS, Prometheus and predictor values reach the operator environment unchanged', () => {
  const manifests = render([
    'nats.url=nats://a:4222\\,nats://b:4222',
    'nats.stream.name=ML_EVENTS',
    'nats.stream.maxAge=30d',
    'nats.stream.maxBytes=10737418240',
    'nats.credentials.secretName=nats-operator',
    'nats.credentials.key=operator.creds',
    'prometheus.url=https://prom.example:9443/api/prom',
    'predictor.image.repository=registry.example/ml/predictor',
    'predictor.image.digest=sha256:' + 'ab'.repeat(32),
    'predictor.resources.cpu=2',
    'predictor.resources.memory=4Gi',
    'operator.logLevel=debug',
    'operator.port=9090',
    'clusterDomain=k8s.internal',
    'prometheus.scrapeInterval=15s',
  ]);
  const deployment = find(manifests, 'Deployment');
  const container = deployment.spec.template.spec.containers[0];
  const env = Object.fromEntries(container.env.map((e: any) => [e.name, e.value]));
  assert.equal(
    {
      NATS_URL: env.NATS_URL,
      NATS_STREAM: env.NATS_STREAM,
      NATS_STREAM_MAX_AGE: env.NATS_STREAM_MAX_AGE,
      NATS_STREAM_MAX_BYTES: env.NATS_STREAM_MAX_BYTES,
      NATS_CREDS_FILE: env.NATS_CREDS_FILE,
      PROMETHEUS_URL: env.PROMETHEUS_URL,
      PREDICTOR_IMAGE: env.PREDICTOR_IMAGE,
      PREDICTOR_CPU: env.PREDICTOR_CPU,
      PREDICTOR_MEMORY: env.PREDICTOR_MEMORY,
      LOG_LEVEL: env.LOG_LEVEL,
      CLUSTER_DOMAIN: env.CLUSTER_DOMAIN,
      PROMETHEUS_SCRAPE_INTERVAL: env.PROMETHEUS_SCRAPE_INTERVAL,
    },
    {
      NATS_URL: 'nats://a:4222,nats://b:4222',
      NATS_STREAM: 'ML_EVENTS',
      NATS_STREAM_MAX_AGE: '30d',
      NATS_STREAM_MAX_BYTES: '10737418240',
      NATS_CREDS_FILE: '/etc/loopline/nats/operator.creds',
      PROMETHEUS_URL: 'https://prom.example:9443/api/prom',
      PREDICTOR_IMAGE: `registry.example/ml/predictor@sha256:${'ab'.repeat(32)}`,
      PREDICTOR_CPU: '2',
      PREDICTOR_MEMORY: '4Gi',
      LOG_LEVEL: 'debug',
      CLUSTER_DOMAIN: 'k8s.internal',
      PROMETHEUS_SCRAPE_INTERVAL: '15s',
    },
  );
  assert.equal(container.ports, [
    { name: 'http', containerPort: 9090, protocol: 'TCP' },
    { name: 'progress', containerPort: 8081, protocol: 'TCP' },
  ]);
  assert.ok(container.args.includes('--http-port=9090'));
  // The quality evaluator CronJobs run the operator's own image, as the chart names it.
  assert.is(env.EVALUATOR_IMAGE, container.image);
  const secretVolume = deployment.spec.template.spec.volumes.find((v: any) => v.secret);
  assert.equal(secretVolume.secret, {
    secretName: 'nats-operator',
    items: [{ key: 'operator.creds', path: 'operator.creds' }],
  });
  assert.ok(
    container.volumeMounts.some(
      (m: any) => m.name === secretVolume.name && m.mountPath === '/etc/loopline/nats' && m.readOnly,
    ),
  );
});

test("objectStorage values reach the operator as STORAGE_S3_* (the Secret by name only); by default AWS S3 and the pods' credential chain", () => {
  const storageEnv = (values: string[]) =>
    Object.fromEntries(
      find(render(values), 'Deployment')
        .spec.template.spec.containers[0].env.filter((e: any) => e.name.startsWith('STORAGE_S3_'))
        .map((e: any) => [e.name, e.value]),
    );
  assert.equal(
    storageEnv([
      'objectStorage.endpoint=http://minio.minio.svc:9000',
      'objectStorage.region=eu-west-1',
      'objectStorage.forcePathStyle=true',
      'objectStorage.credentials.secretName=artifact-keys',
      'objectStorage.credentials.accessKeyIdKey=accesskey',
    ]),
    {
      STORAGE_S3_ENDPOINT: 'http://minio.minio.svc:9000',
      STORAGE_S3_REGION: 'eu-west-1',
      STORAGE_S3_FORCE_PATH_STYLE: 'true',
      STORAGE_S3_SECRET: 'artifact-keys',
      STORAGE_S3_ACCESS_KEY_ID_KEY: 'accesskey',
      STORAGE_S3_SECRET_ACCESS_KEY_KEY: 'AWS_SECRET_ACCESS_KEY',
    },
  );
  assert.equal(storageEnv([]), { STORAGE_S3_REGION: 'us-east-1', STORAGE_S3_FORCE_PATH_STYLE: 'false' });
  assert.equal(inferenceServiceSettings(storageEnv([])).serving.storage, {
    region: 'us-east-1',
    forcePathStyle: false,
  });
});

test('training progress: a Service over every replica, its URL, port and interval for the operator, create-only Secrets; none of it when disabled', () => {
  const manifests = render(
    ['trainingProgress.port=9443', 'trainingProgress.intervalSeconds=2', 'clusterDomain=k8s.internal'],
    { release: 'ml', namespace: 'platform' },
  );
  const service = manifests.find((m) => m.kind === 'Service' && m.metadata.name === 'ml-loopline-progress')!;
  assert.equal(service.spec.ports, [{ name: 'http-progress', port: 9443, targetPort: 'progress', protocol: 'TCP' }]);
  const deployment = find(manifests, 'Deployment');
  assert.equal(service.spec.selector, deployment.spec.selector.matchLabels, 'every replica, leader or not');
  const container = deployment.spec.template.spec.containers[0];
  const env = Object.fromEntries(container.env.map((e: any) => [e.name, e.value]));
  assert.equal(
    [env.PROGRESS_URL, env.PROGRESS_PORT, env.PROGRESS_INTERVAL_MS],
    ['http://ml-loopline-progress.platform.svc.k8s.internal:9443', '9443', '2000'],
  );
  assert.ok(container.ports.some((p: any) => p.name === 'progress' && p.containerPort === 9443));
  const secrets = (rules: any[]) => rules.filter((r) => r.resources.includes('secrets'));
  assert.equal(secrets(find(manifests, 'ClusterRole').rules), [
    { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
  ]);

  const off = render(['trainingProgress.enabled=false']);
  assert.not.ok(off.some((m) => m.kind === 'Service' && m.metadata.name.endsWith('-progress')));
  const offContainer = find(off, 'Deployment').spec.template.spec.containers[0];
  assert.not.ok(offContainer.env.some((e: any) => e.name.startsWith('PROGRESS_')));
  assert.equal(
    offContainer.ports.map((p: any) => p.name),
    ['http'],
  );
  assert.equal(
    secrets(find(off, 'ClusterRole').rules),
    [],
    'without progress the operator has no access to Secrets at all',
  );
});

test('an empty nats.url turns NATS off: no NATS_URL for the operator (it then runs without the drift loop)', () => {
  const env = find(render(['nats.url=']), 'Deployment').spec.template.spec.containers[0].env.map((e: any) => e.name);
  assert.not.ok(env.includes('NATS_URL'));
  assert.ok(find(render(), 'Deployment').spec.template.spec.containers[0].env.some((e: any) => e.name === 'NATS_URL'));
});

test('the operator pod is locked down: non-root, read-only root filesystem, no capabilities, RuntimeDefault seccomp', () => {
  const spec = find(render(), 'Deployment').spec.template.spec;
  const container = spec.containers[0];
  assert.equal(spec.securityContext, {
    runAsNonRoot: true,
    runAsUser: 65532,
    runAsGroup: 65532,
    seccompProfile: { type: 'RuntimeDefault' },
  });
  assert.equal(container.securityContext, {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
  });
  assert.equal(container.livenessProbe.httpGet, { path: '/healthz', port: 'http' });
  assert.equal(container.readinessProbe.httpGet, { path: '/readyz', port: 'http' });
  assert.ok(
    container.resources.requests.cpu && container.resources.requests.memory && container.resources.limits.memory,
  );
});

test('optional parts appear only when asked for: ServiceMonitor, dashboard ConfigMap, NATS credentials volume', () => {
  const plain = render();
  assert.not.ok(plain.some((m) => m.kind === 'ServiceMonitor' || m.kind === 'ConfigMap'));
  assert.not.ok(find(plain, 'Deployment').spec.template.spec.volumes.some((v: any) => v.secret));
  const full = render([
    'metrics.serviceMonitor.enabled=true',
    'metrics.serviceMonitor.labels.release=kps',
    'grafanaDashboard.enabled=true',
    'grafanaDashboard.namespace=monitoring',
  ]);
  const monitor = find(full, 'ServiceMonitor');
  assert.is(monitor.metadata.labels!.release, 'kps');
  assert.is(monitor.spec.endpoints[0].port, find(full, 'Service').spec.ports[0].name);
  const dashboard = find(full, 'ConfigMap');
  assert.is(dashboard.metadata.namespace, 'monitoring');
  assert.is(dashboard.metadata.labels!.grafana_dashboard, '1');
  assert.is(JSON.parse(dashboard.data['loopline-inferenceservice.json']).uid, 'loopline-inferenceservice');
});

test('a single replica without leader election gets no Lease Role and no PodDisruptionBudget', () => {
  const manifests = render(['operator.replicas=1', 'operator.leaderElection.enabled=false']);
  const deployment = find(manifests, 'Deployment');
  assert.is(deployment.spec.replicas, 1);
  assert.equal(deployment.spec.template.spec.containers[0].args, ['--http-port=8080', '--no-leader-election']);
  assert.not.ok(
    manifests.some((m) => m.kind === 'Role' || m.kind === 'RoleBinding' || m.kind === 'PodDisruptionBudget'),
  );
});

test('the MutatingAdmissionPolicy renders only where the API serves it (older clusters skip it)', () => {
  const withPolicy = helm(
    'template',
    'loopline',
    CHART,
    '--kube-version',
    KUBE_VERSION,
    '--api-versions',
    'admissionregistration.k8s.io/v1/MutatingAdmissionPolicy',
  );
  assert.match(withPolicy.stdout, /kind: MutatingAdmissionPolicy\n/);
  assert.match(withPolicy.stdout, /kind: MutatingAdmissionPolicyBinding\n/);
  // Named per release (a hand-applied crds/admission-policy.yaml never collides with it), binding and policy alike.
  const teamA = render(['admissionPolicy.enabled=true'], {
    release: 'team-a',
    apiVersions: ['admissionregistration.k8s.io/v1/MutatingAdmissionPolicy'],
  });
  assert.is(find(teamA, 'MutatingAdmissionPolicy').metadata.name, 'team-a-loopline-requested-by');
  assert.is(find(teamA, 'MutatingAdmissionPolicyBinding').spec.policyName, 'team-a-loopline-requested-by');
  const without = helm('template', 'loopline', CHART, '--kube-version', KUBE_VERSION);
  assert.is(without.status, 0, without.stderr);
  assert.not.match(without.stdout, /MutatingAdmissionPolicy/);
  const off = helm(
    'template',
    'loopline',
    CHART,
    '--kube-version',
    KUBE_VERSION,
    '--set',
    'admissionPolicy.enabled=false',
    '--api-versions',
    'admissionregistration.k8s.io/v1/MutatingAdmissionPolicy',
  );
  assert.not.match(off.stdout, /MutatingAdmissionPolicy/);
});

test.run();
