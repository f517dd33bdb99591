// A real nats-server (Debian's package) with JetStream for tests, on a random loopback
// port and its own store dir, that can be stopped and restarted on the same port and
// store to simulate an outage.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { freePort } from './local.ts';

const BINARY = process.env.NATS_SERVER_BIN ?? 'nats-server';

async function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export class NatsServer {
  private child: ChildProcess | undefined;
  private log = '';

  private constructor(
    readonly port: number,
    readonly storeDir: string,
  ) {}

  static async start(): Promise<NatsServer> {
    const server = new NatsServer(await freePort(), mkdtempSync(join(tmpdir(), 'loopline-nats-')));
    await server.resume();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** (Re)start on the same port and store dir; resolves once the port accepts connections. */
  async resume(): Promise<void> {
    if (this.child) return;
    const child = spawn(BINARY, ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.storeDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d) => (this.log += d));
    child.stderr!.on('data', (d) => (this.log += d));
    this.child = child;
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`nats-server exited with ${code}: ${this.log.slice(-2000)}`))),
    );
    const deadline = Date.now() + 10_000;
    while (!(await Promise.race([accepting(this.port), exited]))) {
      if (Date.now() > deadline) throw new Error(`nats-server did not start on ${this.port}: ${this.log.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    // JetStream is up shortly after the listener; the readiness line says so.
    while (!this.log.includes('Server is ready')) {
      if (Date.now() > deadline) throw new Error(`nats-server not ready: ${this.log.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Stop the process (as in an outage); the store dir is kept. */
  async pause(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    this.log = '';
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    await this.pause();
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}

/** The local cluster's NATS (JetStream) URL; a clear error when the suite runs outside `cluster.sh env`. */
export function requireNatsUrl(): string {
  const url = process.env.NATS_URL;
  if (!url)
    throw new Error(
      'NATS_URL is not set: eval "$(bash e2e/cluster/cluster.sh env)" (the local cluster runs nats-server with JetStream)',
    );
  return url;
}

/** NATS_URL from the test runner, or a server of our own. */
export async function natsForTest(): Promise<{ url: string; stop: () => Promise<void> }> {
  if (process.env.NATS_URL) return { url: process.env.NATS_URL, stop: async () => undefined };
  const server = await NatsServer.start();
  return { url: server.url, stop: () => server.stop() };
}

export interface TestNats {
  url: string;
  stop(): Promise<void>;
}

/** The runner's NATS (NATS_URL) when given, else a server of our own: what the operator's event tests use. */
export const startNats: () => Promise<TestNats> = natsForTest;

export async function connectTo(nats: TestNats): Promise<NatsConnection> {
  return await connect({ servers: nats.url, name: 'loopline-test' });
}
