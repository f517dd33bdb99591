import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { controllerReference } from '../../engine/keys.ts';
import type { KubeObject } from '../../engine/types.ts';
import { desiredPod, desiredPods, desiredService, masterAddress, podName } from '../pods.ts';
import { trainingJob } from './fixtures.ts';

type Env = Array<{ name: string; value?: string }>;
const envOf = (pod: any): Record<string, string | undefined> =>
  Object.fromEntries((pod.spec.containers[0].env as Env).map((e) => [e.name, e.value]));

test('a GPU job becomes one pod with the GPU limit, node selector, toleration and result contract', () => {
  const job = trainingJob({
    resources: { gpus: 2, gpuType: 'NVIDIA-A100-SXM4-80GB', cpu: '4', memory: '16Gi' },
    hyperparameters: { learning_rate: '0.1', epochs: '50' },
    output: { uri: 'file:///tmp/out/' },
    dataset: { uri: 'file:///data/credit.csv' },
    nodeSelector: { zone: 'a' },
    tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'ml', effect: 'NoSchedule' }],
    priorityClassName: 'training',
    serviceAccountName: 'trainer',
  });
  const [pod, ...rest] = desiredPods(job, controllerReference(job as KubeObject), 1) as any[];
  assert.is(rest.length, 0);
  assert.is(pod.metadata.name, 'credit-1-0');
  assert.equal(pod.metadata.labels, {
    'loopline.dev/trainingjob': 'credit', 'loopline.dev/model': 'credit-risk', 'loopline.dev/attempt': '1', 'loopline.dev/rank': '0',
  });
  assert.equal(pod.metadata.ownerReferences, [{ apiVersion: 'loopline.dev/v1alpha1', kind: 'TrainingJob', name: 'credit', uid: 'uid-1', controller: true, blockOwnerDeletion: true }]);
  assert.is(pod.spec.restartPolicy, 'Never');
  assert.equal(pod.spec.nodeSelector, { zone: 'a', 'nvidia.com/gpu.product': 'NVIDIA-A100-SXM4-80GB' });
  assert.equal(pod.spec.tolerations, [
    { key: 'dedicated', operator: 'Equal', value: 'ml', effect: 'NoSchedule' },
    { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
  ]);
  assert.is(pod.spec.priorityClassName, 'training');
  assert.is(pod.spec.serviceAccountName, 'trainer');
  const c = pod.spec.containers[0];
  assert.equal(c.resources, { limits: { cpu: '4', memory: '16Gi', 'nvidia.com/gpu': '2' }, requests: { cpu: '4', memory: '16Gi' } });
  assert.is(c.terminationMessagePath, '/dev/termination-log');
  assert.is(c.terminationMessagePolicy, 'File');
  const env = envOf(pod);
  assert.is(env.LOOPLINE_HYPERPARAMETERS, JSON.stringify({ learning_rate: '0.1', epochs: '50' }));
  assert.is(env.HP_LEARNING_RATE, '0.1');
  assert.is(env.HP_EPOCHS, '50');
  assert.is(env.LOOPLINE_OUTPUT_URI, 'file:///tmp/out/ml/credit/attempt-1');
  assert.is(env.LOOPLINE_RESULT_PATH, '/dev/termination-log');
  assert.is(env.LOOPLINE_DATASET_URI, 'file:///data/credit.csv');
  assert.is(env.RANK, '0');
  assert.is(env.WORLD_SIZE, '1');
  assert.is(env.MASTER_ADDR, undefined);
  assert.is(pod.metadata.annotations['loopline.dev/hyperparameters'], JSON.stringify({ learning_rate: '0.1', epochs: '50' }));
  assert.is(desiredService(job, controllerReference(job as KubeObject)), undefined);
});

test('the operator\'s object storage settings reach every rank, the keys by reference to their Secret; the job\'s env cannot override them', () => {
  const job = trainingJob({ workers: 2, env: [{ name: 'AWS_ENDPOINT_URL_S3', value: 'http://elsewhere:9000' }, { name: 'AWS_SECRET_ACCESS_KEY', value: 'typed-in' }] });
  const storage = { endpoint: 'http://versitygw:7070', region: 'us-east-1', forcePathStyle: true, credentials: { secretName: 'loopline-s3', accessKeyIdKey: 'AWS_ACCESS_KEY_ID', secretAccessKeyKey: 'AWS_SECRET_ACCESS_KEY' } };
  for (const pod of desiredPods(job, controllerReference(job as KubeObject), 1, storage) as any[]) {
    const env = pod.spec.containers[0].env as Array<{ name: string }>;
    const named = (name: string) => env.filter((e) => e.name === name);
    assert.equal(named('AWS_ENDPOINT_URL_S3'), [{ name: 'AWS_ENDPOINT_URL_S3', value: 'http://versitygw:7070' }]);
    assert.equal(named('AWS_REGION'), [{ name: 'AWS_REGION', value: 'us-east-1' }]);
    assert.equal(named('S3_FORCE_PATH_STYLE'), [{ name: 'S3_FORCE_PATH_STYLE', value: 'true' }]);
    assert.equal(named('AWS_ACCESS_KEY_ID'), [{ name: 'AWS_ACCESS_KEY_ID', valueFrom: { secretKeyRef: { name: 'loopline-s3', key: 'AWS_ACCESS_KEY_ID' } } }]);
    assert.equal(named('AWS_SECRET_ACCESS_KEY'), [{ name: 'AWS_SECRET_ACCESS_KEY', valueFrom: { secretKeyRef: { name: 'loopline-s3', key: 'AWS_SECRET_ACCESS_KEY' } } }]);
  }
  const bare = desiredPod(job, controllerReference(job as KubeObject), 1, 0) as any;
  assert.not.ok(bare.spec.containers[0].env.some((e: any) => e.name.startsWith('AWS_')), 'without settings the job\'s own storage variables are dropped too');
});

