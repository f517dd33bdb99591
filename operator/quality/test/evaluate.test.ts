// The evaluator on ground-truth files in the documented layout (file://, written with hyparquet-writer): every
// metric against scikit-learn's on the fixtures of server/test/fixtures/quality.json (make-quality-fixtures.py) to
// 1e-9, labels joined last-wins across feedback parts, bulk Parquet and CSV files, unknown ids ignored, the time
// window, bad rows and bad input. The S3 and NATS path is in evaluate-s3.test.ts.
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { qualityMetrics } from '../../../server/src/quality/metrics.ts';
import { QUALITY_METRICS, type VersionQuality } from '../../events/quality-event.ts';
import { evaluateQuality, runEvaluate } from '../evaluate.ts';
import {
  inferenceLogPart,
  labelCsv,
  labelPart,
  type LabelRow,
  type LoggedRow,
} from '../../../test/support/ground-truth.ts';

const fixtures = JSON.parse(
  readFileSync(new URL('../../../server/test/fixtures/quality.json', import.meta.url), 'utf8'),
) as {
  metrics: Array<{
    name: string;
    threshold: number;
    scores: number[];
    labels: number[];
    expected: Record<string, number | null>;
  }>;
};

const ns = 'risk';
const service = 'fraud';
const end = new Date('2026-12-01T12:00:00Z');
const endMs = end.getTime();
const MINUTE = 60_000;

let root: string;
let base: string;

function put(file: { key: string; body: Uint8Array }, modifiedMs?: number): void {
  const path = join(root, file.key);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, file.body);
  if (modifiedMs !== undefined) utimesSync(path, modifiedMs / 1000, modifiedMs / 1000);
}

function close(actual: number | null, expected: number | null, what: string, relative = 1e-9) {
  if (expected === null) return assert.is(actual, null, what);
  assert.ok(actual !== null && actual !== undefined, `${what}: ${actual}, expected ${expected}`);
  const error = Math.abs(actual! - expected) / Math.max(Math.abs(expected), 1e-300);
  assert.ok(
    error <= relative || Math.abs(actual! - expected) < 1e-15,
    `${what}: ${actual} vs ${expected} (relative error ${error})`,
  );
}

const byVersion = (versions: VersionQuality[], version: number) => versions.find((v) => v.version === version)!;

