// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { analysisDue, judge, nextRollout, type Measurement, type RolloutInput, type RolloutState } from '../canary.ts';
import type { RolloutSpec } from '../resource.ts';

const T0 = new Date('2025-01-01T00:00:00Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
const rollout: RolloutSpec = {
  steps: [10, 50, 100],
  interval: '30s',
  analysis: { maxErrorRate: 0.05, maxLatencyP95Ms: 200, maxLatencyP99Ms: 400, minRequests: 10, failureLimit: 2 },
};
const good: Measurement = { requests: 100, errorRate: 0.01, latencyP95Ms: 50, latencyP99Ms: 90 };
const errors: Measurement = { requests: 100, errorRate: 0.2, latencyP95Ms: 50, latencyP99Ms: 90 };
const slow: Measurement = { requests: 100, errorRate: 0, latencyP95Ms: 800, latencyP99Ms: 900 };
const stableState: RolloutState = { phase: 'Stable', stableVersion: 1, canaryWeight: 0, analysis: {} };

function progressing(step: number, weight: number, startedAt: number, failedChecks = 0): RolloutState {
  return {
    phase: 'Progressing',
    stableVersion: 1,
    canaryVersion: 2,
    canaryWeight: weight,
    currentStep: step,
    analysis: { stepStartedAt: at(startedAt).toISOString(), failedChecks },
  };
}

function input(partial: Partial<RolloutInput>): RolloutInput {
  return { rollout, shadow: false, previous: stableState, stable: 1, canary: 2, now: at(0), ...partial };
}

const table: Array<{
  name: string;
  input: RolloutInput;
  phase: string;
  weight: number;
  step?: number;
  events: string[];
  promote?: number;
  failedChecks?: number;
}> = [
  {
    name: 'no canary named keeps the stable version at full weight',
    input: input({ canary: undefined }),
    phase: 'Stable',
    weight: 0,
    events: [],
  },
  {
    name: 'a new canary starts at the first step weight',
    input: input({}),
    phase: 'Progressing',
    weight: 10,
    step: 0,
    events: ['CanaryStarted'],
  },
  {
    name: 'shadow mode starts the canary with weight 0',
    input: input({ shadow: true }),
    phase: 'Progressing',
    weight: 0,
    step: 0,
    events: ['CanaryStarted'],
  },
  {
    name: 'before the interval elapses the step holds',
    input: input({ previous: progressing(0, 10, 0), now: at(29) }),
    phase: 'Progressing',
    weight: 10,
    step: 0,
    events: [],
  },
  {
    name: 'a passing analysis advances to the next step',
    input: input({ previous: progressing(0, 10, 0), now: at(30), measurement: good }),
    phase: 'Progressing',
    weight: 50,
    step: 1,
    events: ['StepAdvanced'],
  },
  {
    name: 'a passing analysis at the last step promotes',
    input: input({ previous: progressing(2, 100, 0), now: at(31), measurement: good }),
    phase: 'Promoted',
    weight: 0,
    events: ['Promoted'],
    promote: 2,
  },
  {
    name: 'a failing analysis below the failure limit holds the weight and counts',
    input: input({ previous: progressing(1, 50, 0), now: at(30), measurement: errors }),
    phase: 'Progressing',
    weight: 50,
    step: 1,
    events: ['AnalysisFailed'],
    failedChecks: 1,
  },
  {
    name: 'reaching the failure limit rolls back to weight 0',
    input: input({ previous: progressing(1, 50, 0, 1), now: at(30), measurement: slow }),
    phase: 'RolledBack',
    weight: 0,
    events: ['AnalysisFailed', 'RolledBack'],
    failedChecks: 2,
  },
  {
    name: 'too little traffic is a failed check',
    input: input({
      previous: progressing(0, 10, 0, 1),
      now: at(30),
      measurement: { requests: 3, errorRate: 0, latencyP95Ms: 1, latencyP99Ms: 1 },
    }),
    phase: 'RolledBack',
    weight: 0,
    events: ['AnalysisFailed', 'RolledBack'],
  },
  {
    name: 'an unreachable Prometheus holds the step, inconclusive, without counting a failed check',
    input: input({ previous: progressing(0, 10, 0), now: at(30), measurement: { error: 'connection refused' } }),
    phase: 'Progressing',
    weight: 10,
    step: 0,
    events: ['AnalysisInconclusive'],
    failedChecks: 0,
  },
  {
    name: 'an unreachable Prometheus one check short of the failure limit does not roll back',
    input: input({ previous: progressing(1, 50, 0, 1), now: at(30), measurement: { error: 'timeout' } }),
    phase: 'Progressing',
    weight: 50,
    step: 1,
    events: ['AnalysisInconclusive'],
    failedChecks: 1,
  },
  {
    name: 'an unreachable Prometheus at the last step does not promote',
    input: input({ previous: progressing(2, 100, 0), now: at(30), measurement: { error: 'timeout' } }),
    phase: 'Progressing',
    weight: 100,
    step: 2,
    events: ['AnalysisInconclusive'],
  },
  {
    name: 'autoRollback off halts at the current weight instead of rolling back',
    input: input({
      rollout: { ...rollout, autoRollback: false },
      previous: progressing(1, 50, 0, 1),
      now: at(30),
      measurement: errors,
    }),
    phase: 'Progressing',
    weight: 50,
    events: ['AnalysisFailed', 'Halted'],
  },
  {
    name: 'paused holds the step even when analysis would be due',
    input: input({ rollout: { ...rollout, paused: true }, previous: progressing(1, 50, 0), now: at(300) }),
    phase: 'Progressing',
    weight: 50,
    step: 1,
    events: [],
  },
  {
    name: 'abort rolls back at once',
    input: input({ rollout: { ...rollout, abort: true }, previous: progressing(1, 50, 0), now: at(1) }),
    phase: 'RolledBack',
    weight: 0,
    events: ['RolledBack'],
  },
  {
    name: 'promoteNow promotes at once',
    input: input({ rollout: { ...rollout, promoteNow: true }, previous: progressing(0, 10, 0), now: at(1) }),
    phase: 'Promoted',
    weight: 0,
    events: ['Promoted'],
    promote: 2,
  },
  {
    name: 'a rolled-back version is not retried while still named',
    input: input({
      previous: { phase: 'RolledBack', stableVersion: 1, canaryVersion: 2, canaryWeight: 0, analysis: {} },
      now: at(500),
    }),
    phase: 'RolledBack',
    weight: 0,
    events: [],
  },
  {
    name: 'a newer canary after a rollback starts again',
    input: input({
      canary: 3,
      previous: { phase: 'RolledBack', stableVersion: 1, canaryVersion: 2, canaryWeight: 0, analysis: {} },
    }),
    phase: 'Progressing',
    weight: 10,
    step: 0,
    events: ['CanaryStarted'],
  },
  {
    name: 'the candidate moving mid-rollout restarts at the first step',
    input: input({ canary: 3, previous: progressing(1, 50, 0), now: at(5) }),
    phase: 'Progressing',
    weight: 10,
    step: 0,
    events: ['CanaryStarted'],
  },
  {
    name: 'removing the canary mid-rollout cancels it',
    input: input({ canary: undefined, previous: progressing(1, 50, 0) }),
    phase: 'Stable',
    weight: 0,
    events: ['Cancelled'],
  },
  {
    name: 'after promotion the promoted version stays stable while the spec still names it as canary',
    input: input({ previous: { phase: 'Promoted', stableVersion: 2, canaryWeight: 0, analysis: {} }, now: at(999) }),
    phase: 'Promoted',
    weight: 0,
    events: [],
  },
  {
    name: 'the stable alias catching up with a canary that was promoted reads as Promoted',
    input: input({ stable: 2, canary: 2, previous: progressing(2, 100, 0) }),
    phase: 'Promoted',
    weight: 0,
    events: [],
  },
];

const ready = (since: number) => ({ ready: true, since: at(since) });
const unready = (since: number) => ({ ready: false, since: at(since) });
table.push(
  {
    name: 'a canary without a ready pod is not analysed however long the step has run',
    input: input({ previous: progressing(0, 10, 0), now: at(120), canaryReadiness: unready(0) }),
    phase: 'Progressing',
    weight: 10,
    step: 0,
    events: [],
  },
  {
    name: 'the step clock starts when the canary became ready, not when the step began',
    input: input({ previous: progressing(0, 10, 0), now: at(50), canaryReadiness: ready(25) }),
    phase: 'Progressing',
    weight: 10,
    step: 0,
    events: [],
  },
  {
    name: 'a full interval after becoming ready the step is analysed',
    input: input({ previous: progressing(0, 10, 0), now: at(55), canaryReadiness: ready(25), measurement: good }),
    phase: 'Progressing',
    weight: 50,
    step: 1,
    events: ['StepAdvanced'],
  },
  {
    name: 'a canary with no ready pod past its progress deadline is rolled back',
    input: input({
      rollout: { ...rollout, progressDeadline: '2m' },
      previous: progressing(0, 10, 0),
      now: at(121),
      canaryReadiness: unready(0),
    }),
    phase: 'RolledBack',
    weight: 0,
    events: ['RolledBack'],
  },
  {
    name: 'past the deadline with autoRollback off the canary is left waiting',
    input: input({
      rollout: { ...rollout, progressDeadline: '2m', autoRollback: false },
      previous: progressing(0, 10, 0),
      now: at(121),
      canaryReadiness: unready(0),
    }),
    phase: 'Progressing',
    weight: 10,
    events: [],
  },
);

test('the progress deadline counts from the later of the step start and the canary losing its pods', () => {
  const spec = { ...rollout, progressDeadline: '1m30s' };
  const early = nextRollout(
    input({ rollout: spec, previous: progressing(1, 50, 100), now: at(150), canaryReadiness: unready(0) }),
  );
  assert.is(early.state.phase, 'Progressing');
  assert.is(early.requeueAfterMs, 40_000);
  const late = nextRollout(
    input({ rollout: spec, previous: progressing(1, 50, 100), now: at(190), canaryReadiness: unready(0) }),
  );
  assert.is(late.state.phase, 'RolledBack');
  assert.match(
    (late.events[0] as { reason: string }).reason,
    /canary v2 had no ready pod for 90s \(progressDeadline 90s\)/,
  );
  assert.is(analysisDue(input({ previous: progressing(0, 10, 0), now: at(300), canaryReadiness: unready(0) })), false);
  assert.is(analysisDue(input({ previous: progressing(0, 10, 0), now: at(300), canaryReadiness: ready(100) })), true);
});

for (const row of table) {
  test(row.name, () => {
    const decision = nextRollout(row.input);
    assert.is(decision.state.phase, row.phase);
    assert.is(decision.state.canaryWeight, row.weight);
    if (row.step !== undefined) assert.is(decision.state.currentStep, row.step);
    assert.equal(
      decision.events.map((event) => event.type),
      row.events,
    );
    assert.is(decision.promote?.version, row.promote);
    if (row.failedChecks !== undefined) assert.is(decision.state.analysis.failedChecks, row.failedChecks);
  });
}

test('a rollback names the numbers that failed', () => {
  const decision = nextRollout(input({ previous: progressing(1, 50, 0, 1), now: at(30), measurement: errors }));
  const rolledBack = decision.events.find((event) => event.type === 'RolledBack');
  assert.ok(rolledBack && rolledBack.type === 'RolledBack');
  assert.match(rolledBack.reason, /error rate 0.2 > maxErrorRate 0.05/);
  assert.is(decision.state.analysis.errorRate, 0.2);
  assert.match(decision.state.analysis.message ?? '', /^Failed: /);
});

test('an inconclusive analysis says so in status, keeps the step clock, retries soon, and the first answer decides', () => {
  const down = nextRollout(
    input({ previous: progressing(1, 50, 0), now: at(30), measurement: { error: 'fetch failed' } }),
  );
  assert.match(
    down.state.analysis.message ?? '',
    /^Inconclusive: metrics unavailable: fetch failed; step 1 held at 50%, neither promoted nor rolled back/,
  );
  assert.is(down.state.analysis.stepStartedAt, at(0).toISOString());
  assert.is(down.requeueAfterMs, 5_000);
  // Still down: the same status (no write) and no second event.
  const still = nextRollout(input({ previous: down.state, now: at(35), measurement: { error: 'fetch failed' } }));
  assert.equal(still.state, down.state);
  assert.equal(still.events, []);
  // Back: the analysis is due at once (the step has run its interval) and decides on the numbers.
  assert.is(analysisDue(input({ previous: still.state, now: at(40) })), true);
  const back = nextRollout(input({ previous: still.state, now: at(40), measurement: good }));
  assert.equal(
    [back.state.currentStep, back.state.canaryWeight, back.events.map((e) => e.type)],
    [2, 100, ['StepAdvanced']],
  );
});

test('judge lists each threshold that is crossed', () => {
  const result = judge({ requests: 5, errorRate: 0.5, latencyP95Ms: 300, latencyP99Ms: 500 }, rollout.analysis, 0, T0);
  assert.is(result.verdict, 'Failed');
  for (const part of ['requests 5 < minRequests 10', 'error rate 0.5', 'p95 latency 300ms', 'p99 latency 500ms'])
    assert.ok(result.reason.includes(part), result.reason);
  assert.is(judge(good, rollout.analysis, 0, T0).verdict, 'Passed');
});

test('analysis is due only once the interval has elapsed on a running, unpaused canary', () => {
  assert.is(analysisDue(input({ previous: progressing(0, 10, 0), now: at(29) })), false);
  assert.is(analysisDue(input({ previous: progressing(0, 10, 0), now: at(30) })), true);
  assert.is(
    analysisDue(input({ rollout: { ...rollout, paused: true }, previous: progressing(0, 10, 0), now: at(30) })),
    false,
  );
  assert.is(analysisDue(input({ previous: stableState, now: at(30) })), false);
});

test('a full rollout walks every step and the requeue matches the interval', () => {
  let state = stableState;
  const weights: number[] = [];
  let decision = nextRollout(input({ previous: state, now: at(0) }));
  assert.is(decision.requeueAfterMs, 30_000);
  for (let i = 1; decision.state.phase === 'Progressing'; i++) {
    weights.push(decision.state.canaryWeight);
    state = decision.state;
    decision = nextRollout(input({ previous: state, now: at(i * 30), measurement: good }));
  }
  assert.equal(weights, [10, 50, 100]);
  assert.is(decision.state.phase, 'Promoted');
  assert.is(decision.state.stableVersion, 2);
});

test('resuming from status alone continues at the same step with the remaining wait', () => {
  // What a restarted operator reads back: only the serialized status.
  const fromStatus = JSON.parse(JSON.stringify(progressing(1, 50, 0))) as RolloutState;
  const decision = nextRollout(input({ previous: fromStatus, now: at(20) }));
  assert.is(decision.state.canaryWeight, 50);
  assert.is(decision.state.currentStep, 1);
  assert.is(decision.requeueAfterMs, 10_000);
});

test('a halted rollout stays put until abort', () => {
  const manual = { ...rollout, autoRollback: false };
  const halted = nextRollout(
    input({ rollout: manual, previous: progressing(1, 50, 0, 1), now: at(30), measurement: errors }),
  );
  assert.is(analysisDue(input({ rollout: manual, previous: halted.state, now: at(999) })), false);
  assert.is(nextRollout(input({ rollout: manual, previous: halted.state, now: at(999) })).state.canaryWeight, 50);
  assert.is(
    nextRollout(input({ rollout: { ...manual, abort: true }, previous: halted.state, now: at(999) })).state.phase,
    'RolledBack',
  );
});

test('autoPromote off holds at the last step until promoteNow', () => {
  const manual = { ...rollout, autoPromote: false };
  const held = nextRollout(
    input({ rollout: manual, previous: progressing(2, 100, 0), now: at(30), measurement: good }),
  );
  assert.is(held.state.phase, 'Progressing');
  assert.is(held.state.canaryWeight, 100);
  assert.equal(
    held.events.map((e) => e.type),
    ['AwaitingPromotion'],
  );
  assert.is(analysisDue(input({ rollout: manual, previous: held.state, now: at(999) })), false);
  const later = nextRollout(input({ rollout: manual, previous: held.state, now: at(999) }));
  assert.is(later.state.phase, 'Progressing');
  const promoted = nextRollout(
    input({ rollout: { ...manual, promoteNow: true }, previous: held.state, now: at(1000) }),
  );
  assert.is(promoted.promote?.version, 2);
});

test.run();
