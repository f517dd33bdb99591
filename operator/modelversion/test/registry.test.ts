// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { historyEventId, historyEventReason } from '../events.ts';
import { aliasHolder, planRegistry, type VersionPlan } from '../registry.ts';
import type { ModelVersion, ModelVersionSpec, ModelVersionStatus } from '../resource.ts';

const NOW = new Date('2030-01-01T00:00:00Z');

function mv(version: number, spec: Partial<ModelVersionSpec>, status?: ModelVersionStatus, by = 'alice'): ModelVersion {
  return {
    metadata: { name: `credit-v${version}`, namespace: 'ml', annotations: { 'loopline.dev/requested-by': by } },
    spec: {
      model: 'credit',
      version,
      artifact: { uri: 'file:///m', digest: `sha256:${'0'.repeat(64)}` },
      metrics: { auc: Number((0.8 + version / 100).toFixed(2)) },
      ...spec,
    },
    status,
  };
}

const byName = (plans: VersionPlan[]) => Object.fromEntries(plans.map((p) => [p.name, p]));
const stages = (plans: VersionPlan[]) => Object.fromEntries(plans.map((p) => [p.name, p.status.stage]));
const aliases = (plans: VersionPlan[]) => Object.fromEntries(plans.map((p) => [p.name, p.status.aliases ?? []]));

test('a new version takes the stage and aliases it asks for, with a history entry naming who asked', () => {
  const [plan] = planRegistry([mv(1, { stage: 'Staging', aliases: ['candidate'] })], NOW);
  assert.is(plan.status.stage, 'Staging');
  assert.equal(plan.status.aliases, ['candidate']);
  assert.equal(plan.status.history, [
    {
      from: 'None',
      to: 'Staging',
      aliasesAdded: ['candidate'],
      by: 'alice',
      at: '2030-01-01T00:00:00Z',
      reason: 'requested in spec: stage None -> Staging, aliases +candidate',
    },
  ]);
  assert.is(plan.status.primaryMetric, 'auc=0.81');
  assert.is(plan.specPatch, undefined);
});

test('promoting to Production archives the previous Production version and rewrites its spec', () => {
  const plans = planRegistry(
    [
      mv(1, { stage: 'Production' }, { stage: 'Production', aliases: [] }),
      mv(2, { stage: 'Production' }, { stage: 'Staging', aliases: [] }, 'bob'),
    ],
    NOW,
  );
  assert.equal(stages(plans), { 'credit-v1': 'Archived', 'credit-v2': 'Production' });
  const p = byName(plans);
  assert.equal(p['credit-v1'].specPatch, { stage: 'Archived' });
  assert.equal(p['credit-v1'].status.history!.at(-1), {
    from: 'Production',
    to: 'Archived',
    by: 'bob',
    at: '2030-01-01T00:00:00Z',
    reason: 'archived: credit-v2 promoted to Production',
  });
  assert.equal(p['credit-v2'].status.history!.at(-1)!.by, 'bob');
  assert.equal(
    p['credit-v2'].events.map((e) => e.reason),
    ['Promoted'],
  );
  assert.equal(
    p['credit-v1'].events.map((e) => e.reason),
    ['Archived'],
  );
});

test('taking an alias moves it from the version that held it', () => {
  const plans = planRegistry(
    [
      mv(1, { aliases: ['champion', 'stable'] }, { stage: 'None', aliases: ['champion', 'stable'] }),
      mv(2, { aliases: ['champion'] }, { stage: 'None', aliases: [] }),
    ],
    NOW,
  );
  assert.equal(aliases(plans), { 'credit-v1': ['stable'], 'credit-v2': ['champion'] });
  const p = byName(plans);
  assert.equal(p['credit-v1'].specPatch, { aliases: ['stable'] });
  assert.equal(p['credit-v1'].status.history!.at(-1)!.aliasesRemoved, ['champion']);
  assert.equal(
    p['credit-v1'].events.map((e) => e.reason),
    ['AliasMoved'],
  );
});

