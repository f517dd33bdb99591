// What the API server refuses: each invalid object (or update) below is sent to the real API server
// and must be rejected with a message naming the offending field. Creates are server-side dry runs;
// updates are dry runs against stored objects, so the table rows do not affect each other.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LooplineKind } from '../../operator/api/crds.ts';
import { installCrds } from '../../operator/api/install.ts';
import { LooplineObjects, example, refusalOf, reportAndThrow, requireKubeconfig, uniqueNamespace } from './cluster.ts';

const kc = requireKubeconfig();
const objects = new LooplineObjects(kc, uniqueNamespace('loopline-crd-rules'));

type Mutation = (object: Record<string, any>) => void;

/** [what, kind, mutation of the example, field the message must name, optional further text the message must contain] */
type Row = [string, LooplineKind, Mutation, string, RegExp?];

/** Logs predictions and gates the rollout on their quality, with `change` applied to the gate (undefined removes). */
function withQualityGate(o: Record<string, any>, change: Record<string, unknown>): void {
  o.spec.logging = { enabled: true, uri: 's3://loopline/ground-truth' };
  const gate: Record<string, unknown> = { metric: 'auc', maxDrop: 0.02, minLabels: 200, confidence: 0.95, ...change };
  for (const [key, value] of Object.entries(gate)) if (value === undefined) delete gate[key];
  o.spec.rollout.analysis.quality = gate;
}

