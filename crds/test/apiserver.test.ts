// The CRDs on the real API server: installed and Established, the examples accepted, kubectl's
// view of them (category, short names, explain, printer columns).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ApiextensionsV1Api } from '@kubernetes/client-node';
import { LOOPLINE_KINDS, crdVersion, loadCrd, type LooplineKind } from '../../operator/api/crds.ts';
import { installCrds } from '../../operator/api/install.ts';
import {
  LooplineObjects,
  example,
  reportAndThrow,
  kubectl,
  parseTable,
  refusalOf,
  requireKubeconfig,
  uniqueNamespace,
} from './cluster.ts';

const kc = requireKubeconfig();
const freshCacheDir = () => mkdtempSync(join(tmpdir(), 'loopline-kubectl-cache-'));
const objects = new LooplineObjects(kc, uniqueNamespace('loopline-crds'));
const names: Record<LooplineKind, string> = {
  TrainingJob: 'credit-risk-train',
  ModelVersion: 'credit-risk-v1',
  InferenceService: 'credit-risk',
};

test.before(async () => {
  // uvu reports a failed hook only as failed tests, so say why here.
  await installCrds(kc, { fieldManager: 'loopline-crd-test' }).catch(reportAndThrow('installing the CRDs'));
  await objects.createNamespace().catch(reportAndThrow(`creating namespace ${objects.namespace}`));
});

test.after(async () => {
  await objects.deleteNamespace();
});

test('the three CRDs are Established with their names accepted, and installing again is a no-op', async () => {
  const extensions = kc.makeApiClient(ApiextensionsV1Api);
  const before = await Promise.all(
    LOOPLINE_KINDS.map((kind) => extensions.readCustomResourceDefinition({ name: loadCrd(kind).metadata.name })),
  );
  await installCrds(kc, { fieldManager: 'loopline-crd-test' });
  for (const [i, kind] of LOOPLINE_KINDS.entries()) {
    const live = await extensions.readCustomResourceDefinition({ name: loadCrd(kind).metadata.name });
    for (const type of ['Established', 'NamesAccepted']) {
      assert.ok(
        live.status?.conditions?.some((c) => c.type === type && c.status === 'True'),
        `${kind}: ${type} is not True`,
      );
    }
    assert.equal(live.status?.acceptedNames?.categories, ['loopline']);
    assert.is(
      live.metadata?.generation,
      before[i].metadata?.generation,
      `${kind}: re-applying the same CRD bumped its generation`,
    );
  }
});

test("the API server stores each CRD's schema, CEL rules and printer columns exactly as crds/ writes them", async () => {
  for (const kind of LOOPLINE_KINDS) {
    const crd = loadCrd(kind);
    const live = JSON.parse(await kubectl('get', 'crd', crd.metadata.name, '-o', 'json'));
    const [version] = live.spec.versions;
    assert.equal(version.schema.openAPIV3Schema, crdVersion(kind).schema.openAPIV3Schema, `${kind} schema differs`);
    assert.equal(version.additionalPrinterColumns, crdVersion(kind).additionalPrinterColumns, `${kind} columns differ`);
    assert.equal(live.spec.names, crd.spec.names);
  }
});

for (const kind of LOOPLINE_KINDS) {
  test(`the ${kind} example passes a server-side dry run without being stored, then is created with defaults applied`, async () => {
    const dryRun = await objects.create(kind, example(kind), true);
    assert.is(dryRun.metadata.name, names[kind]);
    const stored = await objects.get(kind, names[kind]).then(
      () => true,
      (err) => (refusalOf(err).code === 404 ? false : Promise.reject(err)),
    );
    assert.is(stored, false, 'the dry run stored the object');
    const created = await objects.create(kind, example(kind));
    assert.ok(created.metadata.uid);
    const read = await objects.get(kind, names[kind]);
    if (kind === 'TrainingJob')
      assert.equal([read.spec.workers, read.spec.masterPort, read.spec.suspend], [1, 29500, false]);
    if (kind === 'ModelVersion') assert.is(read.spec.artifact.format, 'onnx');
    if (kind === 'InferenceService') {
      assert.equal(
        [read.spec.rollout.autoPromote, read.spec.rollout.paused, read.spec.traffic.provider],
        [true, false, 'gatewayAPI'],
      );
      assert.is(read.spec.predictor.targetUtilization, 80);
    }
  });
}

