// Registry lifecycle events on a real nats-server (JetStream) and the real cluster: a TrainingJob that
// registers a version publishes `registered`; every history entry (promoted, archived, aliases moved)
// publishes one event whose id derives from the version's uid and the entry, so a repeat is dropped.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DeliverPolicy, jetstream, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { parseCloudEvent, type CloudEvent } from '../../events/cloudevents.ts';
import { LifecyclePublisher } from '../../events/publisher.ts';
import { ensureStream, STREAM_NAME } from '../../events/stream.ts';
import { connectTo, startNats, type TestNats } from '../../../test/support/nats.ts';
import { kinds } from '../../engine/index.ts';
import {
  createJob,
  startHarness,
  versionsOf,
  waitFor,
  waitForPhase,
  type Harness,
} from '../../../test/support/operator-harness.ts';
import { historyEvent, historyEventId } from '../events.ts';
import type { ModelVersion } from '../resource.ts';

interface Received {
  subject: string;
  event: CloudEvent<Record<string, any>>;
}

let nats: TestNats;
let nc: NatsConnection;
let publisher: LifecyclePublisher;
let h: Harness;

test.before(async () => {
  nats = await startNats();
  nc = await connectTo(nats);
  await ensureStream(nc);
  publisher = new LifecyclePublisher(nc);
  h = await startHarness('mv-events', { operator: { publisher } });
});

test.after(async () => {
  await h?.stop();
  await nc?.close();
  await nats?.stop();
});

/** Every lifecycle event the stream holds for this namespace (the harness namespace is unique to this run). */
async function storedEvents(): Promise<Received[]> {
  const consumer = await jetstream(nc).consumers.get(STREAM_NAME, {
    filter_subjects: `loopline.events.${h.namespace}.>`,
    deliver_policy: DeliverPolicy.All,
  });
  const pending = (await consumer.info(true)).num_pending;
  const received: Received[] = [];
  if (pending === 0) return received;
  for await (const message of (await consumer.fetch({
    max_messages: pending,
    expires: 5000,
  })) as AsyncIterable<JsMsg>) {
    received.push({
      subject: message.subject,
      event: parseCloudEvent(message.data) as CloudEvent<Record<string, any>>,
    });
    if (message.info.pending === 0) break;
  }
  return received;
}

async function eventsUntil(what: string, done: (events: Received[]) => boolean): Promise<Received[]> {
  return waitFor(what, async () => {
    const events = await storedEvents();
    return done(events) ? events : undefined;
  });
}

async function version(name: string): Promise<ModelVersion> {
  return (await h.api.get(kinds.ModelVersion, h.namespace, name)) as unknown as ModelVersion;
}

test('a TrainingJob registering a version publishes `registered` on the ModelVersion subject with its metrics, digest and lineage', async () => {
  await createJob(h, 'train-a', { registration: { stage: 'Staging' } });
  const job = await waitForPhase(h, 'train-a', ['Succeeded', 'Failed']);
  assert.is(job.status!.phase, 'Succeeded', job.status!.message);
  const mv = await version(job.status!.modelVersion!);
  const events = await eventsUntil('the registered event', (e) =>
    e.some((x) => x.event.type === 'dev.loopline.modelversion.registered'),
  );
  const registered = events.filter((x) => x.event.type === 'dev.loopline.modelversion.registered');
  assert.is(registered.length, 1);
  const { subject, event } = registered[0];
  assert.is(subject, `loopline.events.${h.namespace}.modelversion.${mv.metadata.name}`);
  assert.is(event.specversion, '1.0');
  assert.is(event.id, `${mv.metadata.uid}/registered`);
  assert.is(event.source, `/apis/loopline.dev/v1alpha1/namespaces/${h.namespace}/modelversions/${mv.metadata.name}`);
  assert.is(event.subject, mv.metadata.name);
  assert.is(event.data.model, 'credit-risk');
  assert.is(event.data.version, mv.spec.version);
  assert.is(event.data.trainingJob, 'train-a');
  assert.is(event.data.stage, 'Staging');
  assert.is(event.data.artifact.digest, mv.spec.artifact.digest);
  assert.match(event.data.artifact.digest, /^sha256:[0-9a-f]{64}$/);
  assert.equal(event.data.metrics, mv.spec.metrics);
  assert.ok(Object.keys(event.data.metrics).length > 0);
  assert.is(event.data.lineage.trainingJob, 'train-a');
  assert.equal(event.data.lineage.hyperparameters, { epochs: '40', rows: '800' });
});

