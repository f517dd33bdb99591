/**
 * A real nats-server with JetStream for tests: the runner's (NATS_URL) when given, else one started here
 * from the Debian `nats-server` binary on a free port with a throw-away store.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';

export interface TestNats {
  url: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function startNats(): Promise<TestNats> {
  if (process.env.NATS_URL) return { url: process.env.NATS_URL, stop: async () => {} };
  const port = await freePort();
  const store = mkdtempSync(join(tmpdir(), 'loopline-nats-'));
  const child: ChildProcess = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', store], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', (error) => {
    throw new Error(`cannot start nats-server (apt-get install nats-server, or set NATS_URL): ${error.message}`);
  });
  const url = `nats://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt++) {
    try {
      const nc = await connect({ servers: url, timeout: 500 });
      await nc.close();
      break;
    } catch (error) {
      if (attempt > 50) throw new Error(`nats-server on ${url} did not come up: ${(error as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      rmSync(store, { recursive: true, force: true });
    },
  };
}

export async function connectTo(nats: TestNats): Promise<NatsConnection> {
  return await connect({ servers: nats.url, name: 'loopline-test' });
}
