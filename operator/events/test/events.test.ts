// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { cloudEvent, parseCloudEvent, type CloudEvent } from '../cloudevents.ts';
import { consumeDriftEvents, driftTarget } from '../drift-consumer.ts';
import { LifecyclePublisher, lifecycleSubject } from '../publisher.ts';
import { ensureStream, STREAM_NAME } from '../stream.ts';
import { connectTo, startNats, type TestNats } from '../../../test/support/nats.ts';

const log = pino({ level: 'silent' });
// A namespace of our own keeps this file's subjects and consumers apart from other tests on a shared server.
const ns = `t${randomUUID().slice(0, 8)}`;
let nats: TestNats;
let nc: NatsConnection;
const durables: string[] = [];

test.before(async () => {
  nats = await startNats();
  nc = await connectTo(nats);
  await ensureStream(nc);
});

test.after(async () => {
  const jsm = await jetstreamManager(nc);
  for (const durable of durables) await jsm.consumers.delete(STREAM_NAME, durable).catch(() => {});
  await nc.close();
  await nats.stop();
});

function driftEvent(name: string, id = randomUUID()): CloudEvent {
  return cloudEvent({
    id,
    type: 'dev.loopline.drift.window',
    source: `/predictors/${ns}/${name}`,
    data: { score: 0.5, driftedFeatures: ['amount'], drifted: true },
  });
}

async function publishDrift(name: string, event: CloudEvent | string): Promise<void> {
  await jetstream(nc).publish(
    `loopline.drift.${ns}.${name}`,
    typeof event === 'string' ? event : JSON.stringify(event),
  );
}

