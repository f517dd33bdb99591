import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** /metrics, /healthz and /readyz on node:http: three fixed routes need no framework. */
export function serveProbes(options: { registry: Registry; isReady: () => boolean; isHealthy: () => boolean }): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    if (path === '/metrics') {
      options.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': options.registry.contentType }).end(text),
        (err) => res.writeHead(500).end(String(err)),
      );
    } else if (path === '/healthz' || path === '/livez') {
      const ok = options.isHealthy();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok' : 'unhealthy');
    } else if (path === '/readyz') {
      const ok = options.isReady();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok' : 'caches not synced');
    } else {
      res.writeHead(404).end();
    }
  });
}

export function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server.address() as AddressInfo));
  });
}
