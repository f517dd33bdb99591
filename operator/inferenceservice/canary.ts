/**
 * The canary state machine: where the canary weight is decided. A pure function of the rollout spec, the
 * versions the selectors resolve to, the previous status and (when due) one analysis measurement. Everything
 * it needs to continue lives in status, so an operator restart resumes at the same step with the same weight.
 */
import { durationOr } from '../api/contracts.ts';
import type { InferenceServiceQualityComparisonStatus } from '../api/types.ts';
import { comparePaired, compareSides, type QualityComparison } from '../../server/src/quality/compare.ts';
import type { AnalysisResult, AnalysisSpec, AnalysisStatus, Phase, RolloutSpec } from './resource.ts';

export const DEFAULT_STEPS = [5, 10, 25, 50, 100];
export const DEFAULT_INTERVAL_MS = 60_000;
export const DEFAULT_FAILURE_LIMIT = 2;
export const DEFAULT_PROGRESS_DEADLINE_MS = 600_000;
/** How soon an analysis that could not be made (no answer from Prometheus) is tried again, at most. */
export const INCONCLUSIVE_RETRY_MS = 5_000;
/** How often a step due for analysis looks for the quality evaluation it asked for. */
export const QUALITY_POLL_MS = 5_000;
export const DEFAULT_MIN_LABELS = 200;
export const DEFAULT_CONFIDENCE = 0.95;
export const DEFAULT_MIN_PAIRS = 200;

/** The part of InferenceService status this machine owns. */
export interface RolloutState {
  phase: Phase;
  stableVersion?: number;
  canaryVersion?: number;
  /** When the running canary's rollout started: its quality is compared with stable's on predictions since. */
  canaryStartedAt?: string;
  canaryWeight: number;
  currentStep?: number;
  analysis: AnalysisStatus;
}

/** What Prometheus said about the canary over the last interval, or why it could not say. */
export type Measurement =
  | { requests: number; errorRate: number | null; latencyP95Ms: number | null; latencyP99Ms: number | null }
  | { error: string };

export type RolloutEvent =
  | { type: 'CanaryStarted'; version: number; weight: number; replaced?: number }
  | { type: 'StepAdvanced'; version: number; step: number; weight: number; analysis: AnalysisResult }
  | { type: 'AnalysisFailed'; version: number; analysis: AnalysisResult; failedChecks: number; failureLimit: number }
  | { type: 'AnalysisInconclusive'; version: number; step: number; weight: number; analysis: AnalysisResult }
  | { type: 'AwaitingLabels'; version: number; step: number; weight: number; reason: string }
  | { type: 'AwaitingPromotion'; version: number }
  | { type: 'Halted'; version: number; reason: string }
  | { type: 'Promoted'; version: number; previous?: number; reason: string }
  | { type: 'RolledBack'; version: number; reason: string; analysis?: AnalysisResult }
  | { type: 'Cancelled'; version: number };

export interface RolloutDecision {
  state: RolloutState;
  /** What happened in this transition, for Kubernetes Events and NATS lifecycle events. */
  events: RolloutEvent[];
  /** Set when the registry must make `version` the production version (and archive `previous`). */
  promote?: { version: number; previous?: number; reason: string };
  /** When to look again (next analysis), if a rollout is running. */
  requeueAfterMs?: number;
  /**
   * Set when the step is due and gated on quality, but the comparison on record was made before it was due: run
   * an evaluation now (the controller starts a Job from the quality CronJob; one per step and due time).
   */
  evaluate?: { step: number; dueAt: string };
}

export interface RolloutInput {
  rollout: RolloutSpec | undefined;
  /** Canary is mirrored rather than weighted: its weight stays 0, analysis runs on the mirrored traffic. */
  shadow: boolean;
  previous: RolloutState;
  /** Version the stable selector resolves to now. */
  stable: number;
  /** Version the canary selector resolves to now, if any. */
  canary?: number;
  now: Date;
  /** Required when `analysisDue` said so. */
  measurement?: Measurement;
  /**
   * Whether the canary has a ready pod, and since when that has been so (the CanaryReady condition's last
   * transition). Absent: taken as ready all along.
   */
  canaryReadiness?: { ready: boolean; since?: Date };
  /** The evaluator's latest comparison of two versions (status.quality.comparison), for spec.rollout.analysis.quality. */
  quality?: InferenceServiceQualityComparisonStatus;
}

