// The two-sided two-sample Kolmogorov–Smirnov p-value as SciPy's ks_2samp(method='auto') computes it
// (scipy/stats/_stats_py.py, _stats_pythran.py, _ksstats.py, special/cephes/kolmogorov.c; one algorithm
// from 1.10 to the 2.0 development branch), so a drift verdict here is the one SciPy-based tools reach:
// - both samples of at most 10 000 values: the exact distribution of D under the null, by lattice-path
//   counting (Hodges 1958; equal sizes in closed form, otherwise the "inside" recursion in Viehmann's
//   form, arXiv:2102.08037, which yields the small probability directly);
// - otherwise the finite-n one-sample Kolmogorov distribution at n = round(n·m/(n+m)) (SciPy's kstwo,
//   after Simard & L'Ecuyer 2011): exact Ruben–Gambino ends, the Durbin matrix (Marsaglia–Tsang–Wang),
//   Pomeranz's recursion, the Pelz–Good series, or twice the one-sided Smirnov tail, by region of (n, x).
// Every branch is SciPy's; the arithmetic is plain doubles where SciPy's C uses double-double: the fixtures
// (server/test/fixtures/ks-2samp.json) agree to 1e-10 relative or better, the test asks for 1e-6.

export interface KsTwoSampleResult {
  /** D, on the lattice of 1/lcm(n, m) when the exact distribution was used (SciPy reports it so). */
  statistic: number;
  pValue: number;
}

/** ks_2samp's MAX_AUTO_N: 'auto' is exact when neither sample is larger. */
const KS_EXACT_MAX_N = 10_000;

const clip = (p: number) => (p < 0 ? 0 : p > 1 ? 1 : p);

/** numpy.round: halves to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * The two-sided p-value of D = sup |F_n − F_m| (its value as the ECDFs give it) for samples of n1 and n2 values.
 * Exact results are memoized by (n1, n2, h): a drift monitor compares windows of one size with one reference,
 * so the same few lattice points come back window after window, and each costs O(n·m·D) the first time.
 */
export function ksTwoSampleTest(d: number, n1: number, n2: number): KsTwoSampleResult {
  if (!(n1 > 0 && n2 > 0)) throw new RangeError('the KS test needs two non-empty samples');
  if (Math.max(n1, n2) <= KS_EXACT_MAX_N) {
    const g = gcd(n1, n2);
    const lcm = (n1 / g) * n2;
    const h = roundHalfEven(d * lcm);
    const statistic = h / lcm;
    if (h === 0) return { statistic, pValue: 1 };
    const p = exactTwoSided(n1, n2, g, h);
    // SciPy falls back to the asymptotic form, with the lattice D, when the exact one is out of range.
    if (p >= 0 && p <= 1) return { statistic, pValue: p };
    d = statistic;
  }
  const [m, n] = n1 >= n2 ? [n1, n2] : [n2, n1];
  return { statistic: d, pValue: clip(kolmogorovSmirnovSurvival(roundHalfEven((m * n) / (m + n)), d)) };
}

const EXACT_CACHE_LIMIT = 4096;
const exactCache = new Map<string, number>();

function exactTwoSided(n1: number, n2: number, g: number, h: number): number {
  const key = n1 <= n2 ? `${n1},${n2},${h}` : `${n2},${n1},${h}`;
  let p = exactCache.get(key);
  if (p === undefined) {
    p = n1 === n2 ? probOutsideSquare(n1, h) : outerProbInside(n1, n2, g, h);
    if (exactCache.size >= EXACT_CACHE_LIMIT) exactCache.delete(exactCache.keys().next().value!);
    exactCache.set(key, p);
  }
  return p;
}

/**
 * P(D_{n,n} ≥ h/n) = 2·Σ_k (−1)^(k+1) C(2n, n−kh)/C(2n, n), each ratio a product of h factors, nested
 * Horner-wise (P = 2·A0·(1 − A1·(1 − A2·(…)))) so the alternating sum does not cancel.
 */
function probOutsideSquare(n: number, h: number): number {
  let p = 0;
  for (let k = Math.floor(n / h); k >= 0; k--) {
    let term = 1;
    for (let j = 0; j < h; j++) term = ((n - k * h - j) * term) / (n + k * h + j + 1);
    p = term * (1 - p);
  }
  return 2 * p;
}