test('two versions asking for Production at once: exactly one wins, the other is archived', () => {
  const plans = planRegistry(
    [
      mv(1, { stage: 'Production' }, { stage: 'Production' }),
      mv(3, { stage: 'Production', aliases: ['prod'] }, { stage: 'Staging' }, 'carol'),
      mv(2, { stage: 'Production', aliases: ['prod'] }, { stage: 'Staging' }, 'bob'),
    ],
    NOW,
  );
  assert.equal(stages(plans), { 'credit-v1': 'Archived', 'credit-v2': 'Archived', 'credit-v3': 'Production' });
  assert.equal(aliases(plans), { 'credit-v1': [], 'credit-v2': [], 'credit-v3': ['prod'] });
  assert.equal(byName(plans)['credit-v2'].specPatch, { stage: 'Archived', aliases: [] });
  assert.equal(
    byName(plans)
      ['credit-v2'].status.history!.slice(-2)
      .map((e) => [e.from, e.to, e.aliasesAdded, e.aliasesRemoved, e.by, e.reason]),
    [
      [
        'Staging',
        'Production',
        ['prod'],
        undefined,
        'bob',
        'requested in spec: stage Staging -> Production, aliases +prod; archived credit-v1',
      ],
      [
        'Production',
        'Archived',
        undefined,
        ['prod'],
        'carol',
        'archived: credit-v3 promoted to Production; alias prod moved to credit-v3',
      ],
    ],
  );
});

test('a pending request wins over a version already in Production', () => {
  const plans = planRegistry(
    [mv(1, { stage: 'Production' }, { stage: 'Staging' }), mv(2, { stage: 'Production' }, { stage: 'Production' })],
    NOW,
  );
  assert.equal(stages(plans), { 'credit-v1': 'Production', 'credit-v2': 'Archived' });
});

test('a promotion that fails its metric gates is refused with a condition, and nothing is archived', () => {
  const plans = planRegistry(
    [
      mv(1, { stage: 'Production' }, { stage: 'Production' }),
      mv(
        2,
        { stage: 'Production', promotionGates: [{ metric: 'auc', operator: '>=', value: 0.9 }] },
        { stage: 'Staging' },
      ),
    ],
    NOW,
  );
  assert.equal(stages(plans), { 'credit-v1': 'Production', 'credit-v2': 'Staging' });
  const v2 = byName(plans)['credit-v2'];
  const promoted = v2.status.conditions!.find((c) => c.type === 'Promoted')!;
  assert.is(promoted.status, 'False');
  assert.is(promoted.reason, 'GatesNotMet');
  assert.match(
    promoted.message,
    /promotion of credit-v2 to Production refused: auc = 0.82 fails auc >= 0.9\. Stage in effect stays Staging/,
  );
  assert.equal(
    v2.events.map((e) => e.reason),
    ['PromotionRefused'],
  );
  assert.is(byName(plans)['credit-v1'].specPatch, undefined);
});

test('state left by racing writes (two Production, one alias twice) is repaired to the newest holder', () => {
  const hist = (to: 'Production', at: string, alias?: string) => [
    { from: 'Staging' as const, to, at, by: 'x', ...(alias ? { aliasesAdded: [alias] } : {}) },
  ];
  const plans = planRegistry(
    [
      mv(
        1,
        { stage: 'Production', aliases: ['prod'] },
        { stage: 'Production', aliases: ['prod'], history: hist('Production', '2029-01-02T00:00:00Z', 'prod') },
      ),
      mv(
        2,
        { stage: 'Production', aliases: ['prod'] },
        { stage: 'Production', aliases: ['prod'], history: hist('Production', '2029-01-01T00:00:00Z', 'prod') },
      ),
    ],
    NOW,
  );
  assert.equal(stages(plans), { 'credit-v1': 'Production', 'credit-v2': 'Archived' });
  assert.equal(aliases(plans), { 'credit-v1': ['prod'], 'credit-v2': [] });
});

test('nothing pending: no history entry, no events, no spec patch', () => {
  const status: ModelVersionStatus = {
    stage: 'Staging',
    aliases: ['candidate'],
    history: [{ from: 'None', to: 'Staging', at: '2029-01-01T00:00:00Z' }],
  };
  const [plan] = planRegistry([mv(1, { stage: 'Staging', aliases: ['candidate'] }, status)], NOW);
  assert.equal(plan.status.history, status.history);
  assert.equal(plan.events, []);
  assert.is(plan.specPatch, undefined);
});

