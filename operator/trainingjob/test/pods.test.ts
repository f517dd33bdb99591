// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { controllerReference } from '../../engine/keys.ts';
import type { KubeObject } from '../../engine/types.ts';
import { desiredJob, jobName } from '../job.ts';
import { desiredService, masterAddress } from '../pods.ts';
import { trainingJob } from './fixtures.ts';

type Env = Array<{ name: string; value?: string; valueFrom?: unknown }>;
const envOf = (template: any): Record<string, string | undefined> =>
  Object.fromEntries((template.spec.containers[0].env as Env).map((e) => [e.name, e.value]));
const RANK_FROM_INDEX = { fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" } };

test('an attempt is one Indexed Job owned by the TrainingJob: one completion per worker, no pod retries of its own, no TTL', () => {
  const job = trainingJob({ workers: 3, backoffLimit: 5, ttlSecondsAfterFinished: 60 });
  const owner = controllerReference(job as KubeObject);
  const j = desiredJob(job, owner, 2, { activeDeadlineSeconds: 30 }) as any;
  assert.equal([j.apiVersion, j.kind, j.metadata.name], ['batch/v1', 'Job', 'credit-2']);
  assert.equal(j.metadata.ownerReferences, [owner]);
  assert.equal(j.metadata.labels, {
    'loopline.dev/trainingjob': 'credit',
    'loopline.dev/model': 'credit-risk',
    'loopline.dev/attempt': '2',
  });
  assert.equal(
    [
      j.spec.completionMode,
      j.spec.completions,
      j.spec.parallelism,
      j.spec.backoffLimit,
      j.spec.activeDeadlineSeconds,
      j.spec.suspend,
      j.spec.ttlSecondsAfterFinished,
    ],
    ['Indexed', 3, 3, 0, 30, false, undefined],
  );
  assert.equal(j.spec.podFailurePolicy, {
    rules: [{ action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] }],
  });
  assert.equal(j.spec.template.metadata.labels, {
    'loopline.dev/trainingjob': 'credit',
    'loopline.dev/model': 'credit-risk',
    'loopline.dev/attempt': '2',
  });
});

test("a queued job's Job carries Kueue's queue-name label and is created suspended, for Kueue to admit", () => {
  const job = trainingJob({ queueName: 'team-a', priorityClassName: 'high' });
  const j = desiredJob(job, controllerReference(job as KubeObject), 1) as any;
  assert.is(j.metadata.labels['kueue.x-k8s.io/queue-name'], 'team-a');
  assert.is(j.spec.suspend, true);
  assert.is(j.spec.template.spec.priorityClassName, 'high');
});