const invalidCreates: Row[] = [
  // TrainingJob
  ['workers 0', 'TrainingJob', (o) => (o.spec.workers = 0), 'spec.workers', /greater than or equal to 1/],
  ['an upper-case model name', 'TrainingJob', (o) => (o.spec.model = 'Credit_Risk'), 'spec.model'],
  ['no image', 'TrainingJob', (o) => delete o.spec.image, 'spec.image', /Required value/],
  [
    'a gate operator ==',
    'TrainingJob',
    (o) => (o.spec.registration.gates[0].operator = '=='),
    'spec.registration.gates[0].operator',
  ],
  [
    'gpuType with no GPUs',
    'TrainingJob',
    (o) => (o.spec.resources.gpus = 0),
    'spec.resources.gpuType',
    /spec.resources.gpus must be at least 1/,
  ],
  [
    'an alias that is not a DNS label',
    'TrainingJob',
    (o) => (o.spec.registration.aliases = ['Candidate!']),
    'spec.registration.aliases[0]',
  ],
  [
    'a duplicate alias',
    'TrainingJob',
    (o) => (o.spec.registration.aliases = ['candidate', 'candidate']),
    'spec.registration.aliases[1]',
    /Duplicate value/,
  ],
  [
    'a registration stage Canary',
    'TrainingJob',
    (o) => (o.spec.registration.stage = 'Canary'),
    'spec.registration.stage',
    /Unsupported value/,
  ],
  ['a dataset hash without algorithm', 'TrainingJob', (o) => (o.spec.dataset.hash = 'deadbeef'), 'spec.dataset.hash'],
  [
    'an env var with value and valueFrom',
    'TrainingJob',
    (o) => (o.spec.env = [{ name: 'A', value: 'x', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }]),
    'spec.env[0]',
    /either value or valueFrom/,
  ],
  [
    'a toleration Exists with a value',
    'TrainingJob',
    (o) => (o.spec.tolerations = [{ key: 'k', operator: 'Exists', value: 'v' }]),
    'spec.tolerations[0]',
  ],
  ['an unknown field', 'TrainingJob', (o) => (o.spec.gpu = 1), 'spec.gpu', /unknown field/],
  ['a cpu quantity "lots"', 'TrainingJob', (o) => (o.spec.resources.cpu = 'lots'), 'spec.resources.cpu'],
  // ModelVersion
  [
    'a name that is not <model>-v<version>',
    'ModelVersion',
    (o) => (o.metadata.name = 'credit-risk-latest'),
    'metadata.name',
    /<spec.model>-v<spec.version>/,
  ],
  [
    'a name with another version',
    'ModelVersion',
    (o) => (o.spec.version = 2),
    'metadata.name',
    /'credit-risk-v1' must be/,
  ],
  [
    'a digest that is not sha256',
    'ModelVersion',
    (o) => (o.spec.artifact.digest = 'md5:0cc175b9c0f1b6a831c399e269772661'),
    'spec.artifact.digest',
  ],
  [
    'a digest in upper-case hex',
    'ModelVersion',
    (o) => (o.spec.artifact.digest = o.spec.artifact.digest.toUpperCase().replace('SHA256', 'sha256')),
    'spec.artifact.digest',
  ],
  ['no artifact', 'ModelVersion', (o) => delete o.spec.artifact, 'spec.artifact', /Required value/],
  ['version 0', 'ModelVersion', (o) => ((o.spec.version = 0), (o.metadata.name = 'credit-risk-v0')), 'spec.version'],
  ['a stage Canary', 'ModelVersion', (o) => (o.spec.stage = 'Canary'), 'spec.stage', /Unsupported value/],
  [
    'a duplicate alias',
    'ModelVersion',
    (o) => (o.spec.aliases = ['production', 'production']),
    'spec.aliases[1]',
    /Duplicate value/,
  ],
  ['an alias with an underscore', 'ModelVersion', (o) => (o.spec.aliases = ['prod_1']), 'spec.aliases[0]'],
  [
    'a primaryMetric not among the metrics',
    'ModelVersion',
    (o) => (o.spec.primaryMetric = 'f1'),
    'spec.primaryMetric',
    /must name a key of spec.metrics/,
  ],
  ['an artifact format pickle', 'ModelVersion', (o) => (o.spec.artifact.format = 'pickle'), 'spec.artifact.format'],
  [
    'a tensor datatype FLOAT',
    'ModelVersion',
    (o) => (o.spec.signature.inputs[0].datatype = 'FLOAT'),
    'spec.signature.inputs[0].datatype',
  ],
  // InferenceService
  [
    'a stable selector with version and alias',
    'InferenceService',
    (o) => (o.spec.stable = { version: 1, alias: 'production' }),
    'spec.stable',
    /exactly one of spec.stable.version or spec.stable.alias/,
  ],
  ['an empty stable selector', 'InferenceService', (o) => (o.spec.stable = {}), 'spec.stable', /exactly one/],
  [
    'a canary equal to stable',
    'InferenceService',
    (o) => (o.spec.canary = { alias: 'production' }),
    'spec.canary',
    /different version than spec.stable/,
  ],
  [
    'a canary version equal to the stable version',
    'InferenceService',
    (o) => ((o.spec.stable = { version: 3 }), (o.spec.canary = { version: 3 })),
    'spec.canary',
  ],
  [
    'descending rollout steps',
    'InferenceService',
    (o) => (o.spec.rollout.steps = [50, 25, 100]),
    'spec.rollout.steps',
    /strictly ascending/,
  ],
  ['a rollout step of 0', 'InferenceService', (o) => (o.spec.rollout.steps = [0, 50, 100]), 'spec.rollout.steps[0]'],
  ['a rollout step above 100', 'InferenceService', (o) => (o.spec.rollout.steps = [50, 150]), 'spec.rollout.steps[1]'],
  [
    'a repeated rollout step',
    'InferenceService',
    (o) => (o.spec.rollout.steps = [10, 10, 100]),
    'spec.rollout.steps[1]',
    /Duplicate value/,
  ],
  [
    'an interval "1 minute"',
    'InferenceService',
    (o) => (o.spec.rollout.interval = '1 minute'),
    'spec.rollout.interval',
  ],
  [
    'abort together with promoteNow',
    'InferenceService',
    (o) => Object.assign(o.spec.rollout, { abort: true, promoteNow: true }),
    'spec.rollout.promoteNow',
    /contradict/,
  ],
  [
    'a max error rate of 2',
    'InferenceService',
    (o) => (o.spec.rollout.analysis.maxErrorRate = 2),
    'spec.rollout.analysis.maxErrorRate',
  ],
  [
    'a quality gate without logged predictions',
    'InferenceService',
    (o) => (o.spec.rollout.analysis.quality = { metric: 'auc', maxDrop: 0.02 }),
    'spec.rollout.analysis.quality',
    /set spec.logging.enabled/,
  ],
  [
    'a quality gate on metric logLoss',
    'InferenceService',
    (o) => withQualityGate(o, { metric: 'logLoss' }),
    'spec.rollout.analysis.quality.metric',
    /Unsupported value/,
  ],
  [
    'a quality gate without maxDrop',
    'InferenceService',
    (o) => withQualityGate(o, { maxDrop: undefined }),
    'spec.rollout.analysis.quality.maxDrop',
    /Required value/,
  ],
  [
    'a quality gate maxDrop of 1.5',
    'InferenceService',
    (o) => withQualityGate(o, { maxDrop: 1.5 }),
    'spec.rollout.analysis.quality.maxDrop',
  ],
  [
    'a quality gate confidence of 1',
    'InferenceService',
    (o) => withQualityGate(o, { confidence: 1 }),
    'spec.rollout.analysis.quality.confidence',
  ],
  [
    'a quality gate confidence of 0.3',
    'InferenceService',
    (o) => withQualityGate(o, { confidence: 0.3 }),
    'spec.rollout.analysis.quality.confidence',
  ],
  [
    'a quality gate on 5 labels',
    'InferenceService',
    (o) => withQualityGate(o, { minLabels: 5 }),
    'spec.rollout.analysis.quality.minLabels',
  ],
  [
    'a decisions gate without shadow mode',
    'InferenceService',
    (o) => {
      withQualityGate(o, {});
      o.spec.rollout.analysis.decisions = { maxFlipRate: 0.05 };
    },
    'spec.rollout.analysis.decisions',
    /set spec.shadow.enabled/,
  ],
  [
    'a decisions gate with no bound',
    'InferenceService',
    (o) => {
      withQualityGate(o, {});
      o.spec.shadow = { enabled: true };
      o.spec.rollout.analysis.decisions = { minPairs: 100 };
    },
    'spec.rollout.analysis.decisions',
    /needs maxFlipRate or maxScorePsi/,
  ],
  [
    'a quality gate with spec.quality disabled',
    'InferenceService',
    (o) => {
      withQualityGate(o, {});
      o.spec.quality = { enabled: false };
    },
    'spec.rollout.analysis.quality',
    /leave spec.quality enabled/,
  ],
  [
    'a traffic provider nginx',
    'InferenceService',
    (o) => (o.spec.traffic.provider = 'nginx'),
    'spec.traffic.provider',
    /Unsupported value/,
  ],
  [
    'a numeric drift method mean',
    'InferenceService',
    (o) => (o.spec.drift.methods.numeric = 'mean'),
    'spec.drift.methods.numeric',
  ],
  [
    'shadow without a canary',
    'InferenceService',
    (o) => ((o.spec.shadow = { enabled: true }), delete o.spec.canary),
    'spec.shadow.enabled',
    /spec.canary must be set/,
  ],
  [
    'retrain on drift without a template',
    'InferenceService',
    (o) => delete o.spec.retrain.template,
    'spec.retrain.template',
    /needs spec.retrain.template/,
  ],
  [
    'retrain on drift with drift monitoring off',
    'InferenceService',
    (o) => (o.spec.drift.enabled = false),
    'spec.retrain.onDrift',
    /spec.drift.enabled/,
  ],
  [
    'retrain on a quality drop without a bound',
    'InferenceService',
    (o) => {
      o.spec.logging = { enabled: true, uri: 's3://gt/credit' };
      o.spec.retrain.onQualityDrop = { metric: 'auc' };
    },
    'spec.retrain.onQualityDrop',
    /needs a bound: set below, maxDropFromTraining, or both/,
  ],
  [
    'retrain on a quality drop without logged predictions',
    'InferenceService',
    (o) => (o.spec.retrain.onQualityDrop = { metric: 'auc', below: 0.7 }),
    'spec.retrain.onQualityDrop',
    /needs live quality: set spec.logging.enabled/,
  ],
  [
    'retrain on a quality drop with quality evaluation off',
    'InferenceService',
    (o) => {
      o.spec.logging = { enabled: true, uri: 's3://gt/credit' };
      o.spec.quality = { enabled: false };
      o.spec.retrain.onQualityDrop = { metric: 'auc', below: 0.7 };
    },
    'spec.retrain.onQualityDrop',
    /leave spec.quality enabled/,
  ],
  [
    'retrain on a drop of log loss (lower is better)',
    'InferenceService',
    (o) => {
      o.spec.logging = { enabled: true, uri: 's3://gt/credit' };
      o.spec.retrain.onQualityDrop = { metric: 'logLoss', below: 0.7 };
    },
    'spec.retrain.onQualityDrop.metric',
    /Unsupported value/,
  ],
  [
    'a quality bound above 1',
    'InferenceService',
    (o) => {
      o.spec.logging = { enabled: true, uri: 's3://gt/credit' };
      o.spec.retrain.onQualityDrop = { metric: 'auc', maxDropFromTraining: 1.5 };
    },
    'spec.retrain.onQualityDrop.maxDropFromTraining',
    /less than or equal to 1/,
  ],
  [
    'retrain on a quality drop without a template',
    'InferenceService',
    (o) => {
      o.spec.logging = { enabled: true, uri: 's3://gt/credit' };
      o.spec.retrain = { onQualityDrop: { metric: 'auc', below: 0.7 } };
    },
    'spec.retrain.template',
    /onQualityDrop needs spec.retrain.template/,
  ],
  [
    'a retrain template for another model',
    'InferenceService',
    (o) => (o.spec.retrain.template.spec.model = 'fraud'),
    'spec.retrain.template.spec.model',
    /must be 'credit-risk'/,
  ],
  [
    'minReplicas above maxReplicas',
    'InferenceService',
    (o) => Object.assign(o.spec.predictor, { minReplicas: 5, maxReplicas: 2 }),
    'spec.predictor.minReplicas',
    /must not exceed/,
  ],
  [
    'logging enabled without a uri',
    'InferenceService',
    (o) => (o.spec.logging = { enabled: true }),
    'spec.logging.uri',
    /needs spec.logging.uri/,
  ],
  [
    'a logging uri over http',
    'InferenceService',
    (o) => (o.spec.logging = { enabled: true, uri: 'http://storage/logs' }),
    'spec.logging.uri',
    /s3:\/\/<bucket>\/<prefix>/,
  ],
  [
    'a logging sample rate of 1.5',
    'InferenceService',
    (o) => (o.spec.logging = { enabled: true, uri: 's3://loopline/gt', sampleRate: 1.5 }),
    'spec.logging.sampleRate',
  ],
  [
    'a logging flush interval of 2h',
    'InferenceService',
    (o) => (o.spec.logging = { enabled: true, uri: 's3://loopline/gt', flushInterval: '2h' }),
    'spec.logging.flushInterval',
    /from 1s to 1h/,
  ],
  [
    'a logging buffer smaller than a part',
    'InferenceService',
    (o) => (o.spec.logging = { enabled: true, uri: 's3://loopline/gt', maxRowsPerPart: 5000, maxBufferedRows: 1000 }),
    'spec.logging.maxBufferedRows',
    /at least spec.logging.maxRowsPerPart/,
  ],
  [
    'minReplicas without maxReplicas',
    'InferenceService',
    (o) => (o.spec.predictor.minReplicas = 2),
    'spec.predictor.minReplicas',
    /needs spec.predictor.maxReplicas/,
  ],
  // InferenceService spec.quality (docs/ground-truth.md)
  [
    'quality evaluation without logged predictions',
    'InferenceService',
    (o) => (o.spec.quality = { window: '1h' }),
    'spec.quality',
    /set spec.logging.enabled/,
  ],
  [
    'a quality window of "soon"',
    'InferenceService',
    (o) => ((o.spec.logging = { enabled: true, uri: 's3://loopline/gt' }), (o.spec.quality = { window: 'soon' })),
    'spec.quality.window',
  ],
  [
    'a quality threshold above 1',
    'InferenceService',
    (o) => ((o.spec.logging = { enabled: true, uri: 's3://loopline/gt' }), (o.spec.quality = { threshold: 1.5 })),
    'spec.quality.threshold',
  ],
  // InferenceService spec.batch
  [
    'a batch schedule "every night"',
    'InferenceService',
    withBatch((b) => (b.schedule = 'every night')),
    'spec.batch[0].schedule',
    /is not a cron schedule: give five fields/,
  ],
  [
    'a batch schedule with six fields',
    'InferenceService',
    withBatch((b) => (b.schedule = '0 0 2 * * *')),
    'spec.batch[0].schedule',
    /five fields/,
  ],
  [
    'a batch input on the local disk',
    'InferenceService',
    withBatch((b) => (b.input.uri = 'file:///data/customers.parquet')),
    'spec.batch[0].input.uri',
    /must be an s3:\/\/ object/,
  ],
  [
    'a batch input with no format and no known extension',
    'InferenceService',
    withBatch((b) => (b.input.uri = 's3://loopline/customers.json')),
    'spec.batch[0].input.format',
    /set parquet or csv/,
  ],
  [
    'a batch input format json',
    'InferenceService',
    withBatch((b) => (b.input.format = 'json')),
    'spec.batch[0].input.format',
    /Unsupported value/,
  ],
  [
    'a batch output with both uri and postgres',
    'InferenceService',
    withBatch((b) => (b.output.uri = 's3://loopline/scores.parquet')),
    'spec.batch[0].output',
    /exactly one of uri \(s3:\/\/ Parquet\) or postgres/,
  ],
  [
    'a batch output table with a semicolon',
    'InferenceService',
    withBatch((b) => (b.output.postgres.table = 'scores; DROP TABLE users')),
    'spec.batch[0].output.postgres.table',
    /is not a table name: use lower-case letters, digits and underscores/,
  ],
  [
    'a batch output without the connection Secret',
    'InferenceService',
    withBatch((b) => delete b.output.postgres.connectionSecret),
    'spec.batch[0].output.postgres.connectionSecret',
    /Required value/,
  ],
  [
    'batch segments out of order',
    'InferenceService',
    withBatch(
      (b) =>
        (b.segments = [
          { name: 'high', minScore: 0.7 },
          { name: 'low', minScore: 0 },
        ]),
    ),
    'spec.batch[0].segments',
    /strictly ascending minScore/,
  ],
  [
    'batch segments with one minScore twice',
    'InferenceService',
    withBatch(
      (b) =>
        (b.segments = [
          { name: 'a', minScore: 0.5 },
          { name: 'b', minScore: 0.5 },
        ]),
    ),
    'spec.batch[0].segments',
    /remove a duplicate minScore/,
  ],
  [
    'a carried column named score',
    'InferenceService',
    withBatch((b) => (b.columns = ['customer_id', 'score'])),
    'spec.batch[0].columns',
    /must not name score, segment, model_version or scored_at/,
  ],
  [
    'a batch version with version and alias',
    'InferenceService',
    withBatch((b) => (b.version = { version: 1, alias: 'production' })),
    'spec.batch[0].version',
    /exactly one of version or alias/,
  ],
  [
    'two batch entries of one name',
    'InferenceService',
    (o) => (o.spec.batch = [batchEntry(), batchEntry()]),
    'spec.batch[1]',
    /Duplicate value/,
  ],
  ['a batch name with upper case', 'InferenceService', withBatch((b) => (b.name = 'Nightly')), 'spec.batch[0].name'],
];

