/**
 * Drift peer benchmark: `npm run bench -- peers` (with peers.bench.ts), or `npx tsx server/bench/drift-peers.bench.ts`.
 * Our drift detector (server/src/drift) beside Evidently 0.7 on the same data: the example trainer's reference
 * profile (Evidently's reference data is what the profile holds: each numeric feature's sample, each categorical
 * feature's counts) and the same live windows, drawn from the trainer's generator with a covariate shift.
 *   1. Agreement, per window and feature: the method each picks by default, its score and verdict; Evidently again
 *      with our method asked for by name; and every method both have, side by side.
 *   2. Time per window for 1 000, 10 000 and 100 000 rows x 5 and 50 features, with peak memory: ours as the
 *      predictor's DriftMonitor runs it, Evidently as users run it (Report([DataDriftPreset()]).run) and its
 *      default stattests alone; each side in its own process (peers/drift-timing.ts, peers/evidently_drift.py).
 * Writes bench/results/drift-peers.{json,md}.
 */
// bench: no cluster
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateCreditRisk } from '../../examples/trainer/src/dataset.ts';
import type { CategoricalStatistics, DriftMethod, FeatureDrift, NumericStatistics } from '../src/drift/detector.ts';
import { DEFAULT_DRIFT_OPTIONS, DEFAULT_THRESHOLDS, evaluateWindow, isPValueMethod } from '../src/drift/detector.ts';
import type { FeatureProfile, ReferenceProfile } from '../src/drift/profile.ts';
import { trainExample } from './peers/example.ts';
import { peerPython, pinnedVersion } from './peers/venv.ts';
import { machineFacts } from '../../test/support/machine.ts';
import { median } from '../../test/support/figures.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const uptime = () => spawnSync('uptime', { encoding: 'utf8' }).stdout.trim();
const uptimeBefore = uptime();
const loadBefore = loadavg();
const started = Date.now();
const work = mkdtempSync(join(tmpdir(), 'loopline-bench-drift-peers-'));
const python = peerPython('evidently');
const evidentlyVersion = pinnedVersion('evidently');
const example = trainExample(join(work, 'trainer'));

const METHODS: Record<'numeric' | 'categorical', DriftMethod[]> = {
  numeric: ['ks', 'wasserstein', 'psi', 'jensenshannon'],
  categorical: ['chisquare', 'psi', 'jensenshannon'],
};
/** Evidently's display names of the methods it picks by itself. */
const EVIDENTLY_METHOD: Record<string, string> = {
  'K-S p_value': 'ks',
  'chi-square p_value': 'chisquare',
  'Wasserstein distance (normed)': 'wasserstein',
  'Jensen-Shannon distance': 'jensenshannon',
  PSI: 'psi',
  'Z-test p_value': 'z',
};
/**
 * Where the two compute a method the same way, and where not (each checked in the code of Evidently 0.7.23).
 * Same formula: verdicts must agree. Different formula: the scores differ by construction; the row says how.
 */
const FORMULA: Record<string, { same: boolean; note: string }> = {
  'numeric ks': {
    same: true,
    note: 'both SciPy ks_2samp (ours: its method auto, reimplemented); Evidently drifts at p <= 0.05, ours at p < 0.05',
  },
  'numeric wasserstein': {
    same: true,
    note: "both W1 / max(std, 0.001); ours divides by the std of all training values (profile.std), Evidently by the std of the reference data it gets (the profile's sample), so the scores differ by that ratio",
  },
  'numeric psi': {
    same: false,
    note: "ours: the profile's decile bins; Evidently: Sturges bins over reference and window together",
  },
  'numeric jensenshannon': { same: false, note: 'ours: decile bins, log base 2; Evidently: Sturges bins, natural log' },
  'categorical chisquare': {
    same: true,
    note: "both Pearson goodness of fit of the window's counts to the reference shares",
  },
  'categorical psi': {
    same: true,
    note: 'both per-category shares; zero shares floored (ours at 1e-4, Evidently at 1e-4 or a millionth of the smallest share)',
  },
  'categorical jensenshannon': {
    same: false,
    note: "same shares; ours in bits (log base 2), Evidently in nats, so Evidently's score is ours x sqrt(ln 2) = 0.833x and the 0.1 threshold sits at different distances",
  },
};