export function rolloutSteps(rollout: RolloutSpec | undefined): number[] {
  const steps = rollout?.steps?.length ? rollout.steps : DEFAULT_STEPS;
  return steps.map((weight) => Math.max(0, Math.min(100, Math.round(weight))));
}

export function intervalMs(rollout: RolloutSpec | undefined): number {
  return durationOr('spec.rollout.interval', rollout?.interval, DEFAULT_INTERVAL_MS);
}

export function progressDeadlineMs(rollout: RolloutSpec | undefined): number {
  return durationOr('spec.rollout.progressDeadline', rollout?.progressDeadline, DEFAULT_PROGRESS_DEADLINE_MS);
}

/**
 * When the current step's clock started: the step's start, or the moment the canary became ready if that was
 * later. A canary that is still starting serves nothing, so its time is not analysed and no step passes.
 */
function clockStart(previous: RolloutState, readiness: RolloutInput['canaryReadiness']): number {
  const started = previous.analysis.stepStartedAt
    ? Date.parse(previous.analysis.stepStartedAt)
    : Number.NEGATIVE_INFINITY;
  const readySince = readiness?.ready && readiness.since ? readiness.since.getTime() : Number.NEGATIVE_INFINITY;
  return Math.max(started, readySince);
}

/** The stable version actually served: after a promotion the promoted canary stays stable while the spec still names it as canary. */
export function effectiveStable(previous: RolloutState, stable: number, canary: number | undefined): number {
  if (previous.phase === 'Promoted' && previous.stableVersion !== undefined && previous.stableVersion === canary)
    return previous.stableVersion;
  return stable;
}

/** True when the current step has been held for a full interval and must be analysed now. */
export function analysisDue(input: Omit<RolloutInput, 'measurement'>): boolean {
  const { previous, rollout } = input;
  if (previous.phase !== 'Progressing' || rollout?.paused || rollout?.abort || rollout?.promoteNow) return false;
  const stable = effectiveStable(previous, input.stable, input.canary);
  if (input.canary === undefined || input.canary === stable || input.canary !== previous.canaryVersion) return false;
  if (held(previous, rollout, rolloutSteps(rollout).length)) return false;
  if (input.canaryReadiness?.ready === false) return false;
  const dueAt = clockStart(previous, input.canaryReadiness) + intervalMs(rollout);
  if (input.now.getTime() < dueAt) return false;
  // Gated on quality: Prometheus is asked together with a comparison made after the step fell due.
  return !gatedOnQuality(rollout) || qualityFresh(input.quality, input.canary, stable, dueAt);
}

/** Whether a step's analysis waits for the evaluator: labels (quality) or paired decisions (decisions). */
export function gatedOnQuality(rollout: RolloutSpec | undefined): boolean {
  return rollout?.analysis?.quality !== undefined || rollout?.analysis?.decisions !== undefined;
}

export interface DecisionsCheck {
  verdict: 'Differs' | 'Same' | 'Insufficient';
  pairs: number;
  flipRate: number | null;
  scorePsi: number | null;
  reason: string;
}