/** 1/k for k = 0 .. at least `upTo`, kept between calls (a division per cell would triple the recursion's cost). */
let reciprocalTable = new Float64Array(0);
function reciprocals(upTo: number): Float64Array {
  if (reciprocalTable.length <= upTo) {
    reciprocalTable = new Float64Array(upTo + 1);
    for (let k = 1; k <= upTo; k++) reciprocalTable[k] = 1 / k;
  }
  return reciprocalTable;
}

/**
 * Share of the lattice paths from (0, 0) to (m, n) that touch |x/m − y/n| ≥ h/lcm: one column of the path
 * counts kept, normalized (each entry is the probability of having left the band), and only the window of
 * rows inside the band stored; rows below and above it count as "left". O(n·m·D) cells; each is SciPy's
 * (a·i + v·j)/(i + j) written as a·(i/(i+j)) + v·(j/(i+j)), which keeps the chain from one cell to the
 * next at a multiply and an add, and costs a rounding per cell (≈1e-13 relative over 20 000 steps).
 */
function outerProbInside(m: number, n: number, g: number, h: number): number {
  if (m < n) [m, n] = [n, m];
  const mg = m / g;
  const ng = n / g;
  const inverse = reciprocals(m + n);
  let minj = 0;
  let maxj = Math.min(Math.ceil(h / mg), n + 1);
  let curlen = maxj - minj;
  const a = new Float64Array(Math.min(2 * maxj + 2, n + 1)).fill(1);
  a.fill(0, minj, maxj);
  for (let i = 1; i <= m; i++) {
    const lastminj = minj;
    const lastlen = curlen;
    minj = Math.min(Math.max(Math.floor((ng * i - h) / mg) + 1, 0), n);
    maxj = Math.min(Math.ceil((ng * i + h) / mg), n + 1);
    if (maxj <= minj) return 1;
    let value = minj === 0 ? 0 : 1;
    const shift = minj - lastminj;
    const width = maxj - minj;
    for (let jj = 0; jj < width; jj++) {
      const j = jj + minj;
      const r = inverse[i + j];
      value = a[jj + shift] * (i * r) + value * (j * r);
      a[jj] = value;
    }
    curlen = width;
    if (lastlen > curlen) a.fill(1, curlen, lastlen);
  }
  return a[maxj - minj - 1];
}

// ---- SciPy's kstwo.sf: P(D_n > x) for the two-sided one-sample statistic ----

const E128 = 2 ** 128;
const EM128 = 2 ** -128;
const LOG_2PI = Math.log(2 * Math.PI);
const SQRT_2PI = Math.sqrt(2 * Math.PI);
const PI2 = Math.PI ** 2;
const PI4 = Math.PI ** 4;
const PI6 = Math.PI ** 6;
const STIRLING = [
  -2.955065359477124183e-2, 6.4102564102564102564e-3, -1.9175269175269175269e-3, 8.4175084175084175084e-4,
  -5.952380952380952381e-4, 7.9365079365079365079e-4, -2.7777777777777777778e-3, 8.3333333333333333333e-2,
];

/** x·2^e without overflowing the power of two on the way. */
function ldexp(x: number, e: number): number {
  while (e > 1000) {
    x *= 2 ** 1000;
    e -= 1000;
  }
  while (e < -1000) {
    x *= 2 ** -1000;
    e += 1000;
  }
  return x * 2 ** e;
}

/** log(n!/n^n) by Stirling's series with n·log(n) taken out first. */
function logFactorialOverPower(n: number): number {
  const rn = 1 / n;
  let series = 0;
  for (const c of STIRLING) series = series * (rn / n) + c;
  return Math.log(n) / 2 - n + LOG_2PI / 2 + rn * series;
}

/** P(D_n > x) for the two-sided Kolmogorov–Smirnov statistic of n values (SciPy's kstwo.sf(x, n)). */
export function kolmogorovSmirnovSurvival(n: number, x: number): number {
  if (!(Number.isInteger(n) && n >= 1) || Number.isNaN(x)) return NaN;
  if (x >= 1) return 0;
  const t = n * x;
  if (t <= 0.5) return 1;
  if (t <= 1) {
    // Ruben–Gambino: 1/2n < x ≤ 1/n.
    let cdf: number;
    if (n <= 140) {
      cdf = 1;
      for (let i = 1; i <= n; i++) cdf *= i * (1 / n) * (2 * t - 1);
    } else {
      cdf = Math.exp(logFactorialOverPower(n) + n * Math.log(2 * t - 1));
    }
    return clip(1 - cdf);
  }
  if (t >= n - 1) return clip(2 * (1 - x) ** n);
  if (x >= 0.5) return clip(2 * smirnovSurvival(n, x));
  const nx2 = t * x;
  if (n <= 140) {
    if (nx2 <= 0.754693) return clip(1 - durbinMatrixCdf(n, x));
    if (nx2 <= 4) return clip(1 - pomeranzCdf(n, x));
    return clip(2 * smirnovSurvival(n, x));
  }
  if (nx2 >= 370) return 0;
  if (nx2 >= 2.2) return clip(2 * smirnovSurvival(n, x));
  return clip(1 - (n <= 100_000 && n * x ** 1.5 <= 1.4 ? durbinMatrixCdf(n, x) : pelzGoodCdf(n, x)));
}

