// A replica that lost its lease writes nothing, on the real API server: the registry's reconcile that is in flight
// when the lease is taken away keeps running to its end, and every write it still tries is refused. Also: no
// controller writes around the fenced writer (the promise of operator/engine/types.ts holds for every caller).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { kinds, NotLeaderError, type Engine, type KubeObject } from '../../engine/index.ts';
import { createOperator } from '../../main.ts';
import {
  REPO_ROOT,
  logger,
  sleep,
  startHarness,
  versionsOf,
  waitFor,
  type Harness,
} from '../../../test/support/operator-harness.ts';

const LEASE = 'registry-fencing';
let h: Harness;
let replica: Engine;

async function register(name: string, version: number, aliases: string[]): Promise<void> {
  await h.api.create(
    kinds.ModelVersion,
    {
      apiVersion: 'loopline.dev/v1alpha1',
      kind: 'ModelVersion',
      metadata: { name, namespace: h.namespace },
      spec: {
        model: 'fraud',
        version,
        artifact: {
          uri: `file:///models/fraud/${version}/model.onnx`,
          digest: `sha256:${String(version).padStart(64, '0')}`,
        },
        aliases,
      },
    } as never,
    'loopline-tests',
  );
}

test.before(async () => {
  h = await startHarness('mv-fencing', { operator: false, kubelet: false });
  replica = createOperator({
    kubeconfig: h.kc,
    namespace: h.namespace,
    httpPort: false,
    logger: logger(),
    leaderElection: {
      namespace: h.namespace,
      name: LEASE,
      identity: 'replica-a',
      leaseDurationMs: 2000,
      renewDeadlineMs: 1500,
      retryPeriodMs: 250,
    },
  });
  await replica.start();
  await replica.whenLeader();
});
test.after(async () => {
  await replica?.stop({ releaseLease: false });
  await h?.stop();
});

test('no controller writes through the raw API client: every write goes through the fenced writer', () => {
  // The engine itself (Lease, Event recorder behind ctx.event) and the CLI (a user's tool, no leadership) may.
  const raw = /\b(?:api|kube)\s*\.\s*(?:apply|mergePatch|create|replace|delete)\s*[<(]/;
  const offenders: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) {
        if (!['test', 'bench', 'engine', 'cli'].includes(name)) walk(path);
      } else if (name.endsWith('.ts') && raw.test(readFileSync(path, 'utf8'))) {
        offenders.push(relative(REPO_ROOT, path));
      }
    }
  };
  walk(join(REPO_ROOT, 'operator'));
  assert.equal(offenders, []);
});

test('a replica whose lease was taken mid-reconcile writes nothing more, and its writer refuses a patch', async () => {
  await register('fraud-v1', 1, ['production']);
  await register('fraud-v2', 2, ['staging']);
  await waitFor('the registry to record both aliases', async () => {
    const versions = await versionsOf(h, 'fraud');
    return versions.every((v) => (v.status?.aliases ?? []).length === 1) || undefined;
  });

  // Hold the registry's first rewrite of a displaced version on its way out, so a reconcile is in flight.
  const original = replica.api.request.bind(replica.api);
  const sent: Array<{ method: string; path: string; at: number }> = [];
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let held = false;
  replica.api.request = (async (method, path, options) => {
    if (method !== 'GET' && !path.includes('/leases/')) sent.push({ method, path, at: Date.now() });
    if (!held && method === 'PATCH' && path.endsWith('/modelversions/fraud-v1')) {
      held = true;
      await released;
    }
    return original(method, path, options);
  }) as typeof replica.api.request;

  try {
    // v3 asks for both aliases: the plan rewrites v1 (loses production) and then v2 (loses staging).
    await register('fraud-v3', 3, ['production', 'staging']);
    await waitFor('the rewrite of fraud-v1 to be in flight', () => held || undefined);
    const v2Before = (await versionsOf(h, 'fraud'))[1];

    // Someone else takes the lease (for an hour, so this replica does not simply win it back after expiry).
    const lease = await h.api.get(kinds.Lease, h.namespace, LEASE);
    await h.api.replace(
      kinds.Lease,
      {
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: 'replica-b',
          leaseDurationSeconds: 3600,
          renewTime: new Date().toISOString().replace('Z', '000Z'),
        },
      } as KubeObject,
      'loopline-tests',
    );
    await waitFor('the replica to step down', () => !replica.isLeader() || undefined, 5000);
    const deposedAt = Date.now();
    release();
    await sleep(1500);

    const after = sent.filter((w) => w.at >= deposedAt);
    assert.equal(after, [], `writes sent after losing the lease: ${JSON.stringify(after)}`);
    const v2After = (await versionsOf(h, 'fraud'))[1];
    assert.is(v2After.metadata.resourceVersion, v2Before.metadata.resourceVersion, 'fraud-v2 was not touched');
    assert.equal(v2After.spec.aliases, ['staging']);
    try {
      await replica.writer.patch(kinds.ModelVersion, h.namespace, 'fraud-v2', { spec: { aliases: [] } });
      assert.unreachable('the patch should have been refused');
    } catch (err) {
      assert.instance(err, NotLeaderError);
    }
  } finally {
    // Never leave the reconcile hanging: stopping the replica waits for it.
    release();
    replica.api.request = original;
  }
});

test.run();
