// The two-sample KS p-value against SciPy 1.10.1 (Debian's python3-scipy): ks_2samp(method='auto') on samples this
// test generates, and kstwo.sf in every region of its (n, x) plane. The values come from fixtures/ks-2samp.py,
// which draws the same samples with the same generator and wrote fixtures/ks-2samp.json.
// test: no cluster
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { kolmogorovSmirnovSurvival, ksTwoSampleTest } from '../src/drift/ks-pvalue.ts';
import { ksTwoSample } from '../src/drift/statistics.ts';

interface SampleSpec {
  n: number;
  loc: number;
  scale: number;
  sum: number;
}
interface Fixture {
  scipy: string;
  cases: Array<{
    name: string;
    seed: number;
    ties: number;
    a: SampleSpec;
    b: SampleSpec;
    statistic: number;
    pValue: number;
  }>;
  kstwo: Array<{ n: number; x: number; sf: number }>;
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/ks-2samp.json', import.meta.url), 'utf8')) as Fixture;

const RELATIVE = 1e-6;
/** Below the smallest normal double a value has too few bits for a relative comparison (SciPy's own are noise there). */
const SMALLEST_NORMAL = 2 ** -1022;
function agrees(actual: number, expected: number, what: string): void {
  const ok =
    Math.abs(expected) < SMALLEST_NORMAL
      ? Math.abs(actual) < SMALLEST_NORMAL
      : Math.abs(actual - expected) <= RELATIVE * Math.abs(expected);
  assert.ok(
    ok,
    `${what}: got ${actual}, SciPy ${fixture.scipy} gives ${expected} (relative ${Math.abs(actual - expected) / Math.abs(expected)})`,
  );
}

/** xorshift32, as the fixture script runs it: the state stays a 32-bit pattern, read unsigned. */
function xorshift32(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
}

function sample(next: () => number, spec: SampleSpec, ties: number): number[] {
  return Array.from({ length: spec.n }, () => {
    const v = spec.loc + spec.scale * (next() + next() + next() + next() - 2);
    return ties ? Math.floor(v * ties) / ties : v;
  });
}

function total(values: number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return s;
}

test('the fixture covers exact and asymptotic cases, each with samples of the sizes named', () => {
  assert.ok(
    fixture.cases.some((c) => Math.max(c.a.n, c.b.n) <= 10_000) &&
      fixture.cases.some((c) => Math.max(c.a.n, c.b.n) > 10_000),
  );
  assert.ok(fixture.kstwo.length > 100);
});

for (const c of fixture.cases) {
  test(`KS two-sample p-value as SciPy's ks_2samp: ${c.name} (${c.a.n} vs ${c.b.n})`, () => {
    const next = xorshift32(c.seed);
    const a = sample(next, c.a, c.ties);
    const b = sample(next, c.b, c.ties);
    assert.is(total(a), c.a.sum, 'the first sample is the one SciPy saw');
    assert.is(total(b), c.b.sum, 'the second sample is the one SciPy saw');
    const result = ksTwoSample(a, b);
    agrees(result.statistic, c.statistic, 'D');
    agrees(result.pValue, c.pValue, 'p');
  });
}

test("the finite-n Kolmogorov survival agrees with SciPy's kstwo.sf in every region of (n, x)", () => {
  for (const { n, x, sf } of fixture.kstwo) agrees(kolmogorovSmirnovSurvival(n, x), sf, `kstwo.sf(${x}, ${n})`);
});

test('a repeated lattice point gives the same p-value from the memo as computed', () => {
  const first = ksTwoSampleTest(0.0415, 2000, 1000);
  assert.equal(ksTwoSampleTest(0.0415, 2000, 1000), first);
  assert.equal(ksTwoSampleTest(0.0415, 1000, 2000), first);
});

test.run();