test("a GPU job's pods get the GPU limit and request, node selector, toleration and result contract", () => {
  const job = trainingJob({
    resources: { gpus: 2, gpuType: 'NVIDIA-A100-SXM4-80GB', cpu: '4', memory: '16Gi' },
    hyperparameters: { learning_rate: '0.1', epochs: '50' },
    output: { uri: 'file:///tmp/out/' },
    dataset: { uri: 'file:///data/credit.csv', hash: `sha256:${'ab'.repeat(32)}` },
    nodeSelector: { zone: 'a' },
    tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'ml', effect: 'NoSchedule' }],
    priorityClassName: 'training',
    serviceAccountName: 'trainer',
  });
  const template = (desiredJob(job, controllerReference(job as KubeObject), 1) as any).spec.template;
  assert.is(template.spec.restartPolicy, 'Never');
  assert.equal(template.spec.nodeSelector, { zone: 'a', 'nvidia.com/gpu.product': 'NVIDIA-A100-SXM4-80GB' });
  assert.equal(template.spec.tolerations, [
    { key: 'dedicated', operator: 'Equal', value: 'ml', effect: 'NoSchedule' },
    { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
  ]);
  assert.is(template.spec.priorityClassName, 'training');
  assert.is(template.spec.serviceAccountName, 'trainer');
  assert.is(template.spec.subdomain, undefined);
  const c = template.spec.containers[0];
  assert.equal(c.resources, {
    limits: { cpu: '4', memory: '16Gi', 'nvidia.com/gpu': '2' },
    requests: { cpu: '4', memory: '16Gi', 'nvidia.com/gpu': '2' },
  });
  assert.is(c.terminationMessagePath, '/dev/termination-log');
  assert.is(c.terminationMessagePolicy, 'File');
  const env = envOf(template);
  assert.is(env.LOOPLINE_HYPERPARAMETERS, JSON.stringify({ learning_rate: '0.1', epochs: '50' }));
  assert.is(env.HP_LEARNING_RATE, '0.1');
  assert.is(env.HP_EPOCHS, '50');
  assert.is(env.LOOPLINE_OUTPUT_URI, 'file:///tmp/out/ml/credit/attempt-1');
  assert.is(env.LOOPLINE_RESULT_PATH, '/dev/termination-log');
  assert.is(env.LOOPLINE_DATASET_URI, 'file:///data/credit.csv');
  assert.is(env.LOOPLINE_DATASET_HASH, `sha256:${'ab'.repeat(32)}`, 'the trainer checks the dataset against it');
  assert.equal(template.spec.containers[0].env.find((e: any) => e.name === 'RANK').valueFrom, RANK_FROM_INDEX);
  assert.is(env.WORLD_SIZE, '1');
  assert.is(env.MASTER_ADDR, undefined);
  assert.is(
    template.metadata.annotations['loopline.dev/hyperparameters'],
    JSON.stringify({ learning_rate: '0.1', epochs: '50' }),
  );
  assert.is(desiredService(job, controllerReference(job as KubeObject)), undefined);
});

test("the operator's object storage settings reach every rank's template, the keys by reference to their Secret; the job's env cannot override them", () => {
  const job = trainingJob({
    workers: 2,
    env: [
      { name: 'AWS_ENDPOINT_URL_S3', value: 'http://elsewhere:9000' },
      { name: 'AWS_SECRET_ACCESS_KEY', value: 'typed-in' },
    ],
  });
  const storage = {
    endpoint: 'http://versitygw:7070',
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: {
      secretName: 'loopline-s3',
      accessKeyIdKey: 'AWS_ACCESS_KEY_ID',
      secretAccessKeyKey: 'AWS_SECRET_ACCESS_KEY',
    },
  };
  const template = (desiredJob(job, controllerReference(job as KubeObject), 1, { storage }) as any).spec.template;
  const env = template.spec.containers[0].env as Array<{ name: string }>;
  const named = (name: string) => env.filter((e) => e.name === name);
  assert.equal(named('AWS_ENDPOINT_URL_S3'), [{ name: 'AWS_ENDPOINT_URL_S3', value: 'http://versitygw:7070' }]);
  assert.equal(named('AWS_REGION'), [{ name: 'AWS_REGION', value: 'us-east-1' }]);
  assert.equal(named('S3_FORCE_PATH_STYLE'), [{ name: 'S3_FORCE_PATH_STYLE', value: 'true' }]);
  assert.equal(named('AWS_ACCESS_KEY_ID'), [
    { name: 'AWS_ACCESS_KEY_ID', valueFrom: { secretKeyRef: { name: 'loopline-s3', key: 'AWS_ACCESS_KEY_ID' } } },
  ]);
  assert.equal(named('AWS_SECRET_ACCESS_KEY'), [
    {
      name: 'AWS_SECRET_ACCESS_KEY',
      valueFrom: { secretKeyRef: { name: 'loopline-s3', key: 'AWS_SECRET_ACCESS_KEY' } },
    },
  ]);
  const bare = (desiredJob(job, controllerReference(job as KubeObject), 1) as any).spec.template;
  assert.not.ok(
    bare.spec.containers[0].env.some((e: any) => e.name.startsWith('AWS_')),
    "without settings the job's own storage variables are dropped too",
  );
});

