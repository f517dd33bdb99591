// The alert rules the chart ships (files/alerts.yaml, and the same groups as a PrometheusRule): valid rules, each
// with a runbook line; each fires on a synthetic series of the failure it names and stays quiet on a healthy one
// (`promtool test rules`, Prometheus's own rule evaluator); and every metric they read is one Loopline exports.
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump, load, loadAll } from 'js-yaml';
import { CHART, helm, KUBE_VERSION, type Manifest } from './support/chart.ts';
import { exportedMetrics, parts } from './support/metrics.ts';

const RULES_FILE = join(CHART, 'files/alerts.yaml');
interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
const groups = (load(readFileSync(RULES_FILE, 'utf8')) as { groups: Array<{ name: string; rules: Rule[] }> }).groups;
const rules = groups.flatMap((g) => g.rules);
/** Labels the scrape configuration puts on every predictor series (e2e/kind/infra.yaml, README), not the exporter. */
const TARGET_LABELS = ['namespace', 'pod', 'inference_service'];

function promtool(...args: string[]) {
  const result = spawnSync('promtool', args, { encoding: 'utf8' });
  if (result.error)
    throw new Error(
      `promtool not found (bash e2e/cluster/cluster.sh build puts it in the cache; npm test puts it on PATH): ${result.error.message}`,
    );
  return result;
}

/** The annotations Prometheus renders for an alert with these labels (only {{ $labels.x }} is used in ours). */
function rendered(rule: Rule, labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(rule.annotations).map(([k, v]) => [
      k,
      v.replace(/\{\{\s*\$labels\.(\w+)\s*\}\}/g, (_, l) => labels[l] ?? ''),
    ]),
  );
}

interface Case {
  alert: string;
  /** Series and their values in promtool's expanding notation, one sample a minute. */
  failing: Record<string, string>;
  healthy: Record<string, string>;
  at: string;
  /** The labels of the alerts the failing series raise, besides the rule's own. */
  fires: Array<Record<string, string>>;
}

const CASES: Case[] = [
  {
    alert: 'LooplineReconcileErrors',
    failing: {
      'loopline_reconcile_errors_total{controller="inferenceservice",kind="InferenceService"}': '0+2x40',
      'loopline_reconcile_errors_total{controller="trainingjob",kind="TrainingJob"}': '3x40',
    },
    healthy: { 'loopline_reconcile_errors_total{controller="inferenceservice",kind="InferenceService"}': '5x40' },
    at: '25m',
    fires: [{ controller: 'inferenceservice', kind: 'InferenceService' }],
  },
  {
    alert: 'LooplineNoLeader',
    failing: { 'loopline_leader{pod="loopline-a"}': '0x20', 'loopline_leader{pod="loopline-b"}': '0x20' },
    healthy: { 'loopline_leader{pod="loopline-a"}': '0x20', 'loopline_leader{pod="loopline-b"}': '1x20' },
    at: '10m',
    fires: [{}],
  },
  {
    alert: 'LooplineModelNotLoaded',
    failing: { 'model_loaded{namespace="ml",pod="credit-risk-v2-abc",model="credit-risk",model_version="2"}': '0x20' },
    // A hot swap leaves the old version's series at 0 beside the new one's 1: the pod still serves.
    healthy: {
      'model_loaded{namespace="ml",pod="credit-risk-v2-abc",model="credit-risk",model_version="1"}': '0x20',
      'model_loaded{namespace="ml",pod="credit-risk-v2-abc",model="credit-risk",model_version="2"}': '1x20',
    },
    at: '10m',
    fires: [{ namespace: 'ml', pod: 'credit-risk-v2-abc' }],
  },
  {
    alert: 'LooplineDriftEventsDropped',
    failing: { 'drift_events_dropped_total{namespace="ml",pod="credit-risk-v2-abc"}': '0x10 1+1x10' },
    healthy: { 'drift_events_dropped_total{namespace="ml",pod="credit-risk-v2-abc"}': '0x20' },
    at: '15m',
    fires: [{ namespace: 'ml', pod: 'credit-risk-v2-abc' }],
  },
  {
    alert: 'LooplineInferenceLogDropped',
    failing: {
      'inference_log_rows_dropped_total{namespace="ml",pod="credit-risk-v2-abc",reason="buffer_full"}': '0x10 50+50x10',
    },
    healthy: {
      'inference_log_rows_dropped_total{namespace="ml",pod="credit-risk-v2-abc",reason="buffer_full"}': '0x20',
    },
    at: '15m',
    fires: [{ namespace: 'ml', pod: 'credit-risk-v2-abc', reason: 'buffer_full' }],
  },
  {
    alert: 'LooplineQualityDropped',
    // v2 falls from 0.82 to 0.74 (a concept shift); v1 moves within 0.02 and stays quiet.
    failing: {
      'loopline_model_quality{namespace="ml",inferenceservice="credit-risk",metric="auc",version="2"}':
        '0.82x30 0.74x40',
      'loopline_model_quality{namespace="ml",inferenceservice="credit-risk",metric="auc",version="1"}':
        '0.80x30 0.78x40',
      'loopline_model_quality{namespace="ml",inferenceservice="credit-risk",metric="count",version="2"}': '100+50x70',
    },
    healthy: {
      'loopline_model_quality{namespace="ml",inferenceservice="credit-risk",metric="auc",version="2"}':
        '0.82x30 0.81x40',
    },
    at: '60m',
    fires: [{ namespace: 'ml', inferenceservice: 'credit-risk', version: '2' }],
  },
  {
    alert: 'LooplineCanaryRolledBack',
    failing: {
      'loopline_inferenceservice_phase{namespace="ml",inferenceservice="credit-risk",phase="RolledBack"}': '0x5 1x10',
      'loopline_inferenceservice_phase{namespace="ml",inferenceservice="credit-risk",phase="Progressing"}': '1x5 0x10',
    },
    healthy: {
      'loopline_inferenceservice_phase{namespace="ml",inferenceservice="credit-risk",phase="RolledBack"}': '0x15',
      'loopline_inferenceservice_phase{namespace="ml",inferenceservice="credit-risk",phase="Promoted"}': '0x5 1x10',
    },
    at: '10m',
    fires: [{ namespace: 'ml', inferenceservice: 'credit-risk' }],
  },
];

