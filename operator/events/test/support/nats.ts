/**
 * A real nats-server with JetStream for tests: the runner's (NATS_URL) when given, else one started from
 * the Debian `nats-server` binary on a free port with a throw-away store (server/test/support/nats.ts).
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { natsForTest } from '../../../../server/test/support/nats.ts';

export interface TestNats {
  url: string;
  stop(): Promise<void>;
}

export const startNats: () => Promise<TestNats> = natsForTest;

export async function connectTo(nats: TestNats): Promise<NatsConnection> {
  return await connect({ servers: nats.url, name: 'loopline-test' });
}
