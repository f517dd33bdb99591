// The chart on the real API server of the local cluster: its rendered manifests pass a server-side dry run;
// helm install, upgrade (a changed value) and uninstall work; a wrong value fails the install; and uninstall
// leaves only what the README says stays (the CRDs). Operator pods cannot run on simulated nodes: not awaited.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { dump } from 'js-yaml';
import {
  CHART,
  KUBECTL,
  deleteNamespace,
  helm,
  kubectl,
  render,
  requireKubeconfig,
  run,
  uniqueNamespace,
} from './support/chart.ts';

requireKubeconfig();

const namespace = uniqueNamespace('chart-install');
const release = `it-${process.pid}`;
const fullname = `${release}-loopline`;
const instance = `app.kubernetes.io/instance=${release}`;
const CRDS = ['trainingjobs.loopline.dev', 'modelversions.loopline.dev', 'inferenceservices.loopline.dev'];
const POLICY_API = 'admissionregistration.k8s.io/v1/MutatingAdmissionPolicy';

function ok(result: { status: number | null; stdout: string; stderr: string }): string {
  assert.is(result.status, 0, result.stderr || result.stdout);
  return result.stdout;
}

function json(args: string[]): any {
  return JSON.parse(kubectl([...args, '-o', 'json']));
}

test.before(() => {
  kubectl(['create', 'namespace', namespace]);
});

test.after(() => {
  helm('uninstall', release, '-n', namespace, '--ignore-not-found');
  deleteNamespace(namespace);
});

test("every rendered manifest passes the API server's server-side dry run", () => {
  const manifests = render(['grafanaDashboard.enabled=true', 'nats.credentials.secretName=nats-operator'], {
    release: `dry-${process.pid}`,
    namespace,
    apiVersions: [POLICY_API],
  });
  const kinds = manifests.map((m) => m.kind).sort();
  for (const kind of [
    'ClusterRole',
    'ClusterRoleBinding',
    'ConfigMap',
    'Deployment',
    'MutatingAdmissionPolicy',
    'MutatingAdmissionPolicyBinding',
    'PodDisruptionBudget',
    'Role',
    'RoleBinding',
    'Service',
    'ServiceAccount',
  ]) {
    assert.ok(kinds.includes(kind), `${kind} not rendered`);
  }
  const out = kubectl(
    ['apply', '--dry-run=server', '--server-side', '--field-manager=helm', '-f', '-'],
    manifests.map((m) => dump(m)).join('---\n'),
  );
  assert.is(out.trim().split('\n').length, manifests.length, out);
  // The dry run is a real check: a Deployment the API server rejects fails it.
  const broken = manifests.find((m) => m.kind === 'Deployment')!;
  const bad = structuredClone(broken);
  bad.spec.template.spec.containers[0].ports[0].containerPort = 70000;
  const refused = run(KUBECTL, ['apply', '--dry-run=server', '--server-side', '-f', '-'], dump(bad));
  assert.is.not(refused.status, 0);
  assert.match(refused.stderr, /containerPort/);
});

test('helm install refuses a wrong value before touching the cluster, naming the value', () => {
  const result = helm(
    'install',
    `bad-${process.pid}`,
    CHART,
    '-n',
    namespace,
    '--set',
    'operator.image.pullPolicy=Sometimes',
  );
  assert.is.not(result.status, 0);
  assert.match(result.stderr, /\/operator\/image\/pullPolicy/);
  assert.match(result.stderr, /Always.*IfNotPresent.*Never/);
  assert.is(helm('status', `bad-${process.pid}`, '-n', namespace).status, 1);
});

