/** The dashboard renderer on hand-made snapshots: states a live cluster rarely shows on demand, and formatting. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { InferenceService } from '../../api/types.ts';
import { age, ms, number, percent, renderDashboard } from '../dashboard.ts';
import type { StatusSnapshot } from '../snapshot.ts';

const now = new Date('2026-05-01T12:00:00Z');

function snapshot(
  status: InferenceService['status'],
  spec: Partial<InferenceService['spec']> = {},
  extra: Partial<StatusSnapshot> = {},
): StatusSnapshot {
  return {
    namespace: 'risk',
    name: 'fraud',
    service: {
      apiVersion: 'loopline.dev/v1alpha1',
      kind: 'InferenceService',
      metadata: { name: 'fraud', namespace: 'risk', generation: 3 },
      spec: { model: 'fraud-detector', stable: { alias: 'production' }, ...spec },
      status: { observedGeneration: 3, ...status },
    },
    versions: [],
    traffic: { prometheusUrl: 'http://prom:9090', window: '1m', byVersion: new Map(), driftFeatures: [] },
    events: [],
    nats: { subject: 'loopline.events.risk.inferenceservice.fraud', lifecycle: [] },
    ...extra,
  };
}

const render = (s: StatusSnapshot, color = false) => renderDashboard(s, { now, color });

test('a promoted service without a canary: one traffic line at 100% and "canary none"', () => {
  const lines = render(snapshot({ phase: 'Promoted', stableVersion: 2, canaryWeight: 0 }));
  assert.equal(lines.slice(0, 4), [
    'risk/fraud  model fraud-detector  phase Promoted',
    'stable  v2  100%  alias production',
    'canary  none',
    'url     -',
  ]);
});

test('a canary selector that matches the stable version is called out, not silently shown as none', () => {
  const lines = render(snapshot({ phase: 'Stable', stableVersion: 4 }, { canary: { alias: 'candidate' } }));
  assert.ok(lines.includes('canary  none (alias candidate selects no other version)'), lines.join('\n'));
});

test('a service that serves nothing yet says so instead of printing an empty table', () => {
  const lines = render(snapshot(undefined));
  assert.equal(lines.slice(0, 3), [
    'risk/fraud  model fraud-detector  phase Unknown',
    'stable  none serving yet (alias production)',
    'canary  none',
  ]);
  assert.ok(lines.includes('no versions serving'));
});

test('a ModelVersion that cannot be read is shown in its row with the reason', () => {
  const lines = render(
    snapshot(
      { phase: 'Stable', stableVersion: 7 },
      {},
      { versions: [{ role: 'stable', version: 7, missing: 'ModelVersion fraud-detector-v7 not found' }] },
    ),
  );
  assert.match(lines.join('\n'), /\nv7 +stable +ModelVersion fraud-detector-v7 not found\n/);
});

test('traffic from a version that is neither stable nor canary (still draining) is listed as other', () => {
  const byVersion = new Map([
    [3, { requestsPerSecond: 10, errorRate: 0, latencyP50Ms: 1, latencyP95Ms: 2, latencyP99Ms: 3 }],
    [2, { requestsPerSecond: 0.5, errorRate: 0.5, latencyP50Ms: 1, latencyP95Ms: 2, latencyP99Ms: 3 }],
  ]);
  const s = snapshot({ phase: 'Promoted', stableVersion: 3 }, {}, { versions: [{ role: 'stable', version: 3 }] });
  s.traffic.byVersion = byVersion;
  const lines = render(s);
  assert.ok(lines.includes('v2       other   -       0.5    50.00%  1 ms  2 ms  3 ms'), lines.join('\n'));
  assert.ok(lines.includes('all                      10.5   2.38%'), lines.join('\n'));
});

test('colour only when asked: phase, failing figures and drift are painted, the plain text is the same', () => {
  const s = snapshot(
    { phase: 'RolledBack', stableVersion: 1, canaryVersion: 2, canaryWeight: 0, drift: { score: 0.5, drifted: true } },
    { canary: { version: 2 }, rollout: { analysis: { maxErrorRate: 0.01 } } },
    {
      versions: [
        { role: 'stable', version: 1 },
        { role: 'canary', version: 2 },
      ],
    },
  );
  s.traffic.byVersion = new Map([
    [2, { requestsPerSecond: 4, errorRate: 0.2, latencyP50Ms: 1, latencyP95Ms: 2, latencyP99Ms: 3 }],
  ]);
  const plain = render(s);
  const colored = render(s, true);
  assert.not.match(plain.join('\n'), /\x1b/);
  assert.match(colored[0]!, /phase \x1b\[31mRolledBack\x1b\[0m/);
  assert.match(colored.join('\n'), /\x1b\[31m20\.00%\x1b\[0m/);
  assert.match(colored.join('\n'), /\x1b\[31mDRIFTED\x1b\[0m/);
  assert.equal(
    colored.map((l) => l.replace(/\x1b\[[0-9;]*m/g, '')),
    plain,
  );
});

test('a spec the operator has not seen yet is flagged in the header', () => {
  const s = snapshot({ phase: 'Stable', stableVersion: 1, observedGeneration: 2 });
  assert.match(render(s)[0]!, /\(status not yet updated for the latest spec\)$/);
});

test('quality: one row per evaluated version with its role, labelled share and metrics; "-" for an undefined metric', () => {
  const versions = [
    {
      version: 3,
      model: 'fraud-detector',
      predictions: 1200,
      count: 800,
      positives: 260,
      excluded: 0,
      threshold: 0.5,
      accuracy: 0.8625,
      auc: 0.91234,
      logLoss: 0.3311,
      brier: 0.1022,
      precision: 0.74,
      recall: 0.69,
      calibrationError: 0.0213,
    },
    {
      version: 4,
      model: 'fraud-detector',
      predictions: 40,
      count: 0,
      positives: 0,
      excluded: 0,
      threshold: 0.5,
      accuracy: null,
      auc: null,
      logLoss: null,
      brier: null,
      precision: null,
      recall: null,
      calibrationError: null,
    },
  ];
  const lines = render(
    snapshot(
      {
        stableVersion: 3,
        canaryVersion: 4,
        quality: {
          lastEventId: 'e1',
          lastEventTime: '2026-05-01T11:58:00Z',
          window: { end: '2026-05-01T11:58:00Z', duration: '1h' },
          versions,
        },
      },
      { logging: { enabled: true, uri: 's3://gt/risk' } },
    ),
  );
  const at = lines.findIndex((l) => l.startsWith('QUALITY'));
  assert.is(lines[at], 'QUALITY  window 1h, evaluated 2m, threshold 0.5');
  assert.match(
    lines[at + 1]!,
    /^VERSION\s+ROLE\s+LABELLED\s+AUC\s+ACCURACY\s+PRECISION\s+RECALL\s+LOG LOSS\s+BRIER\s+CAL\. ERROR$/,
  );
  assert.match(
    lines[at + 2]!,
    /^v3\s+stable\s+800 of 1200\s+0\.912\s+0\.863\s+0\.74\s+0\.69\s+0\.331\s+0\.102\s+0\.0213$/,
  );
  assert.match(lines[at + 3]!, /^v4\s+canary\s+0 of 40\s+-\s+-\s+-\s+-\s+-\s+-\s+-$/);
  const waiting = render(snapshot({ stableVersion: 3 }, { logging: { enabled: true, uri: 's3://gt/risk' } }));
  assert.ok(waiting.includes('QUALITY  no evaluation reported yet'));
  assert.not.ok(
    render(snapshot({ stableVersion: 3 })).some((l) => l.startsWith('QUALITY')),
    'no section without logging',
  );
});

test('numbers: three significant figures, percents with two decimals, milliseconds and seconds, kubectl-style ages', () => {
  assert.equal(
    [number(0), number(0.4312), number(31.24), number(1234.5), number(-0.005)],
    ['0', '0.431', '31.2', '1235', '-0.005'],
  );
  assert.equal([percent(0), percent(0.0125), percent(1)], ['0.00%', '1.25%', '100.00%']);
  assert.equal([ms(null), ms(0.42), ms(48.75), ms(250), ms(12_500)], ['-', '0.42 ms', '48.8 ms', '250 ms', '12.5 s']);
  const before = (s: number) => new Date(now.getTime() - s * 1000).toISOString();
  assert.equal(
    [
      age(before(5), now),
      age(before(119), now),
      age(before(600), now),
      age(before(7200), now),
      age(before(3 * 86400), now),
      age(undefined, now),
    ],
    ['5s', '119s', '10m', '2h', '3d', '-'],
  );
});

test.run();