function matmul(a: Float64Array, b: Float64Array, m: number): Float64Array<ArrayBuffer> {
  const c = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let k = 0; k < m; k++) {
      const aik = a[i * m + k];
      if (aik === 0) continue;
      for (let j = 0; j < m; j++) c[i * m + j] += aik * b[k * m + j];
    }
  }
  return c;
}

/** P(D_n ≤ d) by Durbin's matrix, the k-th diagonal entry of (n!/n^n)·H^n with d = (k − h)/n (Marsaglia, Tsang, Wang 2003). */
function durbinMatrixCdf(n: number, d: number): number {
  if (d >= 1) return 1;
  const nd = n * d;
  if (nd <= 0.5) return 0;
  const k = Math.ceil(nd);
  const h = k - nd;
  const m = 2 * k - 1;
  const v = new Float64Array(m);
  const w = new Float64Array(m);
  let fac = 1;
  for (let j = 1; j <= m; j++) {
    w[j - 1] = fac;
    fac /= j;
    v[j - 1] = (1 - h ** j) * fac;
  }
  v[m - 1] = (1 + (Math.max(2 * h - 1, 0) ** m - 2 * h ** m)) * fac;
  let power = new Float64Array(m * m);
  for (let i = 1; i < m; i++) for (let r = i - 1; r < m; r++) power[r * m + i] = w[r - i + 1];
  for (let r = 0; r < m; r++) power[r * m] = v[r];
  for (let c = 0; c < m; c++) power[(m - 1) * m + c] = v[m - 1 - c];

  let result = new Float64Array(m * m);
  for (let i = 0; i < m; i++) result[i * m + i] = 1;
  let exponent = 0;
  let powerExponent = 0;
  for (let left = n; left > 0; left = Math.floor(left / 2)) {
    if (left % 2) {
      result = matmul(result, power, m);
      exponent += powerExponent;
    }
    power = matmul(power, power, m);
    powerExponent *= 2;
    if (Math.abs(power[(k - 1) * m + (k - 1)]) > E128) {
      for (let i = 0; i < power.length; i++) power[i] /= E128;
      powerExponent += 128;
    }
  }
  let p = result[(k - 1) * m + (k - 1)];
  for (let i = 1; i <= n; i++) {
    p = (i * p) / n;
    if (Math.abs(p) < EM128) {
      p *= E128;
      exponent -= 128;
    }
  }
  return clip(exponent !== 0 ? ldexp(p, exponent) : p);
}

/** numpy's view of a[start:stop] for non-negative or negative bounds. */
function slice(a: Float64Array, start: number, stop: number): Float64Array {
  const at = (i: number) => Math.min(Math.max(i < 0 ? a.length + i : i, 0), a.length);
  return a.subarray(at(start), Math.max(at(start), at(stop)));
}

function pomeranzBounds(i: number, n: number, ll: number, ceilf: number, roundf: number): [number, number] {
  let j1: number;
  let j2: number;
  if (i === 0) {
    j1 = -ll - ceilf - 1;
    j2 = ll + ceilf - 1;
  } else {
    const half = Math.floor((i + 1) / 2);
    if ((i + 1) % 2 === 0) {
      if (half === n + 1) {
        j1 = n - ll - ceilf - 1;
        j2 = n + ll + ceilf - 1;
      } else {
        j1 = half - 1 - ll - roundf - 1;
        j2 = half + ll - 1 + ceilf - 1;
      }
    } else {
      j1 = half - 1 - ll - 1;
      j2 = half + ll + roundf - 1;
    }
  }
  return [Math.max(j1 + 2, 0), Math.min(j2, n)];
}