/** A valid spec.batch entry, as docs/batch.md shows it. */
function batchEntry(): Record<string, any> {
  return {
    name: 'nightly',
    schedule: '0 2 * * *',
    input: { uri: 's3://loopline/customers/latest.parquet' },
    columns: ['customer_id'],
    segments: [
      { name: 'low', minScore: 0 },
      { name: 'high', minScore: 0.7 },
    ],
    output: { postgres: { table: 'crm.customer_scores', connectionSecret: { name: 'crm-db' } } },
  };
}

/** The example with one batch entry, changed by `change`. */
function withBatch(change: (entry: Record<string, any>) => void): Mutation {
  return (o) => {
    const entry = batchEntry();
    change(entry);
    o.spec.batch = [entry];
  };
}

/** Updates of stored objects that must be refused: [what, kind, mutation of the stored object, field, text]. */
const invalidUpdates: Row[] = [
  [
    'changing the artifact digest',
    'ModelVersion',
    (o) => (o.spec.artifact.digest = `sha256:${'0'.repeat(64)}`),
    'spec.artifact.digest',
    /immutable/,
  ],
  [
    'changing the artifact uri',
    'ModelVersion',
    (o) => (o.spec.artifact.uri = 'file:///elsewhere/model.onnx'),
    'spec.artifact.uri',
    /immutable/,
  ],
  [
    'changing the signature',
    'ModelVersion',
    (o) => (o.spec.signature.inputs[0].shape = [-1, 9]),
    'spec.signature',
    /immutable/,
  ],
  ['removing the signature', 'ModelVersion', (o) => delete o.spec.signature, 'spec.signature', /cannot be removed/],
  ['changing a metric', 'ModelVersion', (o) => (o.spec.metrics.auc = 0.99), 'spec.metrics', /immutable/],
  ['adding a metric', 'ModelVersion', (o) => (o.spec.metrics.f1 = 0.8), 'spec.metrics', /immutable/],
  [
    'removing the metrics',
    'ModelVersion',
    (o) => ((o.spec.metrics = undefined), delete o.spec.primaryMetric),
    'spec.metrics',
    /cannot be removed/,
  ],
  [
    'changing the reference profile',
    'ModelVersion',
    (o) => (o.spec.referenceProfile.digest = `sha256:${'1'.repeat(64)}`),
    'spec.referenceProfile',
    /immutable/,
  ],
  ['changing the version number', 'ModelVersion', (o) => (o.spec.version = 7), 'spec.version', /immutable/],
  ['changing the model of a ModelVersion', 'ModelVersion', (o) => (o.spec.model = 'fraud'), 'spec.model', /immutable/],
  ['changing the model of a TrainingJob', 'TrainingJob', (o) => (o.spec.model = 'fraud'), 'spec.model', /immutable/],
];

