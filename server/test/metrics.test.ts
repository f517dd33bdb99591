// Metrics: the names the issue asks for, labelled by model, version and outcome, the
// conventional http_request_duration_seconds with a status label, and the whole
// exposition passing `promtool check metrics` (built from Prometheus' Go module by `cluster.sh build`).
// test: no cluster
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startServer, type RunningServer } from '../src/server.ts';
import { Workspace, logisticModel, referenceProfile, testConfig } from './support/model.ts';
import { call, v2Rows } from './support/http.ts';

const ws = new Workspace();
const model = logisticModel(ws, 'credit.onnx', [0.2, 0.4, -0.6, 0.1], 0);
const profile = ws.write('profile.json', JSON.stringify(referenceProfile(3)));
let server: RunningServer;
let exposition = '';
let beforeFirstRequest = '';

test.before(async () => {
  server = await startServer(
    testConfig(model, {
      drift: { ...testConfig(model).drift, windowSize: 50 },
      model: {
        name: 'credit',
        version: '3',
        artifact: model.artifact,
        signature: model.signature,
        referenceProfile: profile,
      },
    }),
  );
  assert.ok(await server.loaded);
  beforeFirstRequest = (await call(server.url, 'GET', '/metrics')).text;
  for (let i = 0; i < 60; i++) await call(server.url, 'POST', '/predict', { features: [i / 30, 0, 1, i % 3] });
  await call(server.url, 'POST', '/v2/models/credit/infer', v2Rows([[1, 2, 3, 4]]));
  await call(server.url, 'POST', '/v2/models/credit/infer', { inputs: [] });
  await new Promise((r) => setTimeout(r, 200));
  exposition = (await call(server.url, 'GET', '/metrics')).text;
});
test.after(async () => {
  await server.close();
  ws.remove();
});

test('prediction counters and latency histograms are labelled by model, model version and outcome', () => {
  assert.match(exposition, /prediction_requests_total\{model="credit",model_version="3",outcome="success"\} 61/);
  assert.match(exposition, /prediction_requests_total\{model="credit",model_version="3",outcome="invalid_input"\} 1/);
  assert.match(
    exposition,
    /prediction_latency_seconds_bucket\{le="0.001",model="credit",model_version="3",outcome="success"\} \d+/,
  );
  assert.match(exposition, /prediction_latency_seconds_count\{model="credit",model_version="3",outcome="success"\} 61/);
});

test("once the model loads, before its first request, every outcome's request counter is exposed at 0, so Prometheus' increase() counts the first requests", () => {
  for (const outcome of ['success', 'invalid_input', 'unavailable', 'error']) {
    assert.match(
      beforeFirstRequest,
      new RegExp(`prediction_requests_total\\{model="credit",model_version="3",outcome="${outcome}"\\} 0\n`),
      outcome,
    );
    assert.match(
      beforeFirstRequest,
      new RegExp(`prediction_latency_seconds_count\\{model="credit",model_version="3",outcome="${outcome}"\\} 0\n`),
    );
  }
  assert.match(exposition, /prediction_requests_total\{model="credit",model_version="3",outcome="error"\} 0\n/);
});

test('batch sizes, model loaded and per-feature drift scores are exported', () => {
  assert.match(exposition, /prediction_batch_size_rows_count\{model="credit",model_version="3"\} \d+/);
  assert.match(exposition, /model_loaded\{model="credit",model_version="3"\} 1/);
  for (const feature of ['x0', 'x1', 'x2', 'region']) {
    assert.match(
      exposition,
      new RegExp(
        `drift_score\\{model="credit",model_version="3",feature="${feature}",method="(ks|chisquare)"\\} [0-9.e-]+`,
      ),
    );
  }
  assert.match(exposition, /drift_windows_total\{model="credit",model_version="3",drifted="(true|false)"\} 1/);
});

test('http_request_duration_seconds has method, route and status labels', () => {
  assert.match(exposition, /http_request_duration_seconds_count\{method="POST",route="\/predict",status="200"\} 60/);
  assert.match(
    exposition,
    /http_request_duration_seconds_count\{method="POST",route="\/v2\/models\/:model\/infer",status="400"\} 1/,
  );
});

test('promtool check metrics accepts the exposition without findings', () => {
  const run = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
  assert.ok(
    !run.error,
    `promtool not runnable (bash e2e/cluster/cluster.sh build; npm test puts it on PATH): ${run.error?.message}`,
  );
  assert.is(run.status, 0, `${run.stdout}${run.stderr}`);
  assert.is(`${run.stdout}${run.stderr}`.trim(), '');
});

test.run();
