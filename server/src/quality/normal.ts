// The standard normal distribution's tail, to near double precision everywhere: the one-sided tests that judge a
// canary's quality (compare.ts) turn z statistics into p-values with it, and a verdict near the confidence bound
// must come out as scipy.stats.norm would compute it.

const SQRT2 = Math.SQRT2;
const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

/** erf(x) by its Maclaurin series: accurate for |x| < 2.5, where no term's size costs precision. */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= -x2 / n;
    const next = term / (2 * n + 1);
    sum += next;
    if (Math.abs(next) < 1e-17 * Math.abs(sum)) break;
  }
  return TWO_OVER_SQRT_PI * sum;
}

/** erfc(x) for x >= 2.5 by its continued fraction (modified Lentz), which converges fast there. */
function erfcContinuedFraction(x: number): number {
  // erfc(x) = exp(-x²)/sqrt(π) · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 500; n++) {
    const a = n / 2;
    d = x + a * d;
    d = d === 0 ? tiny : d;
    c = x + a / c;
    c = c === 0 ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

/** erfc(x) = 1 - erf(x), without the cancellation of computing it that way in the tails. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  return x < 2.5 ? 1 - erfSeries(x) : erfcContinuedFraction(x);
}

/** P(Z <= z) for a standard normal Z (scipy.stats.norm.cdf). */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / SQRT2);
}

/** P(Z > z) (scipy.stats.norm.sf), accurate in the upper tail where 1 - cdf would lose every digit. */
export function normalSf(z: number): number {
  return 0.5 * erfc(z / SQRT2);
}

/** The z with P(Z <= z) = p, by Newton steps on normalCdf from a rational first guess. */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) {
    if (p === 0) return -Infinity;
    if (p === 1) return Infinity;
    return NaN;
  }
  // First guess: Tukey's lambda approximation, within ~1e-2; Newton then converges in a few steps.
  let z = 4.91 * (p ** 0.14 - (1 - p) ** 0.14);
  for (let i = 0; i < 50; i++) {
    // cdf(z) - p, through the survival function above the median so that p near 1 keeps its digits.
    const error = p < 0.5 ? normalCdf(z) - p : 1 - p - normalSf(z);
    const density = Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI);
    const step = error / density;
    z -= step;
    if (Math.abs(step) < 1e-15 * Math.max(1, Math.abs(z))) break;
  }
  return z;
}
