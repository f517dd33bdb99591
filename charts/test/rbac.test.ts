// The chart's RBAC is least privilege: no wildcards, exactly the grants listed here with their reason,
// every permission the operator's code needs (read from operator/) is granted, nothing is granted for a
// kind the code never names; and on the real API server the ServiceAccount can do those things and no more.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { dump } from 'js-yaml';
import {
  ROOT,
  deleteNamespace,
  find,
  kubectl,
  render,
  requireKubeconfig,
  run,
  KUBECTL,
  uniqueNamespace,
  type Manifest,
} from './support/chart.ts';
import { operatorUsage } from './support/operator-access.ts';

requireKubeconfig();

/** `group/resource` → verbs, with why the operator needs them. The chart must grant exactly this. */
const GRANTS: Array<{ resource: string; verbs: string[]; why: string }> = [
  {
    resource: 'loopline.dev/trainingjobs',
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
    why: 'reconciled; created for retraining; deleted after ttlSecondsAfterFinished',
  },
  {
    resource: 'loopline.dev/modelversions',
    verbs: ['get', 'list', 'watch', 'create', 'patch'],
    why: 'registered from training results; stage/alias moves on promotion',
  },
  {
    resource: 'loopline.dev/inferenceservices',
    verbs: ['get', 'list', 'watch', 'patch'],
    why: 'reconciled; one-shot promoteNow/abort cleared',
  },
  { resource: 'loopline.dev/trainingjobs/status', verbs: ['patch'], why: 'status via server-side apply' },
  { resource: 'loopline.dev/modelversions/status', verbs: ['patch'], why: 'status via server-side apply' },
  {
    resource: 'loopline.dev/inferenceservices/status',
    verbs: ['patch'],
    why: 'status via server-side apply; drift summary',
  },
  {
    resource: 'loopline.dev/trainingjobs/finalizers',
    verbs: ['update'],
    why: 'blockOwnerDeletion on Jobs/services under OwnerReferencesPermissionEnforcement',
  },
  {
    resource: 'loopline.dev/inferenceservices/finalizers',
    verbs: ['update'],
    why: 'blockOwnerDeletion on serving objects under OwnerReferencesPermissionEnforcement',
  },
  {
    resource: '/pods',
    verbs: ['get', 'list', 'watch'],
    why: "training and batch pods (the Job controller's): results and failures",
  },
  {
    resource: 'batch/jobs',
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
    why: 'one Job per training attempt (a desired object: create + patch); deleted on suspend',
  },
  {
    resource: 'batch/cronjobs',
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
    why: 'one CronJob per InferenceService spec.batch entry; removed with its entry',
  },
  {
    resource: 'kueue.x-k8s.io/workloads',
    verbs: ['get', 'list', 'watch', 'create'],
    why: 'the Workload of each queued Job, made in queue order; Kueue queue state of queued TrainingJobs',
  },
  {
    resource: 'scheduling.k8s.io/priorityclasses',
    verbs: ['get', 'list', 'watch'],
    why: "the priority of a queued Job's pods, on its Workload",
  },
  {
    resource: '/services',
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
    why: 'headless training service; predictor services',
  },
  {
    resource: 'apps/deployments',
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
    why: 'stable/canary predictors; canary removed',
  },
  {
    resource: 'autoscaling/horizontalpodautoscalers',
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
    why: 'predictor autoscaling',
  },
  {
    resource: 'policy/poddisruptionbudgets',
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
    why: 'predictor disruption budget',
  },
  {
    resource: 'gateway.networking.k8s.io/httproutes',
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
    why: 'weighted canary route',
  },
  {
    resource: 'gateway.networking.k8s.io/grpcroutes',
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
    why: 'weighted canary route of the gRPC port',
  },
  {
    resource: 'networking.istio.io/virtualservices',
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
    why: 'weighted canary route (Istio)',
  },
  {
    resource: 'traefik.io/ingressroutes',
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
    why: 'Traefik route to the TraefikService (provider traefik)',
  },
  {
    resource: 'traefik.io/traefikservices',
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
    why: 'weighted or mirroring canary split (provider traefik)',
  },
  {
    resource: 'gateway.networking.k8s.io/gateways',
    verbs: ['list', 'watch'],
    why: 'status.url from the address of the Gateway a route attaches to',
  },
  {
    resource: 'events.k8s.io/events',
    verbs: ['create', 'patch'],
    why: 'Kubernetes Events, repeats patched into a series',
  },
  {
    resource: '/secrets',
    verbs: ['create'],
    why: 'a progress token per training attempt; created once, never read back, changed or listed',
  },
];
const LEASE_GRANTS = [
  { resource: 'coordination.k8s.io/leases', verbs: ['create'], resourceNames: [] as string[] },
  { resource: 'coordination.k8s.io/leases', verbs: ['get', 'update'], resourceNames: ['<lease>'] },
];

type Rule = {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
};

function flatten(rules: Rule[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const rule of rules) {
    for (const group of rule.apiGroups ?? []) {
      for (const resource of rule.resources ?? []) {
        const key = `${group}/${resource}`;
        const verbs = out.get(key) ?? new Set<string>();
        for (const v of rule.verbs) verbs.add(v);
        out.set(key, verbs);
      }
    }
  }
  return out;
}

