// NATS stopped and restarted mid-run (our own nats-server, same port and store dir):
// predictions go on unaffected, drift events wait in the bounded buffer and all arrive
// after the restart; past the bound the oldest are dropped and counted.
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startServer, type RunningServer } from '../src/server.ts';
import { Workspace, logisticModel, normal, random, referenceProfile, testConfig } from './support/model.ts';
import { NatsServer } from '../../test/support/nats.ts';
import { EventReader } from './support/jetstream.ts';
import { call } from './support/http.ts';

const ws = new Workspace();
const model = logisticModel(ws, 'credit.onnx', [0.5, 0.5, 0.5, 0.1], 0);
const profileArtifact = ws.write('profile.json', JSON.stringify(referenceProfile(3)));
const WINDOW = 20;
let nats: NatsServer;
let reader: EventReader;

async function serverWithBuffer(subject: string, bufferSize: number): Promise<RunningServer> {
  const server = await startServer(
    testConfig(model, {
      nats: { url: nats.url, subject, stream: 'LOOPLINE', bufferSize },
      drift: { ...testConfig(model).drift, windowSize: WINDOW, windowSeconds: 60 },
      model: {
        name: 'credit',
        version: '1',
        artifact: model.artifact,
        signature: model.signature,
        referenceProfile: profileArtifact,
      },
    }),
  );
  assert.ok(await server.loaded);
  return server;
}

/** `windows` full drift windows of predictions; every one must succeed, quickly. */
async function predictWindows(server: RunningServer, windows: number, seed: number): Promise<number> {
  const rand = random(seed);
  let slowest = 0;
  for (let w = 0; w < windows; w++) {
    for (let i = 0; i < WINDOW; i += 5) {
      const started = performance.now();
      const r = await call(server.url, 'POST', '/predict', {
        instances: Array.from({ length: 5 }, () => [normal(rand), normal(rand), normal(rand), 1]),
      });
      slowest = Math.max(slowest, performance.now() - started);
      assert.is(r.status, 200, r.text);
    }
  }
  return slowest;
}

async function metric(server: RunningServer, name: string): Promise<number> {
  const text = (await call(server.url, 'GET', '/metrics')).text;
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

async function waitForMetric(server: RunningServer, name: string, value: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while ((await metric(server, name)) !== value && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.is(await metric(server, name), value, name);
}

test.before(async () => {
  nats = await NatsServer.start();
  reader = await EventReader.open(nats.url);
});
test.after(async () => {
  await reader.close();
  await nats.stop();
  ws.remove();
});

test('NATS down mid-run: predictions unaffected, buffered events all arrive after restart', async () => {
  const subject = 'loopline.drift.outage.credit';
  const server = await serverWithBuffer(subject, 50);
  try {
    await predictWindows(server, 1, 1);
    await reader.waitFor(subject, 1);

    await nats.pause();
    const slowest = await predictWindows(server, 6, 2);
    assert.ok(slowest < 1000, `predictions stayed fast while NATS was down (slowest ${slowest.toFixed(1)} ms)`);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok((await metric(server, 'drift_events_buffered')) >= 6, 'events wait in the buffer');
    assert.is(await metric(server, 'drift_events_nats_connected'), 0);

    await nats.resume();
    const events = await reader.waitFor(subject, 7, 30_000);
    assert.is(events.length, 7, 'no event lost within the buffer bound');
    assert.is(new Set(events.map((e) => e.event.id)).size, 7);
    assert.is(await metric(server, 'drift_events_dropped_total'), 0);
    await waitForMetric(server, 'drift_events_buffered', 0);
    assert.is(await metric(server, 'drift_events_nats_connected'), 1);
  } finally {
    await server.close();
  }
});

test('past the buffer bound the oldest waiting events are dropped and counted', async () => {
  const subject = 'loopline.drift.overflow.credit';
  const server = await serverWithBuffer(subject, 3);
  try {
    await predictWindows(server, 1, 3);
    await reader.waitFor(subject, 1);
    await nats.pause();
    await predictWindows(server, 6, 4);
    await new Promise((r) => setTimeout(r, 300));
    assert.is(await metric(server, 'drift_events_dropped_total'), 3, 'six events into a buffer of three');
    await nats.resume();
    const events = await reader.waitFor(subject, 4, 30_000);
    // Once nothing waits in the buffer nothing more can arrive: every event the predictor kept has been stored.
    await waitForMetric(server, 'drift_events_buffered', 0);
    const all = new Set((await reader.all(subject)).map((e) => e.event.id));
    assert.is(all.size, 4, `1 before the outage + 3 buffered, got ${all.size}`);
    assert.ok(events.length >= 4);
  } finally {
    await server.close();
  }
});

test.run();
