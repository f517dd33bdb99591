/**
 * Lifecycle events (canary started, promoted, rolled back, retrain started, ...) on
 * `loopline.events.<namespace>.<kind>.<name>`, as CloudEvents through JetStream.
 */
import { LIFECYCLE_EVENT_TYPE_PREFIX, lifecycleSubject } from '../api/contracts.ts';
import type { Logger } from 'pino';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { cloudEvent, objectSource, type CloudEvent } from './cloudevents.ts';

export const EVENT_TYPE_PREFIX = LIFECYCLE_EVENT_TYPE_PREFIX;

export interface LifecycleEvent {
  /** Lower-case kind: `inferenceservice`, `trainingjob`, `modelversion`. */
  kind: string;
  namespace: string;
  name: string;
  /** Short reason, e.g. `promoted`, `rolledback`; becomes `dev.loopline.<kind>.<reason>`. */
  reason: string;
  data: Record<string, unknown>;
  /**
   * Stable id for this happening (e.g. `<uid>/promoted/v3`): a reconcile retried after a crash publishes
   * the same id again and JetStream drops the repeat inside its duplicate window.
   */
  id?: string;
}

export { lifecycleSubject };

export class LifecyclePublisher {
  private readonly js: JetStreamClient;

  constructor(nc: NatsConnection) {
    this.js = jetstream(nc);
  }

  async publish(event: LifecycleEvent): Promise<CloudEvent> {
    const envelope = cloudEvent({
      type: `${EVENT_TYPE_PREFIX}${event.kind}.${event.reason}`,
      source: objectSource(`${event.kind}s`, event.namespace, event.name),
      subject: event.name,
      data: event.data,
      ...(event.id ? { id: event.id } : {}),
    });
    await this.js.publish(lifecycleSubject(event.kind, event.namespace, event.name), JSON.stringify(envelope), {
      msgID: envelope.id,
    });
    return envelope;
  }
}

/**
 * Publishes when a publisher is configured (NATS_URL). A failure is logged, not thrown: the change is
 * recorded in the cluster (status, Kubernetes Event) whether or not NATS heard of it, and losing a
 * notification must not stall a reconcile.
 */
export async function publishLifecycle(
  publisher: LifecyclePublisher | undefined,
  event: LifecycleEvent,
  log: Logger,
): Promise<void> {
  if (!publisher) return;
  try {
    await publisher.publish(event);
  } catch (error) {
    log.warn({ err: error, reason: event.reason, eventId: event.id }, 'lifecycle event not published');
  }
}
