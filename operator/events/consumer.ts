/**
 * The durable JetStream consumers of InferenceService events: drift (`loopline.drift.<namespace>.<inferenceservice>`)
 * and quality (`loopline.quality.<namespace>.<inferenceservice>`). Durable and explicitly acked: events published
 * while the operator is down wait for it, and an event is acked only after its handler has recorded it, so a
 * crash redelivers rather than loses it.
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { driftSubjects, qualitySubjects } from '../api/contracts.ts';
import { parseCloudEvent, type CloudEvent } from './cloudevents.ts';
import { STREAM_NAME } from './stream.ts';

export type InferenceServiceEventKind = 'drift' | 'quality';

const SUBJECTS: Record<InferenceServiceEventKind, (namespace?: string) => string> = {
  drift: driftSubjects,
  quality: qualitySubjects,
};

export interface EventTarget {
  namespace: string;
  inferenceService: string;
}

/** `loopline.<kind>.<namespace>.<name>` → its InferenceService. */
export function eventTarget(kind: InferenceServiceEventKind, subject: string): EventTarget | undefined {
  const parts = subject.split('.');
  if (parts.length !== 4 || parts[0] !== 'loopline' || parts[1] !== kind) return undefined;
  return { namespace: parts[2]!, inferenceService: parts[3]! };
}

export type EventHandler = (event: CloudEvent, target: EventTarget) => Promise<void>;

/** Thrown by a handler for an event that can never be handled (its data breaks the contract): dropped, not redelivered. */
export class MalformedEventError extends Error {}

export interface ConsumerOptions {
  stream?: string;
  /** Default `loopline-operator-<kind>`. */
  durable?: string;
  /** Default every subject of the kind. */
  filterSubject?: string;
  /** Redelivery delay after a failed handler. */
  retryDelayMs?: number;
  log: Logger;
}

export interface EventConsumer {
  stop(): Promise<void>;
  /** Resolves when the consume loop has ended (after stop or a fatal error). */
  done: Promise<void>;
}

export async function consumeInferenceServiceEvents(
  kind: InferenceServiceEventKind,
  nc: NatsConnection,
  handle: EventHandler,
  options: ConsumerOptions,
): Promise<EventConsumer> {
  const stream = options.stream ?? STREAM_NAME;
  const durable = options.durable ?? `loopline-operator-${kind}`;
  const jsm = await jetstreamManager(nc);
  const config = {
    durable_name: durable,
    filter_subject: options.filterSubject ?? SUBJECTS[kind](),
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
      const target = eventTarget(kind, message.subject);
      let event: CloudEvent;
      try {
        if (!target)
          throw new Error(`subject ${message.subject} is not loopline.${kind}.<namespace>.<inferenceservice>`);
        event = parseCloudEvent(message.data);
      } catch (error) {
        // A malformed event will never parse: drop it for good instead of redelivering it forever.
        log.warn({ subject: message.subject, err: error }, `dropping malformed ${kind} event`);
        message.term();
        continue;
      }
      try {
        await handle(event, target);
        message.ack();
      } catch (error) {
        if (error instanceof MalformedEventError) {
          log.warn({ subject: message.subject, eventId: event.id, err: error }, `dropping malformed ${kind} event`);
          message.term();
          continue;
        }
        log.warn(
          { subject: message.subject, eventId: event.id, err: error },
          `${kind} event not handled; redelivering`,
        );
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
