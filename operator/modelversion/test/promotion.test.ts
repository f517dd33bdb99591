// The registry on the local cluster: promotions move aliases and archive the previous Production
// version, history records who asked as the API server authenticated them, concurrent promotions
// keep the invariants, metric gates refuse promotions with a condition.
import { KubeConfig } from '@kubernetes/client-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KubeApi, kinds, type KubeObject, type ResourceKind } from '../../engine/index.ts';
import { startHarness, versionsOf, waitFor, type Harness } from '../../../test/support/operator-harness.ts';
import type { ModelVersion } from '../resource.ts';
import { registerVersion } from '../../../test/support/model-versions.ts';

const Role: ResourceKind = {
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'Role',
  plural: 'roles',
  namespaced: true,
};
const RoleBinding: ResourceKind = {
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'RoleBinding',
  plural: 'rolebindings',
  namespaced: true,
};

let h: Harness;
/** API access as the service account `release-manager`, a user other than the operator's. */
let releaseManager: KubeApi;
let releaseManagerName: string;

async function register(model: string, version: number, spec: Record<string, unknown> = {}): Promise<void> {
  await registerVersion(h.api, h.namespace, model, version, [], undefined, {
    effective: false,
    spec: { metrics: { auc: 0.9 }, ...spec },
  });
}

/** Every version's effective state matches what it asks for, and the registry has seen its latest generation. */
async function settled(model: string): Promise<ModelVersion[]> {
  return waitFor(`the registry to settle ${model}`, async () => {
    const versions = await versionsOf(h, model);
    const done = versions.every(
      (v) =>
        v.status?.observedGeneration === v.metadata.generation &&
        (v.status?.stage ?? 'None') === (v.spec.stage ?? 'None') &&
        JSON.stringify([...(v.status?.aliases ?? [])].sort()) === JSON.stringify([...(v.spec.aliases ?? [])].sort()),
    );
    return done ? versions : undefined;
  });
}

async function eventsFor(name: string): Promise<string[]> {
  const events = (await h.api.list(kinds.Event, h.namespace)).items as KubeObject[];
  return events
    .filter((e) => (e as any).regarding?.name === name)
    .map((e) => `${(e as any).reason}: ${(e as any).note}`);
}

test.before(async () => {
  h = await startHarness('registry');
  await h.api.create(
    kinds.ServiceAccount,
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'release-manager', namespace: h.namespace },
    } as never,
    'loopline-tests',
  );
  await h.api.create(
    Role,
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'promote', namespace: h.namespace },
      rules: [{ apiGroups: ['loopline.dev'], resources: ['modelversions'], verbs: ['get', 'list', 'patch', 'update'] }],
    } as never,
    'loopline-tests',
  );
  await h.api.create(
    RoleBinding,
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'promote', namespace: h.namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'promote' },
      subjects: [{ kind: 'ServiceAccount', name: 'release-manager', namespace: h.namespace }],
    } as never,
    'loopline-tests',
  );
  const token = await h.api.request<{ status: { token: string } }>(
    'POST' as never,
    `/api/v1/namespaces/${h.namespace}/serviceaccounts/release-manager/token`,
    {
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 600 } },
    },
  );
  const cluster = h.kc.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'release-manager', token: token.status.token }],
    contexts: [{ name: 'release-manager', cluster: cluster.name, user: 'release-manager' }],
    currentContext: 'release-manager',
  });
  releaseManager = new KubeApi(kc);
  releaseManagerName = `system:serviceaccount:${h.namespace}:release-manager`;
});
test.after(async () => {
  await h?.stop();
});