const release = `rbac-${process.pid}`;
const namespace = uniqueNamespace('chart-rbac');
/** The chart names everything, the Lease included, `<release>-loopline`. */
const fullname = `${release}-loopline`;
const manifests = render([], { release, namespace });
const clusterRole = find(manifests, 'ClusterRole');
const role = find(manifests, 'Role');
const granted = flatten(clusterRole.rules);

test('no RBAC rule uses a wildcard or a non-resource URL', () => {
  for (const r of [...clusterRole.rules, ...role.rules] as Rule[]) {
    for (const field of [r.apiGroups, r.resources, r.verbs, r.resourceNames])
      assert.not.ok(
        field?.some((v) => v.includes('*')),
        JSON.stringify(r),
      );
    assert.is(r.nonResourceURLs, undefined);
  }
});

test('the ClusterRole grants exactly the listed permissions, each with its reason', () => {
  const expected = new Map(GRANTS.map((g) => [g.resource, new Set(g.verbs)]));
  const show = (m: Map<string, Set<string>>) => Object.fromEntries([...m].map(([k, v]) => [k, [...v].sort()]).sort());
  assert.equal(show(granted), show(expected));
});

test("the leader-election Role: create any Lease, get/update only this release's Lease, in the release namespace only", () => {
  assert.is(role.metadata.namespace, namespace);
  const rules = role.rules as Rule[];
  assert.equal(
    rules.map((r) => ({
      resource: `${r.apiGroups![0]}/${r.resources![0]}`,
      verbs: r.verbs,
      resourceNames: r.resourceNames ?? [],
    })),
    LEASE_GRANTS.map((g) => ({ ...g, resourceNames: g.resourceNames.map(() => fullname) })),
  );
  const args: string[] = find(manifests, 'Deployment').spec.template.spec.containers[0].args;
  assert.ok(args.includes(`--lease-name=${fullname}`), 'the operator must be told the Lease name the Role allows');
});

test('every permission the operator code needs is granted (scanned from the code operator/main.ts imports)', () => {
  const { needs, evidence } = operatorUsage();
  assert.ok(needs.size >= 5, `the scan found only ${needs.size} resources: is operator/main.ts still the entry?`);
  const lease = flatten(role.rules);
  const missing: string[] = [];
  for (const [resource, verbs] of needs) {
    const have = resource.startsWith('coordination.k8s.io/') ? lease.get(resource) : granted.get(resource);
    for (const verb of verbs)
      if (!have?.has(verb)) missing.push(`${verb} ${resource}  <- ${evidence.get(resource)!.join('; ')}`);
  }
  assert.equal(missing, [], `not granted:\n${missing.join('\n')}`);
});

test('nothing is granted for a kind the operator code never names', () => {
  const { touched } = operatorUsage();
  const unused = [...granted.keys()].map((r) => r.replace(/\/(status|finalizers)$/, '')).filter((r) => !touched.has(r));
  assert.equal([...new Set(unused)], []);
});

// --- on the real API server ---

const sa = `system:serviceaccount:${namespace}:${fullname}`;
const other = `${namespace}-other`;

type Check = [verb: string, resource: string, namespace: string, name?: string];

/**
 * The API server's answer to "may the ServiceAccount do this?" for each check, as SubjectAccessReviews in one
 * request (`kubectl auth can-i` would first look the resource up, and Gateway API/Istio CRDs need not exist here).
 */
function allowed(checks: Check[]): boolean[] {
  const reviews = checks.map(([verb, resource, ns, name]) => {
    const slash = resource.indexOf('/');
    const [plural, subresource] = resource.slice(slash + 1).split('/');
    return {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user: sa,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
        resourceAttributes: {
          verb,
          group: resource.slice(0, slash),
          resource: plural,
          subresource,
          namespace: ns || undefined,
          name,
        },
      },
    };
  });
  // kubectl prints one JSON document per created object, one after the other.
  const out = kubectl(
    ['create', '-f', '-', '-o', 'json'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: reviews }),
  );
  const answers = JSON.parse(`[${out.trim().replace(/\n\}\n\{/g, '\n},\n{')}]`);
  assert.is(answers.length, checks.length);
  return answers.map((review: any) => review.status.allowed === true);
}

test.before(() => {
  try {
    setUp();
  } catch (error) {
    console.error(error); // uvu does not print an error thrown by a hook
    throw error;
  }
});

function setUp(): void {
  kubectl(['create', 'namespace', namespace]);
  kubectl(['create', 'namespace', other]);
  // The chart's CRDs as Helm would install them; forced, as operator/api/install.ts does, over any variant another suite left.
  kubectl([
    'apply',
    '--server-side',
    '--force-conflicts',
    '--field-manager=loopline-crds',
    '-f',
    `${ROOT}charts/loopline/crds/`,
  ]);
  kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=30s',
    'crd/trainingjobs.loopline.dev',
    'crd/modelversions.loopline.dev',
    'crd/inferenceservices.loopline.dev',
  ]);
  const rbac = manifests.filter((m: Manifest) =>
    ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(m.kind),
  );
  kubectl(['apply', '-f', '-'], rbac.map((m) => dump(m)).join('---\n'));
}