// ---- the data, as files both sides read ----
function writeColumns(path: string, columns: Float64Array[]): void {
  const out = new Float64Array(columns.length * columns[0].length);
  columns.forEach((c, j) => out.set(c, j * c.length));
  writeFileSync(path, new Uint8Array(out.buffer));
}
/** Evidently's reference data: the numeric samples, and each category repeated as often as the training rows had it. */
function referenceColumns(profile: ReferenceProfile): Float64Array[] {
  const expand = (f: FeatureProfile): number[] => {
    if (f.type === 'numeric') return f.sample;
    const present = profile.rows * (1 - f.missingRate);
    return Object.entries(f.frequencies).flatMap(([category, share]) => {
      const count = share * present;
      if (Math.abs(count - Math.round(count)) > 1e-6)
        throw new Error(`feature ${f.name}: share ${share} of ${present} rows is not a whole count`);
      return new Array<number>(Math.round(count)).fill(Number(category));
    });
  };
  const values = profile.features.map(expand);
  const rows = Math.max(...values.map((v) => v.length));
  // NaN pads the shorter columns: Evidently drops NaN from each column before it compares.
  return values.map((v) => Float64Array.from({ length: rows }, (_, i) => (i < v.length ? v[i] : NaN)));
}
function windowColumns(rows: number, seed: number, shift: number, copies = 1): Float64Array[] {
  return Array.from({ length: copies }, (_, k) => {
    const { x } = generateCreditRisk({ rows, seed: seed + 7919 * k, shift });
    return x[0].map((_, j) => Float64Array.from(x, (row) => row[j]));
  }).flat();
}
function runJson(command: string, args: string[], what: string): any {
  const run = spawnSync(command, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (run.status !== 0) throw new Error(`${what} failed (${run.status}): ${run.stderr.slice(-3000)}`);
  return JSON.parse(run.stdout);
}

const profile = example.profile;
const features = profile.features.map((f) => ({ name: f.name, type: f.type }));
const reference = referenceColumns(profile);
const sampleSizes = [...new Set(profile.features.flatMap((f) => (f.type === 'numeric' ? [f.sample.length] : [])))].join(
  '/',
);
writeColumns(join(work, 'reference.f64'), reference);

// ---- 1. agreement ----
const SIZES = [500, 1000, 5000];
const SHIFTS = [0, 0.1, 0.3];
const agreementWindows = SIZES.flatMap((rows, a) =>
  SHIFTS.map((shift, b) => ({ name: `${rows} rows, shift ${shift}`, rows, shift, seed: 1000 + 10 * a + b })),
);
const ours: Record<string, FeatureDrift[]> = {};
for (const w of agreementWindows) {
  const columns = windowColumns(w.rows, w.seed, w.shift);
  writeColumns(join(work, `${w.seed}.f64`), columns);
  ours[w.name] = evaluateWindow(profile, columns, DEFAULT_DRIFT_OPTIONS).features;
}
writeFileSync(
  join(work, 'agreement.json'),
  JSON.stringify({
    mode: 'agreement',
    features,
    methods: METHODS,
    reference: { path: join(work, 'reference.f64'), rows: reference[0].length },
    windows: agreementWindows.map((w) => ({ name: w.name, path: join(work, `${w.seed}.f64`), rows: w.rows })),
  }),
);
console.log(
  `Evidently ${evidentlyVersion}: agreement on ${agreementWindows.length} windows x ${features.length} features`,
);
const evidently = runJson(
  python,
  ['server/bench/peers/evidently_drift.py', join(work, 'agreement.json')],
  'evidently_drift.py (agreement)',
);

function ourScore(f: FeatureDrift, method: DriftMethod): number {
  const s = f.statistics!;
  if (f.type === 'numeric') {
    const n = s as NumericStatistics;
    return { ks: n.ksPValue, wasserstein: n.wasserstein, psi: n.psi, jensenshannon: n.jensenShannon }[method as 'ks']!;
  }
  const c = s as CategoricalStatistics;
  return { chisquare: c.chiSquarePValue, psi: c.psi, jensenshannon: c.jensenShannon }[method as 'chisquare']!;
}
const ourVerdict = (method: DriftMethod, score: number) =>
  isPValueMethod(method) ? score < DEFAULT_THRESHOLDS[method] : score >= DEFAULT_THRESHOLDS[method];

interface Row {
  window: string;
  feature: string;
  type: string;
  ours: { method: string; score: number; drifted: boolean };
  evidentlyDefault: { method: string; score: number; drifted: boolean };
  evidentlyOurMethod: { score: number; drifted: boolean };
}
const rows: Row[] = [];
const byMethod: Record<string, { pairs: number; agree: number; maxDifference: number; disagreements: string[] }> = {};
for (const w of agreementWindows) {
  const theirs = evidently.windows.find((x: any) => x.name === w.name).features;
  for (const f of ours[w.name]) {
    const t = theirs[f.name];
    rows.push({
      window: w.name,
      feature: f.name,
      type: f.type,
      ours: { method: f.method, score: f.score, drifted: f.drifted },
      evidentlyDefault: {
        method: EVIDENTLY_METHOD[t.default.method] ?? t.default.method,
        score: t.default.score,
        drifted: t.default.drifted,
      },
      evidentlyOurMethod: { score: t.methods[f.method].score, drifted: t.methods[f.method].drifted },
    });
    for (const method of METHODS[f.type]) {
      const mine = ourScore(f, method);
      const m = (byMethod[`${f.type} ${method}`] ??= { pairs: 0, agree: 0, maxDifference: 0, disagreements: [] });
      m.pairs++;
      const agree = ourVerdict(method, mine) === t.methods[method].drifted;
      if (agree) m.agree++;
      else
        m.disagreements.push(
          `${w.name} ${f.name}: ours ${mine.toPrecision(4)}, Evidently ${Number(t.methods[method].score).toPrecision(4)}`,
        );
      m.maxDifference = Math.max(m.maxDifference, Math.abs(mine - t.methods[method].score));
    }
  }
}
const sameTestRows = rows.filter((r) => FORMULA[`${r.type} ${r.ours.method}`].same);
const sameTestAgree = sameTestRows.filter((r) => r.ours.drifted === r.evidentlyOurMethod.drifted).length;
const sameDefault = rows.filter((r) => r.ours.method === r.evidentlyDefault.method);

// ---- 2. time per window ----
const TIMING_ROWS = [1000, 10000, 100000];
const TIMING_FEATURES = [5, 50];
const OUR_REPEATS: Record<number, number> = { 1000: 30, 10000: 10, 100000: 3 };
const EVIDENTLY_REPEATS: Record<number, number> = {
  1000: Number(process.env.BENCH_EVIDENTLY_REPEATS ?? 3),
  10000: Number(process.env.BENCH_EVIDENTLY_REPEATS ?? 2),
  100000: 1,
};
const timing: Array<{
  rows: number;
  features: number;
  oursMs: number[];
  oursPeakRssMb: number;
  oursBaselineRssMb: number;
  reportSeconds: number[];
  stattestSeconds: number[];
  evidentlyPeakRssMb: number;
  evidentlyBaselineRssMb: number;
}> = [];
for (const count of TIMING_FEATURES) {
  const copies = count / profile.features.length;
  // 50 features: the example's five, ten times over under new names (windows drawn from ten seeds).
  const wide: ReferenceProfile = {
    rows: profile.rows,
    features: Array.from({ length: copies }, (_, k) =>
      profile.features.map((f) => ({ ...f, name: copies > 1 ? `${f.name}_${k}` : f.name })),
    ).flat(),
  };
  const profilePath = join(work, `profile-${count}.json`);
  writeFileSync(profilePath, JSON.stringify(wide));
  const referencePath = join(work, `reference-${count}.f64`);
  writeColumns(referencePath, Array.from({ length: copies }, () => reference).flat());
  const windows = TIMING_ROWS.map((rows) => {
    const path = join(work, `timing-${count}-${rows}.f64`);
    writeColumns(path, windowColumns(rows, 5000 + rows, 0.1, copies));
    return { name: `${rows} x ${count}`, path, rows };
  });
  const manifest = (repeats: Record<number, number>) => ({
    mode: 'timing',
    profilePath,
    features: wide.features.map((f) => ({ name: f.name, type: f.type })),
    reference: { path: referencePath, rows: reference[0].length },
    windows: windows.map((w) => ({ ...w, repeats: repeats[w.rows] })),
  });
  writeFileSync(join(work, `ours-${count}.json`), JSON.stringify(manifest(OUR_REPEATS)));
  writeFileSync(join(work, `evidently-${count}.json`), JSON.stringify(manifest(EVIDENTLY_REPEATS)));
  console.log(`timing ${count} features: ours`);
  const mine = runJson(
    process.execPath,
    ['--import', 'tsx', 'server/bench/peers/drift-timing.ts', join(work, `ours-${count}.json`)],
    'drift-timing.ts',
  );
  console.log(`timing ${count} features: Evidently`);
  const theirs = runJson(
    python,
    ['server/bench/peers/evidently_drift.py', join(work, `evidently-${count}.json`)],
    'evidently_drift.py (timing)',
  );
  TIMING_ROWS.forEach((rows, i) => {
    timing.push({
      rows,
      features: count,
      oursMs: mine.windows[i].milliseconds,
      oursPeakRssMb: mine.windows[i].peakRssMb,
      oursBaselineRssMb: mine.baselineRssMb,
      reportSeconds: theirs.windows[i].reportSeconds,
      stattestSeconds: theirs.windows[i].stattestSeconds,
      evidentlyPeakRssMb: theirs.windows[i].peakRssMb,
      evidentlyBaselineRssMb: theirs.baselineRssMb,
    });
    const t = timing.at(-1)!;
    console.log(
      `${rows} rows x ${count}: ours ${median(t.oursMs).toFixed(2)} ms, Evidently report ${(1000 * median(t.reportSeconds)).toFixed(0)} ms, stattests ${(1000 * median(t.stattestSeconds)).toFixed(1)} ms`,
    );
  });
}
const uptimeAfter = uptime();

const speedups = timing.map((t) => ({
  rows: t.rows,
  features: t.features,
  versusReport: (1000 * median(t.reportSeconds)) / median(t.oursMs),
  versusStattests: (1000 * median(t.stattestSeconds)) / median(t.oursMs),
}));
const targets = {
  sameTestVerdicts: {
    value: `${sameTestAgree}/${sameTestRows.length}`,
    target:
      'where both run the same test (ours picks it; Evidently asked for it by name), the verdicts agree on every feature of every window',
    met: sameTestAgree === sameTestRows.length,
  },
  speed: {
    value: Math.min(...speedups.map((s) => s.versusReport)),
    target: 'ours >= 10x faster per window than Evidently (Report with DataDriftPreset), every size',
    met: speedups.every((s) => s.versusReport >= 10),
  },
};

const results = {
  generatedAt: new Date().toISOString(),
  machine: machineFacts(loadBefore, { uptimeBefore, uptimeAfter }),
  versions: {
    evidently: evidentlyVersion,
    pandas: evidently.pandas,
    requirements: 'server/bench/peers/evidently.requirements.txt',
  },
  profile: { rows: profile.rows, features },
  agreement: { windows: agreementWindows, rows, byMethod, formula: FORMULA },
  timing,
  speedups,
  targets,
  durationSeconds: (Date.now() - started) / 1000,
};

const g = (n: number) => (Math.abs(n) >= 0.001 || n === 0 ? n.toFixed(4) : n.toExponential(2));
const yes = (b: boolean) => (b ? 'drift' : '—');
const f1 = (n: number) => n.toFixed(1);
const md = `## Drift peer: Evidently (\`server/bench/drift-peers.bench.ts\`)

\`npm run bench -- peers\`. Our detector (\`server/src/drift\`, default options) and Evidently ${evidentlyVersion} (pandas ${evidently.pandas}, pinned in
\`server/bench/peers/evidently.requirements.txt\`) on the same data: the example trainer's reference profile (${profile.rows} training rows;
Evidently's reference data is what the profile holds: each numeric feature's ${sampleSizes}-value sample and each categorical feature's
counts) and the same live windows, drawn from the trainer's generator (\`shift\` moves every numeric feature by that share of its spread
and tilts the regions). Same machine (${cpus().length} cores, shared with other work). Load before: \`${uptimeBefore}\`; after: \`${uptimeAfter}\`.

### Agreement, per window and feature

Ours picks KS / chi-square up to 1 000 values in the window and normed Wasserstein / Jensen–Shannon above; Evidently picks by the size of
the *reference* (above 1 000 rows: Wasserstein / Jensen–Shannon), so on windows of up to 1 000 rows the default methods differ.
"Evidently, our method" is Evidently asked for our method by name (\`ValueDrift(column, method)\`). Verdicts: Evidently's own tests.
Where both run the same test, the verdicts agree on ${sameTestAgree} of ${sameTestRows.length} feature-windows${sameTestAgree === sameTestRows.length ? '' : ' (see the disagreements below)'}; the default methods coincide on ${sameDefault.length} of ${rows.length}
(${sameDefault.filter((r) => r.ours.drifted === r.evidentlyDefault.drifted).length} of those with the same verdict).

| window | feature | ours: method, score, verdict | Evidently default: method, score, verdict | Evidently, our method: score, verdict |
|---|---|---|---|---|
${rows.map((r) => `| ${r.window} | ${r.feature} | ${r.ours.method} ${g(r.ours.score)} ${yes(r.ours.drifted)} | ${r.evidentlyDefault.method} ${g(r.evidentlyDefault.score)} ${yes(r.evidentlyDefault.drifted)} | ${g(r.evidentlyOurMethod.score)} ${yes(r.evidentlyOurMethod.drifted)}${r.ours.drifted === r.evidentlyOurMethod.drifted ? '' : ' **differs**'} |`).join('\n')}

Every method both have, on every feature-window (ours computes them all each window; Evidently asked for each by name):

| feature type, method | same formula | feature-windows | verdicts agree | largest score difference | how they compute it |
|---|---|---|---|---|---|
${Object.entries(byMethod)
  .map(
    ([k, m]) =>
      `| ${k} | ${FORMULA[k].same ? 'yes' : 'no'} | ${m.pairs} | ${m.agree} | ${g(m.maxDifference)} | ${FORMULA[k].note} |`,
  )
  .join('\n')}
${Object.entries(byMethod)
  .filter(([, m]) => m.disagreements.length)
  .map(([k, m]) => `\nDisagreements, ${k}: ${m.disagreements.join('; ')}.`)
  .join('')}

### Time per window

Ours: the predictor's \`DriftMonitor\` (the window recorded at once, timed from \`record()\` to its report; Node ${process.version} through tsx; median of
${Object.values(OUR_REPEATS).join(' / ')} windows after an untimed one). Evidently: \`Report([DataDriftPreset()]).run(current, reference)\` on prepared
\`Dataset\`s, as users run it (median of ${Object.values(EVIDENTLY_REPEATS).join(' / ')}), and its default stattests alone, without the report. Each side in its own
process; memory is that process's peak resident set after the window size (baseline: after loading, before the first window).

| rows x features | ours ms | Evidently report ms | Evidently stattests alone ms | ours faster than the report | than the stattests | ours peak RSS MB (baseline) | Evidently peak RSS MB (baseline) |
|---|---|---|---|---|---|---|---|
${timing.map((t, i) => `| ${t.rows.toLocaleString('en-US')} x ${t.features} | ${median(t.oursMs).toFixed(2)} | ${f1(1000 * median(t.reportSeconds))} | ${f1(1000 * median(t.stattestSeconds))} | ${f1(speedups[i].versusReport)}x | ${f1(speedups[i].versusStattests)}x | ${Math.round(t.oursPeakRssMb)} (${Math.round(t.oursBaselineRssMb)}) | ${Math.round(t.evidentlyPeakRssMb)} (${Math.round(t.evidentlyBaselineRssMb)}) |`).join('\n')}

| target | measured | met |
|---|---|---|
| ${targets.sameTestVerdicts.target} | ${targets.sameTestVerdicts.value} | ${targets.sameTestVerdicts.met ? 'yes' : 'no'} |
| ${targets.speed.target} | slowest ratio ${f1(targets.speed.value)}x; against the stattests alone ${f1(Math.min(...speedups.map((s) => s.versusStattests)))}x to ${f1(Math.max(...speedups.map((s) => s.versusStattests)))}x | ${targets.speed.met ? 'yes' : 'no'} |
`;
const out = join(root, 'bench/results');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'drift-peers.json'), `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(join(out, 'drift-peers.md'), md);
rmSync(work, { recursive: true, force: true });
console.log(`\n${md}`);
console.log(
  `bench took ${results.durationSeconds.toFixed(0)} s; wrote bench/results/drift-peers.json and drift-peers.md`,
);