test.before(() => {
  root = mkdtempSync(join(tmpdir(), 'loopline-quality-test-'));
  base = pathToFileURL(root).href;
  // Version i + 1 logs fixture case i, in two parts a minute apart and one more part of rows nobody labels.
  fixtures.metrics.forEach((c, i) => {
    const version = i + 1;
    const rows: LoggedRow[] = c.scores.map((score, j) => ({
      requestId: `v${version}-${j}`,
      time: endMs - 50 * MINUTE + j,
      model: 'fraud',
      version,
      score,
      inputs: { amount: j },
    }));
    const half = Math.ceil(rows.length / 2);
    put(inferenceLogPart(ns, service, rows.slice(0, half), 'predictor-a', 0));
    if (rows.length > half) put(inferenceLogPart(ns, service, rows.slice(half), 'predictor-b', 0));
    put(
      inferenceLogPart(
        ns,
        service,
        [0, 1, 2].map((j) => ({
          requestId: `v${version}-unlabelled-${j}`,
          time: endMs - 40 * MINUTE,
          model: 'fraud',
          version,
          score: 0.5,
        })),
        'predictor-a',
        1,
      ),
    );
    // Labels: first a wrong one for every request (feedback, 45 minutes ago), then the right one in one of three
    // forms recorded later: a feedback part, a bulk Parquet file without a time column (its LastModified counts),
    // or a CSV file with times. Plus labels for ids nobody logged.
    put(
      labelPart(
        ns,
        service,
        c.labels.map((label, j) => ({
          requestId: `v${version}-${j}`,
          label: 1 - label,
          time: endMs - 45 * MINUTE + j,
        })),
      ),
    );
    const right: LabelRow[] = c.labels.map((label, j) => ({ requestId: `v${version}-${j}`, label }));
    const third = Math.ceil(right.length / 3);
    put(
      labelPart(
        ns,
        service,
        right.slice(0, third).map((r, j) => ({ ...r, time: endMs - 30 * MINUTE + j })),
      ),
    );
    put(labelPart(ns, service, right.slice(third, 2 * third), `warehouse-export-v${version}`), endMs - 20 * MINUTE);
    put(
      labelCsv(
        ns,
        service,
        right.slice(2 * third).map((r, j) => ({ ...r, time: endMs - 10 * MINUTE + j })),
        `crm-v${version}`,
      ),
    );
    put(
      labelPart(
        ns,
        service,
        [0, 1, 2, 3].map((j) => ({
          requestId: `nobody-logged-${version}-${j}`,
          label: j % 2,
          time: endMs - 5 * MINUTE,
        })),
      ),
    );
  });
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test("every metric of every version equals scikit-learn's to 1e-9, the last label per request id winning", async () => {
  for (const threshold of new Set(fixtures.metrics.map((c) => c.threshold))) {
    const result = await evaluateQuality({ namespace: ns, service, uri: base, window: '1h', threshold, end });
    assert.equal(
      result.versions.map((v) => v.version),
      fixtures.metrics.map((_, i) => i + 1),
    );
    fixtures.metrics.forEach((c, i) => {
      if (c.threshold !== threshold) return;
      const got = byVersion(result.versions, i + 1);
      assert.is(got.model, 'fraud');
      assert.is(got.predictions, c.scores.length + 3, `${c.name}: predictions`);
      assert.is(got.count, c.expected.count, `${c.name}: count`);
      assert.is(got.positives, c.expected.positives, `${c.name}: positives`);
      assert.is(got.excluded, 0);
      assert.is(got.threshold, threshold);
      for (const metric of QUALITY_METRICS) close(got[metric], c.expected[metric]!, `${c.name}: ${metric}`);
    });
  }
});

test('labels for request ids nobody logged are ignored, and so are predictions nobody labelled', async () => {
  const result = await evaluateQuality({ namespace: ns, service, uri: base, window: 'all', threshold: 0.5, end });
  const nine = byVersion(result.versions, 3);
  assert.is(nine.count, 9);
  assert.is(nine.predictions, 12);
  assert.is(result.window.start, null);
  assert.is(result.window.end, end.toISOString());
});

test("a label recorded after the window's end does not count yet: the earlier label of that id still does", async () => {
  // 25 minutes before end only the wrong feedback labels and the first third's right ones exist.
  const earlier = new Date(endMs - 25 * MINUTE);
  const result = await evaluateQuality({
    namespace: ns,
    service,
    uri: base,
    window: '1h',
    threshold: 0.5,
    end: earlier,
  });
  const c = fixtures.metrics[2]!;
  const third = Math.ceil(c.labels.length / 3);
  const seen = c.labels.map((label, j) => (j < third ? label : 1 - label));
  const expected = qualityMetrics(c.scores, seen, { threshold: 0.5 });
  const got = byVersion(result.versions, 3);
  assert.is(got.count, 9);
  for (const metric of QUALITY_METRICS) close(got[metric], expected[metric], `at ${earlier.toISOString()}: ${metric}`);
});

test('the window is by prediction time: parts outside it are not read, rows outside it do not count', async () => {
  const recent = await evaluateQuality({ namespace: ns, service, uri: base, window: '45m', threshold: 0.5, end });
  // Only the unlabelled rows (40 minutes ago) are inside 45 minutes.
  for (const v of recent.versions) {
    assert.is(v.predictions, 3);
    assert.is(v.count, 0);
    for (const metric of QUALITY_METRICS) assert.is(v[metric], null, `${metric} without labels`);
  }
  assert.is(recent.window.start, new Date(endMs - 45 * MINUTE).toISOString());
  const none = await evaluateQuality({
    namespace: ns,
    service,
    uri: base,
    window: '1h',
    threshold: 0.5,
    end: new Date(endMs - 2 * 3_600_000),
  });
  assert.equal(none.versions, []);
});

test('rows whose score is not a probability or whose label is not 0 or 1 are counted as excluded, not measured', async () => {
  const name = 'bad-rows';
  const at = endMs - MINUTE;
  const scores = [0.9, 0.2, Number.NaN, 1.5, 0.7, 0.4];
  put(
    inferenceLogPart(
      ns,
      name,
      scores.map((score, j) => ({ requestId: `r${j}`, time: at, model: 'fraud', version: 7, score })),
    ),
  );
  put(
    labelPart(
      ns,
      name,
      [1, 0, 1, 1, 2, 0].map((label, j) => ({ requestId: `r${j}`, label, time: at + 1000 })),
    ),
  );
  const result = await evaluateQuality({ namespace: ns, service: name, uri: base, window: '1h', threshold: 0.5, end });
  const got = byVersion(result.versions, 7);
  assert.is(got.predictions, 6);
  assert.is(got.count, 3);
  assert.is(got.excluded, 3);
  const expected = qualityMetrics([0.9, 0.2, 0.4], [1, 0, 0]);
  for (const metric of QUALITY_METRICS) close(got[metric], expected[metric], metric);
});

test('a service with nothing logged yet has no versions; a label file without request_id is refused by name', async () => {
  const empty = await evaluateQuality({
    namespace: ns,
    service: 'nothing-yet',
    uri: base,
    window: '1h',
    threshold: 0.5,
    end,
  });
  assert.equal(empty.versions, []);
  const name = 'bad-labels';
  put(inferenceLogPart(ns, name, [{ requestId: 'a', time: endMs - MINUTE, model: 'fraud', version: 1, score: 0.5 }]));
  put({ key: `labels/${ns}/${name}/export.csv`, body: new TextEncoder().encode('id,outcome\na,1\n') });
  const error = await evaluateQuality({
    namespace: ns,
    service: name,
    uri: base,
    window: '1h',
    threshold: 0.5,
    end,
  }).then(
    () => undefined,
    (e: Error) => e,
  );
  assert.match(String(error?.message), /lack a "request_id" column \(labels\/risk\/bad-labels\/export\.csv\)/);
});

test('bad arguments exit 2 or 1 with a line naming the option and the fix', async () => {
  const run = async (args: string[]) => {
    const lines: string[] = [];
    const code = await runEvaluate(args, (line) => lines.push(line), {});
    return { code, text: lines.join('\n') };
  };
  const ok = ['--namespace', ns, '--service', service, '--uri', base];
  assert.equal((await run(['--service', service])).code, 2);
  assert.match((await run(['--service', service])).text, /--namespace, --uri required/);
  assert.match((await run([...ok, '--window', 'soon'])).text, /--window: "soon" is not a duration/);
  assert.match((await run([...ok, '--threshold', '1.5'])).text, /--threshold 1.5 is not a probability/);
  assert.match((await run([...ok, '--end', 'yesterday'])).text, /--end "yesterday" is not a time/);
  assert.match((await run([...ok, '--calibration-bins', '0'])).text, /--calibration-bins "0" is not a whole number/);
  assert.match(
    (await run(['--namespace', ns, '--service', service, '--uri', 'http://example/x'])).text,
    /neither s3:\/\/<bucket>\/<prefix> nor file:/,
  );
  const good = await run([...ok, '--window', 'all', '--end', end.toISOString()]);
  assert.is(good.code, 0, good.text);
  assert.equal(
    JSON.parse(good.text).versions.map((v: VersionQuality) => v.version),
    [1, 2, 3, 4],
  );
});

test.run();
