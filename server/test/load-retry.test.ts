// test: no cluster
// A predictor whose model cannot be fetched when it starts (object storage down, the object not there yet)
// stays unready with the reason and keeps trying with backoff, so it becomes ready once the artifact can be
// read, with no pod restart; a digest mismatch is refused for good. Regression test for the chaos suite's S3
// scenario: the first failed load used to leave the predictor unready until someone restarted it.
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startServer } from '../src/server.ts';
import { Workspace, logisticModel, sha256, testConfig } from './support/model.ts';
import { call } from './support/http.ts';

const ws = new Workspace();
const model = logisticModel(ws, 'credit.onnx', [1, 2, 3], 0.5);

test.after(() => ws.remove());

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('a model that cannot be read at start is retried with backoff and served once it can be, without a restart', async () => {
  const later = join(ws.dir, 'arrives-later.onnx');
  const server = await startServer(
    testConfig({
      artifact: { uri: pathToFileURL(later).href, digest: model.artifact.digest },
      signature: model.signature,
    }),
  );
  try {
    assert.is(await server.loaded, false);
    const down = await call(server.url, 'GET', '/health');
    assert.is(down.status, 503);
    assert.match(String(down.body.error), 'arrives-later.onnx');
    assert.is((await call(server.url, 'GET', '/v2/health/ready')).status, 503);
    copyFileSync(model.artifact.path, later);
    await until('the predictor to become ready', async () =>
      (await call(server.url, 'GET', '/v2/health/ready')).status === 200 ? true : undefined,
    );
    const answer = await call(server.url, 'POST', '/predict', { features: [1, 0, -1] });
    assert.is(answer.status, 200);
    assert.ok(Math.abs(answer.body.prediction - model.expected([1, 0, -1])) < 1e-6);
  } finally {
    await server.close();
  }
});

test('an artifact whose digest does not match is refused for good, not retried', async () => {
  const wrong = ws.write('wrong.onnx', Buffer.concat([readFileSync(model.artifact.path), Buffer.from([0])]));
  const server = await startServer(
    testConfig({ artifact: { uri: wrong.uri, digest: model.artifact.digest }, signature: model.signature }),
  );
  try {
    assert.is(await server.loaded, false);
    // The right bytes at that URI now: a refused digest is not looked at again.
    copyFileSync(model.artifact.path, wrong.path);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const health = await call(server.url, 'GET', '/health');
    assert.is(health.status, 503);
    assert.match(
      String(health.body.error),
      `has digest ${sha256(Buffer.concat([readFileSync(model.artifact.path), Buffer.from([0])]))}`,
    );
  } finally {
    await server.close();
  }
});

test('a server stopped while it retries stops retrying and closes', async () => {
  const server = await startServer(
    testConfig({
      artifact: { uri: pathToFileURL(join(ws.dir, 'never.onnx')).href, digest: model.artifact.digest },
      signature: model.signature,
    }),
  );
  assert.is(await server.loaded, false);
  await server.close();
  assert.is(server.slot.state, 'stopping');
});

test.run();