test('helm install creates the operator, its RBAC, metrics Service, PDB, dashboard and admission policy; CRDs are served', () => {
  const out = ok(helm('install', release, CHART, '-n', namespace, '--set', 'grafanaDashboard.enabled=true'));
  assert.match(out, /STATUS: deployed/);
  assert.match(out, /kubectl get loopline -A/);
  assert.not.match(out, /WARNING: this cluster does not serve/);
  const deployment = json(['get', 'deployment', fullname, '-n', namespace]);
  assert.is(deployment.spec.replicas, 2);
  assert.is(deployment.spec.template.spec.serviceAccountName, fullname);
  assert.is(deployment.spec.template.spec.containers[0].image, 'loopline/operator:0.1.0');
  for (const [kind, name] of [
    ['serviceaccount', fullname],
    ['service', `${fullname}-metrics`],
    ['role', `${fullname}-leader-election`],
    ['rolebinding', `${fullname}-leader-election`],
    ['poddisruptionbudget', fullname],
    ['configmap', `${fullname}-dashboard`],
  ]) {
    kubectl(['get', kind, name, '-n', namespace]);
  }
  for (const name of [fullname]) kubectl(['get', 'clusterrole', name]), kubectl(['get', 'clusterrolebinding', name]);
  kubectl(['get', 'mutatingadmissionpolicy,mutatingadmissionpolicybinding', `${fullname}-requested-by`]);
  for (const crd of CRDS)
    assert.is(
      kubectl(['get', 'crd', crd, '-o', 'jsonpath={.status.conditions[?(@.type=="Established")].status}']),
      'True',
    );
  // The ServiceAccount gets what the operator needs, through the installed binding.
  const sa = `system:serviceaccount:${namespace}:${fullname}`;
  assert.is(
    run(KUBECTL, [
      'auth',
      'can-i',
      'patch',
      'trainingjobs.loopline.dev',
      '--subresource=status',
      '-n',
      'default',
      '--as',
      sa,
    ]).stdout.trim(),
    'yes',
  );
});

test('helm upgrade with changed values rolls the Deployment to them (revision 2); a wrong value leaves revision 2 in place', () => {
  const before = json(['get', 'deployment', fullname, '-n', namespace]).metadata.generation;
  ok(
    helm(
      'upgrade',
      release,
      CHART,
      '-n',
      namespace,
      '--reuse-values',
      '--set',
      'operator.logLevel=debug',
      '--set',
      'operator.replicas=3',
      '--set',
      'prometheus.url=http://prometheus.monitoring:9090',
    ),
  );
  const deployment = json(['get', 'deployment', fullname, '-n', namespace]);
  assert.ok(deployment.metadata.generation > before);
  assert.is(deployment.spec.replicas, 3);
  const env = Object.fromEntries(deployment.spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]));
  assert.is(env.LOG_LEVEL, 'debug');
  assert.is(env.PROMETHEUS_URL, 'http://prometheus.monitoring:9090');
  const refused = helm('upgrade', release, CHART, '-n', namespace, '--reuse-values', '--set', 'operator.replicas=many');
  assert.is.not(refused.status, 0);
  assert.match(refused.stderr, /\/operator\/replicas/);
  const history = JSON.parse(ok(helm('history', release, '-n', namespace, '-o', 'json')));
  assert.equal(
    history.map((h: any) => [h.revision, h.status]),
    [
      [1, 'superseded'],
      [2, 'deployed'],
    ],
  );
  // Turning the dashboard off removes its ConfigMap: the release owns it.
  ok(helm('upgrade', release, CHART, '-n', namespace, '--reuse-values', '--set', 'grafanaDashboard.enabled=false'));
  assert.is(run(KUBECTL, ['get', 'configmap', `${fullname}-dashboard`, '-n', namespace]).status, 1);
});

test('helm uninstall removes everything it installed and keeps the CRDs', () => {
  ok(helm('uninstall', release, '-n', namespace, '--wait', '--timeout', '60s'));
  // Operator pods were never started (no kubelet runs loopline/ images here), so none will confirm its termination.
  run(KUBECTL, ['delete', 'pods', '-n', namespace, '-l', instance, '--force', '--grace-period=0']);
  const left = kubectl([
    'get',
    'deployment,replicaset,pod,service,serviceaccount,role,rolebinding,configmap,poddisruptionbudget',
    '-n',
    namespace,
    '-l',
    instance,
    '-o',
    'name',
  ]);
  assert.is(left.trim(), '');
  for (const kind of ['clusterrole', 'clusterrolebinding'])
    assert.is(run(KUBECTL, ['get', kind, fullname]).status, 1, `${kind} ${fullname} left behind`);
  assert.is(run(KUBECTL, ['get', 'mutatingadmissionpolicy', `${fullname}-requested-by`]).status, 1);
  for (const crd of CRDS) kubectl(['get', 'crd', crd]);
  assert.is(helm('status', release, '-n', namespace).status, 1);
});

test.run();