/** P(D_n ≤ x) by Pomeranz's recursion (1974): rows of Poisson-weighted convolutions, n!·V[2n+1] at the end. */
function pomeranzCdf(n: number, x: number): number {
  const t = n * x;
  const ll = Math.floor(t);
  const f = t - ll;
  const g = Math.min(f, 1 - f);
  const ceilf = f > 0 ? 1 : 0;
  const roundf = f > 0.5 ? 1 : 0;
  const npwrs = 2 * (ll + 1);
  const gpower = new Float64Array(npwrs);
  const twogpower = new Float64Array(npwrs);
  const onem2gpower = new Float64Array(npwrs);
  gpower[0] = twogpower[0] = onem2gpower[0] = 1;
  for (let k = 1; k < npwrs; k++) {
    gpower[k] = (gpower[k - 1] * (g / n)) / k;
    twogpower[k] = (twogpower[k - 1] * ((2 * g) / n)) / k;
    onem2gpower[k] = (onem2gpower[k - 1] * ((1 - 2 * g) / n)) / k;
  }
  let v0 = new Float64Array(npwrs);
  let v1 = new Float64Array(npwrs);
  v1[0] = 1;
  let v0s = 0;
  let v1s = 0;
  let exponent = 0;
  let [j1, j2] = pomeranzBounds(0, n, ll, ceilf, roundf);
  for (let i = 1; i < 2 * n + 2; i++) {
    const k1 = j1;
    [v0, v1] = [v1, v0];
    [v0s, v1s] = [v1s, v0s];
    v1.fill(0);
    [j1, j2] = pomeranzBounds(i, n, ll, ceilf, roundf);
    const powers = i === 1 || i === 2 * n + 1 ? gpower : i % 2 ? twogpower : onem2gpower;
    const ln2 = j2 - k1 + 1;
    if (ln2 > 0) {
      const a = slice(v0, k1 - v0s, k1 - v0s + ln2);
      const b = slice(powers, 0, ln2);
      const start = j1 - k1;
      const count = j2 - j1 + 1;
      let max = 0;
      for (let c = 0; c < count; c++) {
        // Entry start + c of the full convolution of a and b.
        const at = start + c;
        let sum = 0;
        for (let p = Math.max(0, at - b.length + 1); p <= Math.min(at, a.length - 1); p++) sum += a[p] * b[at - p];
        v1[c] = sum;
        if (sum > max) max = sum;
      }
      if (max > 0 && max < EM128) {
        for (let c = 0; c < v1.length; c++) v1[c] *= E128;
        exponent -= 128;
      }
      v1s = v0s + j1 - k1;
    }
  }
  let answer = v1[n - v1s];
  for (let k = 1; k <= n; k++) {
    if (Math.abs(answer) > E128) {
      answer *= EM128;
      exponent += 128;
    }
    answer *= k;
  }
  return clip(exponent !== 0 ? ldexp(answer, exponent) : answer);
}

/** P(D_n ≤ x) by the Pelz–Good expansion in 1/√n (1976), Jacobi-theta transformed for small z = x√n. */
function pelzGoodCdf(n: number, x: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const z = Math.sqrt(n) * x;
  const z2 = z ** 2;
  const z3 = z ** 3;
  const z4 = z ** 4;
  const z6 = z ** 6;
  const qlog = -PI2 / 8 / z2;
  if (qlog < -708) return 0;
  let q = Math.exp(qlog);
  const k1a = -z2;
  const k1b = PI2 / 4;
  const k2a = 6 * z6 + 2 * z4;
  const k2b = ((2 * z4 - 5 * z2) * PI2) / 4;
  const k2c = (PI4 * (1 - 2 * z2)) / 16;
  const k3d = (PI6 * (5 - 30 * z2)) / 64;
  const k3c = (PI4 * (-60 * z2 + 212 * z4)) / 16;
  const k3b = (PI2 * (135 * z4 - 96 * z6)) / 4;
  const k3a = -30 * z6 - 90 * z ** 8;
  const terms = [0, 0, 0, 0];
  const maxk = Math.ceil((16 * z) / Math.PI);
  for (let k = maxk; k > 0; k--) {
    const m = 2 * k - 1;
    const m2 = m ** 2;
    const m4 = m ** 4;
    const m6 = m ** 6;
    const qpower = q ** (8 * k);
    const coefficients = [1, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4, k3a + k3b * m2 + k3c * m4 + k3d * m6];
    for (let i = 0; i < 4; i++) terms[i] = terms[i] * qpower + coefficients[i];
  }
  const divisors = [z, 6 * z4, 72 * z ** 7, 6480 * z ** 10];
  for (let i = 0; i < 4; i++) terms[i] = (terms[i] * q * SQRT_2PI) / divisors[i];
  q = Math.exp(-PI2 / 2 / z2);
  let k2extra = 0;
  let k3extra = 0;
  const sqrt3z = Math.sqrt(3) * z;
  for (let k = maxk; k > 0; k--) {
    const k2 = k ** 2;
    const qk = q ** k2;
    k2extra += k2 * qk;
    k3extra += (sqrt3z + Math.PI * k) * (sqrt3z - Math.PI * k) * k2 * qk;
  }
  terms[2] += (k2extra * PI2 * SQRT_2PI) / (-36 * z3);
  terms[3] += (k3extra * PI2 * SQRT_2PI) / (216 * z6);
  let cdf = 0;
  for (let i = 0; i < 4; i++) cdf += terms[i] / n ** (i / 2);
  return cdf;
}