/** spec.rollout.analysis.decisions on the paired requests of status.quality.comparison: bounds, no test. */
export function judgeDecisions(
  gate: NonNullable<AnalysisSpec['decisions']>,
  quality: InferenceServiceQualityComparisonStatus,
): DecisionsCheck {
  const pairs = quality.paired?.pairs ?? 0;
  const minPairs = gate.minPairs ?? DEFAULT_MIN_PAIRS;
  if (pairs < minPairs)
    return {
      verdict: 'Insufficient',
      pairs,
      flipRate: null,
      scorePsi: null,
      reason: `decisions: ${pairs} requests answered by both versions, ${minPairs} needed; waiting for mirrored traffic`,
    };
  const flipRate = (quality.paired?.flipped ?? 0) / pairs;
  const scorePsi = quality.paired?.scorePsi ?? null;
  const failures: string[] = [];
  if (gate.maxFlipRate !== undefined && flipRate > gate.maxFlipRate)
    failures.push(`flip rate ${round(flipRate)} > maxFlipRate ${gate.maxFlipRate}`);
  if (gate.maxScorePsi !== undefined && scorePsi !== null && scorePsi > gate.maxScorePsi)
    failures.push(`score PSI ${round(scorePsi)} > maxScorePsi ${gate.maxScorePsi}`);
  const measured = `on ${pairs} requests both answered: canary decided ${quality.paired?.flipped ?? 0} differently (flip rate ${round(flipRate)}), score PSI ${scorePsi === null ? 'n/a' : round(scorePsi)}`;
  return failures.length
    ? { verdict: 'Differs', pairs, flipRate, scorePsi, reason: `decisions ${measured}: ${failures.join('; ')}` }
    : { verdict: 'Same', pairs, flipRate, scorePsi, reason: `decisions ${measured}` };
}

/** The verdict so far with the decisions check's: a canary deciding too differently fails it. */
export function withDecisions(result: AnalysisResult, check: DecisionsCheck): AnalysisResult {
  const decisions: NonNullable<AnalysisResult['decisions']> = {
    verdict: check.verdict,
    pairs: check.pairs,
    ...(check.flipRate !== null ? { flipRate: check.flipRate } : {}),
    ...(check.scorePsi !== null ? { scorePsi: check.scorePsi } : {}),
  };
  return withCheck(result, { decisions }, check.verdict === 'Differs', check.reason);
}

/**
 * The verdict so far with one more check's (its summary under its own key): a failing check fails a passing result
 * with its own reason, and adds its reason to a failed one; a passing check adds its reason to a passing result.
 */
function withCheck(
  result: AnalysisResult,
  summary: Pick<AnalysisResult, 'quality'> | Pick<AnalysisResult, 'decisions'>,
  failed: boolean,
  reason: string,
): AnalysisResult {
  if (result.verdict === 'Failed')
    return { ...result, ...summary, reason: failed ? `${result.reason}; ${reason}` : result.reason };
  if (failed) return { ...result, ...summary, verdict: 'Failed', reason };
  return { ...result, ...summary, reason: `${result.reason}; ${reason}` };
}

/** Whether `quality` compares these two versions with the labels up to `dueAt` or later. */
export function qualityFresh(
  quality: InferenceServiceQualityComparisonStatus | undefined,
  canary: number,
  stable: number,
  dueAt: number,
): boolean {
  return (
    quality?.canaryVersion === canary &&
    quality.stableVersion === stable &&
    quality.end !== undefined &&
    Date.parse(quality.end) >= dueAt
  );
}

/** The one-sided test of spec.rollout.analysis.quality on the evaluator's comparison (server/src/quality/compare.ts). */
export function judgeQuality(
  gate: NonNullable<AnalysisSpec['quality']>,
  quality: InferenceServiceQualityComparisonStatus,
): QualityComparison {
  const side = (s: InferenceServiceQualityComparisonStatus['canary']) =>
    filled(s, ['count', 'positives', 'correct'], ['auc', 'aucVariance']);
  const options = {
    metric: gate.metric ?? 'auc',
    maxDrop: gate.maxDrop,
    minLabels: gate.minLabels ?? DEFAULT_MIN_LABELS,
    confidence: gate.confidence ?? DEFAULT_CONFIDENCE,
  };
  // Shadow mode: both versions answered the same requests, so the paired test, which the correlation of the two
  // answers makes far more sensitive, once the shared requests alone carry enough labels.
  const labelled = quality.paired?.labelled;
  if (labelled && (labelled.count ?? 0) >= options.minLabels)
    return comparePaired(
      filled(
        labelled,
        ['count', 'canaryCorrect', 'stableCorrect'],
        ['accuracyDifferenceVariance', 'canaryAuc', 'stableAuc', 'aucDifferenceVariance'],
      ),
      options,
    );
  return compareSides(side(quality.canary), side(quality.stable), options);
}

