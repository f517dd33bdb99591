// Drift statistics, written here because the well-known drift libraries carry
// licences we cannot embed. Conventions (the tests pin each one):
// - KS p-value: SciPy's ks_2samp(method='auto') — exact for samples of up to 10 000
//   values, the finite-n Kolmogorov distribution otherwise (ks-pvalue.ts).
// - PSI: Σ (a−e)·ln(a/e) with each share floored at PSI_EPSILON so empty bins stay finite.
// - Wasserstein-1 between the empirical distributions, divided by the reference
//   standard deviation floored at WASSERSTEIN_MIN_STD (the "normed" variant).
// - Jensen–Shannon distance with base-2 logarithms, so it lies in [0, 1].
// - Chi-square goodness of fit, p-value from the regularized upper incomplete gamma Q(df/2, x/2).

import { ksTwoSampleTest } from './ks-pvalue.ts';

export const PSI_EPSILON = 1e-4;
export const WASSERSTEIN_MIN_STD = 1e-3;

export interface TestResult {
  statistic: number;
  pValue: number;
}

/** The values in ascending order: as given when they already are (one pass), else a sorted copy. */
export function ascending(values: ArrayLike<number>): ArrayLike<number> {
  for (let i = 1; i < values.length; i++) {
    // A typed array is copied as one block; Float64Array.from would walk it through the iterator protocol.
    if (!(values[i - 1] <= values[i]))
      return (values instanceof Float64Array ? values.slice() : Float64Array.from(values)).sort();
  }
  return values;
}

let radixKeys = new Uint32Array(0);
let radixSpare = new Uint32Array(0);
const radixCounts = new Uint32Array(3 * 2048);

/**
 * Sorts `values` in place, ascending, exactly as Float64Array.prototype.sort does (-0 before 0; no NaN expected).
 * Values that are all float32 numbers, as a request's FP32 inputs are, go by a radix sort of their float32 bits
 * (three passes, O(n)); any other values by the built-in comparison sort.
 */
export function sortInPlace(values: Float64Array): void {
  const n = values.length;
  if (n < 256) {
    values.sort();
    return;
  }
  if (radixKeys.length < n) {
    radixKeys = new Uint32Array(n);
    radixSpare = new Uint32Array(n);
  }
  const keys = radixKeys;
  const floats = new Float32Array(keys.buffer, 0, n);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    // NaN is no float32 number here either: fround(NaN) !== NaN.
    if (Math.fround(v) !== v) {
      values.sort();
      return;
    }
    floats[i] = v;
  }
  // Float bits as unsigned keys in numeric order: negatives all bits flipped, others the sign bit set.
  const counts = radixCounts;
  counts.fill(0);
  for (let i = 0; i < n; i++) {
    const bits = keys[i];
    const key = (bits & 0x80000000 ? ~bits : bits | 0x80000000) >>> 0;
    keys[i] = key;
    counts[key & 0x7ff]++;
    counts[2048 + ((key >>> 11) & 0x7ff)]++;
    counts[4096 + (key >>> 22)]++;
  }
  let from = keys;
  let to = radixSpare;
  for (let pass = 0; pass < 3; pass++) {
    const base = pass * 2048;
    const shift = pass * 11;
    let sum = 0;
    for (let b = 0; b < 2048; b++) {
      const c = counts[base + b];
      counts[base + b] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const key = from[i];
      to[counts[base + ((key >>> shift) & 0x7ff)]++] = key;
    }
    [from, to] = [to, from];
  }
  const sortedFloats = new Float32Array(from.buffer, 0, n);
  for (let i = 0; i < n; i++) {
    const key = from[i];
    from[i] = key & 0x80000000 ? key & 0x7fffffff : ~key >>> 0;
    values[i] = sortedFloats[i];
  }
}

/** Two-sample Kolmogorov–Smirnov: D = sup |F_a − F_b| and its two-sided p-value. */
export function ksTwoSample(a: ArrayLike<number>, b: ArrayLike<number>): TestResult {
  return ksTwoSampleTest(ecdfDistancesSorted(ascending(a), ascending(b)).supremum, a.length, b.length);
}

/** How far apart the empirical distribution functions of two samples are. */
export interface EcdfDistances {
  /** sup |F_x − F_y|: the two-sample Kolmogorov–Smirnov statistic. */
  supremum: number;
  /** ∫ |F_x − F_y| dx: the Wasserstein-1 distance. */
  area: number;
}

/**
 * Both distances in one merge of two ascending samples, so a window's KS test and its
 * Wasserstein distance walk the values once.
 */
export function ecdfDistancesSorted(x: ArrayLike<number>, y: ArrayLike<number>): EcdfDistances {
  const n = x.length;
  const m = y.length;
  if (n === 0 || m === 0) throw new RangeError('comparing two samples needs both non-empty');
  let i = 0;
  let j = 0;
  let supremum = 0;
  let area = 0;
  let previous = x[0] < y[0] ? x[0] : y[0];
  while (i < n || j < m) {
    const v = j >= m || (i < n && x[i] <= y[j]) ? x[i] : y[j];
    // F_x − F_y is constant from the previous value up to v.
    area += Math.abs(i / n - j / m) * (v - previous);
    previous = v;
    // Step past every copy of v in both samples so ties move both ECDFs at once.
    while (i < n && x[i] <= v) i++;
    while (j < m && y[j] <= v) j++;
    const gap = Math.abs(i / n - j / m);
    if (gap > supremum) supremum = gap;
  }
  return { supremum, area };
}

