// Offline checks of the CRDs as documents: what kubectl explain shows, what the API server's CEL cost
// estimator needs, and that the examples fit the schemas (ajv; CEL rules run only in crds/test/apiserver.test.ts).
// test: no cluster
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { load } from 'js-yaml';
import {
  LOOPLINE_KINDS,
  crdVersion,
  loadCrd,
  openApiSchema,
  type LooplineKind,
  type SchemaNode,
} from '../../operator/api/crds.ts';
import { describeErrors, specValidatorFor, validatorFor } from '../../operator/api/validate.ts';

const EXAMPLES: Record<LooplineKind, string> = {
  TrainingJob: 'trainingjob.yaml',
  ModelVersion: 'modelversion.yaml',
  InferenceService: 'inferenceservice.yaml',
};

function example(kind: LooplineKind): Record<string, any> {
  return load(readFileSync(new URL(`../../examples/${EXAMPLES[kind]}`, import.meta.url), 'utf8')) as Record<
    string,
    any
  >;
}

/** Every schema node below the root with its dotted path (`spec.env[]` for items, `spec.params{}` for map values). */
function* nodes(node: SchemaNode, path: string): Generator<[string, SchemaNode]> {
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    const childPath = path ? `${path}.${name}` : name;
    yield [childPath, child];
    yield* nodes(child, childPath);
  }
  if (node.items) {
    yield [`${path}[]`, node.items];
    yield* nodes(node.items, `${path}[]`);
  }
  if (typeof node.additionalProperties === 'object') {
    yield [`${path}{}`, node.additionalProperties];
    yield* nodes(node.additionalProperties, `${path}{}`);
  }
}

function* allNodes(): Generator<[string, SchemaNode]> {
  for (const kind of LOOPLINE_KINDS) {
    for (const [path, node] of nodes(openApiSchema(kind), '')) yield [`${kind}.${path}`, node];
  }
}

const ROOT_FIELDS = /^\w+\.(apiVersion|kind|metadata)$/;

test('every field of every CRD has a description, so kubectl explain teaches the API', () => {
  const missing = [...allNodes()]
    .filter(
      ([path, node]) =>
        !path.endsWith('{}') && !(path.endsWith('[]') && node.type !== 'object') && !ROOT_FIELDS.test(path),
    )
    .filter(([, node]) => !node.description?.trim())
    .map(([path]) => path);
  assert.equal(missing, [], `fields without a description: ${missing.join(', ')}`);
});

test('every list, map and free string is bounded, as the API server needs to estimate CEL cost', () => {
  const unbounded = [...allNodes()]
    .filter(([path]) => !ROOT_FIELDS.test(path))
    .filter(([, node]) => {
      if (node.type === 'array') return node.maxItems === undefined;
      if (node.type === 'object' && typeof node.additionalProperties === 'object')
        return node.maxProperties === undefined;
      if (node.type === 'string')
        return node.maxLength === undefined && node.enum === undefined && node.format !== 'date-time';
      return false;
    })
    .map(([path]) => path);
  assert.equal(unbounded, [], `unbounded: ${unbounded.join(', ')}`);
});

test('the CRDs declare group loopline.dev v1alpha1, the status subresource, category loopline and the documented short names', () => {
  const shortNames: Record<LooplineKind, string[]> = {
    TrainingJob: ['tj'],
    ModelVersion: ['mv'],
    InferenceService: ['lisvc'],
  };
  for (const kind of LOOPLINE_KINDS) {
    const crd = loadCrd(kind);
    assert.is(crd.spec.group, 'loopline.dev');
    assert.is(crd.metadata.name, `${crd.spec.names.plural}.loopline.dev`);
    assert.is(crd.spec.scope, 'Namespaced');
    assert.equal(crd.spec.names.categories, ['loopline']);
    assert.equal(crd.spec.names.shortNames, shortNames[kind]);
    assert.ok(!crd.spec.names.shortNames?.includes('isvc'), "isvc is KServe's short name");
    const version = crdVersion(kind);
    assert.equal([version.name, version.served, version.storage], ['v1alpha1', true, true]);
    assert.equal(version.subresources?.status, {});
  }
});

test('every printer column points at a field the schema declares', () => {
  for (const kind of LOOPLINE_KINDS) {
    for (const column of crdVersion(kind).additionalPrinterColumns ?? []) {
      if (column.jsonPath === '.metadata.creationTimestamp') continue;
      let node: SchemaNode | undefined = openApiSchema(kind);
      for (const part of column.jsonPath.split('.').slice(1)) node = node?.properties?.[part];
      assert.ok(node, `${kind} column ${column.name}: ${column.jsonPath} is not in the schema`);
      const jsonType = column.type === 'integer' || column.type === 'number' ? [column.type] : ['string', 'array'];
      assert.ok(
        jsonType.includes(node!.type!),
        `${kind} column ${column.name} is ${column.type} but ${column.jsonPath} is ${node!.type}`,
      );
    }
  }
});