const stored: Partial<Record<LooplineKind, string>> = {
  TrainingJob: 'credit-risk-train',
  ModelVersion: 'credit-risk-v1',
};

test.before(async () => {
  await installCrds(kc, { fieldManager: 'loopline-crd-test' }).catch(reportAndThrow('installing the CRDs'));
  await objects.createNamespace().catch(reportAndThrow(`creating namespace ${objects.namespace}`));
  for (const kind of Object.keys(stored) as LooplineKind[]) {
    await objects.create(kind, example(kind)).catch(reportAndThrow(`creating the ${kind} example`));
  }
});

test.after(async () => {
  await objects.deleteNamespace();
});

test('the table covers at least 20 invalid objects and the documented immutability transitions', () => {
  assert.ok(invalidCreates.length + invalidUpdates.length >= 20);
  assert.ok(invalidUpdates.length >= 8);
});

function expectRefusal(what: string, field: string, text: RegExp | undefined) {
  return (err: unknown) => {
    const refusal = refusalOf(err);
    if (process.env.LOOPLINE_SHOW_REFUSALS) console.log(`${what}:\n  ${refusal.message}`);
    assert.ok([400, 422].includes(refusal.code), `${what}: HTTP ${refusal.code} ${refusal.message}`);
    assert.ok(refusal.message.includes(field), `${what}: the message does not name ${field}: ${refusal.message}`);
    if (text) assert.match(refusal.message, text, `${what}: ${refusal.message}`);
  };
}