test('a CPU job asks for no GPU and tolerates nothing extra', () => {
  const job = trainingJob({});
  const pod = desiredPod(job, controllerReference(job as KubeObject), 1, 0) as any;
  assert.is(pod.spec.tolerations, undefined);
  assert.is(pod.spec.nodeSelector, undefined);
  assert.is(pod.spec.containers[0].resources, undefined);
});

test('user env cannot override the rank or result contract, and keeps its other variables', () => {
  const job = trainingJob({ env: [{ name: 'RANK', value: '7' }, { name: 'LOOPLINE_RESULT_PATH', value: '/x' }, { name: 'LOOPLINE_FAIL', value: 'crash' }] });
  const env = envOf(desiredPod(job, controllerReference(job as KubeObject), 1, 0));
  assert.is(env.RANK, '0');
  assert.is(env.LOOPLINE_RESULT_PATH, '/dev/termination-log');
  assert.is(env.LOOPLINE_FAIL, 'crash');
  const names = (desiredPod(job, controllerReference(job as KubeObject), 1, 0) as any).spec.containers[0].env.map((e: any) => e.name);
  assert.is(new Set(names).size, names.length, 'no duplicate env names');
});

test('workers=3 get one pod per rank with consistent torchrun and PyTorch env and a headless Service for rank 0', () => {
  const job = trainingJob({ workers: 3, resources: { gpus: 4 }, masterPort: 23456 }, undefined, 'dist');
  const owner = controllerReference(job as KubeObject);
  const pods = desiredPods(job, owner, 2) as any[];
  assert.equal(pods.map((p) => p.metadata.name), ['dist-2-0', 'dist-2-1', 'dist-2-2']);
  const rows = pods.map((p) => {
    const e = envOf(p);
    return [e.RANK, e.PET_NODE_RANK, e.WORLD_SIZE, e.PET_NNODES, e.PET_NPROC_PER_NODE, e.NPROC_PER_NODE, e.MASTER_ADDR, e.PET_MASTER_ADDR, e.MASTER_PORT, e.PET_MASTER_PORT];
  });
  assert.equal(rows, [0, 1, 2].map((r) => [String(r), String(r), '3', '3', '4', '4', 'dist-0.dist', 'dist-0.dist', '23456', '23456']));
  assert.is(masterAddress(job), 'dist-0.dist');
  assert.equal(pods.map((p) => [p.spec.hostname, p.spec.subdomain]), [['dist-0', 'dist'], ['dist-1', 'dist'], ['dist-2', 'dist']]);
  assert.equal(pods[0].spec.containers[0].ports, [{ name: 'rendezvous', containerPort: 23456, protocol: 'TCP' }]);
  assert.is(pods[1].spec.containers[0].ports, undefined);
  const svc = desiredService(job, owner) as any;
  assert.is(svc.metadata.name, 'dist');
  assert.is(svc.spec.clusterIP, 'None');
  assert.is(svc.spec.publishNotReadyAddresses, true);
  assert.equal(svc.spec.selector, { 'loopline.dev/trainingjob': 'dist', 'loopline.dev/rank': '0' });
  assert.equal(svc.metadata.ownerReferences, [owner]);
});

test('names stay valid for long or digit-leading job names', () => {
  const long = 'a'.repeat(250);
  const job = trainingJob({ workers: 2 }, undefined, long);
  const name = podName(job, 12, 1);
  assert.ok(name.length <= 253, `pod name ${name.length} chars`);
  assert.ok(name.endsWith('-12-1'));
  const pod = desiredPod(job, controllerReference(job as KubeObject), 12, 1) as any;
  assert.ok(pod.metadata.labels['loopline.dev/trainingjob'].length <= 63);
  assert.ok(pod.spec.hostname.length <= 63);
  const digit = trainingJob({ workers: 2 }, undefined, '7-credit');
  const svc = desiredService(digit, controllerReference(digit as KubeObject)) as any;
  assert.match(svc.metadata.name, /^tj-[0-9a-f]{10}$/);
});

test.run();
