// test: no cluster
// The Toxiproxy client against the real toxiproxy-server, in front of a plain HTTP server of the test's own.
import { createServer, request, type Server } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startToxiproxy, ToxiproxyError, type ToxiproxyServer } from '../toxiproxy.ts';

let toxiproxy: ToxiproxyServer;
let upstream: Server;
let listen = '';

/** GET / through the proxy on a fresh connection: the status, or the error code of a failed connection. */
function get(timeoutMs = 5000): Promise<{ status?: number; error?: string; ms: number }> {
  const started = Date.now();
  const [host, port] = listen.split(':');
  return new Promise((resolve) => {
    const req = request({ host, port: Number(port), path: '/', agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: Date.now() - started }));
      res.on('error', (error: NodeJS.ErrnoException) =>
        resolve({ error: error.code ?? error.message, ms: Date.now() - started }),
      );
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (error: NodeJS.ErrnoException) =>
      resolve({ error: error.code ?? error.message, ms: Date.now() - started }),
    );
    req.end();
  });
}

test.before(async () => {
  toxiproxy = await startToxiproxy();
  upstream = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const proxy = await toxiproxy.createProxy(
    'upstream',
    '127.0.0.1:0',
    `127.0.0.1:${(upstream.address() as { port: number }).port}`,
  );
  listen = proxy.listen;
});

test.after(async () => {
  await toxiproxy?.stop();
  upstream?.close();
});

test('the server reports version 2.12.0 and a proxy created on port 0 gets a real port that passes traffic', async () => {
  assert.is(await toxiproxy.version(), '2.12.0');
  assert.match(listen, /^127\.0\.0\.1:[1-9]\d*$/);
  assert.is((await get()).status, 200);
});

test('a disabled proxy refuses connections and passes them again on the same port once enabled', async () => {
  await toxiproxy.setEnabled('upstream', false);
  assert.is((await get()).error, 'ECONNREFUSED');
  const again = await toxiproxy.setEnabled('upstream', true);
  assert.is(again.listen, listen);
  assert.is((await get()).status, 200);
});

test('a latency toxic delays answers by at least its latency, and removing it ends the delay', async () => {
  await toxiproxy.addToxic('upstream', { name: 'slow', type: 'latency', attributes: { latency: 400, jitter: 0 } });
  assert.equal(
    (await toxiproxy.proxy('upstream')).toxics.map((t) => t.name),
    ['slow'],
  );
  const slow = await get();
  assert.is(slow.status, 200);
  assert.ok(slow.ms >= 400, `answered after ${slow.ms} ms`);
  await toxiproxy.removeToxic('upstream', 'slow');
  assert.equal((await toxiproxy.proxy('upstream')).toxics, []);
});

test('a reset_peer toxic resets connections; reset() removes every toxic', async () => {
  await toxiproxy.addToxic('upstream', {
    name: 'reset',
    type: 'reset_peer',
    stream: 'upstream',
    attributes: { timeout: 0 },
  });
  assert.is((await get()).error, 'ECONNRESET');
  await toxiproxy.reset();
  assert.is((await get()).status, 200);
});

test('a timeout toxic on the requests stalls the connection: no answer while it holds', async () => {
  // On the upstream stream the request never reaches the server (Toxiproxy still passes a close through).
  await toxiproxy.addToxic('upstream', {
    name: 'stall',
    type: 'timeout',
    stream: 'upstream',
    attributes: { timeout: 0 },
  });
  const stalled = await get(700);
  assert.is(stalled.error, 'TIMEOUT', JSON.stringify(stalled));
  await toxiproxy.removeToxic('upstream', 'stall');
  assert.is((await get()).status, 200);
});

test("an API error names the call and Toxiproxy's answer", async () => {
  try {
    await toxiproxy.addToxic('missing', { name: 'x', type: 'latency', attributes: { latency: 1 } });
    assert.unreachable('a toxic on a proxy that does not exist was accepted');
  } catch (error) {
    assert.instance(error, ToxiproxyError);
    assert.match((error as Error).message, /POST \/proxies\/missing\/toxics: HTTP 404/);
  }
});

test.run();