for (const [what, kind, mutate, field, text] of invalidCreates) {
  test(`creating a ${kind} with ${what} is refused, naming ${field}`, async () => {
    const object = example(kind);
    mutate(object);
    await objects
      .create(kind, object, true)
      .then(
        () => assert.unreachable(`the API server accepted a ${kind} with ${what}`),
        expectRefusal(what, field, text),
      );
  });
}

for (const [what, kind, mutate, field, text] of invalidUpdates) {
  test(`${what} of a stored ${kind} is refused, naming ${field}`, async () => {
    const object = await objects.get(kind, stored[kind]!);
    mutate(object);
    await objects
      .replace(kind, object, true)
      .then(() => assert.unreachable(`the API server accepted ${what}`), expectRefusal(what, field, text));
  });
}

test('the stage, aliases and model card of a stored ModelVersion stay editable', async () => {
  const object = await objects.get('ModelVersion', 'credit-risk-v1');
  object.spec.stage = 'Archived';
  object.spec.aliases = [];
  object.spec.modelCard.limitations = 'Superseded by v2.';
  const updated = await objects.replace('ModelVersion', object, true);
  assert.equal(
    [updated.spec.stage, updated.spec.aliases, updated.spec.modelCard.limitations],
    ['Archived', [], 'Superseded by v2.'],
  );
});