/** A status summary's fields as the comparison reads them: counts 0 and statistics null where it has none. */
function filled<C extends string, S extends string>(
  status: Partial<Record<C | S, number | null>> | undefined,
  counts: readonly C[],
  statistics: readonly S[],
): Record<C, number> & Record<S, number | null> {
  const out: Record<string, number | null> = {};
  for (const key of counts) out[key] = status?.[key] ?? 0;
  for (const key of statistics) out[key] = status?.[key] ?? null;
  return out as Record<C, number> & Record<S, number | null>;
}

/** The Prometheus verdict with the quality test's: a worse canary fails the check, even a fast and error-free one. */
export function withQuality(result: AnalysisResult, comparison: QualityComparison): AnalysisResult {
  const quality: NonNullable<AnalysisResult['quality']> = {
    metric: comparison.metric,
    verdict: comparison.verdict === 'worse' ? 'Worse' : comparison.verdict === 'notWorse' ? 'NotWorse' : 'Insufficient',
    canaryLabels: comparison.canaryCount,
    stableLabels: comparison.stableCount,
    ...(comparison.canary !== null ? { canary: comparison.canary } : {}),
    ...(comparison.stable !== null ? { stable: comparison.stable } : {}),
    ...(comparison.pValue !== null ? { pValue: comparison.pValue } : {}),
  };
  return withCheck(result, { quality }, comparison.verdict === 'worse', comparison.reason);
}

/**
 * Judges one measurement against the thresholds. Too little traffic counts as a failed check, as in Flagger; a
 * query Prometheus did not answer is no evidence either way: Inconclusive, which neither passes nor fails a step.
 */
export function judge(
  measurement: Measurement,
  analysis: AnalysisSpec | undefined,
  step: number,
  now: Date,
): AnalysisResult {
  const base = { time: now.toISOString(), step };
  if ('error' in measurement) {
    return {
      ...base,
      requests: 0,
      errorRate: null,
      latencyP95Ms: null,
      latencyP99Ms: null,
      verdict: 'Inconclusive',
      reason: `metrics unavailable: ${measurement.error}`,
    };
  }
  const result = { ...base, ...measurement };
  const failures: string[] = [];
  const minRequests = analysis?.minRequests ?? 0;
  if (measurement.requests < minRequests)
    failures.push(`requests ${measurement.requests} < minRequests ${minRequests}`);
  if (
    analysis?.maxErrorRate !== undefined &&
    measurement.errorRate !== null &&
    measurement.errorRate > analysis.maxErrorRate
  ) {
    failures.push(`error rate ${round(measurement.errorRate)} > maxErrorRate ${analysis.maxErrorRate}`);
  }
  if (
    analysis?.maxLatencyP95Ms !== undefined &&
    measurement.latencyP95Ms !== null &&
    measurement.latencyP95Ms > analysis.maxLatencyP95Ms
  ) {
    failures.push(`p95 latency ${round(measurement.latencyP95Ms)}ms > maxLatencyP95Ms ${analysis.maxLatencyP95Ms}`);
  }
  if (
    analysis?.maxLatencyP99Ms !== undefined &&
    measurement.latencyP99Ms !== null &&
    measurement.latencyP99Ms > analysis.maxLatencyP99Ms
  ) {
    failures.push(`p99 latency ${round(measurement.latencyP99Ms)}ms > maxLatencyP99Ms ${analysis.maxLatencyP99Ms}`);
  }
  if (failures.length > 0) return { ...result, verdict: 'Failed', reason: failures.join('; ') };
  return { ...result, verdict: 'Passed', reason: describe(measurement) };
}

