// The Grafana dashboard shipped in the chart: valid dashboard JSON with the panels the issue asks for, every
// query valid PromQL (checked by promtool), and every metric and label it queries really exported by the
// predictor server (server/src) or the operator (operator/), with the labels it groups and filters by.
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { CHART } from './support/chart.ts';
import { exportedMetrics, parts } from './support/metrics.ts';

const dashboard = JSON.parse(readFileSync(join(CHART, 'files/dashboard.json'), 'utf8'));
const panels: any[] = dashboard.panels.filter((p: any) => p.type !== 'row');
const queries: Array<{ panel: string; expr: string }> = panels.flatMap((p) =>
  p.targets.map((t: any) => ({ panel: p.title, expr: t.expr })),
);

/** Grafana's variables replaced by what they expand to, so promtool sees the query Prometheus will get. */
function expand(expr: string): string {
  return expr.replaceAll('$__rate_interval', '5m').replaceAll('$model', '.+');
}

test('the dashboard is Grafana JSON with a stable uid, a Prometheus datasource variable and a model variable', () => {
  assert.is(dashboard.uid, 'loopline-inferenceservice');
  assert.type(dashboard.schemaVersion, 'number');
  const variables = dashboard.templating.list.map((v: any) => `${v.name}:${v.type}`);
  assert.equal(variables, ['datasource:datasource', 'model:query']);
  const ids = dashboard.panels.map((p: any) => p.id);
  assert.is(new Set(ids).size, ids.length, 'panel ids must be unique');
  for (const p of panels) assert.is(p.datasource.uid, '${datasource}', p.title);
});

test('it shows versions and canary weight, p50/p95/p99 latency, throughput, error rate and drift per feature', () => {
  const has = (title: RegExp, expr: RegExp) => queries.some((q) => title.test(q.panel) && expr.test(q.expr));
  assert.ok(has(/canary weight/i, /prediction_requests_total/), 'traffic share per version');
  assert.ok(has(/loaded versions/i, /model_loaded/), 'served versions');
  for (const q of ['0.5', '0.95', '0.99'])
    assert.ok(
      has(/latency/i, new RegExp(`histogram_quantile\\(${q.replace('.', '\\.')}, .*prediction_latency_seconds_bucket`)),
      `p${q}`,
    );
  assert.ok(has(/throughput/i, /rate\(prediction_requests_total/));
  assert.ok(has(/error rate/i, /outcome=~"error\|unavailable"/));
  assert.ok(has(/HTTP/, /http_request_duration_seconds_bucket/));
  assert.ok(
    has(/drift score per feature/i, /drift_score\{.*\}/) &&
      queries.some((q) => /by \(.*feature/.test(q.expr) && /drift_score/.test(q.expr)),
  );
});

test('every query is valid PromQL (promtool check rules)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loopline-dashboard-'));
  try {
    const check = (exprs: string[]) => {
      const file = join(dir, 'rules.yaml');
      writeFileSync(
        file,
        dump({
          groups: [
            { name: 'dashboard', rules: exprs.map((expr, i) => ({ record: `loopline:dashboard_query_${i}`, expr })) },
          ],
        }),
      );
      return spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    };
    const result = check(queries.map((q) => expand(q.expr)));
    if (result.error)
      throw new Error(
        `promtool not found (bash e2e/cluster/cluster.sh build puts it in the cache; npm test puts it on PATH): ${result.error.message}`,
      );
    assert.is(result.status, 0, result.stdout + result.stderr);
    assert.match(result.stdout, new RegExp(`SUCCESS: ${queries.length} rules found`));
    // promtool is a real check: a broken query fails it.
    assert.is.not(check(['sum by (model_version (rate(prediction_requests_total[5m]))']).status, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every metric and label the dashboard queries is exported by the server or the operator', () => {
  const exported = exportedMetrics();
  assert.ok(
    exported.has('prediction_requests_total') && exported.has('loopline_leader'),
    'metric definitions not found in server/src or operator/',
  );
  const problems: string[] = [];
  for (const { panel, expr } of queries) {
    const { metrics, labels } = parts(expand(expr));
    assert.ok(metrics.length > 0, `no metric found in ${expr}`);
    const known = new Set<string>();
    for (const metric of metrics) {
      const metricLabels = exported.get(metric);
      if (!metricLabels) problems.push(`${panel}: ${metric} is not exported`);
      else for (const l of metricLabels) known.add(l);
    }
    for (const label of labels)
      if (!known.has(label)) problems.push(`${panel}: label ${label} is not on ${metrics.join(', ')}`);
  }
  assert.equal(problems, []);
});

test.run();
