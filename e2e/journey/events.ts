/**
 * Loopline's events as a NATS subscriber sees them: lifecycle events on `loopline.events.>` and drift
 * reports on `loopline.drift.>` (CloudEvents 1.0 JSON), collected in arrival order.
 */
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';

export interface SeenEvent {
  subject: string;
  type: string;
  id: string;
  time: string;
  data: any;
  receivedAt: number;
}

export const SUBJECTS = ['loopline.events.>', 'loopline.drift.>'];

/** One line per event, for logs and `watch-events.ts`. */
export function describeEvent(event: Pick<SeenEvent, 'subject' | 'type' | 'time' | 'data'>): string {
  const d = event.data ?? {};
  let summary: string;
  if (event.type.startsWith('dev.loopline.drift')) {
    summary = `v${d.modelVersion} score ${d.score} drifted=${d.drifted} features [${(d.driftedFeatures ?? []).join(', ')}] rows ${d.window?.rows}`;
  } else {
    summary = d.message ?? JSON.stringify(d).slice(0, 160);
  }
  return `${event.time}  ${event.subject}  ${event.type}  ${summary}`;
}

export class EventLog {
  readonly events: SeenEvent[] = [];
  private constructor(
    private readonly nc: NatsConnection,
    private readonly subscriptions: Subscription[],
  ) {}

  static async connect(url: string, subjects = SUBJECTS): Promise<EventLog> {
    const nc = await connect({ servers: url.split(','), name: 'loopline-journey' });
    const log = new EventLog(
      nc,
      subjects.map((s) => nc.subscribe(s)),
    );
    for (const subscription of log.subscriptions) {
      void (async () => {
        for await (const message of subscription) {
          try {
            const event = message.json<{ type: string; id: string; time: string; data: unknown }>();
            log.events.push({
              subject: message.subject,
              type: event.type,
              id: event.id,
              time: event.time,
              data: event.data,
              receivedAt: Date.now(),
            });
          } catch {
            log.events.push({
              subject: message.subject,
              type: '(not JSON)',
              id: '',
              time: '',
              data: message.string(),
              receivedAt: Date.now(),
            });
          }
        }
      })();
    }
    await nc.flush();
    return log;
  }

  /** Events whose subject starts with `prefix` and whose type ends with `typeSuffix`. */
  find(prefix: string, typeSuffix = ''): SeenEvent[] {
    return this.events.filter((e) => e.subject.startsWith(prefix) && e.type.endsWith(typeSuffix));
  }

  async close(): Promise<void> {
    await this.nc.drain().catch(() => undefined);
  }
}