export function nextRollout(input: RolloutInput): RolloutDecision {
  const { rollout, previous, now, canary } = input;
  const stable = effectiveStable(previous, input.stable, canary);
  const steps = rolloutSteps(rollout);
  const interval = intervalMs(rollout);
  const weightAt = (step: number) => (input.shadow ? 0 : steps[step]!);

  // No canary wanted (none named, or it is what stable serves already).
  if (canary === undefined || canary === stable) {
    const state: RolloutState = { phase: 'Stable', stableVersion: stable, canaryWeight: 0, analysis: {} };
    if (previous.phase === 'Promoted' || (previous.phase === 'Progressing' && previous.canaryVersion === stable)) {
      return { state: { ...state, phase: 'Promoted', analysis: previous.analysis }, events: [] };
    }
    if (previous.phase === 'Progressing' && previous.canaryVersion !== undefined) {
      return { state, events: [{ type: 'Cancelled', version: previous.canaryVersion }] };
    }
    return { state, events: [] };
  }

  // A canary that was rolled back stays out until the selector names another version.
  if (previous.phase === 'RolledBack' && previous.canaryVersion === canary) {
    return { state: { ...previous, stableVersion: stable, canaryWeight: 0 }, events: [] };
  }

  const running = previous.phase === 'Progressing' && previous.canaryVersion === canary;
  if (!running) {
    if (rollout?.abort)
      return {
        state: rolledBack(stable, canary, previous.analysis),
        events: [{ type: 'RolledBack', version: canary, reason: 'aborted by spec.rollout.abort' }],
      };
    const state: RolloutState = {
      phase: 'Progressing',
      stableVersion: stable,
      canaryVersion: canary,
      canaryStartedAt: now.toISOString(),
      canaryWeight: weightAt(0),
      currentStep: 0,
      analysis: { stepStartedAt: now.toISOString(), failedChecks: 0 },
    };
    const replaced = previous.phase === 'Progressing' ? previous.canaryVersion : undefined;
    return {
      state,
      events: [
        {
          type: 'CanaryStarted',
          version: canary,
          weight: state.canaryWeight,
          ...(replaced !== undefined ? { replaced } : {}),
        },
      ],
      requeueAfterMs: interval,
    };
  }

  const step = Math.min(previous.currentStep ?? 0, steps.length - 1);
  const current: RolloutState = { ...previous, stableVersion: stable, currentStep: step };

  if (rollout?.abort) {
    return {
      state: rolledBack(stable, canary, previous.analysis),
      events: [{ type: 'RolledBack', version: canary, reason: 'aborted by spec.rollout.abort' }],
    };
  }
  if (rollout?.promoteNow) return promoted(stable, canary, previous.analysis, 'promoted by spec.rollout.promoteNow');
  if (rollout?.paused) return { state: current, events: [] };
  if (held(previous, rollout, steps.length)) return { state: current, events: [] };

  const readiness = input.canaryReadiness;
  if (readiness?.ready === false) {
    // No ready canary pod: nothing to analyse. Its share goes to stable (see the controller) until it is ready,
    // or, past the progress deadline, it is rolled back as a canary that will not start.
    const since = Math.max(
      readiness.since?.getTime() ?? Number.NEGATIVE_INFINITY,
      previous.analysis.stepStartedAt ? Date.parse(previous.analysis.stepStartedAt) : now.getTime(),
    );
    const deadline = progressDeadlineMs(rollout);
    const unready = now.getTime() - since;
    if (unready < deadline || rollout?.autoRollback === false) {
      return { state: current, events: [], ...(unready < deadline ? { requeueAfterMs: deadline - unready } : {}) };
    }
    const reason = `canary v${canary} had no ready pod for ${Math.round(unready / 1000)}s (progressDeadline ${Math.round(deadline / 1000)}s)`;
    return {
      state: rolledBack(stable, canary, {
        ...previous.analysis,
        stepStartedAt: now.toISOString(),
        message: `Failed: ${reason}`,
      }),
      events: [{ type: 'RolledBack', version: canary, reason }],
    };
  }
  const waited = now.getTime() - clockStart(previous, readiness);
  if (waited < interval) return { state: current, events: [], requeueAfterMs: interval - waited };
  const gate = rollout?.analysis?.quality;
  const decisionsGate = rollout?.analysis?.decisions;
  const dueAt = clockStart(previous, readiness) + interval;
  if (gatedOnQuality(rollout) && !qualityFresh(input.quality, canary, stable, dueAt)) {
    // The step is due but its quality is not known yet: hold at its weight (clock and failures kept) until the
    // evaluation asked for reports.
    const due = new Date(dueAt).toISOString();
    const message = `Waiting: quality evaluation of canary v${canary} against stable v${stable} with the labels up to ${due}; step ${step} held at ${current.canaryWeight}%`;
    return {
      state: { ...current, analysis: { ...previous.analysis, message } },
      events: [],
      requeueAfterMs: QUALITY_POLL_MS,
      evaluate: { step, dueAt: due },
    };
  }
  if (!input.measurement) throw new Error('analysis is due: nextRollout needs a measurement');

  let result = judge(input.measurement, rollout?.analysis, step, now);
  if (gatedOnQuality(rollout) && result.verdict !== 'Inconclusive') {
    const comparison = gate ? judgeQuality(gate, input.quality!) : undefined;
    const decisions = decisionsGate ? judgeDecisions(decisionsGate, input.quality!) : undefined;
    if (comparison) result = withQuality(result, comparison);
    if (decisions) result = withDecisions(result, decisions);
    const waitingFor = [
      ...(comparison?.verdict === 'insufficient' ? [comparison.reason] : []),
      ...(decisions?.verdict === 'Insufficient' ? [decisions.reason] : []),
    ];
    if (waitingFor.length > 0 && result.verdict === 'Passed') {
      // Too few labels (or pairs) is no verdict, as too little traffic is none: the step waits one more interval
      // and asks again, without a failed check.
      const reason = waitingFor.join('; ');
      const analysis: AnalysisStatus = {
        stepStartedAt: now.toISOString(),
        failedChecks: previous.analysis.failedChecks ?? 0,
        ...recorded(result),
        message: `Waiting: ${reason}; step ${step} held at ${current.canaryWeight}%`,
      };
      return {
        state: { ...current, analysis },
        events: [{ type: 'AwaitingLabels', version: canary, step, weight: current.canaryWeight, reason }],
        requeueAfterMs: interval,
      };
    }
  }
  if (result.verdict === 'Inconclusive') {
    // The step holds at its weight with its clock and failure count kept: the analysis runs again soon and the
    // first answer decides. Said once (event) and in status; a repeat of the same outage writes nothing new.
    const message = `Inconclusive: ${result.reason}; step ${step} held at ${current.canaryWeight}%, neither promoted nor rolled back until Prometheus answers`;
    const already = previous.analysis.message === message;
    const analysis: AnalysisStatus = {
      ...(previous.analysis.stepStartedAt ? { stepStartedAt: previous.analysis.stepStartedAt } : {}),
      failedChecks: previous.analysis.failedChecks ?? 0,
      lastCheck: already && previous.analysis.lastCheck ? previous.analysis.lastCheck : result.time,
      message,
    };
    return {
      state: { ...current, analysis },
      events: already
        ? []
        : [{ type: 'AnalysisInconclusive', version: canary, step, weight: current.canaryWeight, analysis: result }],
      requeueAfterMs: Math.min(interval, INCONCLUSIVE_RETRY_MS),
    };
  }
  if (result.verdict === 'Failed') {
    const failedChecks = (previous.analysis.failedChecks ?? 0) + 1;
    const failureLimit = rollout?.analysis?.failureLimit ?? DEFAULT_FAILURE_LIMIT;
    const analysis: AnalysisStatus = { stepStartedAt: now.toISOString(), failedChecks, ...recorded(result) };
    const failed: RolloutEvent = {
      type: 'AnalysisFailed',
      version: canary,
      analysis: result,
      failedChecks,
      failureLimit,
    };
    if (failedChecks < failureLimit)
      return { state: { ...current, analysis }, events: [failed], requeueAfterMs: interval };
    const reason = `${failedChecks} failed checks (limit ${failureLimit}): ${result.reason}`;
    if (rollout?.autoRollback === false) {
      // Held at the current weight; analysis stops until a person promotes or aborts.
      return {
        state: { ...current, analysis: { ...analysis, stepStartedAt: undefined } },
        events: [
          failed,
          { type: 'Halted', version: canary, reason: `${reason}; autoRollback is off: promote or abort` },
        ],
      };
    }
    return {
      state: rolledBack(stable, canary, analysis),
      events: [failed, { type: 'RolledBack', version: canary, reason, analysis: result }],
    };
  }

  const analysis: AnalysisStatus = {
    stepStartedAt: now.toISOString(),
    failedChecks: previous.analysis.failedChecks ?? 0,
    ...recorded(result),
  };
  if (step + 1 < steps.length) {
    const next = step + 1;
    return {
      state: { ...current, currentStep: next, canaryWeight: weightAt(next), analysis },
      events: [{ type: 'StepAdvanced', version: canary, step: next, weight: weightAt(next), analysis: result }],
      requeueAfterMs: interval,
    };
  }
  if (rollout?.autoPromote === false) {
    return {
      state: { ...current, analysis: { ...analysis, stepStartedAt: undefined } },
      events: [{ type: 'AwaitingPromotion', version: canary }],
    };
  }
  return promoted(stable, canary, analysis, `all ${steps.length} steps passed analysis; last: ${result.reason}`);
}

