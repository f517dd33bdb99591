// The chart passes `helm lint --strict` in every supported shape, and its copies of the CRDs are the
// repository's crds/ byte for byte (Helm installs a chart's crds/ and nothing keeps them in step but this).
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHART, KUBE_VERSION, ROOT, helm, run, valueFlags } from './support/chart.ts';

const shapes: Array<[string, string[]]> = [
  ['defaults', []],
  [
    'every optional part on',
    [
      'metrics.serviceMonitor.enabled=true',
      'metrics.prometheusRule.enabled=true',
      'grafanaDashboard.enabled=true',
      'nats.credentials.secretName=nats-user',
      'operator.extraEnv[0].name=EXTRA',
      'operator.extraEnv[0].value=on',
    ],
  ],
  [
    'single replica without leader election, no RBAC, existing ServiceAccount',
    [
      'operator.replicas=1',
      'operator.leaderElection.enabled=false',
      'rbac.create=false',
      'serviceAccount.create=false',
      'serviceAccount.name=loopline-existing',
      'operator.runAsUser=null',
    ],
  ],
];

for (const [shape, values] of shapes) {
  test(`helm lint --strict passes with ${shape}`, () => {
    const result = helm('lint', '--strict', CHART, '--kube-version', KUBE_VERSION, ...valueFlags(values));
    assert.is(result.status, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    assert.not.match(result.stdout, /\[(WARNING|ERROR)\]/, result.stdout);
  });
}

test('helm lint --strict fails on a broken template (the lint check can fail)', () => {
  const copy = mkdtempSync(join(tmpdir(), 'loopline-chart-'));
  try {
    cpSync(CHART, copy, { recursive: true });
    writeFileSync(
      join(copy, 'templates/broken.yaml'),
      'kind: ConfigMap\nmetadata:\n  name: {{ .Values.nope.missing }}\n',
    );
    const result = helm('lint', '--strict', copy, '--kube-version', KUBE_VERSION);
    assert.is.not(result.status, 0);
    assert.match(result.stdout + result.stderr, /broken\.yaml/);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});

test('the chart carries every manifest of crds/ byte for byte: CRDs in crds/, the admission policy in files/', () => {
  const repo = readdirSync(join(ROOT, 'crds'))
    .filter((f) => f.endsWith('.yaml'))
    .sort();
  const chartCrds = readdirSync(join(CHART, 'crds'))
    .filter((f) => f.endsWith('.yaml'))
    .sort();
  assert.ok(repo.length >= 3);
  for (const file of repo) {
    const source = readFileSync(join(ROOT, 'crds', file));
    const onlyCrds = source
      .toString()
      .split('\n')
      .filter((l) => l.startsWith('kind:'))
      .every((l) => l === 'kind: CustomResourceDefinition');
    const copy = join(CHART, onlyCrds ? 'crds' : 'files', file);
    assert.ok(
      existsSync(copy) && source.equals(readFileSync(copy)),
      `${copy} differs from crds/${file}: run charts/sync-crds.sh`,
    );
  }
  assert.equal(
    chartCrds,
    repo.filter((f) => existsSync(join(CHART, 'crds', f))),
    'charts/loopline/crds/ has a file crds/ does not',
  );
  const check = run('bash', [join(ROOT, 'charts/sync-crds.sh'), '--check']);
  assert.is(check.status, 0, check.stdout + check.stderr);
});

test('sync-crds.sh --check names a chart CRD that drifted, and a sync repairs it', () => {
  const root = mkdtempSync(join(tmpdir(), 'loopline-sync-'));
  try {
    cpSync(join(ROOT, 'crds'), join(root, 'crds'), { recursive: true });
    cpSync(join(ROOT, 'charts/sync-crds.sh'), join(root, 'charts/sync-crds.sh'));
    cpSync(join(CHART, 'crds'), join(root, 'charts/loopline/crds'), { recursive: true });
    cpSync(join(CHART, 'files'), join(root, 'charts/loopline/files'), { recursive: true });
    const target = join(root, 'charts/loopline/crds/modelversions.yaml');
    writeFileSync(target, readFileSync(target, 'utf8').replace('plural: modelversions', 'plural: modelversionz'));
    const drifted = run('bash', [join(root, 'charts/sync-crds.sh'), '--check']);
    assert.is(drifted.status, 1);
    assert.match(drifted.stdout, /differs: charts\/loopline\/crds\/modelversions\.yaml/);
    assert.is(run('bash', [join(root, 'charts/sync-crds.sh')]).status, 0);
    assert.is(run('bash', [join(root, 'charts/sync-crds.sh'), '--check']).status, 0);
    assert.ok(readFileSync(target).equals(readFileSync(join(ROOT, 'crds/modelversions.yaml'))));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