test.after(() => {
  deleteNamespace(namespace);
  deleteNamespace(other);
  run(KUBECTL, ['delete', 'clusterrole,clusterrolebinding', fullname, '--ignore-not-found']);
});

test('the API server lets the ServiceAccount do every granted thing, in any namespace', () => {
  const checks: Check[] = GRANTS.flatMap(({ resource, verbs }) => verbs.map((verb): Check => [verb, resource, other]));
  checks.push(
    ['create', 'coordination.k8s.io/leases', namespace],
    ['get', 'coordination.k8s.io/leases', namespace, fullname],
    ['update', 'coordination.k8s.io/leases', namespace, fullname],
  );
  const answers = allowed(checks);
  assert.equal(
    checks.filter((_, i) => !answers[i]),
    [],
  );
});

test('the API server refuses what the operator does not need', () => {
  const refused: Check[] = [
    ['get', '/secrets', other],
    ['list', '/secrets', namespace],
    ['watch', '/secrets', other],
    ['patch', '/secrets', other],
    ['update', '/secrets', other],
    ['delete', '/secrets', other],
    ['list', '/configmaps', other],
    ['list', '/nodes', ''],
    ['create', '/pods/exec', other],
    ['update', '/pods', other],
    ['create', '/pods', other],
    ['delete', '/pods', other],
    ['update', 'batch/jobs', other],
    ['delete', 'loopline.dev/modelversions', other],
    ['delete', 'loopline.dev/inferenceservices', other],
    ['update', 'apps/deployments', other],
    ['create', 'rbac.authorization.k8s.io/clusterroles', ''],
    ['create', 'apiextensions.k8s.io/customresourcedefinitions', ''],
    ['update', 'coordination.k8s.io/leases', namespace, 'someone-elses-lease'],
    ['create', 'coordination.k8s.io/leases', other],
    ['get', 'coordination.k8s.io/leases', other, fullname],
    ['delete', '/events', other],
  ];
  const answers = allowed(refused);
  assert.equal(
    refused.filter((_, i) => answers[i]),
    [],
  );
});

test('as the ServiceAccount: server-side apply creates a Deployment, writes TrainingJob status, records an Event, takes its Lease', () => {
  const as = ['--as', sa];
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'predictor', namespace: other },
    spec: {
      replicas: 0,
      selector: { matchLabels: { app: 'p' } },
      template: {
        metadata: { labels: { app: 'p' } },
        spec: { containers: [{ name: 'p', image: 'loopline/predictor:0.1.0' }] },
      },
    },
  };
  kubectl(
    ['apply', '--server-side', '--field-manager=loopline-operator', '-f', '-', ...as],
    JSON.stringify(deployment),
  );
  kubectl(['create', '-n', other, '-f', `${ROOT}examples/trainingjob.yaml`]);
  const status = {
    apiVersion: 'loopline.dev/v1alpha1',
    kind: 'TrainingJob',
    metadata: { name: 'credit-risk-train', namespace: other },
    status: { phase: 'Pending', message: 'written by the chart ServiceAccount' },
  };
  kubectl(
    ['apply', '--server-side', '--subresource=status', '--field-manager=loopline-operator', '-f', '-', ...as],
    JSON.stringify(status),
  );
  assert.is(
    kubectl(['get', 'trainingjob', 'credit-risk-train', '-n', other, '-o', 'jsonpath={.status.message}']),
    'written by the chart ServiceAccount',
  );
  const event = {
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: { name: 'credit-risk-train.chart', namespace: other },
    eventTime: new Date().toISOString().replace('Z', '000Z'),
    reportingController: 'loopline.dev/operator',
    reportingInstance: 'test',
    action: 'Test',
    reason: 'Test',
    type: 'Normal',
    note: 'from the chart ServiceAccount',
    regarding: {
      apiVersion: 'loopline.dev/v1alpha1',
      kind: 'TrainingJob',
      name: 'credit-risk-train',
      namespace: other,
    },
  };
  kubectl(['create', '-f', '-', ...as], JSON.stringify(event));
  const lease = {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: fullname, namespace },
    spec: { holderIdentity: 'test', leaseDurationSeconds: 15 },
  };
  kubectl(['create', '-f', '-', ...as], JSON.stringify(lease));
  const current = JSON.parse(kubectl(['get', 'lease', fullname, '-n', namespace, '-o', 'json', ...as]));
  current.spec.holderIdentity = 'test-2';
  kubectl(['replace', '-f', '-', ...as], JSON.stringify(current));
  assert.is(kubectl(['get', 'lease', fullname, '-n', namespace, '-o', 'jsonpath={.spec.holderIdentity}']), 'test-2');
  // ...and the same kind of write on something it was not granted is refused.
  const forbidden = run(KUBECTL, ['create', 'configmap', 'nope', '-n', other, ...as]);
  assert.is.not(forbidden.status, 0);
  assert.match(forbidden.stderr, /forbidden/);
});

test.run();