function promoted(stable: number, canary: number, analysis: AnalysisStatus, reason: string): RolloutDecision {
  return {
    state: { phase: 'Promoted', stableVersion: canary, canaryWeight: 0, analysis },
    events: [{ type: 'Promoted', version: canary, previous: stable, reason }],
    promote: { version: canary, previous: stable, reason },
  };
}

function rolledBack(stable: number, canary: number, analysis: AnalysisStatus): RolloutState {
  return { phase: 'RolledBack', stableVersion: stable, canaryVersion: canary, canaryWeight: 0, analysis };
}

/**
 * A running canary with no step clock is held for a person: the last step passed with autoPromote off,
 * or the failure limit was reached with autoRollback off. Only promoteNow or abort move it on.
 */
function held(previous: RolloutState, rollout: RolloutSpec | undefined, stepCount: number): boolean {
  if (previous.phase !== 'Progressing' || previous.analysis.stepStartedAt !== undefined) return false;
  const awaitingPromotion =
    rollout?.autoPromote === false &&
    (previous.currentStep ?? 0) >= stepCount - 1 &&
    previous.analysis.message?.startsWith('Passed') === true;
  const halted =
    rollout?.autoRollback === false &&
    (previous.analysis.failedChecks ?? 0) >= (rollout.analysis?.failureLimit ?? DEFAULT_FAILURE_LIMIT);
  return awaitingPromotion || halted;
}