test('promotion moves the alias and archives the old Production version; history says who (as authenticated), when and why', async () => {
  await register('fraud', 1, { stage: 'Production', aliases: ['production'] });
  await register('fraud', 2, { stage: 'Staging' });
  await settled('fraud');
  const before = Date.now() - 1000;
  await releaseManager.mergePatch(
    kinds.ModelVersion,
    h.namespace,
    'fraud-v2',
    {
      // The typed-in name is ignored: the admission policy stamps the authenticated user.
      metadata: {
        annotations: {
          'loopline.dev/requested-by': 'someone-else',
          'loopline.dev/change-reason': 'auc up 3 points in shadow traffic',
        },
      },
      spec: { stage: 'Production', aliases: ['production'] },
    },
    'release-manager',
  );
  const [v1, v2] = await settled('fraud');
  assert.equal([v2.status!.stage, v2.status!.aliases], ['Production', ['production']]);
  assert.equal([v1.status!.stage, v1.status!.aliases ?? []], ['Archived', []]);
  assert.equal([v1.spec.stage, v1.spec.aliases], ['Archived', []], 'the displaced request is rewritten to match');
  const promoted = v2.status!.history!.at(-1)!;
  assert.equal(
    [promoted.from, promoted.to, promoted.aliasesAdded, promoted.by, promoted.reason],
    ['Staging', 'Production', ['production'], releaseManagerName, 'auc up 3 points in shadow traffic'],
  );
  assert.ok(Date.parse(promoted.at) >= before - 1000 && Date.parse(promoted.at) <= Date.now());
  const archived = v1.status!.history!.at(-1)!;
  assert.equal(
    [archived.from, archived.to, archived.aliasesRemoved, archived.by, archived.reason],
    [
      'Production',
      'Archived',
      ['production'],
      releaseManagerName,
      'archived: fraud-v2 promoted to Production; alias production moved to fraud-v2',
    ],
  );
  const events = await waitFor('the Promoted event', async () => {
    const e = await eventsFor('fraud-v2');
    return e.some((x) => x.startsWith('Promoted')) ? e : undefined;
  });
  assert.ok(events.some((x) => x.includes(releaseManagerName)));
  assert.ok((await eventsFor('fraud-v1')).some((x) => x.startsWith('Archived')));
});

test('concurrent promotions of many versions keep one Production version and one holder per alias', async () => {
  const versions = [1, 2, 3, 4, 5, 6];
  for (const v of versions) await register('churn', v, { stage: 'Staging' });
  await settled('churn');
  await Promise.all(
    versions.map((v) =>
      releaseManager.mergePatch(
        kinds.ModelVersion,
        h.namespace,
        `churn-v${v}`,
        { spec: { stage: 'Production', aliases: ['live', `v${v}`] } },
        'release-manager',
      ),
    ),
  );
  const after = await settled('churn');
  const production = after.filter((v) => v.status!.stage === 'Production');
  assert.is(production.length, 1, JSON.stringify(after.map((v) => [v.metadata.name, v.status!.stage])));
  assert.equal(
    after.filter((v) => v.status!.aliases!.includes('live')).map((v) => v.metadata.name),
    [production[0].metadata.name],
  );
  assert.ok(after.filter((v) => v !== production[0]).every((v) => v.status!.stage === 'Archived'));
  for (const v of after)
    assert.ok(v.status!.aliases!.includes(`v${v.spec.version}`), 'aliases nobody else asked for stay');
});

test('a promotion that fails its metric gates is refused with a condition saying why; Production is untouched', async () => {
  await register('credit', 1, { stage: 'Production' });
  await register('credit', 2, {
    stage: 'Staging',
    metrics: { auc: 0.81 },
    promotionGates: [{ metric: 'auc', operator: '>=', value: 0.85 }],
  });
  await settled('credit');
  await releaseManager.mergePatch(
    kinds.ModelVersion,
    h.namespace,
    'credit-v2',
    { spec: { stage: 'Production' } },
    'release-manager',
  );
  const refused = await waitFor('the Promoted=False condition', async () => {
    const v = (await versionsOf(h, 'credit'))[1];
    return v.status?.conditions?.find((c) => c.type === 'Promoted' && c.status === 'False') ? v : undefined;
  });
  const condition = refused.status!.conditions!.find((c) => c.type === 'Promoted')!;
  assert.is(condition.reason, 'GatesNotMet');
  assert.match(condition.message, /promotion of credit-v2 to Production refused: auc = 0\.81 fails auc >= 0\.85/);
  assert.is(refused.status!.stage, 'Staging');
  const [v1] = await versionsOf(h, 'credit');
  assert.equal([v1.spec.stage, v1.status!.stage], ['Production', 'Production']);
});

test('a resync with nothing changed writes nothing, versions without aliases or history included', async () => {
  await register('idle', 1);
  await register('idle', 2, { stage: 'Staging' });
  const [v1, v2] = await settled('idle');
  assert.equal([v1.status!.aliases ?? [], v1.status!.history ?? []], [[], []]);
  assert.equal(v2.status!.aliases ?? [], []);
  const operator = h.operator!;
  await operator.waitIdle();
  await new Promise((resolve) => setTimeout(resolve, 300)); // the watch delivers the registry's own last writes
  await operator.waitIdle();
  operator.writes.reset();
  operator.resync();
  await operator.waitIdle();
  assert.is(
    operator.writes.total({ excludeKinds: ['Lease'] }),
    0,
    `writes during resync: ${JSON.stringify(operator.writes.snapshot())}`,
  );
});

test.run();