test('a ModelVersion registered without signature and metrics may have them set once, later', async () => {
  const bare = example('ModelVersion');
  bare.metadata.name = 'credit-risk-v2';
  bare.spec.version = 2;
  for (const field of ['signature', 'metrics', 'primaryMetric', 'referenceProfile']) delete bare.spec[field];
  await objects.create('ModelVersion', bare);
  const object = await objects.get('ModelVersion', 'credit-risk-v2');
  const full = example('ModelVersion').spec;
  Object.assign(object.spec, { signature: full.signature, metrics: full.metrics, primaryMetric: 'auc' });
  const updated = await objects.replace('ModelVersion', object);
  assert.equal(updated.spec.metrics, full.metrics);
  updated.spec.metrics = { ...full.metrics, auc: 0.5 };
  await objects
    .replace('ModelVersion', updated, true)
    .then(
      () => assert.unreachable('metrics changed after being set'),
      expectRefusal('changing metrics set later', 'spec.metrics', /immutable/),
    );
});

test('a quality gate on logged predictions is accepted with its defaults filled in', async () => {
  const isvc = example('InferenceService');
  isvc.metadata.name = 'credit-risk-quality-gate';
  withQualityGate(isvc, { metric: undefined, minLabels: undefined, confidence: undefined });
  const created = await objects.create('InferenceService', isvc, true);
  assert.equal(created.spec.rollout.analysis.quality, {
    metric: 'auc',
    maxDrop: 0.02,
    minLabels: 200,
    confidence: 0.95,
  });
});

