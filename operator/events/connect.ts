/** A NATS connection for the operator process (NATS_URL may list several servers, comma-separated). */
import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, type NatsConnection } from '@nats-io/transport-node';

export async function connectNats(
  settings: { url: string; credsFile?: string },
  name: string,
): Promise<NatsConnection> {
  return await connect({
    servers: settings.url.split(','),
    name,
    // The operator must outlive NATS restarts: keep reconnecting rather than give up.
    maxReconnectAttempts: -1,
    ...(settings.credsFile ? { authenticator: credsAuthenticator(readFileSync(settings.credsFile)) } : {}),
  });
}
