// Reading drift events back from JetStream in tests.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';

const REQUEST_TIMEOUT_MS = 1000;

export interface ReceivedEvent {
  event: any;
  msgId: string | undefined;
}

export class EventReader {
  private constructor(private readonly nc: NatsConnection) {}

  static async open(url: string): Promise<EventReader> {
    return new EventReader(await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 250 }));
  }

  /** Every event stored so far on `subject` (empty when no stream covers it yet). */
  async all(subject: string): Promise<ReceivedEvent[]> {
    // A request sent while the connection is coming back after an outage may never be answered; waitFor polls
    // again sooner than the client's default 5 s request timeout would.
    const jsm = await jetstreamManager(this.nc, { timeout: REQUEST_TIMEOUT_MS });
    let stream: string;
    try {
      stream = await jsm.streams.find(subject);
    } catch {
      return [];
    }
    // Stored messages read one by one: Debian's nats-server 2.9 has no multi-filter consumers.
    const info = await jsm.streams.info(stream);
    const out: ReceivedEvent[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const msg = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
      if (!msg || msg.subject !== subject) continue;
      out.push({ event: msg.json(), msgId: msg.header?.get('Nats-Msg-Id') });
    }
    return out;
  }

  /** Poll until `count` distinct events are stored on `subject`, or fail after `timeoutMs`. */
  async waitFor(subject: string, count: number, timeoutMs = 20_000): Promise<ReceivedEvent[]> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const events = await this.all(subject).catch(() => []);
      const distinct = new Map(events.map((e) => [e.event.id, e]));
      if (distinct.size >= count) return [...distinct.values()];
      if (Date.now() > deadline) throw new Error(`only ${distinct.size} of ${count} events on ${subject}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async close(): Promise<void> {
    await this.nc.close();
  }
}
