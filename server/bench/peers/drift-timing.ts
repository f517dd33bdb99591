// Our drift detector timed per window, in its own process so that its memory is its own: the DriftMonitor
// the predictor runs (the profile's samples sorted once, default options), a window of `rows` rows recorded
// at once, timed from record() to the report. Reads the manifest drift-peers.bench.ts writes for
// evidently_drift.py (the same window files) and prints JSON on stdout.
//   node --import tsx server/bench/peers/drift-timing.ts <manifest.json>
import { readFileSync } from 'node:fs';
import { DEFAULT_DRIFT_OPTIONS } from '../../src/drift/detector.ts';
import { DriftMonitor, type DriftReport } from '../../src/drift/monitor.ts';
import { parseReferenceProfile } from '../../src/drift/profile.ts';

interface Manifest {
  profilePath: string;
  windows: Array<{ name: string; path: string; rows: number; repeats: number }>;
}
const manifest = JSON.parse(readFileSync(process.argv[2], 'utf8')) as Manifest;
const profile = parseReferenceProfile(readFileSync(manifest.profilePath, 'utf8'), manifest.profilePath);
const features = profile.features.length;
const peakRssMb = () => process.resourceUsage().maxRSS / 1024;
const baselineRssMb = peakRssMb();

const windows = [];
for (const window of manifest.windows) {
  // The window files hold one column after another; the predictor records rows, so the rows are laid out first (untimed).
  const columns = new Float64Array(readFileSync(window.path).buffer.slice(0));
  const rowMajor = new Float64Array(window.rows * features);
  for (let j = 0; j < features; j++)
    for (let r = 0; r < window.rows; r++) rowMajor[r * features + j] = columns[j * window.rows + r];
  const milliseconds: number[] = [];
  let last: DriftReport | undefined;
  // One untimed window first: V8 compiles the hot functions on it.
  for (let i = -1; i < window.repeats; i++) {
    let report: (r: DriftReport) => void = () => {};
    const reported = new Promise<DriftReport>((resolve) => (report = resolve));
    const monitor = new DriftMonitor(profile, {
      model: 'credit',
      modelVersion: '1',
      windowSize: window.rows,
      windowSeconds: 3600,
      drift: DEFAULT_DRIFT_OPTIONS,
      onReport: (r) => report(r),
      onError: (error) => {
        throw error;
      },
    });
    const start = performance.now();
    monitor.record(rowMajor, window.rows);
    last = await reported;
    if (i >= 0) milliseconds.push(performance.now() - start);
    await monitor.stop('shutdown');
  }
  windows.push({
    name: window.name,
    rows: window.rows,
    features,
    milliseconds,
    driftedFeatures: last!.driftedFeatures.length,
    peakRssMb: peakRssMb(),
  });
}
process.stdout.write(JSON.stringify({ node: process.version, baselineRssMb, windows }));