test('every CEL rule has a message that names a field path', () => {
  for (const [path, node] of [
    ...allNodes(),
    ...LOOPLINE_KINDS.map((kind) => [kind, openApiSchema(kind)] as [string, SchemaNode]),
  ]) {
    for (const rule of node['x-kubernetes-validations'] ?? []) {
      const message = rule.message ?? rule.messageExpression ?? '';
      assert.ok(
        /\b(spec|metadata)\.[a-zA-Z]/.test(message),
        `${path}: rule ${rule.rule} has no message naming a field`,
      );
    }
  }
});

for (const kind of LOOPLINE_KINDS) {
  test(`examples/${EXAMPLES[kind]} is a valid ${kind} by the CRD schema`, () => {
    const validate = validatorFor(kind);
    const object = example(kind);
    assert.is(object.kind, kind);
    assert.ok(validate(object), describeErrors(validate.errors).join('\n'));
  });
}

test('the retrain template in examples/inferenceservice.yaml is a valid TrainingJob spec for the same model', () => {
  const service = example('InferenceService');
  const template = service.spec.retrain.template.spec;
  assert.is(template.model, service.spec.model);
  const validate = specValidatorFor('TrainingJob');
  assert.ok(validate(template), describeErrors(validate.errors, 'spec.retrain.template.spec').join('\n'));
});

test('the ModelVersion example is named <spec.model>-v<spec.version>', () => {
  const version = example('ModelVersion');
  assert.is(version.metadata.name, `${version.spec.model}-v${version.spec.version}`);
});

test('the offline validator applies schema defaults the way the API server does', () => {
  const job = example('TrainingJob');
  delete job.spec.backoffLimit;
  assert.ok(validatorFor('TrainingJob', { applyDefaults: true })(job));
  assert.equal(
    [job.spec.workers, job.spec.masterPort, job.spec.backoffLimit, job.spec.suspend, job.spec.registration.stage],
    [1, 29500, 3, false, 'None'],
  );
  const service = example('InferenceService');
  delete service.spec.rollout;
  assert.ok(validatorFor('InferenceService', { applyDefaults: true })(service));
  assert.equal(service.spec.rollout.steps, [5, 10, 25, 50, 100]);
  assert.equal([service.spec.rollout.interval, service.spec.rollout.autoRollback], ['1m', true]);
});

const offlineInvalid: Array<[string, LooplineKind, (object: Record<string, any>) => void, string]> = [
  ['an unknown field', 'TrainingJob', (o) => (o.spec.gpu = 1), 'spec: must NOT have additional properties (gpu)'],
  ['workers 0', 'TrainingJob', (o) => (o.spec.workers = 0), 'spec.workers: must be >= 1'],
  [
    'a gate operator ==',
    'TrainingJob',
    (o) => (o.spec.registration.gates[0].operator = '=='),
    'spec.registration.gates[0].operator',
  ],
  [
    'a short digest',
    'ModelVersion',
    (o) => (o.spec.artifact.digest = 'sha256:abc'),
    'spec.artifact.digest: must match pattern',
  ],
  [
    'a duplicate alias',
    'ModelVersion',
    (o) => (o.spec.aliases = ['production', 'production']),
    'spec.aliases: must NOT have duplicate items',
  ],
  [
    'a stage Canary',
    'ModelVersion',
    (o) => (o.spec.stage = 'Canary'),
    'spec.stage: must be equal to one of the allowed values',
  ],
  [
    'a rollout step 101',
    'InferenceService',
    (o) => (o.spec.rollout.steps = [50, 101]),
    'spec.rollout.steps[1]: must be <= 100',
  ],
  [
    'a drift method mean',
    'InferenceService',
    (o) => (o.spec.drift.methods.numeric = 'mean'),
    'spec.drift.methods.numeric',
  ],
  [
    'a cpu of "lots"',
    'InferenceService',
    (o) => (o.spec.predictor.resources.cpu = 'lots'),
    'spec.predictor.resources.cpu: must match pattern',
  ],
];

for (const [what, kind, mutate, expected] of offlineInvalid) {
  test(`the offline ${kind} validator rejects ${what} and names the field`, () => {
    const object = example(kind);
    mutate(object);
    const validate = validatorFor(kind);
    assert.not.ok(validate(object), 'accepted an invalid object');
    const errors = describeErrors(validate.errors);
    assert.ok(
      errors.some((line) => line.startsWith(expected)),
      errors.join('\n'),
    );
  });
}

test.run();
