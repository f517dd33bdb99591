// Every core of a pod: main.ts with WORKERS=2 as a child process, as a pod runs it. Both workers answer on
// the one HTTP port (and gRPC port), /metrics aggregates them into one target's worth of series, a hot
// swap through one worker's admin route reaches both, a worker that dies comes back on the swapped version,
// and SIGTERM stops the pod cleanly.
// test: no cluster
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultWorkers } from '../src/cpus.ts';
import { freePort } from '../../test/support/local.ts';
import { InferenceClient } from './support/grpc.ts';
import { call, ADMIN_TOKEN, swapModel } from './support/http.ts';
import { Workspace, logisticModel, referenceProfile } from './support/model.ts';
import { spawnPredictor, waitReady } from './support/predictor-process.ts';

const ws = new Workspace();
const v1 = logisticModel(ws, 'v1.onnx', [1, -1, 0.5, 0.25], 0);
const v2 = logisticModel(ws, 'v2.onnx', [-2, 0.5, 1, -0.75], 1);
const profile = ws.write('profile.json', JSON.stringify(referenceProfile(3)));
const close = (a: number, b: number) => Math.abs(a - b) < 1e-6;

/** One /predict on a connection of its own (so the primary hands each to the next worker): version, request id, prediction. */
function predictFresh(url: string, row: number[]): Promise<{ version: string; requestId: string; prediction: number }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/predict`,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`${res.statusCode} ${text}`));
          const body = JSON.parse(text);
          resolve({ version: body.model_version, requestId: body.request_id, prediction: body.prediction });
        });
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ features: row }));
  });
}

/** Request ids are a random per-process prefix and a counter: the prefix tells which worker answered. */
const processOf = (requestId: string) => requestId.slice(0, 24);
const childPids = (pid: number) =>
  readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
const metric = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);

test('the default worker count follows the cgroup CPU limit, rounded down, within the available cores', () => {
  const files = (entries: Record<string, string>) => (path: string) => {
    if (!(path in entries)) throw new Error(`ENOENT ${path}`);
    return entries[path];
  };
  const cores = defaultWorkers(files({}));
  assert.ok(cores >= 1, 'no cgroup files: the available cores');
  assert.is(defaultWorkers(files({ '/sys/fs/cgroup/cpu.max': 'max 100000\n' })), cores);
  assert.is(
    defaultWorkers(files({ '/sys/fs/cgroup/cpu.max': '50000 100000\n' })),
    1,
    'half a CPU still gets one worker',
  );
  assert.is(
    defaultWorkers(files({ '/sys/fs/cgroup/cpu.max': '150000 100000\n' })),
    1,
    '1.5 CPUs: one worker, not two throttled ones',
  );
  assert.is(
    defaultWorkers(files({ '/sys/fs/cgroup/cpu.max': '6400000 100000\n' })),
    cores,
    'never more than the cores',
  );
  assert.is(
    defaultWorkers(
      files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '100000', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' }),
    ),
    1,
    'cgroup v1',
  );
  assert.is(
    defaultWorkers(
      files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' }),
    ),
    cores,
    'cgroup v1 without a limit',
  );
});

test('two workers answer on one port, /metrics counts both, a swap reaches both, a dead worker returns on the new version', async () => {
  const grpcPort = await freePort();
  const predictor = await spawnPredictor({
    WORKERS: '2',
    GRPC_PORT: String(grpcPort),
    MODEL_NAME: 'credit',
    MODEL_VERSION: '1',
    MODEL_URI: v1.artifact.uri,
    MODEL_DIGEST: v1.artifact.digest,
    MODEL_SIGNATURE: JSON.stringify(v1.signature),
    REFERENCE_PROFILE_URI: profile.uri,
    REFERENCE_PROFILE_DIGEST: profile.digest,
    DRIFT_WINDOW_SIZE: '100',
    ADMIN_TOKEN,
  });
  const { child, url, exited, output } = predictor;
  const grpc = new InferenceClient(grpcPort);
  try {
    // Ready means both workers: their metrics are in the pod's /metrics.
    await waitReady(
      predictor,
      60_000,
      async () =>
        metric((await call(url, 'GET', '/metrics').catch(() => ({ text: '' }))).text, /^predictor_workers (\d+)/m) ===
        2,
    );
    assert.is(childPids(child.pid!).length, 2, 'the primary forked two workers');

    const rows = Array.from({ length: 200 }, (_, i) => [i / 50, 1, (i % 5) - 2, 0.5]);
    const answers = await Promise.all(rows.map((row) => predictFresh(url, row)));
    answers.forEach((a, i) => assert.ok(a.version === '1' && close(a.prediction, v1.expected(rows[i])), `row ${i}`));
    assert.is(new Set(answers.map((a) => processOf(a.requestId))).size, 2, 'both workers answered');
    for (let i = 0; i < 10; i++)
      assert.is(
        (
          await grpc.call('ModelInfer', {
            model_name: 'credit',
            inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: rows[i] } }],
          })
        ).response.model_version,
        '1',
      );

    const metrics = (await call(url, 'GET', '/metrics')).text;
    assert.is(metric(metrics, /^predictor_workers (\d+)/m), 2);
    assert.is(
      metric(metrics, /^prediction_requests_total\{model="credit",model_version="1",outcome="success"\} (\d+)/m),
      210,
      'every request of both workers, counted once',
    );
    assert.is(
      metric(metrics, /^prediction_latency_seconds_count\{model="credit",model_version="1",outcome="success"\} (\d+)/m),
      210,
      'histogram counts summed',
    );
    assert.is(
      metric(
        metrics,
        /^prediction_latency_seconds_bucket\{le="\+Inf",model="credit",model_version="1",outcome="success"\} (\d+)/m,
      ),
      210,
      'histogram buckets summed',
    );
    assert.is(
      metric(metrics, /^model_loaded\{model="credit",model_version="1"\} (\d+)/m),
      1,
      'a gauge every worker sets to 1 stays 1',
    );
    assert.is(
      (metrics.match(/^# TYPE prediction_requests_total /gm) ?? []).length,
      1,
      "one family per metric: one target's worth of series",
    );
    const promtool = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
    assert.is(promtool.status, 0, `promtool check metrics on the aggregate: ${promtool.stdout}${promtool.stderr}`);
    // 200 rows in 100-row windows: each worker closed its own windows (independent, as replicas' are), 2 in all.
    const windowDeadline = Date.now() + 10_000;
    while (
      metric(
        (await call(url, 'GET', '/metrics')).text,
        /^drift_windows_total\{model="credit",model_version="1",drifted="\w+"\} (\d+)/m,
      ) < 1
    ) {
      assert.ok(Date.now() < windowDeadline, 'drift windows closed');
      await new Promise((r) => setTimeout(r, 100));
    }

    const swapped = await swapModel(url, {
      version: '2',
      uri: v2.artifact.uri,
      digest: v2.artifact.digest,
      signature: v2.signature,
    });
    assert.is(swapped.status, 200, swapped.text);
    assert.equal(swapped.body, { model_name: 'credit', model_version: '2', previous_version: '1' });
    const refused = await swapModel(url, { version: '3', uri: v2.artifact.uri, digest: v1.artifact.digest });
    assert.is(refused.status, 400);
    assert.match(refused.body.error, /refusing to serve/);
    const after = await Promise.all(rows.slice(0, 60).map((row) => predictFresh(url, row)));
    assert.is(new Set(after.map((a) => processOf(a.requestId))).size, 2, 'both workers answered after the swap');
    after.forEach((a, i) =>
      assert.ok(
        a.version === '2' && close(a.prediction, v2.expected(rows[i])),
        `every worker serves version 2 (row ${i}: ${a.version})`,
      ),
    );
    const swappedMetrics = (await call(url, 'GET', '/metrics')).text;
    assert.is(metric(swappedMetrics, /^model_loaded\{model="credit",model_version="1"\} (\d+)/m), 0);
    assert.is(metric(swappedMetrics, /^model_loaded\{model="credit",model_version="2"\} (\d+)/m), 1);

    const [victim] = childPids(child.pid!);
    process.kill(victim, 'SIGKILL');
    const restartDeadline = Date.now() + 60_000;
    while (true) {
      const pids = childPids(child.pid!);
      if (
        pids.length === 2 &&
        !pids.includes(victim) &&
        metric((await call(url, 'GET', '/metrics')).text, /^predictor_workers (\d+)/m) === 2
      )
        break;
      assert.ok(Date.now() < restartDeadline, `no replacement worker: ${output()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await new Promise((r) => setTimeout(r, 500));
    const replaced = await Promise.all(
      rows
        .slice(0, 60)
        .map((row) => predictFresh(url, row).catch((e) => ({ version: String(e), requestId: '', prediction: NaN }))),
    );
    assert.is(new Set(replaced.map((a) => processOf(a.requestId))).size, 2, 'the replacement answers too');
    assert.equal([...new Set(replaced.map((a) => a.version))], ['2'], 'the replacement serves the swapped version');

    child.kill('SIGTERM');
    assert.is(await exited, 0, output());
    assert.match(output(), /every worker stopped; predictor stopped/);
  } finally {
    grpc.close();
    child.kill('SIGKILL');
  }
});

test.after(() => ws.remove());
test.run();