test('a TrainingJob with several workers, tolerations and a Kueue queue is accepted', async () => {
  const job = example('TrainingJob');
  job.metadata.name = 'credit-risk-distributed';
  Object.assign(job.spec, {
    workers: 4,
    queueName: 'gpu-queue',
    suspend: true,
    tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
    env: [
      { name: 'NCCL_DEBUG', value: 'INFO' },
      { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    ],
  });
  const created = await objects.create('TrainingJob', job, true);
  assert.is(created.spec.workers, 4);
  assert.equal(created.spec.env[1].valueFrom, { fieldRef: { fieldPath: 'metadata.name' } });
});

test('an InferenceService scoring nightly into PostgreSQL and weekly into S3 is accepted, with the defaults filled in', async () => {
  const isvc = example('InferenceService');
  isvc.spec.batch = [
    { ...batchEntry(), schedule: '@daily', version: { alias: 'production' }, timeZone: 'Europe/Berlin' },
    {
      name: 'weekly',
      schedule: '30 3 * * 1',
      input: { uri: 's3://loopline/customers/all', format: 'csv' },
      output: { uri: 's3://loopline/scores/weekly.parquet' },
    },
  ];
  const created = await objects.create('InferenceService', isvc, true);
  assert.is(created.spec.batch[0].output.postgres.connectionSecret.key, 'url');
  assert.equal(
    [created.spec.batch[1].batchSize, created.spec.batch[1].activeDeadlineSeconds, created.spec.batch[1].suspend],
    [1024, 3600, false],
  );
});

test('an InferenceService retraining on a quality drop is accepted, minLabels defaulting to 100', async () => {
  const isvc = example('InferenceService');
  isvc.spec.logging = { enabled: true, uri: 's3://loopline/ground-truth' };
  isvc.spec.retrain.onQualityDrop = { metric: 'auc', below: 0.7, maxDropFromTraining: 0.05 };
  isvc.metadata.name = `${isvc.metadata.name}-quality-retrain`;
  const created = await objects.create('InferenceService', isvc, true);
  assert.equal(created.spec.retrain.onQualityDrop, {
    metric: 'auc',
    below: 0.7,
    maxDropFromTraining: 0.05,
    minLabels: 100,
  });
});

test('an InferenceService logging to S3 gets the quality defaults: every 5 minutes, the last hour, threshold 0.5', async () => {
  const isvc = example('InferenceService');
  isvc.spec.logging = { enabled: true, uri: 's3://loopline/ground-truth' };
  isvc.spec.quality = {};
  isvc.metadata.name = `${isvc.metadata.name}-quality`;
  const created = await objects.create('InferenceService', isvc, true);
  assert.equal(
    [
      created.spec.quality.enabled,
      created.spec.quality.schedule,
      created.spec.quality.window,
      created.spec.quality.threshold,
    ],
    [true, '*/5 * * * *', '1h', 0.5],
  );
});

test.run();
