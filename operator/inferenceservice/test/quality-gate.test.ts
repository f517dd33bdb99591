// The canary's quality gate (spec.rollout.analysis.quality) as the pure state machine decides it: a due step asks
// for an evaluation until one made after it fell due is on record, a canary worse by more than maxDrop fails the
// check (and is rolled back with the numbers) however fast it is, an equal one passes, too few labels waits
// without a failed check; and the evaluator's CronJob and per-step Job compare the rollout's two versions.
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { InferenceServiceQualityComparisonStatus } from '../../api/types.ts';
import type { DesiredObject } from '../../engine/types.ts';
import { cloudEvent } from '../../events/cloudevents.ts';
import { QUALITY_EVENT_TYPE } from '../../events/quality-event.ts';
import { analysisDue, nextRollout, type Measurement, type RolloutInput, type RolloutState } from '../canary.ts';
import {
  comparedVersions,
  evaluationFailure,
  nextQualityStatus,
  qualityCronJob,
  qualityEvaluationJob,
} from '../quality.ts';
import type { InferenceService, RolloutSpec } from '../resource.ts';

const T0 = new Date('2026-12-01T10:00:00Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
const rollout: RolloutSpec = {
  steps: [10, 50, 100],
  interval: '60s',
  analysis: {
    maxErrorRate: 0.05,
    minRequests: 10,
    failureLimit: 1,
    quality: { metric: 'auc', maxDrop: 0.05, minLabels: 500, confidence: 0.95 },
  },
};
/** Faster and error-free. */
const fast: Measurement = { requests: 400, errorRate: 0, latencyP95Ms: 4, latencyP99Ms: 6 };
const erroring: Measurement = { requests: 400, errorRate: 0.3, latencyP95Ms: 4, latencyP99Ms: 6 };

function progressing(step: number, startedAt: number, failedChecks = 0): RolloutState {
  return {
    phase: 'Progressing',
    stableVersion: 1,
    canaryVersion: 2,
    canaryStartedAt: T0.toISOString(),
    canaryWeight: [10, 50, 100][step]!,
    currentStep: step,
    analysis: { stepStartedAt: at(startedAt).toISOString(), failedChecks },
  };
}

const side = (count: number, auc: number, aucVariance: number) => ({
  count,
  positives: Math.round(count / 2),
  correct: Math.round(count * 0.8),
  auc,
  aucVariance,
});
type Side = NonNullable<InferenceServiceQualityComparisonStatus['canary']>;
function comparison(endSeconds: number, canary: Side, stable: Side): InferenceServiceQualityComparisonStatus {
  return {
    canaryVersion: 2,
    stableVersion: 1,
    since: T0.toISOString(),
    end: at(endSeconds).toISOString(),
    threshold: 0.5,
    canary,
    stable,
  };
}
const worse = comparison(61, side(1200, 0.71, 0.0002), side(1180, 0.86, 0.0001));
const equal = comparison(61, side(1200, 0.855, 0.0001), side(1180, 0.86, 0.0001));
const few = comparison(61, side(120, 0.7, 0.002), side(900, 0.86, 0.0001));

const input = (previous: RolloutState, now: Date, extra: Partial<RolloutInput> = {}): RolloutInput => ({
  rollout,
  shadow: false,
  previous,
  stable: 1,
  canary: 2,
  now,
  ...extra,
});

test('a due step without an evaluation made after it fell due asks for one and holds; Prometheus is not asked', () => {
  for (const quality of [undefined, comparison(30, side(1200, 0.86, 0.0001), side(1180, 0.86, 0.0001))]) {
    const args = input(progressing(0, 0), at(61), quality ? { quality } : {});
    assert.is(analysisDue(args), false);
    const decision = nextRollout(args);
    assert.equal(decision.evaluate, { step: 0, dueAt: at(60).toISOString() });
    assert.is(decision.state.canaryWeight, 10);
    assert.is(decision.state.analysis.stepStartedAt, at(0).toISOString());
    assert.match(decision.state.analysis.message!, /^Waiting: quality evaluation of canary v2 against stable v1/);
    assert.equal(decision.events, []);
    assert.is(decision.requeueAfterMs, 5_000);
  }
  // Another pair of versions is no evidence about this one either.
  const other = { ...equal, canaryVersion: 3 };
  assert.ok(nextRollout(input(progressing(0, 0), at(61), { quality: other })).evaluate);
  // Once it is on record, the step is analysed.
  assert.is(analysisDue(input(progressing(0, 0), at(61), { quality: equal })), true);
});

test('a faster, error-free canary with a worse AUC fails the check and is rolled back, the reason giving the numbers', () => {
  const decision = nextRollout(input(progressing(1, 0), at(61), { quality: worse, measurement: fast }));
  assert.is(decision.state.phase, 'RolledBack');
  assert.is(decision.state.canaryWeight, 0);
  const rolledBack = decision.events.find((e) => e.type === 'RolledBack')!;
  assert.ok(rolledBack.type === 'RolledBack');
  assert.match(
    rolledBack.reason,
    /^1 failed checks \(limit 1\): auc canary 0\.7100 vs stable 0\.8600 \(1200 vs 1180 labels\), drop 0\.1500: worse by more than maxDrop 0\.05 at 0\.95 confidence \(DeLong's test, z -5\.774, p 3\.\d+e-9\)$/,
  );
  const quality = decision.state.analysis.quality!;
  assert.equal(
    { ...quality, pValue: undefined },
    {
      metric: 'auc',
      verdict: 'Worse',
      canaryLabels: 1200,
      stableLabels: 1180,
      canary: 0.71,
      stable: 0.86,
      pValue: undefined,
    },
  );
  assert.ok(quality.pValue! < 1e-8);
  assert.is(decision.state.analysis.errorRate, 0);
});

test('with autoRollback off the worse canary is halted at its weight instead', () => {
  const decision = nextRollout(
    input(progressing(1, 0), at(61), {
      rollout: { ...rollout, autoRollback: false },
      quality: worse,
      measurement: fast,
    }),
  );
  assert.is(decision.state.phase, 'Progressing');
  assert.is(decision.state.canaryWeight, 50);
  assert.ok(decision.events.some((e) => e.type === 'Halted'));
});

test('a canary of equal quality passes the step, the test named in the reason', () => {
  const decision = nextRollout(input(progressing(0, 0), at(61), { quality: equal, measurement: fast }));
  assert.is(decision.state.currentStep, 1);
  assert.is(decision.state.canaryWeight, 50);
  assert.match(
    decision.state.analysis.message!,
    /^Passed: requests 400, error rate 0.*; auc canary 0\.8550 vs stable 0\.8600 .*not shown worse by more than maxDrop 0\.05.*DeLong's test/,
  );
  assert.is(decision.state.analysis.quality!.verdict, 'NotWorse');
  // The last step promotes it.
  const last = nextRollout(input(progressing(2, 0), at(61), { quality: equal, measurement: fast }));
  assert.is(last.state.phase, 'Promoted');
  assert.equal(last.promote?.version, 2);
});

test('too few labels on either side holds the step one more interval, without a failed check', () => {
  const decision = nextRollout(input(progressing(1, 0, 0), at(61), { quality: few, measurement: fast }));
  assert.is(decision.state.phase, 'Progressing');
  assert.is(decision.state.currentStep, 1);
  assert.is(decision.state.canaryWeight, 50);
  assert.is(decision.state.analysis.failedChecks, 0);
  assert.is(decision.state.analysis.stepStartedAt, at(61).toISOString());
  assert.is(decision.requeueAfterMs, 60_000);
  assert.match(
    decision.state.analysis.message!,
    /^Waiting: auc: 120 canary and 900 stable labels, 500 needed on each side; waiting for labels; step 1 held at 50%$/,
  );
  assert.equal(
    decision.events.map((e) => e.type),
    ['AwaitingLabels'],
  );
  assert.is(decision.state.analysis.quality!.verdict, 'Insufficient');
  // The next interval asks for a new evaluation.
  assert.ok(nextRollout(input(decision.state, at(122), { quality: few })).evaluate);
});

test('a Prometheus failure still fails while labels are too few; a worse canary adds its numbers to it', () => {
  const failing = nextRollout(
    input(progressing(0, 0), at(61), {
      rollout: { ...rollout, analysis: { ...rollout.analysis, failureLimit: 3 } },
      quality: few,
      measurement: erroring,
    }),
  );
  assert.is(failing.state.analysis.failedChecks, 1);
  assert.match(failing.state.analysis.message!, /^Failed: error rate 0\.3 > maxErrorRate 0\.05$/);
  const both = nextRollout(input(progressing(0, 0), at(61), { quality: worse, measurement: erroring }));
  assert.is(both.state.phase, 'RolledBack');
  assert.match(both.state.analysis.message!, /^Failed: error rate 0\.3 > maxErrorRate 0\.05; auc canary 0\.7100/);
});

test('errorRate and accuracy gates use the two-proportion test on the counts', () => {
  const counts = comparison(
    61,
    { count: 2000, positives: 1000, correct: 1500, auc: null, aucVariance: null },
    { count: 2000, positives: 1000, correct: 1800, auc: null, aucVariance: null },
  );
  for (const metric of ['errorRate', 'accuracy'] as const) {
    const gated = { ...rollout, analysis: { ...rollout.analysis, quality: { metric, maxDrop: 0.05 } } };
    const decision = nextRollout(
      input(progressing(0, 0), at(61), { rollout: gated, quality: counts, measurement: fast }),
    );
    assert.is(decision.state.phase, 'RolledBack', metric);
    assert.match(decision.state.analysis.message!, /two-proportion z-test/);
  }
});

test('in shadow mode, before any label, a canary deciding too differently fails; too few pairs waits; alike passes', () => {
  const decisionsOnly: RolloutSpec = {
    ...rollout,
    analysis: {
      maxErrorRate: 0.05,
      minRequests: 10,
      failureLimit: 1,
      decisions: { maxFlipRate: 0.05, maxScorePsi: 0.2, minPairs: 300 },
    },
  };
  const noLabels = side(0, 0, 0);
  const paired = (pairs: number, flipped: number, scorePsi: number) => ({
    ...comparison(61, { ...noLabels, auc: null, aucVariance: null }, { ...noLabels, auc: null, aucVariance: null }),
    paired: { pairs, flipped, scorePsi },
  });
  const at61 = (quality: InferenceServiceQualityComparisonStatus) =>
    nextRollout(input(progressing(0, 0), at(61), { shadow: true, rollout: decisionsOnly, quality, measurement: fast }));
  const flipped = at61(paired(1000, 180, 0.05));
  assert.is(flipped.state.phase, 'RolledBack');
  assert.match(
    flipped.state.analysis.message!,
    /^Failed: decisions on 1000 requests both answered: canary decided 180 differently \(flip rate 0\.18\), score PSI 0\.05: flip rate 0\.18 > maxFlipRate 0\.05$/,
  );
  assert.equal(flipped.state.analysis.decisions, { verdict: 'Differs', pairs: 1000, flipRate: 0.18, scorePsi: 0.05 });
  assert.match(at61(paired(1000, 10, 0.9)).state.analysis.message!, /score PSI 0\.9 > maxScorePsi 0\.2/);
  const few = at61(paired(120, 60, 2));
  assert.equal([few.state.phase, few.state.analysis.failedChecks], ['Progressing', 0]);
  assert.match(few.state.analysis.message!, /^Waiting: decisions: 120 requests answered by both versions, 300 needed/);
  const alike = at61(paired(1000, 12, 0.01));
  assert.is(alike.state.currentStep, 1);
  assert.is(alike.state.analysis.decisions!.verdict, 'Same');
  // Without a comparison on record it asks for an evaluation, like the quality gate.
  assert.ok(nextRollout(input(progressing(0, 0), at(61), { shadow: true, rollout: decisionsOnly })).evaluate);
});

test('in shadow mode with enough labels on the shared requests the paired test decides; with fewer, the unpaired one', () => {
  // Unpaired, a drop of 0.06 at these variances is not shown beyond maxDrop 0.05; on the same requests, with
  // the two versions' answers correlated, the variance of the difference is far smaller and it is.
  const sides = comparison(61, side(1200, 0.8, 0.0004), side(1200, 0.86, 0.0004));
  const labelled = (count: number) => ({
    ...sides,
    paired: {
      pairs: 1200,
      flipped: 90,
      scorePsi: 0.01,
      labelled: {
        count,
        canaryCorrect: 900,
        stableCorrect: 960,
        accuracyDifferenceVariance: 0.07,
        canaryAuc: 0.8,
        stableAuc: 0.86,
        aucDifferenceVariance: 0.00002,
      },
    },
  });
  const at61 = (quality: InferenceServiceQualityComparisonStatus) =>
    nextRollout(input(progressing(0, 0), at(61), { shadow: true, quality, measurement: fast }));
  const paired = at61(labelled(1200));
  assert.is(paired.state.phase, 'RolledBack');
  assert.match(
    paired.state.analysis.message!,
    /auc canary 0\.8000 vs stable 0\.8600 \(1200 vs 1200 labels\).*paired DeLong's test/,
  );
  const unpaired = at61(labelled(499));
  assert.is(unpaired.state.currentStep, 1, unpaired.state.analysis.message);
  assert.match(unpaired.state.analysis.message!, /\(DeLong's test, /);
  assert.equal(at61(sides).state.currentStep, 1, 'no pairs: the unpaired test');
});

const isvc: InferenceService = {
  apiVersion: 'loopline.dev/v1alpha1',
  kind: 'InferenceService',
  metadata: { name: 'fraud', namespace: 'risk', uid: 'u-1' },
  spec: {
    model: 'fraud',
    stable: { alias: 'production' },
    canary: { alias: 'candidate' },
    logging: { enabled: true, uri: 's3://loopline/ground-truth' },
    rollout,
  },
};

test("a canary's start is recorded; during its rollout the CronJob and the step's Job compare it with stable since then", () => {
  const started = nextRollout(input({ phase: 'Stable', stableVersion: 1, canaryWeight: 0, analysis: {} }, at(0)));
  assert.is(started.state.canaryStartedAt, T0.toISOString());
  const compared = comparedVersions(progressing(1, 0), at(61))!;
  assert.equal(compared, { canary: 2, stable: 1, since: T0.toISOString() });
  const args = (object: DesiredObject) =>
    (object as any).spec.jobTemplate?.spec.template.spec.containers[0].args ??
    (object as any).spec.template.spec.containers[0].args;
  const cron = qualityCronJob(isvc, {}, undefined, compared);
  assert.equal(args(cron).slice(-6), ['--canary', '2', '--stable', '1', '--since', T0.toISOString()]);
  assert.not.ok(args(qualityCronJob(isvc, {})).includes('--canary'));
  assert.is(comparedVersions({ phase: 'Promoted', stableVersion: 2, canaryWeight: 0, analysis: {} }, at(0)), undefined);
  const due = { step: 1, dueAt: at(60).toISOString() };
  const job = qualityEvaluationJob(isvc, cron, due);
  assert.is(job.kind, 'Job');
  assert.equal(args(job), args(cron));
  assert.is(job.metadata.name, qualityEvaluationJob(isvc, cron, due).metadata.name);
  assert.is.not(job.metadata.name, qualityEvaluationJob(isvc, cron, { ...due, step: 2 }).metadata.name);
  // Another rollout (another start) asks under another name.
  const next = qualityCronJob(isvc, {}, undefined, { ...compared, since: at(600).toISOString() });
  assert.is.not(job.metadata.name, qualityEvaluationJob(isvc, next, due).metadata.name);
  const long = { ...isvc, metadata: { ...isvc.metadata, name: 'a'.repeat(63) } };
  assert.ok(qualityEvaluationJob(long, qualityCronJob(long, {}, undefined, compared), due).metadata.name.length <= 63);
  assert.equal((job.metadata as any).ownerReferences[0].uid, 'u-1');
});

test('a failed evaluation Job is told by its Failed condition; a running or finished one is not', () => {
  assert.is(evaluationFailure(undefined), undefined);
  assert.is(evaluationFailure({ status: { active: 1 } }), undefined);
  assert.is(evaluationFailure({ status: { conditions: [{ type: 'Complete', status: 'True' }] } }), undefined);
  assert.is(
    evaluationFailure({
      status: {
        conditions: [
          {
            type: 'Failed',
            status: 'True',
            reason: 'BackoffLimitExceeded',
            message: 'Job has reached the specified backoff limit',
          },
        ],
      },
    }),
    'BackoffLimitExceeded: Job has reached the specified backoff limit',
  );
});

test("a quality event's comparison lands in status.quality.comparison with the window's end", () => {
  const data = {
    namespace: 'risk',
    inferenceService: 'fraud',
    window: { start: null, end: at(61).toISOString(), duration: 'all' },
    versions: [],
    comparison: {
      canaryVersion: 2,
      stableVersion: 1,
      since: T0.toISOString(),
      threshold: 0.5,
      canary: side(1200, 0.71, 0.0002),
      stable: side(1180, 0.86, 0.0001),
    },
  };
  const update = nextQualityStatus(undefined, cloudEvent({ type: QUALITY_EVENT_TYPE, source: '/x', data }))!;
  assert.equal(update.quality.comparison, worse);
  const bad = { ...data, comparison: { ...data.comparison, canary: { ...data.comparison.canary, count: -1 } } };
  assert.throws(
    () => nextQualityStatus(undefined, cloudEvent({ type: QUALITY_EVENT_TYPE, source: '/x', data: bad })),
    /data\.comparison\.canary\.count is missing or malformed/,
  );
});

test.run();
