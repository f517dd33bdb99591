/**
 * `nats sub 'loopline.>'` for machines without the nats CLI: prints Loopline's lifecycle events and drift
 * reports as they arrive, one line each (or the raw CloudEvent JSON with --json).
 *
 *   npx tsx e2e/journey/watch-events.ts [--replay] [--json] [--server nats://127.0.0.1:4222] [subject ...]
 *
 * --replay first prints what the JetStream stream (LOOPLINE) still holds, then follows new events.
 * Subjects default to loopline.events.> and loopline.drift.>; NATS_URL or --server says where.
 */
import { parseArgs } from 'node:util';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { describeEvent, SUBJECTS } from './events.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    server: { type: 'string', default: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' },
    replay: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    stream: { type: 'string', default: process.env.NATS_STREAM ?? 'LOOPLINE' },
  },
});
const subjects = positionals.length ? positionals : SUBJECTS;
const nc = await connect({ servers: values.server!.split(','), name: 'loopline-watch-events' });

/** NATS subject matching: `*` is one token, `>` the rest. */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const t = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return t.length > i;
    if (i >= t.length || (p[i] !== '*' && p[i] !== t[i])) return false;
  }
  return p.length === t.length;
}

function print(subject: string, payload: string): void {
  if (values.json) {
    console.log(`${subject} ${payload}`);
    return;
  }
  try {
    const event = JSON.parse(payload);
    console.log(describeEvent({ subject, type: event.type, time: event.time, data: event.data }));
  } catch {
    console.log(`${subject} ${payload}`);
  }
}

// Subscribed before the replay: what arrives meanwhile waits in the subscription (a repeat is possible, a gap is not).
const live = subjects.map((subject) => nc.subscribe(subject));

if (values.replay) {
  // The whole stream, filtered here: several filter subjects need nats-server 2.10 (Debian 12 ships 2.9).
  const consumer = await jetstream(nc).consumers.get(values.stream!, { deliver_policy: DeliverPolicy.All });
  const pending = (await consumer.info()).num_pending;
  if (pending > 0) {
    const messages = await consumer.fetch({ max_messages: pending, expires: 5000 });
    let seen = 0;
    for await (const message of messages) {
      if (subjects.some((pattern) => matches(pattern, message.subject))) print(message.subject, message.string());
      if (++seen >= pending) break;
    }
  }
  console.log(`--- the stream's stored events above; following new ones (Ctrl-C to stop)`);
}

for (const subscription of live) {
  void (async () => {
    for await (const message of subscription) print(message.subject, message.string());
  })();
}
process.once('SIGINT', () => void nc.close().then(() => process.exit(0)));
