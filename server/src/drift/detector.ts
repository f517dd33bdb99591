// Evaluates one window of live inputs against the reference profile: every statistic
// per feature, the deciding test per feature, and whether the window as a whole drifted.
// Pure functions; the monitor runs them off the request path.
import type { CategoricalFeatureProfile, NumericFeatureProfile, ReferenceProfile } from './profile.ts';
import {
  ascending,
  binSharesSorted,
  chiSquareGoodnessOfFit,
  jensenShannonDistance,
  ksAndNormedWassersteinSorted,
  psi,
  PSI_EPSILON,
} from './statistics.ts';

export type NumericMethod = 'ks' | 'psi' | 'wasserstein' | 'jensenshannon';
export type CategoricalMethod = 'chisquare' | 'psi' | 'jensenshannon';
export type DriftMethod = NumericMethod | CategoricalMethod;

export interface DriftOptions {
  /** 'auto': KS up to `largeWindow` values, normed Wasserstein above (the common library default). */
  numericMethod: NumericMethod | 'auto';
  /** 'auto': chi-square up to `largeWindow` values, Jensen–Shannon above. */
  categoricalMethod: CategoricalMethod | 'auto';
  /** Overrides the deciding method's default threshold. */
  threshold?: number;
  /** The window drifts when at least this share of features drifts. */
  driftShare: number;
  /** A feature also drifts when its missing rate moves by at least this much. */
  missingRateThreshold: number;
  largeWindow: number;
  /**
   * A window with fewer rows is reported but never judged drifted: on a few dozen rows
   * (a window closed early by time, or a small canary's share) PSI and the distances are mostly noise.
   */
  minRows: number;
}

export const DEFAULT_DRIFT_OPTIONS: DriftOptions = {
  minRows: 100,
  numericMethod: 'auto',
  categoricalMethod: 'auto',
  driftShare: 0.5,
  missingRateThreshold: 0.1,
  largeWindow: 1000,
};

/** Defaults: p < 0.05 for the tests, ≥ 0.1 for PSI and the distances. */
export const DEFAULT_THRESHOLDS: Record<DriftMethod, number> = {
  ks: 0.05,
  chisquare: 0.05,
  psi: 0.1,
  wasserstein: 0.1,
  jensenshannon: 0.1,
};

/** For p-value methods a feature drifts when the score falls below the threshold; for the others, at or above it. */
export function isPValueMethod(method: DriftMethod): boolean {
  return method === 'ks' || method === 'chisquare';
}

export interface NumericStatistics {
  ksStatistic: number;
  ksPValue: number;
  psi: number;
  wasserstein: number;
  jensenShannon: number;
}

export interface CategoricalStatistics {
  chiSquare: number;
  chiSquarePValue: number;
  degreesOfFreedom: number;
  psi: number;
  jensenShannon: number;
  unseenCategories: string[];
}

export interface FeatureDrift {
  name: string;
  type: 'numeric' | 'categorical';
  /** Non-missing values in the window. */
  count: number;
  method: DriftMethod;
  score: number;
  threshold: number;
  drifted: boolean;
  missingRate: { reference: number; current: number };
  statistics: NumericStatistics | CategoricalStatistics | null;
}

export interface WindowDrift {
  drifted: boolean;
  /** False when the window had fewer than `minRows` rows: its statistics are reported, not judged. */
  judged: boolean;
  /** Share of features that drifted. */
  score: number;
  driftShare: number;
  driftedFeatures: string[];
  features: FeatureDrift[];
}

function finite(value: number): number {
  // JSON has no Infinity; a huge but finite number keeps the event parseable and the meaning.
  return Number.isFinite(value) ? value : Number.MAX_VALUE;
}

/**
 * A numeric feature's profile as the detector reads it: the sample may be any array of numbers
 * (the monitor keeps it sorted in a Float64Array, so each window only checks its order).
 */
export type NumericReference = Omit<NumericFeatureProfile, 'sample'> & { sample: ArrayLike<number> };
export type FeatureReference = NumericReference | CategoricalFeatureProfile;

export function numericStatistics(reference: NumericReference, current: ArrayLike<number>): NumericStatistics {
  // KS and Wasserstein both need the values in order: put in order (or checked) once, then one merge computes both.
  current = ascending(current);
  const { ks, wasserstein } = ksAndNormedWassersteinSorted(ascending(reference.sample), current, reference.std);
  const shares = binSharesSorted(current, reference.binEdges);
  return {
    ksStatistic: ks.statistic,
    ksPValue: ks.pValue,
    psi: psi(reference.binFrequencies, shares),
    wasserstein,
    jensenShannon: jensenShannonDistance(reference.binFrequencies, shares),
  };
}

/** Category key of a value in the input tensor: categorical features travel as numbers. */
export function categoryKey(value: number): string {
  return String(value);
}

