import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { getObjectStream, parseS3Uri } from '../../../operator/api/object-storage.ts';
import { requireS3 } from '../../../test/support/s3.ts';
import { generateCreditRisk, toCsv } from '../src/dataset.ts';
import { PART_BYTES, writeArtifact } from '../src/storage.ts';
import { logLines, resultSchemaErrors, runTrainer, type TrainerRun } from './run-trainer.ts';

const s3 = requireS3('trainer');
const runs: TrainerRun[] = [];
async function run(env: Record<string, string>): Promise<TrainerRun> {
  const r = await runTrainer({ ...s3.env, HP_EPOCHS: '40', ...env });
  runs.push(r);
  return r;
}
test.after(() => {
  for (const r of runs) rmSync(r.dir, { recursive: true, force: true });
});

async function objectBytes(uri: string): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of (await getObjectStream(s3.client, uri)).body) chunks.push(chunk);
  return Buffer.concat(chunks);
}
const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** A failed run: exit 1, and the termination message (what the TrainingJob's status shows) names the URI and the code. */
function assertFailedNaming(r: TrainerRun, uri: string, code: string): void {
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.ok(r.resultText?.startsWith('training failed: '), r.resultText);
  assert.ok(r.resultText!.includes(uri), `names ${uri}: ${r.resultText}`);
  assert.ok(r.resultText!.includes(code), `names ${code}: ${r.resultText}`);
  for (const text of [r.resultText!, r.stdout, r.stderr])
    assert.not.ok(text.includes(s3.secretAccessKey), 'the secret access key is shown');
}

test('trains on the CSV parts under an s3:// prefix and writes model.onnx and profile.json to s3:// with their digests', async () => {
  await s3.put('data/2026-11-01.csv', toCsv(generateCreditRisk({ rows: 900, seed: 4, shift: 0 })));
  await s3.put('data/2026-11-02.csv', toCsv(generateCreditRisk({ rows: 600, seed: 5, shift: 0 })));
  await s3.put('data/README.txt', 'not a part');
  const output = s3.uri('models/credit-risk/attempt-1');
  const r = await run({ LOOPLINE_DATASET_URI: s3.uri('data/'), LOOPLINE_OUTPUT_URI: output });
  assert.is(r.code, 0, r.stdout + r.stderr);
  const result = JSON.parse(r.resultText!);
  assert.is(resultSchemaErrors(result), undefined);
  assert.is(result.artifact.uri, `${output}/model.onnx`);
  assert.is(result.referenceProfile.uri, `${output}/profile.json`);
  assert.is(sha256(await objectBytes(result.artifact.uri)), result.artifact.digest);
  const profile = await objectBytes(result.referenceProfile.uri);
  assert.is(sha256(profile), result.referenceProfile.digest);
  assert.is(JSON.parse(profile.toString()).rows, Math.round(1500 * 0.8));
  const ready = logLines(r.stdout).find((l) => l.msg === 'dataset ready');
  assert.is(ready?.rows, 1500);
});

test('an artifact larger than one part is uploaded in parts and reads back byte for byte', async () => {
  const bytes = randomBytes(PART_BYTES + PART_BYTES / 2);
  const uri = await writeArtifact(s3.uri('large'), 'model.onnx', bytes);
  const { bucket, key } = parseS3Uri(uri);
  const head = await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  // A multipart object's ETag is the hash of its parts' hashes, followed by "-<parts>".
  assert.match(head.ETag ?? '', /-2"$/);
  assert.is(sha256(await objectBytes(uri)), sha256(bytes));
});

test('an output bucket that does not exist fails the run with the URI and NoSuchBucket', async () => {
  const r = await run({ LOOPLINE_OUTPUT_URI: 's3://no-such-bucket-loopline/models' });
  assertFailedNaming(r, 's3://no-such-bucket-loopline/models/model.onnx', 'NoSuchBucket');
});

test('a data set object that does not exist fails the run with the URI and NoSuchKey', async () => {
  const missing = s3.uri('data/missing.csv');
  const r = await run({ LOOPLINE_DATASET_URI: missing, LOOPLINE_OUTPUT_URI: s3.uri('never') });
  assertFailedNaming(r, missing, 'NoSuchKey');
});

test('a wrong secret access key fails the run with SignatureDoesNotMatch, and neither secret is shown', async () => {
  const wrong = 'wrong-secret-wrong-secret-wrong-secret-0';
  const output = s3.uri('denied');
  const r = await run({ LOOPLINE_OUTPUT_URI: output, AWS_SECRET_ACCESS_KEY: wrong });
  assertFailedNaming(r, `${output}/model.onnx`, 'SignatureDoesNotMatch');
  for (const text of [r.resultText!, r.stdout, r.stderr]) assert.not.ok(text.includes(wrong));
});

test('an unreachable storage endpoint fails the run with ECONNREFUSED', async () => {
  const output = s3.uri('unreachable');
  const r = await run({ LOOPLINE_OUTPUT_URI: output, AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' });
  assertFailedNaming(r, `${output}/model.onnx`, 'ECONNREFUSED');
});

test.run();
