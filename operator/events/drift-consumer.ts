/** The durable consumer of drift events (`loopline.drift.<namespace>.<inferenceservice>`); see consumer.ts. */
import type { NatsConnection } from '@nats-io/transport-node';
import { driftSubjects } from '../api/contracts.ts';
import {
  consumeInferenceServiceEvents,
  eventTarget,
  type ConsumerOptions,
  type EventConsumer,
  type EventHandler,
  type EventTarget,
} from './consumer.ts';

export const DRIFT_SUBJECTS = driftSubjects();
export const DRIFT_CONSUMER = 'loopline-operator-drift';

export type DriftEventTarget = EventTarget;
export type DriftHandler = EventHandler;
export type DriftConsumerOptions = ConsumerOptions;
export type DriftConsumer = EventConsumer;

/** `loopline.drift.<namespace>.<name>` → its InferenceService. */
export function driftTarget(subject: string): DriftEventTarget | undefined {
  return eventTarget('drift', subject);
}

export async function consumeDriftEvents(
  nc: NatsConnection,
  handle: DriftHandler,
  options: DriftConsumerOptions,
): Promise<DriftConsumer> {
  return await consumeInferenceServiceEvents('drift', nc, handle, {
    ...options,
    durable: options.durable ?? DRIFT_CONSUMER,
  });
}