test('the rules file is valid Prometheus rules and every alert has a severity, a summary and a runbook line', () => {
  const check = promtool('check', 'rules', RULES_FILE);
  assert.is(check.status, 0, check.stdout + check.stderr);
  assert.match(check.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));
  for (const rule of rules) {
    assert.match(rule.labels.severity, /^(warning|critical)$/, rule.alert);
    assert.ok(rule.annotations.summary && rule.annotations.runbook?.length > 40, `${rule.alert}: summary and runbook`);
  }
});

test('alerts cover reconcile errors, no leader, a model not loaded, dropped drift events and logged predictions, a rollback and a quality drop', () => {
  assert.equal(rules.map((r) => r.alert).sort(), CASES.map((c) => c.alert).sort());
});

test('each alert fires on its failure and stays quiet on a healthy series (promtool test rules)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loopline-alerts-'));
  try {
    const series = (values: Record<string, string>) =>
      Object.entries(values).map(([series, v]) => ({ series, values: v }));
    const tests = CASES.flatMap((c) => {
      const rule = rules.find((r) => r.alert === c.alert)!;
      const firing = c.fires.map((labels) => ({
        exp_labels: { ...rule.labels, ...labels },
        exp_annotations: rendered(rule, labels),
      }));
      return [
        {
          interval: '1m',
          input_series: series(c.failing),
          alert_rule_test: [{ eval_time: c.at, alertname: c.alert, exp_alerts: firing }],
        },
        {
          interval: '1m',
          input_series: series(c.healthy),
          alert_rule_test: [{ eval_time: c.at, alertname: c.alert, exp_alerts: [] }],
        },
      ];
    });
    const file = join(dir, 'alerts.test.yaml');
    writeFileSync(file, dump({ rule_files: [RULES_FILE], evaluation_interval: '1m', tests }));
    const result = promtool('test', 'rules', file);
    assert.is(result.status, 0, result.stdout + result.stderr);
    // A real check: the same healthy series expected to fire fail it.
    const wrong = tests.map((t, i) =>
      i === 1
        ? { ...t, alert_rule_test: [{ ...t.alert_rule_test[0], exp_alerts: tests[0].alert_rule_test[0].exp_alerts }] }
        : t,
    );
    writeFileSync(file, dump({ rule_files: [RULES_FILE], evaluation_interval: '1m', tests: wrong }));
    assert.is.not(promtool('test', 'rules', file).status, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every metric and label the alerts read is exported by the server or the operator (or set by the scrape)', () => {
  const exported = exportedMetrics();
  const problems: string[] = [];
  for (const rule of rules) {
    const { metrics, labels } = parts(rule.expr.replace(/\babsent\(/g, '('));
    const known = new Set(TARGET_LABELS);
    for (const metric of metrics) {
      const metricLabels = exported.get(metric);
      if (!metricLabels) problems.push(`${rule.alert}: ${metric} is not exported`);
      else for (const l of metricLabels) known.add(l);
    }
    for (const label of labels)
      if (!known.has(label)) problems.push(`${rule.alert}: label ${label} is not on ${metrics.join(', ')}`);
  }
  assert.equal(problems, []);
});

test('the chart renders the same groups as a PrometheusRule only when metrics.prometheusRule.enabled', () => {
  const render = (...set: string[]) =>
    (
      loadAll(
        helm('template', 'loopline', CHART, '--kube-version', KUBE_VERSION, ...set.flatMap((s) => ['--set', s])).stdout,
      ) as Manifest[]
    ).filter(Boolean);
  assert.not.ok(render().some((m) => m.kind === 'PrometheusRule'));
  const rule = render('metrics.prometheusRule.enabled=true', 'metrics.prometheusRule.labels.release=kps').find(
    (m) => m.kind === 'PrometheusRule',
  )!;
  assert.is(rule.apiVersion, 'monitoring.coreos.com/v1');
  assert.is(rule.metadata.labels!.release, 'kps');
  assert.equal(rule.spec.groups, groups);
});

test.run();