/** The flat status.analysis fields for one check; absent numbers are left out (the schema has no nulls). */
export function recorded(result: AnalysisResult): AnalysisStatus {
  const analysis: AnalysisStatus = {
    lastCheck: result.time,
    requests: result.requests,
    message: `${result.verdict}: ${result.reason}`,
  };
  if (result.errorRate !== null) analysis.errorRate = result.errorRate;
  if (result.latencyP95Ms !== null) analysis.latencyP95Ms = result.latencyP95Ms;
  if (result.latencyP99Ms !== null) analysis.latencyP99Ms = result.latencyP99Ms;
  if (result.quality) analysis.quality = result.quality;
  if (result.decisions) analysis.decisions = result.decisions;
  return analysis;
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

function describe(m: {
  requests: number;
  errorRate: number | null;
  latencyP95Ms: number | null;
  latencyP99Ms: number | null;
}): string {
  const parts = [`requests ${m.requests}`];
  if (m.errorRate !== null) parts.push(`error rate ${round(m.errorRate)}`);
  if (m.latencyP95Ms !== null) parts.push(`p95 ${round(m.latencyP95Ms)}ms`);
  if (m.latencyP99Ms !== null) parts.push(`p99 ${round(m.latencyP99Ms)}ms`);
  return parts.join(', ');
}