test('promotion publishes `promoted`, the displaced version `archived`; one event per history entry, ids from uid + entry', async () => {
  const [v1] = await versionsOf(h, 'credit-risk');
  await h.api.mergePatch(
    kinds.ModelVersion,
    h.namespace,
    v1.metadata.name!,
    {
      metadata: { annotations: { 'loopline.dev/change-reason': 'first release' } },
      spec: { stage: 'Production', aliases: ['production'] },
    },
    'loopline-tests',
  );
  let events = await eventsUntil('the promoted event of v1', (e) =>
    e.some((x) => x.event.type === 'dev.loopline.modelversion.promoted'),
  );
  const promotedV1 = events.find((x) => x.event.type === 'dev.loopline.modelversion.promoted')!;
  const v1After = await version(v1.metadata.name!);
  const entry = v1After.status!.history!.at(-1)!;
  assert.is(promotedV1.subject, `loopline.events.${h.namespace}.modelversion.${v1.metadata.name}`);
  assert.is(promotedV1.event.id, historyEventId(v1.metadata.uid!, entry));
  assert.equal(
    [
      promotedV1.event.data.from,
      promotedV1.event.data.to,
      promotedV1.event.data.aliasesAdded,
      promotedV1.event.data.reason,
      promotedV1.event.data.at,
    ],
    ['Staging', 'Production', ['production'], 'first release', entry.at],
  );
  // Who asked, as the admission policy stamped it (the test's kubeconfig user), not a typed-in name.
  assert.ok(
    entry.by && entry.by !== 'unknown',
    `history entry ${JSON.stringify(entry)}; annotations ${JSON.stringify(v1After.metadata.annotations)}`,
  );
  assert.is(promotedV1.event.data.by, entry.by);
  assert.equal(promotedV1.event.data.aliases, ['production']);

  // A second version, registered directly, takes Production and the alias: v2 promoted, v1 archived.
  await h.api.create(
    kinds.ModelVersion,
    {
      apiVersion: 'loopline.dev/v1alpha1',
      kind: 'ModelVersion',
      metadata: { name: 'credit-risk-v99', namespace: h.namespace },
      spec: {
        model: 'credit-risk',
        version: 99,
        artifact: { uri: 'file:///models/credit-risk/99/model.onnx', digest: `sha256:${'9'.repeat(64)}` },
        metrics: { auc: 0.9 },
        stage: 'Staging',
      },
    } as never,
    'loopline-tests',
  );
  await h.api.mergePatch(
    kinds.ModelVersion,
    h.namespace,
    'credit-risk-v99',
    { spec: { stage: 'Production', aliases: ['production'] } },
    'loopline-tests',
  );
  // The two events come from separate history entries, published one after the other: wait for both.
  events = await eventsUntil(
    'the archived event of v1 and the promoted event of v99',
    (e) =>
      e.some((x) => x.event.type === 'dev.loopline.modelversion.archived') &&
      e.some((x) => x.subject.endsWith('.credit-risk-v99') && x.event.type === 'dev.loopline.modelversion.promoted'),
  );
  const archived = events.find((x) => x.event.type === 'dev.loopline.modelversion.archived')!;
  assert.is(archived.subject, `loopline.events.${h.namespace}.modelversion.${v1.metadata.name}`);
  assert.equal(
    [archived.event.data.from, archived.event.data.to, archived.event.data.aliasesRemoved],
    ['Production', 'Archived', ['production']],
  );
  assert.equal(archived.event.data.aliases, []);
  const promotedV99 = events.filter(
    (x) => x.subject.endsWith('.credit-risk-v99') && x.event.type === 'dev.loopline.modelversion.promoted',
  );
  assert.is(promotedV99.length, 1);
  assert.equal(
    [promotedV99[0].event.data.from, promotedV99[0].event.data.to, promotedV99[0].event.data.aliasesAdded],
    ['Staging', 'Production', ['production']],
  );

  // Let the registry settle (its own status writes trigger further reconciles), then compare the stream with the history.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  events = await storedEvents();
  const versions = await versionsOf(h, 'credit-risk');
  const expected = versions
    .flatMap((v) => (v.status?.history ?? []).map((e) => historyEventId(v.metadata.uid!, e)))
    .sort();
  const published = events
    .filter((x) => x.event.type !== 'dev.loopline.modelversion.registered')
    .map((x) => x.event.id)
    .sort();
  assert.equal(published, expected, 'exactly one event per history entry');

  // Publishing an entry again (a retried reconcile) carries the same id, and JetStream drops it.
  const v1Now = await version(v1.metadata.name!);
  const again = historyEvent(v1Now, v1Now.status!.history!.at(-1)!, v1Now.status!.aliases ?? []);
  await publisher.publish(again);
  assert.is((await storedEvents()).length, events.length);
});

test.run();