/** Index of the bin holding value: bin 0 is below edges[0], bin k is at or above edges[k-1]. */
export function binIndex(edges: ArrayLike<number>, value: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (edges[mid] <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Share of values per bin for ascending edges (edges.length + 1 bins, both ends open). */
export function binShares(values: ArrayLike<number>, edges: ArrayLike<number>): number[] {
  const counts = new Array<number>(edges.length + 1).fill(0);
  for (let i = 0; i < values.length; i++) counts[binIndex(edges, values[i])]++;
  return counts.map((c) => (values.length === 0 ? 0 : c / values.length));
}

/** binShares of ascending values: one merge of values and edges instead of a search per value. */
export function binSharesSorted(values: ArrayLike<number>, edges: ArrayLike<number>): number[] {
  const n = values.length;
  const shares = new Array<number>(edges.length + 1).fill(0);
  if (n === 0) return shares;
  let start = 0;
  for (let k = 0; k < edges.length; k++) {
    // Bin k holds the values below edges[k] (and at or above edges[k-1]).
    let end = start;
    while (end < n && values[end] < edges[k]) end++;
    shares[k] = (end - start) / n;
    start = end;
  }
  shares[edges.length] = (n - start) / n;
  return shares;
}

/** Population stability index of actual shares against expected shares, bin by bin. */
export function psi(expected: ArrayLike<number>, actual: ArrayLike<number>, epsilon = PSI_EPSILON): number {
  if (expected.length !== actual.length) throw new RangeError('psi needs share vectors of equal length');
  let sum = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.max(expected[i], epsilon);
    const a = Math.max(actual[i], epsilon);
    sum += (a - e) * Math.log(a / e);
  }
  return sum;
}

/** Wasserstein-1 distance between two empirical distributions: ∫ |F_a − F_b| dx. */
export function wasserstein1(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return ecdfDistancesSorted(ascending(a), ascending(b)).area;
}

/** Wasserstein-1 divided by the reference standard deviation, so one threshold fits every feature's scale. */
export function normedWasserstein(
  reference: ArrayLike<number>,
  current: ArrayLike<number>,
  referenceStd: number,
): number {
  return normedDistance(wasserstein1(reference, current), referenceStd);
}

function normedDistance(area: number, referenceStd: number): number {
  return area / Math.max(referenceStd, WASSERSTEIN_MIN_STD);
}

/** The KS test and the normed Wasserstein distance of a sorted window against a sorted reference sample, in one pass. */
export function ksAndNormedWassersteinSorted(
  reference: ArrayLike<number>,
  current: ArrayLike<number>,
  referenceStd: number,
): { ks: TestResult; wasserstein: number } {
  const { supremum, area } = ecdfDistancesSorted(reference, current);
  return {
    ks: ksTwoSampleTest(supremum, reference.length, current.length),
    wasserstein: normedDistance(area, referenceStd),
  };
}

/** Jensen–Shannon distance (square root of the divergence), base 2, of two share vectors. */
export function jensenShannonDistance(p: ArrayLike<number>, q: ArrayLike<number>): number {
  if (p.length !== q.length) throw new RangeError('jensenShannonDistance needs vectors of equal length');
  let sp = 0;
  let sq = 0;
  for (let i = 0; i < p.length; i++) {
    sp += p[i];
    sq += q[i];
  }
  if (sp <= 0 || sq <= 0) throw new RangeError('jensenShannonDistance needs non-empty distributions');
  let divergence = 0;
  for (let i = 0; i < p.length; i++) {
    const pi = p[i] / sp;
    const qi = q[i] / sq;
    const mi = (pi + qi) / 2;
    if (pi > 0) divergence += pi * Math.log2(pi / mi);
    if (qi > 0) divergence += qi * Math.log2(qi / mi);
  }
  return Math.sqrt(Math.max(0, divergence / 2));
}

export interface ChiSquareResult extends TestResult {
  degreesOfFreedom: number;
}

/** Pearson's chi-square goodness of fit of observed counts to expected shares (expected shares > 0). */
export function chiSquareGoodnessOfFit(
  observed: ArrayLike<number>,
  expectedShares: ArrayLike<number>,
): ChiSquareResult {
  if (observed.length !== expectedShares.length) throw new RangeError('chiSquare needs vectors of equal length');
  let total = 0;
  let shareTotal = 0;
  for (let i = 0; i < observed.length; i++) {
    total += observed[i];
    shareTotal += expectedShares[i];
  }
  let statistic = 0;
  for (let i = 0; i < observed.length; i++) {
    const expected = (total * expectedShares[i]) / shareTotal;
    statistic += ((observed[i] - expected) * (observed[i] - expected)) / expected;
  }
  const degreesOfFreedom = observed.length - 1;
  const pValue = degreesOfFreedom > 0 ? regularizedGammaQ(degreesOfFreedom / 2, statistic / 2) : 1;
  return { statistic, pValue, degreesOfFreedom };
}

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos, g = 7). */
export function lnGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const z = x - 1;
  let sum = LANCZOS[0];
  for (let i = 1; i < LANCZOS.length; i++) sum += LANCZOS[i] / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

/** Regularized upper incomplete gamma Q(a, x) = Γ(a, x)/Γ(a): series below a+1, continued fraction above. */
export function regularizedGammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  if (!Number.isFinite(x)) return 0;
  const logPrefix = a * Math.log(x) - x - lnGamma(a);
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < 1000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-16) break;
    }
    return Math.min(1, Math.max(0, 1 - sum * Math.exp(logPrefix)));
  }
  // Modified Lentz evaluation of the continued fraction for Γ(a, x).
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.min(1, Math.max(0, Math.exp(logPrefix) * h));
}
