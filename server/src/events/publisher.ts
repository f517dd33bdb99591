// Publishes events to NATS JetStream without ever blocking predictions: events wait
// in a bounded in-memory buffer while NATS is away and go out, in order, on reconnect.
// When the buffer is full the oldest waiting event is dropped and counted.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { ServerMetrics } from '../metrics/metrics.ts';

export interface PublisherOptions {
  servers: string;
  /** Stream created for `loopline.>` when no stream covers the subject yet. */
  stream: string;
  bufferSize: number;
  log: Logger;
  metrics: ServerMetrics;
}

interface OutgoingEvent {
  subject: string;
  id: string;
  payload: string;
}

const CONNECT_RETRY_MS = 500;
const PUBLISH_TIMEOUT_MS = 2000;
const PUBLISH_RETRY_MS = 250;

export class EventPublisher {
  private readonly queue: OutgoingEvent[] = [];
  private inFlight: OutgoingEvent | undefined;
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
  private streamReady = false;
  private closing = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private failing = false;

  constructor(private readonly options: PublisherOptions) {}

  start(): void {
    this.loop ??= this.run();
  }

  /** Queue an event; never waits for NATS. */
  publish(subject: string, id: string, event: unknown): void {
    if (this.closing) return;
    if (this.queue.length >= this.options.bufferSize) {
      // Keep the event being sent (it may already be stored); drop the oldest behind it.
      const victim = this.queue[0] === this.inFlight ? 1 : 0;
      const [dropped] = this.queue.splice(victim, 1);
      if (dropped) {
        this.options.metrics.eventsDropped.inc();
        this.options.log.warn(
          { eventId: dropped.id, subject: dropped.subject, bufferSize: this.options.bufferSize },
          'drift event buffer full; dropped the oldest event',
        );
      }
    }
    this.queue.push({ subject, id, payload: JSON.stringify(event) });
    this.options.metrics.eventsBuffered.set(this.queue.length);
    this.wake?.();
  }

  get buffered(): number {
    return this.queue.length;
  }

  /** Try to send what is buffered for up to flushMs, then disconnect. */
  async close(flushMs: number): Promise<void> {
    const deadline = Date.now() + flushMs;
    while (this.queue.length > 0 && this.nc && Date.now() < deadline) await sleep(20);
    this.closing = true;
    this.wake?.();
    if (this.queue.length > 0)
      this.options.log.warn({ unsent: this.queue.length }, 'closing with drift events still unsent');
    const nc = this.nc;
    this.nc = undefined;
    if (nc) await nc.close().catch(() => undefined);
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.closing) {
      const next = this.queue[0];
      if (!next) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      const js = await this.jetStream();
      if (!js) return;
      this.inFlight = next;
      try {
        if (!this.streamReady) await this.ensureStream(next.subject);
        await js.publish(next.subject, next.payload, { msgID: next.id, timeout: PUBLISH_TIMEOUT_MS });
        const at = this.queue.indexOf(next);
        if (at >= 0) this.queue.splice(at, 1);
        this.options.metrics.eventsPublished.inc();
        this.options.metrics.eventsBuffered.set(this.queue.length);
        if (this.failing)
          this.options.log.info({ buffered: this.queue.length }, 'drift events are being published again');
        this.failing = false;
      } catch (error) {
        if (!this.failing)
          this.options.log.warn({ err: error, buffered: this.queue.length }, 'drift event publish failed; will retry');
        this.failing = true;
        this.streamReady = false;
        await sleep(PUBLISH_RETRY_MS);
      } finally {
        this.inFlight = undefined;
      }
    }
  }

  /** The JetStream client once connected; the NATS client reconnects by itself after that. */
  private async jetStream(): Promise<JetStreamClient | undefined> {
    while (!this.js && !this.closing) {
      try {
        const nc = await connect({
          servers: this.options.servers,
          name: 'loopline-predictor',
          maxReconnectAttempts: -1,
          reconnectTimeWait: 250,
          reconnectJitter: 50,
        });
        if (this.closing) {
          await nc.close();
          return undefined;
        }
        this.nc = nc;
        this.js = jetstream(nc);
        this.options.metrics.natsConnected.set(1);
        this.options.log.info({ servers: this.options.servers }, 'connected to NATS');
        void this.watch(nc);
      } catch (error) {
        if (!this.failing)
          this.options.log.warn(
            { err: error, servers: this.options.servers },
            'NATS unreachable; drift events are buffered',
          );
        this.failing = true;
        await sleep(CONNECT_RETRY_MS);
      }
    }
    return this.closing ? undefined : this.js;
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') {
        this.options.metrics.natsConnected.set(0);
        this.options.log.warn({ server: status.server }, 'disconnected from NATS');
      } else if (status.type === 'reconnect') {
        this.options.metrics.natsConnected.set(1);
        this.options.log.info({ server: status.server }, 'reconnected to NATS');
      }
    }
    this.options.metrics.natsConnected.set(0);
  }

  private async ensureStream(subject: string): Promise<void> {
    const jsm = await jetstreamManager(this.nc!);
    try {
      await jsm.streams.find(subject);
    } catch {
      await jsm.streams.add({ name: this.options.stream, subjects: ['loopline.>'] });
      this.options.log.info({ stream: this.options.stream }, 'created JetStream stream for loopline.>');
    }
    this.streamReady = true;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
