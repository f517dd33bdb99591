// The evaluator as its CronJob runs it: parts and labels in the local cluster's S3 server (versitygw), read with
// the storage variables a pod gets, the result published as a quality CloudEvent on the real NATS JetStream stream.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { parseCloudEvent } from '../../events/cloudevents.ts';
import { QUALITY_EVENT_TYPE, qualityEventData, qualitySubject } from '../../events/quality-event.ts';
import { ensureStream, STREAM_NAME } from '../../events/stream.ts';
import { connectTo, startNats, type TestNats } from '../../../test/support/nats.ts';
import { qualityMetrics } from '../../../server/src/quality/metrics.ts';
import { requireS3 } from '../../../test/support/s3.ts';
import { runEvaluate } from '../evaluate.ts';
import { inferenceLogPart, labelCsv, labelPart } from '../../../test/support/ground-truth.ts';

const s3 = requireS3('quality');
const ns = `q${randomUUID().slice(0, 6)}`;
const service = 'fraud';
let nats: TestNats;
let nc: NatsConnection;

test.before(async () => {
  nats = await startNats();
  nc = await connectTo(nats);
  await ensureStream(nc);
});

test.after(async () => {
  await nc.close();
  await nats.stop();
});

const base = () => s3.uri('ground-truth');

test('parts and labels in S3 are joined and the quality lands on loopline.quality.<ns>.<service> as a CloudEvent', async () => {
  const now = Date.now();
  const scores = [0.9, 0.8, 0.3, 0.6, 0.2, 0.1, 0.75, 0.4];
  const truth = [1, 1, 0, 0, 0, 1, 1, 0];
  const part = inferenceLogPart(
    ns,
    service,
    scores.map((score, j) => ({ requestId: `req-${j}`, time: now - 60_000 + j, model: 'fraud', version: 2, score })),
  );
  await s3.put(`ground-truth/${part.key}`, part.body);
  const wrong = labelPart(
    ns,
    service,
    truth.map((label, j) => ({ requestId: `req-${j}`, label: 1 - label, time: now - 30_000 })),
  );
  await s3.put(`ground-truth/${wrong.key}`, wrong.body);
  // Bulk files without times count as recorded at their LastModified, which is after the feedback labels above.
  const bulk = labelCsv(
    ns,
    service,
    [...truth.map((label, j) => ({ requestId: `req-${j}`, label })), { requestId: 'unknown-id', label: 1 }],
    'warehouse/2026-12-01',
  );
  await s3.put(`ground-truth/${bulk.key}`, bulk.body);

  const lines: string[] = [];
  const code = await runEvaluate(
    ['--namespace', ns, '--service', service, '--uri', base(), '--window', '1h'],
    (line) => lines.push(line),
    { ...s3.env, NATS_URL: nats.url },
  );
  assert.is(code, 0, lines.join('\n'));
  const printed = JSON.parse(lines[0]!);
  assert.is(printed.subject, qualitySubject(ns, service));

  const message = await (await jetstreamManager(nc)).streams.getMessage(STREAM_NAME, {
    last_by_subj: qualitySubject(ns, service),
  });
  assert.ok(message, 'a quality event on the stream');
  const event = parseCloudEvent(message!.data);
  assert.is(event.type, QUALITY_EVENT_TYPE);
  assert.is(event.id, printed.published);
  assert.is(event.source, `/apis/loopline.dev/v1alpha1/namespaces/${ns}/inferenceservices/${service}`);
  const data = qualityEventData(event);
  assert.is(data.namespace, ns);
  assert.is(data.inferenceService, service);
  assert.is(data.window.duration, '1h');
  assert.is(data.versions.length, 1);
  const [v2] = data.versions;
  const expected = qualityMetrics(scores, truth);
  assert.is(v2!.version, 2);
  assert.is(v2!.count, 8);
  assert.is(v2!.predictions, 8);
  assert.is(v2!.auc, expected.auc);
  assert.is(v2!.accuracy, expected.accuracy);
  assert.ok(Math.abs(v2!.logLoss! - expected.logLoss) < 1e-12);
});

test('a bucket that does not exist fails with the URI and the fix, and publishes nothing', async () => {
  const lines: string[] = [];
  const code = await runEvaluate(
    ['--namespace', ns, '--service', 'other', '--uri', 's3://no-such-bucket-here/x'],
    (line) => lines.push(line),
    { ...s3.env, NATS_URL: nats.url },
  );
  assert.is(code, 1);
  assert.match(
    lines.join('\n'),
    /LIST s3:\/\/no-such-bucket-here\/x\/(inference-log|labels)\/.* failed: NoSuchBucket.*create it or correct the URI/,
  );
  assert.not.match(lines.join('\n'), new RegExp(s3.secretAccessKey));
  const stored = await (await jetstreamManager(nc)).streams
    .getMessage(STREAM_NAME, { last_by_subj: qualitySubject(ns, 'other') })
    .catch(() => null);
  assert.is(stored, null, 'nothing stored on the subject');
});

test.run();