test('a second ModelVersion with a taken <model>-v<version> name is refused with 409 AlreadyExists', async () => {
  const refusal = await objects
    .create('ModelVersion', example('ModelVersion'))
    .then(() => assert.unreachable('created a duplicate version'), refusalOf);
  assert.equal([refusal!.code, refusal!.reason], [409, 'AlreadyExists']);
});

test('kubectl get loopline lists the three kinds, and the short names tj, mv and lisvc resolve', async () => {
  // The API server's discovery can trail the CRDs' Established condition by a moment, and kubectl caches what it
  // saw: ask again (a fresh cache each time) until the category resolves, for at most 20 s.
  let output = '';
  for (const deadline = Date.now() + 20_000; ; ) {
    try {
      output = await kubectl('get', 'loopline', '-n', objects.namespace, '-o', 'name', '--cache-dir', freshCacheDir());
      break;
    } catch (error) {
      if (Date.now() > deadline || !/doesn't have a resource type "loopline"/.test(String(error))) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  const listed = output.split('\n').filter(Boolean).sort();
  assert.equal(listed, [
    'inferenceservice.loopline.dev/credit-risk',
    'modelversion.loopline.dev/credit-risk-v1',
    'trainingjob.loopline.dev/credit-risk-train',
  ]);
  const short = (await kubectl('get', 'tj,mv,lisvc', '-n', objects.namespace, '-o', 'name'))
    .split('\n')
    .filter(Boolean);
  assert.is(short.length, 3);
  const isvc = await kubectl('get', 'isvc', '-n', objects.namespace).then(
    (out) => `resolved: ${out}`,
    (err: Error) => err.message,
  );
  assert.match(isvc, /doesn't have a resource type "isvc"/, 'isvc must stay free for KServe');
});

test('kubectl explain shows the field descriptions', async () => {
  assert.match(await kubectl('explain', 'trainingjob.spec.workers'), /torchrun-style environment/);
  assert.match(await kubectl('explain', 'lisvc.spec.rollout.steps'), /strictly ascending/);
  assert.match(await kubectl('explain', 'mv.spec.artifact.digest'), /Immutable/);
});

async function setStatus(kind: LooplineKind, status: Record<string, unknown>): Promise<void> {
  const current = await objects.get(kind, names[kind]);
  await objects.replaceStatus(kind, { ...current, status });
}

async function row(resource: string, name: string, wide = false): Promise<Record<string, string>> {
  const rows = parseTable(
    await kubectl('get', resource, name, '-n', objects.namespace, ...(wide ? ['-o', 'wide'] : [])),
  );
  assert.is(rows.length, 1);
  return rows[0];
}

const AGE = /^\d+s$/;
const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

test('TrainingJob printer columns show phase, queue state, model, GPUs, attempts, version, progress and age from a status written through the subresource', async () => {
  await setStatus('TrainingJob', {
    phase: 'Succeeded',
    attempts: 2,
    startTime: now(),
    completionTime: now(),
    metrics: { auc: 0.912 },
    modelVersion: 'credit-risk-v1',
    version: 1,
    message: 'registered credit-risk-v1',
    queue: {
      localQueue: 'training',
      state: 'Admitted',
      workload: 'job-credit-risk-train-2-1a2b3',
      clusterQueue: 'training',
      reason: 'Admitted',
      message: 'The workload is admitted',
    },
    progress: { attempt: 2, epoch: 200, totalEpochs: 200, epochs: '200/200', loss: 0.31, updatedAt: now() },
    observedGeneration: 1,
    conditions: [
      {
        type: 'Succeeded',
        status: 'True',
        reason: 'Registered',
        message: 'auc 0.912 >= 0.75',
        lastTransitionTime: now(),
      },
    ],
  });
  const { AGE: age, ...cells } = await row('trainingjob', names.TrainingJob);
  assert.equal(cells, {
    NAME: 'credit-risk-train',
    PHASE: 'Succeeded',
    QUEUE: 'Admitted',
    MODEL: 'credit-risk',
    GPUS: '1',
    ATTEMPTS: '2',
    VERSION: '1',
    PROGRESS: '200/200',
  });
  assert.match(age, AGE);
  assert.is((await row('tj', names.TrainingJob, true)).WORKERS, '1');
});

test('ModelVersion printer columns show model, version, stage, aliases, primary metric and age', async () => {
  await setStatus('ModelVersion', {
    stage: 'Production',
    aliases: ['candidate', 'production'],
    primaryMetric: 'auc=0.912',
    observedGeneration: 1,
    history: [
      {
        from: 'None',
        to: 'Production',
        aliasesAdded: ['production'],
        by: 'system:admin',
        at: now(),
        reason: 'promoted by hand',
      },
    ],
  });
  const { AGE: age, ...cells } = await row('modelversion', names.ModelVersion);
  assert.equal(cells, {
    NAME: 'credit-risk-v1',
    MODEL: 'credit-risk',
    VERSION: '1',
    STAGE: 'Production',
    ALIASES: '["candidate","production"]',
    METRIC: 'auc=0.912',
  });
  assert.match(age, AGE);
  assert.is((await row('mv', names.ModelVersion, true)).DIGEST, example('ModelVersion').spec.artifact.digest);
});

test('InferenceService printer columns show model, stable, canary, weight, phase, drift and age', async () => {
  await setStatus('InferenceService', {
    url: 'http://credit-risk.models.example.com/v2/models/credit-risk/infer',
    stableVersion: 1,
    canaryVersion: 2,
    canaryWeight: 25,
    phase: 'Progressing',
    currentStep: 2,
    analysis: {
      lastCheck: now(),
      errorRate: 0.002,
      latencyP95Ms: 12.5,
      requests: 480,
      failedChecks: 0,
      message: 'step 25% healthy',
    },
    drift: { score: 0.125, driftedFeatures: ['income'], drifted: false, lastEventId: 'evt-1', lastEventTime: now() },
    observedGeneration: 1,
  });
  const { AGE: age, ...cells } = await row('inferenceservice', names.InferenceService);
  assert.equal(cells, {
    NAME: 'credit-risk',
    MODEL: 'credit-risk',
    STABLE: '1',
    CANARY: '2',
    WEIGHT: '25',
    PHASE: 'Progressing',
    DRIFT: '0.125',
  });
  assert.match(age, AGE);
  assert.is(
    (await row('lisvc', names.InferenceService, true)).URL,
    'http://credit-risk.models.example.com/v2/models/credit-risk/infer',
  );
});

test('status sent through the main resource is ignored (status is a subresource)', async () => {
  const current = await objects.get('InferenceService', names.InferenceService);
  const updated = await objects.replace('InferenceService', {
    ...current,
    status: { ...current.status, canaryWeight: 100, phase: 'Promoted' },
  });
  assert.equal([updated.status.canaryWeight, updated.status.phase], [25, 'Progressing']);
});

test('a status with an invalid phase is refused by the status subresource, naming the field', async () => {
  const refusal = await setStatus('TrainingJob', { phase: 'Done' }).then(
    () => assert.unreachable('accepted phase Done'),
    refusalOf,
  );
  assert.is(refusal!.code, 422);
  assert.match(refusal!.message, /status\.phase/);
});

test.run();
