// Drift statistics against values computed independently of server/src/drift/statistics.ts:
// (1) in this file by deliberately different, brute-force code from the same fixed data, and
// (2) hard-coded values from SciPy 1.10.1 (Debian's python3-scipy; script in the comment at the end).
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ascending,
  binShares,
  binSharesSorted,
  chiSquareGoodnessOfFit,
  jensenShannonDistance,
  ksAndNormedWassersteinSorted,
  ksTwoSample,
  normedWasserstein,
  psi,
  regularizedGammaQ,
  sortInPlace,
  wasserstein1,
} from '../src/drift/statistics.ts';

const TOL = 1e-6;
function close(actual: number, expected: number, what: string, tol = TOL): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: got ${actual}, expected ${expected} (±${tol})`);
}

// Fixed data: SciPy's numpy.random.default_rng(20240601) normals, rounded (TA/TB to 1 decimal so they tie).
const A = [
  0.648, 0.469, -0.643, -1.178, -0.145, 1.203, 1.334, 0.908, 0.347, 1.6, 1.233, -0.22, -1.062, -0.365, -0.42, 0.688,
  -1.899, -0.191, 1.671, -0.92, -0.758, -0.084, -1.418, -0.13, -0.016, -0.005, -0.989, -0.366, 0.654, -0.715, 0.547,
  0.656, -1.427, -0.645, 0.655, 0.493, 0.179, -0.349, 0.109, 1.875,
];
const B = [
  0.312, 1.354, 0.058, 0.342, 1.442, -0.608, 0.285, -0.193, -0.516, 0.828, 2.212, 0.888, 0.104, -1.286, 1.665, 0.874,
  -0.221, 1.72, 2.646, -1.521, 1.367, 1.7, 1.355, 2.682, 1.413, -0.575, 5.54, 0.79, 2.527, 3.156, 1.746, -1.738, -1.615,
  -0.281, 0.644, -1.205, -0.618, 0.021, -0.018, 0.845, 0.694, 0.55, -0.203, -0.482, -1.884, 2.248, 0.854, 1.08, -1.633,
  1.577,
];
const TA = [
  -0.1, 1.0, -0.7, 1.0, 1.4, -0.2, -0.3, -0.4, 0.1, 2.7, -0.0, 0.7, -1.5, -2.3, 0.2, -0.1, 1.2, -2.3, 0.4, -1.8, 1.8,
  0.8, -1.0, 0.7, 0.9, 0.1, 1.5, 1.0, -0.1, -0.4,
];
const TB = [
  0.8, -0.5, -2.5, -0.3, -1.6, 1.1, 0.2, 0.7, 1.3, 0.1, 0.1, 0.5, 2.5, -0.1, -0.3, 0.2, 0.9, -0.1, -0.2, 0.9, 2.1, 1.5,
  -1.6, 0.0, 1.5, -0.9, 0.3, 0.8, -1.0, -1.3, -0.7, 1.4, -0.0, 0.3, -0.5,
];
// Decile edges of A (numpy.quantile, rounded).
const EDGES = [-1.074, -0.724, -0.382, -0.203, -0.05, 0.246, 0.577, 0.662, 1.243];

// --- independent re-implementations (brute force, no sorting tricks) ---
const ecdf = (xs: number[], t: number) => xs.filter((x) => x <= t).length / xs.length;
function bruteKs(a: number[], b: number[]): number {
  return Math.max(...[...a, ...b].map((t) => Math.abs(ecdf(a, t) - ecdf(b, t))));
}
function bruteWasserstein(a: number[], b: number[]): number {
  const points = [...new Set([...a, ...b])].sort((x, y) => x - y);
  let area = 0;
  for (let i = 0; i + 1 < points.length; i++)
    area += Math.abs(ecdf(a, points[i]) - ecdf(b, points[i])) * (points[i + 1] - points[i]);
  return area;
}
function bruteShares(values: number[], edges: number[]): number[] {
  const shares = new Array(edges.length + 1).fill(0);
  for (const v of values) shares[edges.filter((e) => e <= v).length] += 1 / values.length;
  return shares;
}
test('KS statistic equals the brute-force sup of ECDF differences and SciPy ks_2samp', () => {
  const r = ksTwoSample(A, B);
  close(r.statistic, bruteKs(A, B), 'D brute force');
  close(r.statistic, 0.325, 'D SciPy');
});

test('KS statistic handles tied values the way SciPy does', () => {
  const r = ksTwoSample(TA, TB);
  close(r.statistic, bruteKs(TA, TB), 'D brute force');
  close(r.statistic, 0.07142857142857142, 'D SciPy');
});

test('KS p-value is SciPy ks_2samp(method="auto"): the exact distribution at these sizes, not the Kolmogorov limit', () => {
  // The limit kstwobign.sf(sqrt(en)·D) gives 0.0183 for (A, B): 28% above the exact value.
  close(ksTwoSample(A, B).pValue, 0.014250399615112765, 'p SciPy (A,B)', 1e-12);
  close(ksTwoSample(TA, TB).pValue, 0.9999504144521806, 'p SciPy (TA,TB)', 1e-12);
});

test('bin shares put values on an edge into the bin above it', () => {
  assert.equal(binShares([-2, -1.074, 0, 1.243, 9], EDGES), bruteShares([-2, -1.074, 0, 1.243, 9], EDGES));
  assert.equal(binShares([-1.074], EDGES)[1], 1);
});

test('bin shares of sorted values by one merge equal the search per value, edge values and ties included', () => {
  for (const values of [A, B, TA, TB, [-1.074, -1.074, 1.243], [], [9, 9, 9]]) {
    const sorted = Float64Array.from(values).sort();
    assert.equal(binSharesSorted(sorted, EDGES), binShares(sorted, EDGES));
    assert.equal(
      binSharesSorted(sorted, EDGES),
      values.length ? bruteShares([...values], EDGES) : binShares([], EDGES),
    );
  }
  assert.equal(binSharesSorted([0, 1, 1, 2], [1, 1, 3]), [0.25, 0, 0.75, 0]);
});

test('PSI equals the direct sum over decile bins and numpy', () => {
  const expected = bruteShares(A, EDGES);
  const actual = bruteShares(B, EDGES);
  let direct = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.max(expected[i], 1e-4);
    const a = Math.max(actual[i], 1e-4);
    direct += (a - e) * Math.log(a / e);
  }
  const value = psi(binShares(A, EDGES), binShares(B, EDGES));
  close(value, direct, 'PSI direct');
  close(value, 1.273085626051411, 'PSI numpy');
});

test('PSI stays finite with empty bins (epsilon 1e-4)', () => {
  const value = psi(binShares(A, EDGES), binShares([-5, -4, 3, 3.5, 4], EDGES));
  assert.ok(Number.isFinite(value));
  close(value, 6.832446061912519, 'PSI numpy');
  close(psi([0.5, 0.5], [0.5, 0.5]), 0, 'identical shares');
});

test('Wasserstein-1 equals brute-force ∫|F_a−F_b| and SciPy wasserstein_distance', () => {
  close(wasserstein1(A, B), bruteWasserstein(A, B), 'W1 brute force');
  close(wasserstein1(A, B), 0.6439600000000001, 'W1 SciPy');
  close(wasserstein1(TA, TB), bruteWasserstein(TA, TB), 'W1 ties brute force');
  close(wasserstein1(TA, TB), 0.13666666666666671, 'W1 ties SciPy');
  // Equal sizes: W1 is the mean distance between order statistics.
  const x = A.slice(0, 30);
  const sx = [...x].sort((p, q) => p - q);
  const sy = [...TA].sort((p, q) => p - q);
  close(wasserstein1(x, TA), sx.reduce((s, v, i) => s + Math.abs(v - sy[i]), 0) / 30, 'W1 order statistics');
});

test('normed Wasserstein divides by the reference standard deviation', () => {
  const mean = A.reduce((s, v) => s + v, 0) / A.length;
  const std = Math.sqrt(A.reduce((s, v) => s + (v - mean) ** 2, 0) / A.length);
  close(std, 0.895914694599882, 'numpy std');
  close(normedWasserstein(A, B, std), 0.7187737893813589, 'normed W1 SciPy');
});

test('Jensen–Shannon distance (base 2) equals the natural-log formula over ln 2 and SciPy', () => {
  const p = [0.5, 0.3, 0.2, 0];
  const q = [0.1, 0.2, 0.3, 0.4];
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    const m = (p[i] + q[i]) / 2;
    if (p[i] > 0) kl += 0.5 * p[i] * Math.log(p[i] / m);
    if (q[i] > 0) kl += 0.5 * q[i] * Math.log(q[i] / m);
  }
  close(jensenShannonDistance(p, q), Math.sqrt(kl / Math.LN2), 'JSD natural log');
  close(jensenShannonDistance(p, q), 0.5652592115818719, 'JSD SciPy');
  close(jensenShannonDistance(binShares(A, EDGES), binShares(B, EDGES)), 0.386151792143321, 'JSD SciPy on bins');
  close(jensenShannonDistance(p, p), 0, 'identical');
  close(jensenShannonDistance([1, 0], [0, 1]), 1, 'disjoint');
});

test('chi-square statistic equals the direct sum and its p-value the closed form for df = 2', () => {
  const r = chiSquareGoodnessOfFit([40, 35, 25], [0.5, 0.3, 0.2]);
  const direct = (40 - 50) ** 2 / 50 + (35 - 30) ** 2 / 30 + (25 - 20) ** 2 / 20;
  close(r.statistic, direct, 'statistic direct');
  close(r.statistic, 4.083333333333334, 'statistic SciPy');
  assert.is(r.degreesOfFreedom, 2);
  // For df = 2 the chi-square survival function is exactly exp(-x/2).
  close(r.pValue, Math.exp(-direct / 2), 'p closed form');
  close(r.pValue, 0.12981217685543797, 'p SciPy');
});

test('chi-square p-value for df = 3 matches SciPy chisquare', () => {
  const r = chiSquareGoodnessOfFit([18, 25, 31, 26], [0.2, 0.25, 0.3, 0.25]);
  close(r.statistic, 0.2733333333333333, 'statistic SciPy');
  close(r.pValue, 0.9649631731173733, 'p SciPy');
});

test('regularized upper incomplete gamma matches SciPy gammaincc and closed forms', () => {
  const scipy: Array<[number, number, number]> = [
    [0.5, 0.3, 0.4385780260809997],
    [1.5, 2.0, 0.26146412994911117],
    [2.5, 10.0, 0.0012497305630313773],
    [10, 3.0, 0.9988975118698845],
    [3, 30.0, 4.501016648012131e-11],
    [0.5, 8.0, 6.334248366623988e-5],
  ];
  for (const [a, x, expected] of scipy) {
    close(regularizedGammaQ(a, x), expected, `Q(${a}, ${x})`);
    // Relative check too, so tiny tails are also right.
    close(regularizedGammaQ(a, x) / expected, 1, `Q(${a}, ${x}) relative`, 1e-9);
  }
  // Integer a: Q(n, x) = e^-x Σ_{k<n} x^k/k!.
  const x = 4.2;
  close(regularizedGammaQ(3, x), Math.exp(-x) * (1 + x + (x * x) / 2), 'Q(3, 4.2) closed form');
});

/* Reference values above came from this SciPy 1.10.1 script (Debian python3-scipy):
   rng = np.random.default_rng(20240601); a = round(rng.normal(0,1,40),3); b = round(rng.normal(0.6,1.3,50),3)
   ta = round(rng.normal(0,1,30),1); tb = round(rng.normal(0.1,1,35),1)
   stats.ks_2samp(x, y) (statistic and pvalue; more KS cases in fixtures/ks-2samp.py)
   edges = round(np.quantile(a, linspace(0.1,0.9,9)),3); shares = bincount(searchsorted(edges, x, side='right'))/len(x)
   psi = sum((max(c,1e-4)-max(e,1e-4))*log(max(c,1e-4)/max(e,1e-4)))
   stats.wasserstein_distance(a, b) / np.std(a); distance.jensenshannon(p, q, base=2)
   stats.chisquare(obs, shares*sum(obs)); special.gammaincc(a, x) */

test('ascending sorts a copy of unordered values (typed or plain) and hands back values already in order as they are', () => {
  const typed = new Float64Array([3, 1, 2]);
  assert.equal(Array.from(ascending(typed)), [1, 2, 3]);
  assert.equal(Array.from(typed), [3, 1, 2], 'the argument is not reordered');
  assert.equal(Array.from(ascending([2, -1, 0.5])), [-1, 0.5, 2]);
  const ordered = [1, 1, 4];
  assert.is(ascending(ordered), ordered);
});

test('one merge of a sorted reference and a sorted window gives the KS test and the normed Wasserstein distance of each alone', () => {
  const std = 0.895914694599882; // numpy std of A
  for (const [reference, window, p] of [
    [A, B, 0.014250399615112765],
    [TA, TB, 0.9999504144521806],
  ] as const) {
    const sortedReference = Float64Array.from(reference).sort();
    const sortedWindow = Float64Array.from(window).sort();
    const { ks, wasserstein } = ksAndNormedWassersteinSorted(sortedReference, sortedWindow, std);
    close(ks.statistic, bruteKs([...reference], [...window]), 'D brute force');
    close(ks.pValue, p, 'p SciPy');
    close(wasserstein, bruteWasserstein([...reference], [...window]) / std, 'normed W1 brute force');
  }
  // Hand-worked: F_x − F_y is 1/3, 1/6, 1/2 on [1,2), [2,3), [3,4).
  const small = ksAndNormedWassersteinSorted([1, 2, 3], [2, 4], 1);
  close(small.ks.statistic, 0.5, 'D by hand');
  close(small.wasserstein, 1, 'W1 by hand');
});

test('sorting in place gives the built-in sort order, by radix for float32 values and by comparison otherwise', () => {
  let seed = 7;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const cases: number[][] = [
    Array.from({ length: 1000 }, () => Math.fround((next() - 0.5) * 200)),
    Array.from({ length: 3000 }, () => Math.fround(Math.round(next() * 5))),
    Array.from({ length: 700 }, (_, i) => [-0, 0, -1e-40, 1e-40, -3.4e38, 3.4e38, -Infinity, Infinity][i % 8]).map(
      Math.fround,
    ),
    Array.from({ length: 500 }, () => (next() - 0.5) * 1e6),
    A,
  ];
  for (const values of cases) {
    const expected = Float64Array.from(values).sort();
    const actual = Float64Array.from(values);
    sortInPlace(actual);
    assert.ok(
      actual.every((v, i) => Object.is(v, expected[i])),
      `sorted as Float64Array.prototype.sort for ${values.length} values`,
    );
  }
});

test.run();