test('a CPU job asks for no GPU and tolerates nothing extra', () => {
  const job = trainingJob({});
  const template = (desiredJob(job, controllerReference(job as KubeObject), 1) as any).spec.template;
  assert.is(template.spec.tolerations, undefined);
  assert.is(template.spec.nodeSelector, undefined);
  assert.is(template.spec.containers[0].resources, undefined);
});

test('user env cannot override the rank or result contract, and keeps its other variables', () => {
  const job = trainingJob({
    env: [
      { name: 'RANK', value: '7' },
      { name: 'LOOPLINE_RESULT_PATH', value: '/x' },
      { name: 'LOOPLINE_FAIL', value: 'crash' },
    ],
  });
  const template = (desiredJob(job, controllerReference(job as KubeObject), 1) as any).spec.template;
  const env = envOf(template);
  assert.is(env.RANK, undefined, 'RANK comes from the completion index, not a literal');
  assert.is(env.LOOPLINE_RESULT_PATH, '/dev/termination-log');
  assert.is(env.LOOPLINE_FAIL, 'crash');
  const names = template.spec.containers[0].env.map((e: any) => e.name);
  assert.is(new Set(names).size, names.length, 'no duplicate env names');
});

test('workers=3: each rank reads its rank from its completion index, the torchrun and PyTorch env agree, rank 0 is reached through the headless Service', () => {
  const job = trainingJob({ workers: 3, resources: { gpus: 4 }, masterPort: 23456 }, undefined, 'dist');
  const owner = controllerReference(job as KubeObject);
  const template = (desiredJob(job, owner, 2) as any).spec.template;
  const env = envOf(template);
  assert.equal(
    [
      env.WORLD_SIZE,
      env.PET_NNODES,
      env.PET_NPROC_PER_NODE,
      env.NPROC_PER_NODE,
      env.MASTER_ADDR,
      env.PET_MASTER_ADDR,
      env.MASTER_PORT,
      env.PET_MASTER_PORT,
    ],
    ['3', '3', '4', '4', 'dist-2-0.dist', 'dist-2-0.dist', '23456', '23456'],
  );
  for (const name of ['RANK', 'PET_NODE_RANK'])
    assert.equal(template.spec.containers[0].env.find((e: any) => e.name === name).valueFrom, RANK_FROM_INDEX);
  assert.is(masterAddress(job, 'dist-2'), 'dist-2-0.dist');
  assert.is(template.spec.subdomain, 'dist');
  assert.equal(template.spec.containers[0].ports, [{ name: 'rendezvous', containerPort: 23456, protocol: 'TCP' }]);
  const svc = desiredService(job, owner) as any;
  assert.is(svc.metadata.name, 'dist');
  assert.is(svc.spec.clusterIP, 'None');
  assert.is(svc.spec.publishNotReadyAddresses, true);
  assert.equal(svc.spec.selector, {
    'loopline.dev/trainingjob': 'dist',
    'batch.kubernetes.io/job-completion-index': '0',
  });
  assert.equal(svc.metadata.ownerReferences, [owner]);
});

test('Job and host names stay valid DNS labels for long or dotted job names', () => {
  const long = 'a'.repeat(250);
  const name = jobName(trainingJob({ workers: 2 }, undefined, long), 101);
  assert.match(name, /^tj-[0-9a-f]{10}-101$/);
  assert.ok(`${name}-15`.length <= 63, 'pod hostnames <job>-<index> fit a DNS label');
  assert.match(jobName(trainingJob({}, undefined, 'credit.v2'), 1), /^tj-[0-9a-f]{10}-1$/);
  const job = trainingJob({ workers: 2 }, undefined, long);
  const template = (desiredJob(job, controllerReference(job as KubeObject), 12) as any).spec.template;
  assert.ok(template.metadata.labels['loopline.dev/trainingjob'].length <= 63);
  const digit = trainingJob({ workers: 2 }, undefined, '7-credit');
  const svc = desiredService(digit, controllerReference(digit as KubeObject)) as any;
  assert.match(svc.metadata.name, /^tj-[0-9a-f]{10}$/);
});

test.run();
