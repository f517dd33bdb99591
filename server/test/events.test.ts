// Drift events end to end: live rows through HTTP, a window closing, a CloudEvents 1.0
// event in NATS JetStream (real nats-server) with the scores recomputed here from the
// rows that were sent.
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startServer, type RunningServer } from '../src/server.ts';
import { categoricalStatistics, numericStatistics } from '../src/drift/detector.ts';
import type { CategoricalFeatureProfile, NumericFeatureProfile } from '../src/drift/profile.ts';
import { Workspace, logisticModel, normal, random, referenceProfile, testConfig } from './support/model.ts';
import { natsForTest } from '../../test/support/nats.ts';
import { EventReader } from './support/jetstream.ts';
import { call } from './support/http.ts';

const ws = new Workspace();
const model = logisticModel(ws, 'credit.onnx', [0.5, 0.5, 0.5, 0.1], 0);
const profile = referenceProfile(3, 11);
const profileArtifact = ws.write('profile.json', JSON.stringify(profile));
const namespace = `events${Date.now().toString(36)}`;
const subject = `loopline.drift.${namespace}.credit`;
const WINDOW = 200;
let nats: { url: string; stop: () => Promise<void> };
let reader: EventReader;
let server: RunningServer;

test.before(async () => {
  nats = await natsForTest();
  reader = await EventReader.open(nats.url);
  server = await startServer(
    testConfig(model, {
      namespace,
      inferenceService: 'credit',
      nats: { url: nats.url, subject, stream: 'LOOPLINE', bufferSize: 100 },
      drift: { ...testConfig(model).drift, windowSize: WINDOW, windowSeconds: 60 },
      model: {
        name: 'credit',
        version: '5',
        artifact: model.artifact,
        signature: model.signature,
        referenceProfile: profileArtifact,
      },
    }),
  );
  assert.ok(await server.loaded);
});
test.after(async () => {
  await server.close();
  await reader.close();
  await nats.stop();
  ws.remove();
});

test('a closed window is published as a CloudEvent with per-feature scores matching the rows sent', async () => {
  const rand = random(99);
  // x0 moves by two standard deviations, x1 and x2 stay, region tilts to category 2.
  const rows = Array.from({ length: WINDOW }, (_, i) => [
    normal(rand, 2),
    normal(rand),
    normal(rand),
    i % 10 < 6 ? 2 : i % 2,
  ]);
  for (let i = 0; i < rows.length; i += 20) {
    const r = await call(server.url, 'POST', '/predict', { instances: rows.slice(i, i + 20) });
    assert.is(r.status, 200, r.text);
  }
  const [received] = await reader.waitFor(subject, 1);
  const { event, msgId } = received;
  assert.is(event.specversion, '1.0');
  assert.match(event.id, /^[0-9a-f-]{36}$/);
  assert.is(msgId, event.id, 'JetStream deduplicates on the event id');
  assert.is(event.type, 'dev.loopline.drift.window.v1');
  assert.is(event.source, `/apis/loopline.dev/v1alpha1/namespaces/${namespace}/inferenceservices/credit`);
  assert.is(event.datacontenttype, 'application/json');
  assert.ok(!Number.isNaN(Date.parse(event.time)));
  const data = event.data;
  assert.is(data.namespace, namespace);
  assert.is(data.inferenceService, 'credit');
  assert.is(data.model, 'credit');
  assert.is(data.modelVersion, '5');
  assert.is(data.window.rows, WINDOW);
  assert.is(data.window.closedBy, 'count');
  assert.ok(Date.parse(data.window.start) <= Date.parse(data.window.end));
  assert.is(data.schemaViolations, 0);
  assert.equal(
    data.features.map((f: { name: string }) => f.name),
    ['x0', 'x1', 'x2', 'region'],
  );

  // Recompute every statistic from the rows as the model saw them (FP32).
  for (let j = 0; j < 3; j++) {
    const values = rows.map((row) => Math.fround(row[j]));
    const expected = numericStatistics(profile.features[j] as NumericFeatureProfile, values);
    const got = data.features[j];
    assert.is(got.method, 'ks');
    for (const key of Object.keys(expected) as Array<keyof typeof expected>) {
      assert.ok(
        Math.abs(got.statistics[key] - expected[key]) < 1e-9,
        `x${j} ${key}: ${got.statistics[key]} vs ${expected[key]}`,
      );
    }
    assert.is(got.score, expected.ksPValue);
    assert.is(got.drifted, expected.ksPValue < 0.05);
  }
  const region = categoricalStatistics(
    profile.features[3] as CategoricalFeatureProfile,
    rows.map((r) => r[3]),
  );
  assert.is(data.features[3].method, 'chisquare');
  assert.ok(Math.abs(data.features[3].statistics.chiSquare - region.chiSquare) < 1e-9);
  assert.is(data.features[3].score, region.chiSquarePValue);

  assert.ok(data.features[0].drifted, 'x0 drifted');
  assert.ok(data.features[3].drifted, 'region drifted');
  const drifted = data.features.filter((f: { drifted: boolean }) => f.drifted).map((f: { name: string }) => f.name);
  assert.equal(data.driftedFeatures, drifted);
  assert.is(data.score, drifted.length / 4);
  assert.is(data.drifted, data.score >= 0.5);
});

test('rejected inputs are counted as schema violations of the next window', async () => {
  const bad = await call(server.url, 'POST', '/predict', { features: [1, 2] });
  assert.is(bad.status, 400);
  const rand = random(5);
  const rows = Array.from({ length: WINDOW }, () => [normal(rand), normal(rand), normal(rand), 0]);
  const r = await call(server.url, 'POST', '/predict', { instances: rows });
  assert.is(r.status, 200);
  const events = await reader.waitFor(subject, 2);
  const second = events.find((e) => e.event.data.schemaViolations > 0);
  assert.ok(second, 'the second window carries the violation');
  assert.is(second!.event.data.schemaViolations, 1);
  const metrics = (await call(server.url, 'GET', '/metrics')).text;
  assert.match(metrics, /drift_events_published_total 2/);
});

test.run();
