// Hot swap under load with zero failed requests, and graceful shutdown of the real
// entry point (server/src/main.ts as a child process): readiness false, in-flight
// requests drained, exit 0.
// test: no cluster
import { freePort } from '../../test/support/local.ts';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startServer, type RunningServer } from '../src/server.ts';
import { Workspace, logisticModel, referenceProfile, testConfig } from './support/model.ts';
import { call, ADMIN_TOKEN, swapModel } from './support/http.ts';
import { spawnPredictor, waitReady } from './support/predictor-process.ts';

const ws = new Workspace();
const v1 = logisticModel(ws, 'v1.onnx', [1, -1, 0.5, 0.25], 0);
const v2 = logisticModel(ws, 'v2.onnx', [-2, 0.5, 1, -0.75], 1);

interface LoadResult {
  statuses: Map<number, number>;
  versions: string[];
  wrong: number;
}

/** `clients` loops posting rows until stopped; checks every answer against the version that gave it. */
function load(url: string, clients: number): { stop: () => Promise<LoadResult> } {
  let running = true;
  const result: LoadResult = { statuses: new Map(), versions: [], wrong: 0 };
  const loops = Array.from({ length: clients }, async (_, c) => {
    let i = 0;
    while (running) {
      const row = [c / 10, (i % 7) / 3, 1, -(i % 5)];
      i++;
      try {
        const r = await call(url, 'POST', '/predict', { features: row });
        result.statuses.set(r.status, (result.statuses.get(r.status) ?? 0) + 1);
        if (r.status === 200) {
          result.versions.push(r.body.model_version);
          const expected = (r.body.model_version === '1' ? v1 : v2).expected(row);
          if (
            Math.abs(r.body.prediction - expected) > 1e-6 ||
            r.headers.get('x-model-version') !== r.body.model_version
          )
            result.wrong++;
        }
      } catch {
        result.statuses.set(-1, (result.statuses.get(-1) ?? 0) + 1);
      }
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return result;
    },
  };
}

test('hot swap under concurrent load fails no request and switches every new request to the new version', async () => {
  const server: RunningServer = await startServer(testConfig(v1, { adminToken: ADMIN_TOKEN }));
  try {
    assert.ok(await server.loaded);
    const traffic = load(server.url, 16);
    await new Promise((r) => setTimeout(r, 400));
    const unauthorized = await call(server.url, 'PUT', '/admin/model', {
      version: '2',
      uri: v2.artifact.uri,
      digest: v2.artifact.digest,
    });
    assert.is(unauthorized.status, 401);
    const refused = await swapModel(server.url, { version: '2', uri: v2.artifact.uri, digest: v1.artifact.digest });
    assert.is(refused.status, 400);
    assert.match(refused.body.error, /refusing to serve/);
    const swapped = await swapModel(server.url, {
      version: '2',
      uri: v2.artifact.uri,
      digest: v2.artifact.digest,
      signature: v2.signature,
    });
    assert.is(swapped.status, 200, swapped.text);
    assert.equal(swapped.body, { model_name: 'credit', model_version: '2', previous_version: '1' });
    await new Promise((r) => setTimeout(r, 400));
    const result = await traffic.stop();
    assert.equal([...result.statuses.keys()], [200], `statuses: ${JSON.stringify([...result.statuses])}`);
    assert.is(result.wrong, 0, 'every prediction matches the version that answered it');
    const firstV2 = result.versions.indexOf('2');
    assert.ok(result.versions.indexOf('1') >= 0 && firstV2 > 0, 'both versions answered');
    assert.ok(result.versions.filter((v) => v === '2').length > 20, 'the new version took the traffic');
    assert.is((await call(server.url, 'GET', '/health')).body.model_version, '2');
    const metrics = (await call(server.url, 'GET', '/metrics')).text;
    assert.match(metrics, /model_loaded\{model="credit",model_version="1"\} 0/);
    assert.match(metrics, /model_loaded\{model="credit",model_version="2"\} 1/);
  } finally {
    await server.close();
  }
});

test('graceful shutdown of main.ts on SIGTERM: readiness false, predictions still answered during the delay, in-flight requests finish, exit 0', async () => {
  const profile = ws.write('profile.json', JSON.stringify(referenceProfile(3)));
  const predictor = await spawnPredictor({
    GRPC_PORT: String(await freePort()),
    MODEL_NAME: 'credit',
    MODEL_VERSION: '1',
    MODEL_URI: v1.artifact.uri,
    MODEL_DIGEST: v1.artifact.digest,
    MODEL_SIGNATURE: JSON.stringify(v1.signature),
    REFERENCE_PROFILE_URI: profile.uri,
    REFERENCE_PROFILE_DIGEST: profile.digest,
    NATS_URL: '',
    SHUTDOWN_DELAY_MS: '600',
  });
  const { child, url, exited } = predictor;
  try {
    await waitReady(predictor, 30_000);
    // A long streamed scoring request is in flight when SIGTERM arrives.
    const rows = Array.from({ length: 20000 }, (_, i) => JSON.stringify([i / 1000, 1, 0, -1])).join('\n');
    const stream = fetch(`${url}/predict/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: rows,
    }).then((r) => r.text());
    await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGTERM');
    const signalled = Date.now();
    // Readiness turns false once SIGTERM has reached the serving process (through the primary when there are
    // workers), and stays false for SHUTDOWN_DELAY_MS before the port closes: a poll must see the 503.
    let duringDrain = 0;
    for (const deadline = Date.now() + 5000; Date.now() < deadline && duringDrain !== 503; ) {
      duringDrain = await fetch(`${url}/v2/health/ready`).then(
        (r) => r.status,
        () => -1,
      );
      if (duringDrain === -1) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.is(duringDrain, 503, 'readiness is false while draining, before the port closes');
    // A gateway that has not yet seen the endpoint go still sends requests: they are answered, not refused.
    const routedLate = await fetch(`${url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ features: [0.5, 1, 0, -1] }),
    }).then(
      async (r) => `${r.status} ${await r.text()}`,
      (error: Error) => `refused: ${error.message}`,
    );
    assert.match(routedLate, /^200 /, `a prediction while draining is answered: ${routedLate}`);
    const lines = (await stream).trim().split('\n');
    const summary = JSON.parse(lines[lines.length - 1]);
    assert.is(summary.summary.rows, 20000, 'the in-flight stream was answered in full');
    assert.is(summary.summary.errors, 0);
    assert.is(await exited, 0, predictor.output());
    assert.ok(
      Date.now() - signalled < 10_000,
      `exit took ${Date.now() - signalled} ms after SIGTERM (keep-alive connections must not hold it)`,
    );
    assert.match(predictor.output(), /predictor stopped/);
  } finally {
    child.kill('SIGKILL');
  }
});

test.after(() => ws.remove());
test.run();
