// The drift reference profile (operator/api/reference-profile.schema.json): what the training
// data looked like per feature, so the predictor can tell when live inputs move away from it.
import type { Feature } from './dataset.ts';
import type {
  CategoricalFeatureProfile,
  NumericFeatureProfile,
  ReferenceProfile,
} from '../../../operator/api/reference-profile.ts';
import { permutation, seededRandom } from './random.ts';

export const SAMPLE_SIZE = 2000;
const DECILES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
const QUANTILE_LEVELS = [0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1];

/** Quantile of ascending values by linear interpolation between order statistics. */
export function quantile(sorted: number[], level: number): number {
  const pos = (sorted.length - 1) * level;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * Bin of a value given ascending edges: 0 below the first edge, k when edges[k-1] <= v < edges[k],
 * edges.length at or above the last edge. The predictor must bin live values the same way.
 */
export function binIndex(edges: number[], v: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (edges[mid] <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function numericProfile(name: string, values: number[], rows: number, seed: number): NumericFeatureProfile {
  const sorted = [...values].sort((a, b) => a - b);
  // Discrete features repeat deciles; PSI needs strictly ascending edges.
  let binEdges = [...new Set(DECILES.map((q) => quantile(sorted, q)))];
  if (binEdges.length < 2) {
    const v = binEdges[0];
    binEdges = [v, v + Math.max(1, Math.abs(v)) * 1e-9];
  }
  const counts = new Array<number>(binEdges.length + 1).fill(0);
  for (const v of values) counts[binIndex(binEdges, v)]++;
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const std = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length);
  const pick = permutation(values.length, seededRandom(seed)).slice(0, SAMPLE_SIZE);
  return {
    name,
    type: 'numeric',
    missingRate: (rows - values.length) / rows,
    binEdges,
    binFrequencies: counts.map((c) => c / values.length),
    quantiles: Object.fromEntries(QUANTILE_LEVELS.map((q) => [String(q), quantile(sorted, q)])),
    mean,
    std,
    sample: pick.map((i) => values[i]),
  };
}

function categoricalProfile(name: string, values: number[], rows: number): CategoricalFeatureProfile {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(String(v), (counts.get(String(v)) ?? 0) + 1);
  const frequencies = Object.fromEntries(
    [...counts.entries()].sort((a, b) => Number(a[0]) - Number(b[0])).map(([k, c]) => [k, c / values.length]),
  );
  return { name, type: 'categorical', missingRate: (rows - values.length) / rows, frequencies };
}

/** Profile of raw training rows (before imputation, so missing rates are real). NaN marks missing. */
export function buildReferenceProfile(features: readonly Feature[], x: number[][], seed: number): ReferenceProfile {
  const rows = x.length;
  return {
    rows,
    features: features.map((feature, j) => {
      const values = x.map((row) => row[j]).filter((v) => !Number.isNaN(v));
      if (values.length === 0) throw new Error(`feature ${feature.name} has no values in the training rows`);
      return feature.type === 'numeric'
        ? numericProfile(feature.name, values, rows, seed + j)
        : categoricalProfile(feature.name, values, rows);
    }),
  };
}
