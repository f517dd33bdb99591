// The predictor process (server/src/main.ts, as its image runs it) loading artifacts from s3:// on the local
// cluster's S3 server (versitygw): verified and served when right; otherwise unready, with /health naming the
// URI and the S3 error code, and the secret access key nowhere in its answers, logs or metrics.
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort } from '../../test/support/local.ts';
import { requireS3 } from '../../test/support/s3.ts';
import { Workspace, logisticModel, referenceProfile, sha256 } from './support/model.ts';
import { type PredictorProcess, spawnPredictor } from './support/predictor-process.ts';

const s3 = requireS3('predictor');
const ws = new Workspace();
const model = logisticModel(ws, 'credit.onnx', [1, 2, 3], 0.5);
const modelBytes = readFileSync(model.artifact.path);
const profileJson = JSON.stringify(referenceProfile(3));
let modelUri: string;
let profileUri: string;

type Predictor = PredictorProcess;

async function startPredictor(env: Record<string, string>): Promise<Predictor> {
  return spawnPredictor({ GRPC_PORT: String(await freePort()), MODEL_NAME: 'credit', MODEL_VERSION: '1', ...env });
}

/** /health once loading has finished one way or the other. */
async function settledHealth(predictor: Predictor): Promise<{ status: number; body: any }> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const health = await fetch(`${predictor.url}/health`).then(
      async (r) => ({ status: r.status, body: (await r.json()) as any }),
      () => undefined,
    );
    if (health && (health.status === 200 || health.body.error)) return health;
    assert.ok(Date.now() < deadline, `the predictor neither loaded nor failed in 60 s:\n${predictor.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts a predictor on `uri`, expects it unready with an error naming the URI and `code`, and no secret anywhere. */
async function expectUnready(uri: string, env: Record<string, string>, code: string): Promise<void> {
  const predictor = await startPredictor({ ...s3.env, MODEL_URI: uri, MODEL_DIGEST: model.artifact.digest, ...env });
  try {
    const health = await settledHealth(predictor);
    assert.is(health.status, 503, JSON.stringify(health.body));
    assert.ok(String(health.body.error).includes(uri), `the error names the URI: ${health.body.error}`);
    assert.ok(String(health.body.error).includes(code), `the error names ${code}: ${health.body.error}`);
    assert.is((await fetch(`${predictor.url}/v2/health/ready`)).status, 503);
    const metrics = await (await fetch(`${predictor.url}/metrics`)).text();
    assert.ok(predictor.output().includes(code), `the log names ${code}:\n${predictor.output()}`);
    for (const [where, text] of [
      ['/health', JSON.stringify(health.body)],
      ['/metrics', metrics],
      ['the log', predictor.output()],
    ]) {
      assert.not.ok(text.includes(s3.secretAccessKey), `${where} shows the secret access key`);
      if (env.AWS_SECRET_ACCESS_KEY)
        assert.not.ok(text.includes(env.AWS_SECRET_ACCESS_KEY), `${where} shows the wrong secret access key`);
    }
  } finally {
    await predictor.stop();
  }
}

test.before(async () => {
  modelUri = await s3.put('credit/v1/model.onnx', modelBytes);
  profileUri = await s3.put('credit/v1/profile.json', profileJson);
});
test.after(() => ws.remove());

test('a model and its reference profile on s3:// are fetched, verified and served', async () => {
  const predictor = await startPredictor({
    ...s3.env,
    MODEL_URI: modelUri,
    MODEL_DIGEST: model.artifact.digest,
    REFERENCE_PROFILE_URI: profileUri,
    REFERENCE_PROFILE_DIGEST: sha256(profileJson),
  });
  try {
    const health = await settledHealth(predictor);
    assert.is(health.status, 200, `${JSON.stringify(health.body)}\n${predictor.output()}`);
    const r = await fetch(`${predictor.url}/v2/models/credit/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 3], datatype: 'FP32', data: [1, 0, -1] }] }),
    });
    assert.is(r.status, 200);
    const body = (await r.json()) as any;
    assert.ok(Math.abs(body.outputs[0].data[0] - model.expected([1, 0, -1])) < 1e-6);
  } finally {
    await predictor.stop();
  }
});

test('an s3:// artifact whose bytes do not match the digest is refused: unready, the log names both digests', async () => {
  const tampered = await s3.put('credit/tampered/model.onnx', Buffer.concat([modelBytes, Buffer.from([0])]));
  const predictor = await startPredictor({ ...s3.env, MODEL_URI: tampered, MODEL_DIGEST: model.artifact.digest });
  try {
    const health = await settledHealth(predictor);
    assert.is(health.status, 503);
    assert.match(
      health.body.error,
      `artifact ${tampered} has digest ${sha256(Buffer.concat([modelBytes, Buffer.from([0])]))}, expected ${model.artifact.digest}`,
    );
    assert.match(predictor.output(), /refusing to serve/);
  } finally {
    await predictor.stop();
  }
});

test('a wrong secret access key: unready with SignatureDoesNotMatch, neither secret shown', async () => {
  await expectUnready(
    modelUri,
    { AWS_SECRET_ACCESS_KEY: 'not-the-secret-at-all-0123456789abcdefgh' },
    'SignatureDoesNotMatch',
  );
});

test('an access key id the server does not know: unready with its error code', async () => {
  // versitygw answers XAdminUserNotFound where AWS S3 says InvalidAccessKeyId.
  await expectUnready(modelUri, { AWS_ACCESS_KEY_ID: 'AKIANOSUCHKEY0000000' }, 'XAdminUserNotFound');
});

test('a missing bucket: unready with NoSuchBucket', async () => {
  await expectUnready('s3://no-such-bucket-loopline/credit/model.onnx', {}, 'NoSuchBucket');
});

test('a missing object: unready with NoSuchKey', async () => {
  await expectUnready(s3.uri('credit/v9/model.onnx'), {}, 'NoSuchKey');
});

test('an unreachable endpoint: unready with ECONNREFUSED and the address', async () => {
  const closed = await freePort();
  await expectUnready(modelUri, { AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${closed}` }, 'ECONNREFUSED');
});

test.run();
