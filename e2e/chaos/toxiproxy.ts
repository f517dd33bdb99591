/**
 * Toxiproxy (github.com/Shopify/toxiproxy/v2 v2.12.0, built by e2e/cluster/build-binaries.sh as
 * toxiproxy-server; `cluster.sh env` puts it on PATH): the chaos suite's fault-injection proxy. One server
 * process per suite and a client of the few calls of its HTTP API the suite makes (no library: six requests).
 * A proxy is a TCP listener in front of one upstream; toxics on it add latency, cap bandwidth, stall data
 * (timeout) or reset connections (reset_peer); disabling it closes its connections and refuses new ones.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort, sleep } from '../../test/support/local.ts';

export type ToxicType = 'latency' | 'bandwidth' | 'timeout' | 'reset_peer' | 'slow_close' | 'slicer' | 'limit_data';

export interface Toxic {
  name: string;
  type: ToxicType;
  /** upstream: data from the client to the server; downstream (Toxiproxy's default): server to client. */
  stream?: 'upstream' | 'downstream';
  /** Share of connections the toxic applies to, 0..1 (default 1). */
  toxicity?: number;
  /** latency {latency, jitter} ms; bandwidth {rate} KB/s; timeout {timeout} ms (0: never); reset_peer {timeout} ms. */
  attributes: Record<string, number>;
}

export interface Proxy {
  name: string;
  /** host:port it listens on (the port the OS chose when asked for 0). */
  listen: string;
  upstream: string;
  enabled: boolean;
  toxics: Toxic[];
}

export class ToxiproxyError extends Error {}

/** A client of one Toxiproxy server's HTTP API. */
export class Toxiproxy {
  constructor(readonly url: string) {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (!response.ok) throw new ToxiproxyError(`toxiproxy ${method} ${path}: HTTP ${response.status} ${text.trim()}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  async version(): Promise<string> {
    const response = await fetch(`${this.url}/version`, { signal: AbortSignal.timeout(2000) });
    if (!response.ok) throw new ToxiproxyError(`toxiproxy /version: HTTP ${response.status}`);
    const text = (await response.text()).trim();
    // 2.12 answers JSON ({"version": "..."}); older servers the bare version.
    try {
      return (JSON.parse(text) as { version: string }).version;
    } catch {
      return text;
    }
  }

  /** A proxy listening on `listen` (host:0 picks a free port, kept when the proxy is disabled and enabled again). */
  createProxy(name: string, listen: string, upstream: string): Promise<Proxy> {
    return this.call<Proxy>('POST', '/proxies', { name, listen, upstream, enabled: true });
  }

  proxy(name: string): Promise<Proxy> {
    return this.call<Proxy>('GET', `/proxies/${encodeURIComponent(name)}`);
  }

  /** Disabled: its connections are closed and new ones refused (the upstream looks down). */
  setEnabled(name: string, enabled: boolean): Promise<Proxy> {
    return this.call<Proxy>('POST', `/proxies/${encodeURIComponent(name)}`, { enabled });
  }

  addToxic(proxy: string, toxic: Toxic): Promise<Toxic> {
    return this.call<Toxic>('POST', `/proxies/${encodeURIComponent(proxy)}/toxics`, {
      stream: 'downstream',
      toxicity: 1,
      ...toxic,
    });
  }

  async removeToxic(proxy: string, toxic: string): Promise<void> {
    await this.call('DELETE', `/proxies/${encodeURIComponent(proxy)}/toxics/${encodeURIComponent(toxic)}`);
  }

  /** Every proxy enabled again, every toxic removed. */
  async reset(): Promise<void> {
    await this.call('POST', '/reset');
  }

  async deleteProxy(name: string): Promise<void> {
    await this.call('DELETE', `/proxies/${encodeURIComponent(name)}`);
  }
}

export interface ToxiproxyServer extends Toxiproxy {
  stop(): Promise<void>;
}

/** Starts toxiproxy-server with its API on a free loopback port and waits until it answers. */
export async function startToxiproxy(
  binary = process.env.TOXIPROXY_SERVER ?? 'toxiproxy-server',
): Promise<ToxiproxyServer> {
  const port = await freePort();
  const child: ChildProcess = spawn(binary, ['-host', '127.0.0.1', '-port', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr = (stderr + chunk).slice(-4000)));
  let spawnError: Error | undefined;
  child.once('error', (error) => (spawnError = error));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const client = new Toxiproxy(`http://127.0.0.1:${port}`) as ToxiproxyServer;
  for (let attempt = 0; ; attempt++) {
    if (spawnError) {
      throw new ToxiproxyError(
        `cannot start ${binary}: ${spawnError.message} (bash e2e/cluster/cluster.sh build builds it; eval "$(bash e2e/cluster/cluster.sh env)" puts it on PATH)`,
      );
    }
    if (
      await client.version().then(
        () => true,
        () => false,
      )
    )
      break;
    if (attempt > 100 || child.exitCode !== null)
      throw new ToxiproxyError(`toxiproxy-server did not answer on port ${port}: ${stderr}`);
    await sleep(50);
  }
  client.stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  };
  return client;
}
