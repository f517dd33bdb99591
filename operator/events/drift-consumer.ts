/**
 * The durable JetStream consumer of drift events (`loopline.drift.<namespace>.<inferenceservice>`).
 * Durable and explicitly acked: events published while the operator is down wait for it, and an event is
 * acked only after its handler has recorded it, so a crash redelivers rather than loses it.
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { parseCloudEvent, type CloudEvent } from './cloudevents.ts';
import { driftSubjects } from '../api/contracts.ts';
import { STREAM_NAME } from './stream.ts';

export const DRIFT_SUBJECTS = driftSubjects();
export const DRIFT_CONSUMER = 'loopline-operator-drift';

export interface DriftEventTarget {
  namespace: string;
  inferenceService: string;
}

/** `loopline.drift.<namespace>.<name>` → its InferenceService. */
export function driftTarget(subject: string): DriftEventTarget | undefined {
  const parts = subject.split('.');
  if (parts.length !== 4 || parts[0] !== 'loopline' || parts[1] !== 'drift') return undefined;
  return { namespace: parts[2]!, inferenceService: parts[3]! };
}

export type DriftHandler = (event: CloudEvent, target: DriftEventTarget) => Promise<void>;

export interface DriftConsumerOptions {
  stream?: string;
  durable?: string;
  filterSubject?: string;
  /** Redelivery delay after a failed handler. */
  retryDelayMs?: number;
  log: Logger;
}

export interface DriftConsumer {
  stop(): Promise<void>;
  /** Resolves when the consume loop has ended (after stop or a fatal error). */
  done: Promise<void>;
}

export async function consumeDriftEvents(nc: NatsConnection, handle: DriftHandler, options: DriftConsumerOptions): Promise<DriftConsumer> {
  const stream = options.stream ?? STREAM_NAME;
  const durable = options.durable ?? DRIFT_CONSUMER;
  const jsm = await jetstreamManager(nc);
  const config = {
    durable_name: durable,
    filter_subject: options.filterSubject ?? DRIFT_SUBJECTS,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: 30_000_000_000,
    max_deliver: -1,
  };
  try {
    await jsm.consumers.info(stream, durable);
  } catch {
    await jsm.consumers.add(stream, config);
  }
  const consumer = await jetstream(nc).consumers.get(stream, durable);
  const messages: ConsumerMessages = await consumer.consume({ max_messages: 64 });
  const log = options.log;
  const done = (async () => {
    for await (const message of messages) {
      const target = driftTarget(message.subject);
      let event: CloudEvent;
      try {
        if (!target) throw new Error(`subject ${message.subject} is not loopline.drift.<namespace>.<inferenceservice>`);
        event = parseCloudEvent(message.data);
      } catch (error) {
        // A malformed event will never parse: drop it for good instead of redelivering it forever.
        log.warn({ subject: message.subject, err: error }, 'dropping malformed drift event');
        message.term();
        continue;
      }
      try {
        await handle(event, target);
        message.ack();
      } catch (error) {
        log.warn({ subject: message.subject, eventId: event.id, err: error }, 'drift event not handled; redelivering');
        message.nak(options.retryDelayMs ?? 1000);
      }
    }
  })();
  return {
    done,
    async stop() {
      await messages.close();
      await done;
    },
  };
}