function collector() {
  const seen: Array<{ id: string; target: string }> = [];
  const waiters: Array<() => void> = [];
  return {
    seen,
    handle: async (event: CloudEvent, target: { namespace: string; inferenceService: string }) => {
      seen.push({ id: event.id, target: `${target.namespace}/${target.inferenceService}` });
      waiters.splice(0).forEach((wake) => wake());
    },
    async until(count: number, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (seen.length < count) {
        if (Date.now() > deadline) throw new Error(`saw ${seen.length} events, wanted ${count}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
    },
  };
}

test('ensureStream is idempotent and captures every loopline subject', async () => {
  const first = await ensureStream(nc);
  const second = await ensureStream(nc);
  assert.is(first.config.name, STREAM_NAME);
  assert.equal(second.config.subjects, ['loopline.>']);
  assert.ok(second.config.duplicate_window > 0);
});

test('CloudEvents round-trip and malformed envelopes are refused with the missing attribute', () => {
  const event = driftEvent('a');
  assert.equal(parseCloudEvent(JSON.stringify(event)), event);
  assert.throws(() => parseCloudEvent('{"specversion":"1.0","source":"x","type":"y"}'), /lacks "id"/);
  assert.throws(() => parseCloudEvent('{"specversion":"0.3"}'), /specversion/);
  assert.equal(driftTarget('loopline.drift.risk.fraud'), { namespace: 'risk', inferenceService: 'fraud' });
  assert.is(driftTarget('loopline.events.risk.fraud'), undefined);
});

test('lifecycle events land on loopline.events.<ns>.<kind>.<name> as CloudEvents, a repeated id only once', async () => {
  const jsm = await jetstreamManager(nc);
  const subject = lifecycleSubject('inferenceservice', ns, 'fraud');
  assert.is(subject, `loopline.events.${ns}.inferenceservice.fraud`);
  const durable = `test-lifecycle-${ns}`;
  durables.push(durable);
  await jsm.consumers.add(STREAM_NAME, {
    durable_name: durable,
    filter_subject: subject,
    ack_policy: AckPolicy.Explicit,
  });
  const publisher = new LifecyclePublisher(nc);
  // Unique per run: the shared stream drops a repeated id for its whole duplicate window (10 min), across runs too.
  const id = `${ns}/rolledback/v2`;
  const rolledBack = {
    kind: 'inferenceservice',
    namespace: ns,
    name: 'fraud',
    reason: 'rolledback',
    id,
    data: { version: 2, errorRate: 0.3 },
  } as const;
  await publisher.publish(rolledBack);
  await publisher.publish(rolledBack);
  await publisher.publish({
    kind: 'inferenceservice',
    namespace: ns,
    name: 'fraud',
    reason: 'promoted',
    data: { version: 3 },
  });
  const consumer = await jetstream(nc).consumers.get(STREAM_NAME, durable);
  const batch = await consumer.fetch({ max_messages: 10, expires: 1500 });
  const events: CloudEvent[] = [];
  for await (const message of batch) {
    events.push(parseCloudEvent(message.data));
    message.ack();
  }
  assert.equal(
    events.map((e) => e.type),
    ['dev.loopline.inferenceservice.rolledback', 'dev.loopline.inferenceservice.promoted'],
  );
  assert.is(events[0]!.id, id);
  assert.is(events[0]!.source, `/apis/loopline.dev/v1alpha1/namespaces/${ns}/inferenceservices/fraud`);
  assert.equal(events[0]!.data, { version: 2, errorRate: 0.3 });
});

test('drift events published while no consumer runs are delivered when it starts', async () => {
  const durable = `test-drift-offline-${ns}`;
  durables.push(durable);
  const filterSubject = `loopline.drift.${ns}.offline`;
  // The durable exists (the operator ran before), then the operator is down while events arrive.
  const first = await consumeDriftEvents(nc, async () => {}, { durable, filterSubject, log });
  await first.stop();
  const events = [driftEvent('offline'), driftEvent('offline')];
  for (const event of events) await publishDrift('offline', event);
  const seen = collector();
  const second = await consumeDriftEvents(nc, seen.handle, { durable, filterSubject, log });
  await seen.until(2);
  await second.stop();
  assert.equal(
    seen.seen.map((s) => s.id),
    events.map((e) => e.id),
  );
  assert.is(seen.seen[0]!.target, `${ns}/offline`);
});

test('acked drift events are not delivered again after a restart; a failed handler gets a redelivery', async () => {
  const durable = `test-drift-ack-${ns}`;
  durables.push(durable);
  const filterSubject = `loopline.drift.${ns}.acks`;
  let failOnce = true;
  const seen = collector();
  const consumer = await consumeDriftEvents(
    nc,
    async (event, target) => {
      if (failOnce) {
        failOnce = false;
        throw new Error('API server unavailable');
      }
      await seen.handle(event, target);
    },
    { durable, filterSubject, log, retryDelayMs: 50 },
  );
  const event = driftEvent('acks');
  await publishDrift('acks', event);
  await seen.until(1);
  await consumer.stop();
  assert.equal(
    seen.seen.map((s) => s.id),
    [event.id],
  );

  const again = collector();
  const restarted = await consumeDriftEvents(nc, again.handle, { durable, filterSubject, log });
  const later = driftEvent('acks');
  await publishDrift('acks', later);
  await again.until(1);
  await new Promise((resolve) => setTimeout(resolve, 300));
  await restarted.stop();
  assert.equal(
    again.seen.map((s) => s.id),
    [later.id],
  );
});

test('a malformed drift event is dropped, not redelivered, and does not block the next one', async () => {
  const durable = `test-drift-malformed-${ns}`;
  durables.push(durable);
  const filterSubject = `loopline.drift.${ns}.bad`;
  const seen = collector();
  const consumer = await consumeDriftEvents(nc, seen.handle, { durable, filterSubject, log, retryDelayMs: 20 });
  await publishDrift('bad', '{"not":"a cloudevent"}');
  const good = driftEvent('bad');
  await publishDrift('bad', good);
  await seen.until(1);
  await new Promise((resolve) => setTimeout(resolve, 300));
  await consumer.stop();
  assert.equal(
    seen.seen.map((s) => s.id),
    [good.id],
  );
  const info = await (await jetstreamManager(nc)).consumers.info(STREAM_NAME, durable);
  assert.is(info.num_pending + info.num_ack_pending, 0);
});

test.run();