/** cephes' MINLOG, log(2^-1075): below it the one-sided tail underflows. */
const MIN_LOG = -7.451332191019412076235e2;

/**
 * The one-sided Smirnov tail P(D_n^+ ≥ x) (SciPy's special.smirnov), by the Birnbaum–Tingey sum
 * x·Σ_{v ≤ n(1−x)} C(n, v)(1 − x − v/n)^(n−v)(x + v/n)^(v−1), its terms in logarithms. kstwo only asks
 * for it where n·x² > 2.2 (or x ≥ 0.5), where SciPy uses this lower sum too.
 */
function smirnovSurvival(n: number, x: number): number {
  if (n === 1) return 1 - x;
  if (x === 0) return 1;
  if (x === 1) return 0;
  const { floor: nxfl, fraction: alpha } = splitProduct(n, x);
  if (nxfl === 0 || (nxfl === 1 && alpha === 0)) return 1 - x * (1 + x) ** (n - 1);
  if (-2 * n * x * x < MIN_LOG) return 0;
  if (nxfl >= n - 1) return (1 - x) ** n;
  if (n > 1_000_000) {
    // SciPy's shortcut for very large n: p ≈ exp(−(6nx + 1)²/18n).
    const logp = -((6 * n * x + 1) ** 2) / 18 / n;
    return logp < -Math.LN2 ? Math.exp(logp) : 1 + Math.expm1(logp);
  }
  // Terms v = 0 .. n − nxfl − 1 (when n·x is an integer the term v = n − nxfl is zero). Summed relative to the
  // largest so far: the first term alone may be thousands of orders of magnitude below the total.
  const terms = n - nxfl;
  const logTerm = (v: number, logBinomial: number) =>
    logBinomial + (n - v) * Math.log((n - v - nxfl - alpha) / n) + (v - 1) * Math.log((nxfl + v + alpha) / n);
  let pivot = logTerm(0, 0);
  let sum = 1;
  let logBinomial = 0;
  for (let v = 1; v < terms; v++) {
    logBinomial += Math.log((n - v + 1) / v);
    const log = logTerm(v, logBinomial);
    let term: number;
    if (log > pivot) {
      sum = sum * Math.exp(pivot - log) + 1;
      pivot = log;
      term = 1;
    } else {
      term = Math.exp(log - pivot);
      sum += term;
    }
    // SciPy's stopping rule: what is left cannot reach the last bit.
    if (4 * (terms - v) * term < Number.EPSILON * sum && v !== terms - 1) break;
  }
  return clip(Math.exp(Math.log(x) + pivot + Math.log(sum)));
}

/** floor(n·x) and the fractional part of n·x computed without rounding the product first. */
function splitProduct(n: number, x: number): { floor: number; fraction: number } {
  const product = n * x;
  const error = twoProductError(n, x, product);
  let floor = Math.floor(product);
  let fraction = product - floor + error;
  if (fraction < 0) {
    floor -= 1;
    fraction += 1;
  }
  if (fraction >= 1) {
    floor += 1;
    fraction -= 1;
  }
  return { floor, fraction };
}

/** The rounding error of a·b (Dekker's exact product): a·b = product + error exactly. */
function twoProductError(a: number, b: number, product: number): number {
  const split = (v: number) => {
    const c = 134217729 * v; // 2^27 + 1
    const hi = c - (c - v);
    return [hi, v - hi] as const;
  };
  const [ah, al] = split(a);
  const [bh, bl] = split(b);
  return al * bl - (product - ah * bh - al * bh - ah * bl);
}