test('a version being deleted releases its aliases and stage', () => {
  const leaving = mv(1, { stage: 'Production', aliases: ['prod'] }, { stage: 'Production', aliases: ['prod'] });
  leaving.metadata.deletionTimestamp = new Date();
  const plans = planRegistry([leaving, mv(2, { stage: 'Production', aliases: ['prod'] }, { stage: 'Staging' })], NOW);
  assert.equal(
    plans.map((p) => [p.name, p.status.stage, p.status.aliases]),
    [['credit-v2', 'Production', ['prod']]],
  );
});

test('the plan lists the history entries it appended (the lifecycle events to publish), each with its reason and a stable id', () => {
  const plans = planRegistry(
    [
      mv(
        1,
        { stage: 'Production', aliases: ['live'] },
        {
          stage: 'Production',
          aliases: ['live'],
          history: [{ from: 'None', to: 'Production', by: 'alice', at: '2029-01-01T00:00:00Z' }],
        },
      ),
      mv(2, { stage: 'Production', aliases: ['live'] }, { stage: 'Staging', aliases: [] }, 'bob'),
      mv(3, { stage: 'Staging' }, { stage: 'Staging', aliases: [] }),
    ],
    NOW,
  );
  const p = byName(plans);
  // The archive and the alias move of v1 join one entry; the older history entry is not announced again.
  assert.equal(p['credit-v1'].recorded, [p['credit-v1'].status.history!.at(-1)]);
  assert.equal(p['credit-v1'].recorded.map(historyEventReason), ['archived']);
  assert.equal(p['credit-v1'].recorded[0].aliasesRemoved, ['live']);
  assert.equal(p['credit-v2'].recorded.map(historyEventReason), ['promoted']);
  assert.equal(p['credit-v3'].recorded, []);
  const aliasOnly = planRegistry(
    [mv(1, { stage: 'Staging', aliases: ['canary'] }, { stage: 'Staging', aliases: [] })],
    NOW,
  )[0].recorded;
  assert.equal(aliasOnly.map(historyEventReason), ['aliasmoved']);
  const entry = p['credit-v2'].recorded[0];
  assert.is(
    historyEventId('uid-2', entry),
    historyEventId('uid-2', structuredClone(entry)),
    'the same entry read back gives the same id',
  );
  assert.is.not(historyEventId('uid-2', entry), historyEventId('uid-2', { ...entry, at: '2030-01-01T00:00:01Z' }));
  assert.is.not(historyEventId('uid-2', entry), historyEventId('uid-1', entry));
});

test('an alias two versions hold for a moment (the new holder is written first) names the one that gained it last', () => {
  const gained = (at: string) => ({
    from: 'None' as const,
    to: 'None' as const,
    aliasesAdded: ['production'],
    by: 'alice',
    at,
    reason: 'requested in spec',
  });
  const v2 = mv(2, {}, { aliases: ['production'], history: [gained('2030-01-01T00:00:00Z')] });
  const v1 = mv(1, {}, { aliases: ['production'], history: [gained('2029-12-01T00:00:00Z')] });
  assert.is(aliasHolder([v2, v1], 'production'), v2);
  // Moved back to v1 later: the older version is the holder.
  const back = mv(
    1,
    {},
    { aliases: ['production'], history: [gained('2029-12-01T00:00:00Z'), gained('2030-01-02T00:00:00Z')] },
  );
  assert.is(aliasHolder([v2, back], 'production'), back);
  // The same second: the higher version, which a promotion moves to.
  assert.is(
    aliasHolder([mv(1, {}, { aliases: ['production'], history: [gained('2030-01-01T00:00:00Z')] }), v2], 'production'),
    v2,
  );
  assert.is(aliasHolder([v1], 'staging'), undefined);
});

test('history keeps the latest 100 entries', () => {
  const history = Array.from({ length: 100 }, (_, i) => ({
    from: 'None' as const,
    to: 'None' as const,
    at: `2029-01-01T00:00:${String(i % 60).padStart(2, '0')}Z`,
    reason: String(i),
  }));
  const [plan] = planRegistry([mv(1, { stage: 'Staging' }, { stage: 'None', history })], NOW);
  assert.is(plan.status.history!.length, 100);
  assert.is(plan.status.history![0].reason, '1');
  assert.is(plan.status.history![99].to, 'Staging');
});

test.run();
