// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  APPLIED_ANNOTATION,
  appliedFingerprint,
  applyIsNoop,
  isSubset,
  ownedStatusFields,
  quantityValue,
  withFingerprint,
} from '../apply.ts';
import { mergeConditions, setCondition } from '../conditions.ts';
import type { Condition, DesiredObject, KubeObject } from '../types.ts';

const desiredPod: DesiredObject = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'job-0', namespace: 'ns', labels: { app: 'x' } },
  spec: {
    containers: [
      {
        name: 'trainer',
        image: 'loopline/trainer',
        env: [{ name: 'RANK', value: '0' }],
        resources: { limits: { cpu: '0.5', memory: '1Gi', 'nvidia.com/gpu': 1 } },
      },
    ],
    tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
  },
};

/** The same pod as the API server returns it: defaults, admission additions, normalized quantities. */
function asServed(desired: DesiredObject): KubeObject {
  const sent = withFingerprint(desired);
  return {
    ...structuredClone(sent),
    metadata: {
      ...structuredClone(sent.metadata),
      uid: 'u1',
      resourceVersion: '7',
      creationTimestamp: '2024-01-01T00:00:00Z' as unknown as Date,
    },
    spec: {
      containers: [
        {
          name: 'trainer',
          image: 'loopline/trainer',
          imagePullPolicy: 'Always',
          terminationMessagePath: '/dev/termination-log',
          env: [{ name: 'RANK', value: '0' }],
          resources: {
            limits: { cpu: '500m', memory: '1Gi', 'nvidia.com/gpu': '1' },
            requests: { cpu: '500m', memory: '1Gi', 'nvidia.com/gpu': '1' },
          },
          volumeMounts: [{ name: 'kube-api-access-abc', mountPath: '/var/run/secrets' }],
        },
      ],
      tolerations: [
        { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      ],
      volumes: [{ name: 'kube-api-access-abc', projected: {} }],
      restartPolicy: 'Always',
    },
    status: { phase: 'Pending' },
  };
}

test('an object as served (defaults, admission additions, normalized quantities) matches its desired state', () => {
  assert.ok(applyIsNoop(desiredPod, asServed(desiredPod)));
});

test('a changed desired field is a change', () => {
  const changed = structuredClone(desiredPod);
  (changed.spec as any).containers[0].env[0].value = '1';
  assert.not.ok(applyIsNoop(changed, asServed(desiredPod)));
});

test('a field dropped from the desired state is a change (fingerprint), though the rest is a subset', () => {
  const dropped = structuredClone(desiredPod);
  delete dropped.metadata.labels;
  const served = asServed(desiredPod);
  assert.ok(isSubset({ metadata: { name: 'job-0' } }, served));
  assert.not.ok(applyIsNoop(dropped, served));
});

test('someone else editing a field Loopline applied is a change', () => {
  const served = asServed(desiredPod);
  served.metadata.labels = { app: 'edited' };
  assert.not.ok(applyIsNoop(desiredPod, served));
});

test('a missing or deleting object always needs the write', () => {
  assert.not.ok(applyIsNoop(desiredPod, undefined));
  const served = asServed(desiredPod);
  served.metadata.deletionTimestamp = new Date();
  assert.not.ok(applyIsNoop(desiredPod, served));
});

test('the fingerprint ignores key order and its own annotation', () => {
  const reordered: DesiredObject = {
    kind: 'Pod',
    apiVersion: 'v1',
    spec: desiredPod.spec,
    metadata: { labels: { app: 'x' }, namespace: 'ns', name: 'job-0' },
  };
  assert.is(appliedFingerprint(reordered), appliedFingerprint(desiredPod));
  assert.is(appliedFingerprint(withFingerprint(desiredPod)), appliedFingerprint(desiredPod));
  assert.ok(withFingerprint(desiredPod).metadata.annotations![APPLIED_ANNOTATION]);
});

test('lists of scalars must match exactly; lists of objects match by merge key', () => {
  assert.ok(isSubset({ args: ['a', 'b'] }, { args: ['a', 'b'] }));
  assert.not.ok(isSubset({ args: ['a', 'b'] }, { args: ['a', 'b', 'c'] }));
  assert.not.ok(isSubset({ args: ['b', 'a'] }, { args: ['a', 'b'] }));
  assert.ok(
    isSubset(
      { env: [{ name: 'B', value: '2' }] },
      {
        env: [
          { name: 'A', value: '1' },
          { name: 'B', value: '2' },
        ],
      },
    ),
  );
  assert.not.ok(isSubset({ env: [{ name: 'C', value: '3' }] }, { env: [{ name: 'A', value: '1' }] }));
  assert.ok(
    isSubset(
      { conditions: [{ type: 'Ready', status: 'True' }] },
      {
        conditions: [
          { type: 'X', status: 'False' },
          { type: 'Ready', status: 'True', reason: 'r' },
        ],
      },
    ),
  );
});

test('quantities compare by value only under resources, and numbers match their string form', () => {
  assert.is(quantityValue('500m'), 0.5);
  assert.is(quantityValue('1Gi'), 2 ** 30);
  assert.is(quantityValue('1e3'), 1000);
  assert.ok(Number.isNaN(quantityValue('lots')));
  assert.ok(
    isSubset({ resources: { requests: { memory: '1024Mi' } } }, { resources: { requests: { memory: '1Gi' } } }),
  );
  assert.not.ok(isSubset({ env: [{ name: 'X', value: '0.5' }] }, { env: [{ name: 'X', value: '500m' }] }));
  assert.ok(isSubset({ targetPort: 8080 }, { targetPort: '8080' }));
  assert.not.ok(isSubset({ replicas: 2 }, { replicas: 3 }));
});

test('empty desired objects and lists match absent fields', () => {
  assert.ok(isSubset({ emptyDir: {} }, {}));
  assert.ok(isSubset({ tolerations: [] }, {}));
  assert.not.ok(isSubset({ emptyDir: {} }, { emptyDir: 'x' }));
});

test('setCondition keeps lastTransitionTime while the status stays, moves it when the status flips', () => {
  const t1 = new Date('2024-01-01T00:00:00Z');
  const t2 = new Date('2024-01-01T01:00:00Z');
  const first = setCondition([], { type: 'Ready', status: 'False', reason: 'Waiting', message: 'pods pending' }, 1, t1);
  assert.is(first[0].lastTransitionTime, '2024-01-01T00:00:00Z');
  assert.is(first[0].observedGeneration, 1);
  const sameStatus = setCondition(
    first,
    { type: 'Ready', status: 'False', reason: 'Still', message: 'other message' },
    2,
    t2,
  );
  assert.is(sameStatus[0].lastTransitionTime, '2024-01-01T00:00:00Z');
  assert.is(sameStatus[0].reason, 'Still');
  assert.is(sameStatus[0].observedGeneration, 2);
  const flipped = setCondition(sameStatus, { type: 'Ready', status: 'True', reason: 'Running', message: 'ok' }, 2, t2);
  assert.is(flipped[0].lastTransitionTime, '2024-01-01T01:00:00Z');
  assert.is(flipped.length, 1);
});

test('mergeConditions keeps conditions of other types and sets each desired type once', () => {
  const existing: Condition[] = [
    { type: 'Other', status: 'True', reason: 'X', message: '', lastTransitionTime: '2023-01-01T00:00:00Z' },
    { type: 'Ready', status: 'True', reason: 'Running', message: 'ok', lastTransitionTime: '2023-06-01T00:00:00Z' },
  ];
  const merged = mergeConditions(
    existing,
    [
      { type: 'Ready', status: 'True', reason: 'Running', message: 'ok' },
      { type: 'Failed', status: 'False', reason: 'None', message: '' },
    ],
    3,
    new Date('2024-01-01T00:00:00Z'),
  );
  assert.equal(
    merged.map((c) => c.type),
    ['Other', 'Ready', 'Failed'],
  );
  assert.is(merged[1].lastTransitionTime, '2023-06-01T00:00:00Z');
  assert.is(merged[2].lastTransitionTime, '2024-01-01T00:00:00Z');
  assert.is(existing[1].observedGeneration, undefined, 'input is not mutated');
});

test('ownedStatusFields reads the top-level status fields of the apply entry on the status subresource', () => {
  const object = {
    metadata: {
      name: 'x',
      managedFields: [
        { manager: 'loopline-operator', operation: 'Apply', fieldsV1: { 'f:spec': { 'f:x': {} } } },
        {
          manager: 'loopline-operator',
          operation: 'Apply',
          subresource: 'status',
          fieldsV1: { 'f:status': { 'f:phase': {}, 'f:conditions': {}, '.': {} } },
        },
      ],
    },
  } as unknown as KubeObject;
  assert.equal([...ownedStatusFields(object, 'loopline-operator')!].sort(), ['conditions', 'phase']);
  assert.is(ownedStatusFields(object, 'someone-else'), undefined);
});

test.run();
