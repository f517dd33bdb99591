// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { evaluateGates } from '../../modelversion/gates.ts';
import { parseTrainingResult } from '../result.ts';
import { desiredModelVersion, TRIGGER_ANNOTATION } from '../registration.ts';
import { trainingJob } from './fixtures.ts';

const digest = `sha256:${'a'.repeat(64)}`;
const valid = {
  artifact: { uri: 'file:///tmp/m/model.onnx', digest, format: 'onnx' },
  metrics: { auc: 0.91, accuracy: 0.85 },
  signature: {
    inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 6] }],
    outputs: [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }],
  },
  referenceProfile: { uri: 'file:///tmp/m/profile.json', digest },
};

const cases: Array<[string, string | undefined, RegExp | null]> = [
  ['a result that matches the contract is accepted', JSON.stringify(valid), null],
  ['no termination message at all', undefined, /exited 0 but wrote no training result/],
  ['whitespace only', '  \n', /wrote no training result/],
  ['truncated JSON', JSON.stringify(valid).slice(0, 40), /is not valid JSON .*starts with "\{\\"artifact/],
  [
    'a result without the artifact digest',
    JSON.stringify({ ...valid, artifact: { uri: valid.artifact.uri, format: 'onnx' } }),
    /has no artifact\.digest/,
  ],
  [
    'a digest that is not sha256:<64 hex>',
    JSON.stringify({ ...valid, artifact: { ...valid.artifact, digest: 'md5:abc' } }),
    /artifact\.digest must match pattern/,
  ],
  [
    'metrics that are not numbers',
    JSON.stringify({ ...valid, metrics: { auc: 'high' } }),
    /metrics\.auc must be number/,
  ],
  [
    'a missing signature',
    JSON.stringify({ artifact: valid.artifact, metrics: valid.metrics }),
    /the result is missing signature/,
  ],
  ['an unknown field', JSON.stringify({ ...valid, extra: 1 }), /unknown field extra/],
  ['a JSON array', '[1,2]', /does not match the result contract/],
];

for (const [name, message, error] of cases) {
  test(`result: ${name}`, () => {
    const verdict = parseTrainingResult(message);
    if (error === null) {
      assert.ok(verdict.ok, verdict.ok ? '' : verdict.reason);
      if (verdict.ok) assert.is(verdict.result.metrics.auc, 0.91);
    } else {
      assert.not.ok(verdict.ok);
      if (!verdict.ok) assert.match(verdict.reason, error);
    }
  });
}

const gateCases: Array<[string, Parameters<typeof evaluateGates>, boolean, string[]]> = [
  ['no gates pass', [undefined, { auc: 0.5 }], true, []],
  ['auc above threshold', [[{ metric: 'auc', operator: '>=', value: 0.85 }], { auc: 0.9 }], true, []],
  ['auc exactly at >= threshold', [[{ metric: 'auc', operator: '>=', value: 0.85 }], { auc: 0.85 }], true, []],
  [
    'auc exactly at > threshold',
    [[{ metric: 'auc', operator: '>', value: 0.85 }], { auc: 0.85 }],
    false,
    ['auc = 0.85 fails auc > 0.85'],
  ],
  [
    'loss must stay below',
    [[{ metric: 'logloss', operator: '<', value: 0.4 }], { logloss: 0.5 }],
    false,
    ['logloss = 0.5 fails logloss < 0.4'],
  ],
  [
    'all gates must hold',
    [
      [
        { metric: 'auc', operator: '>=', value: 0.8 },
        { metric: 'accuracy', operator: '>=', value: 0.9 },
      ],
      { auc: 0.9, accuracy: 0.7 },
    ],
    false,
    ['accuracy = 0.7 fails accuracy >= 0.9'],
  ],
  [
    'a missing metric fails and names the ones present',
    [[{ metric: 'f1', operator: '<=', value: 1 }], { auc: 0.9 }],
    false,
    ['metric f1 is missing (gate f1 <= 1; metrics are: auc)'],
  ],
];
for (const [name, args, passed, failures] of gateCases) {
  test(`gates: ${name}`, () => assert.equal(evaluateGates(...args), { passed, failures }));
}

const registered = {
  artifact: { uri: 'file:///models/model.onnx', digest: `sha256:${'a'.repeat(64)}`, format: 'onnx' as const },
  metrics: { auc: 0.9 },
  signature: {
    inputs: [{ name: 'input', datatype: 'FP32' as const, shape: [-1, 5] }],
    outputs: [{ name: 'probability', datatype: 'FP32' as const, shape: [-1, 1] }],
  },
};

test('registration: the trigger annotation of a retrain job becomes the ModelVersion lineage.trigger', () => {
  const job = trainingJob({ dataset: { uri: 'file:///data.csv' } });
  job.metadata.annotations = { [TRIGGER_ANNOTATION]: 'drift event evt-42 (score 0.8; drifted: income)' };
  const mv = desiredModelVersion(job, registered, 3) as unknown as { spec: { lineage: Record<string, unknown> } };
  assert.is(mv.spec.lineage.trigger, 'drift event evt-42 (score 0.8; drifted: income)');
  assert.is(mv.spec.lineage.trainingJob, 'credit');
  assert.equal(mv.spec.lineage.dataset, { uri: 'file:///data.csv' });
});

test('registration: a job started by hand has no lineage.trigger', () => {
  const mv = desiredModelVersion(trainingJob(), registered, 1) as unknown as {
    spec: { lineage: Record<string, unknown> };
  };
  assert.not.ok('trigger' in mv.spec.lineage);
});

test.run();