export function categoricalStatistics(
  reference: CategoricalFeatureProfile,
  current: ArrayLike<number>,
): CategoricalStatistics {
  // Counted by value, then keyed: one string per category instead of one per row (-0 and 0 are one key in both).
  const byValue = new Map<number, number>();
  for (let i = 0; i < current.length; i++) {
    const value = current[i];
    byValue.set(value, (byValue.get(value) ?? 0) + 1);
  }
  const counts = new Map<string, number>();
  for (const [value, count] of byValue) {
    const key = categoryKey(value);
    counts.set(key, (counts.get(key) ?? 0) + count);
  }
  const categories = [...new Set([...Object.keys(reference.frequencies), ...counts.keys()])].sort();
  const expected = categories.map((c) => reference.frequencies[c] ?? 0);
  const observed = categories.map((c) => counts.get(c) ?? 0);
  const actual = observed.map((o) => o / current.length);
  // Categories never seen in training get the PSI epsilon as expected share so chi-square stays finite.
  const smoothed = expected.map((e) => Math.max(e, PSI_EPSILON));
  const chi = chiSquareGoodnessOfFit(observed, smoothed);
  return {
    chiSquare: finite(chi.statistic),
    chiSquarePValue: chi.pValue,
    degreesOfFreedom: chi.degreesOfFreedom,
    psi: psi(expected, actual),
    jensenShannon: jensenShannonDistance(expected, actual),
    unseenCategories: categories.filter((c) => !(c in reference.frequencies)),
  };
}

function decidingMethod(feature: FeatureReference, count: number, options: DriftOptions): DriftMethod {
  if (feature.type === 'numeric') {
    if (options.numericMethod !== 'auto') return options.numericMethod;
    return count > options.largeWindow ? 'wasserstein' : 'ks';
  }
  if (options.categoricalMethod !== 'auto') return options.categoricalMethod;
  return count > options.largeWindow ? 'jensenshannon' : 'chisquare';
}

function scoreOf(method: DriftMethod, stats: NumericStatistics | CategoricalStatistics): number {
  switch (method) {
    case 'ks':
      return (stats as NumericStatistics).ksPValue;
    case 'wasserstein':
      return (stats as NumericStatistics).wasserstein;
    case 'chisquare':
      return (stats as CategoricalStatistics).chiSquarePValue;
    case 'psi':
      return stats.psi;
    case 'jensenshannon':
      return stats.jensenShannon;
  }
}

/** One feature's drift from its non-missing window values and its missing count. */
export function featureDrift(
  feature: FeatureReference,
  values: ArrayLike<number>,
  missing: number,
  options: DriftOptions,
): FeatureDrift {
  const count = values.length;
  const method = decidingMethod(feature, count, options);
  const threshold = options.threshold ?? DEFAULT_THRESHOLDS[method];
  const missingRate = { reference: feature.missingRate, current: missing / (count + missing) };
  const missingDrifted = Math.abs(missingRate.current - missingRate.reference) >= options.missingRateThreshold;
  if (count === 0) {
    return {
      name: feature.name,
      type: feature.type,
      count,
      method,
      score: NaN,
      threshold,
      drifted: missingDrifted,
      missingRate,
      statistics: null,
    };
  }
  const statistics =
    feature.type === 'numeric' ? numericStatistics(feature, values) : categoricalStatistics(feature, values);
  const score = scoreOf(method, statistics);
  const testDrifted = isPValueMethod(method) ? score < threshold : score >= threshold;
  return {
    name: feature.name,
    type: feature.type,
    count,
    method,
    score,
    threshold,
    drifted: testDrifted || missingDrifted,
    missingRate,
    statistics,
  };
}

export function windowDrift(features: FeatureDrift[], options: DriftOptions, rows: number): WindowDrift {
  const driftedFeatures = features.filter((f) => f.drifted).map((f) => f.name);
  const score = features.length === 0 ? 0 : driftedFeatures.length / features.length;
  const judged = features.length > 0 && rows >= options.minRows;
  return {
    drifted: judged && score >= options.driftShare,
    judged,
    score,
    driftShare: options.driftShare,
    driftedFeatures,
    features,
  };
}

/** Evaluate a whole window at once (the monitor does the same feature by feature, yielding in between). */
export function evaluateWindow(profile: ReferenceProfile, columns: Float64Array[], options: DriftOptions): WindowDrift {
  return windowDrift(
    profile.features.map((feature, j) => {
      const { values, missing } = presentValues(columns[j]);
      return featureDrift(feature, values, missing, options);
    }),
    options,
    columns[0]?.length ?? 0,
  );
}

/** Split a column into its non-missing values (NaN marks missing) and the missing count. */
export function presentValues(column: Float64Array): { values: Float64Array; missing: number } {
  let missing = 0;
  for (let i = 0; i < column.length; i++) if (Number.isNaN(column[i])) missing++;
  if (missing === 0) return { values: column, missing };
  return { values: column.filter((v) => !Number.isNaN(v)), missing };
}
