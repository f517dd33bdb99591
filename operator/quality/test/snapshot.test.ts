// The evaluator's snapshot of labelled production rows (the dataset of a retrain on a quality drop), on file://
// ground truth with the real DuckDB join: written only when the asked version's metric is below the bound on enough
// labels, its bytes' sha256 in the event, its rows exactly the labelled predictions with their logged inputs, the
// same bytes on a second run, and read by the example trainer's CSV reader with that hash checked.
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { generateCreditRisk, readCreditRiskCsv, toCsv } from '../../../examples/trainer/src/dataset.ts';
import { qualityMetrics } from '../../../server/src/quality/metrics.ts';
import { CREDIT_FEATURES, conceptShiftFiles, conceptShiftRows } from '../../../test/support/concept-shift.ts';
import { inferenceLogPart } from '../../../test/support/ground-truth.ts';
import { evaluateQuality, runEvaluate } from '../evaluate.ts';
import { dropped, qualityBound } from '../snapshot.ts';

const ns = 'risk';
const service = 'credit';
const end = new Date('2026-12-01T12:00:00Z');
const rows = conceptShiftRows(300, 11);
let root: string;
let base: string;

test.before(() => {
  root = mkdtempSync(join(tmpdir(), 'loopline-snapshot-test-'));
  base = pathToFileURL(root).href;
  const files = conceptShiftFiles(
    ns,
    service,
    'credit-risk',
    1,
    rows,
    end.getTime() - 30 * 60_000,
    end.getTime() - 60_000,
  );
  // Predictions nobody labelled: in the window, but not in the snapshot.
  files.push(
    inferenceLogPart(ns, service, [
      {
        requestId: 'unlabelled',
        time: end.getTime() - 60_000,
        model: 'credit-risk',
        version: 1,
        score: 0.4,
        inputs: { income: 1, debt_ratio: 1, age: 1, utilization: 1, region: 1 },
      },
    ]),
  );
  for (const file of files) {
    mkdirSync(dirname(join(root, file.key)), { recursive: true });
    writeFileSync(join(root, file.key), file.body);
  }
});

test.after(() => rmSync(root, { recursive: true, force: true }));

const options = (below: number, minLabels = 100) => ({
  namespace: ns,
  service,
  uri: base,
  window: '1h',
  threshold: 0.5,
  end,
  snapshotWhen: { version: 1, metric: 'auc' as const, below, minLabels },
});

test('the bound is below, or the training metric minus maxDropFromTraining, whichever is higher', () => {
  assert.is(qualityBound({ below: 0.7 }, 0.9), 0.7);
  assert.ok(Math.abs(qualityBound({ maxDropFromTraining: 0.05 }, 0.9)! - 0.85) < 1e-12);
  assert.ok(Math.abs(qualityBound({ below: 0.7, maxDropFromTraining: 0.05 }, 0.9)! - 0.85) < 1e-12);
  assert.is(qualityBound({ below: 0.7, maxDropFromTraining: 0.5 }, 0.9), 0.7);
  assert.is(qualityBound({ maxDropFromTraining: 0.05 }, undefined), undefined, 'no training metric, no bound');
  const entry = { version: 1, count: 150, auc: 0.6 } as never;
  assert.ok(dropped([entry], { version: 1, metric: 'auc', below: 0.7, minLabels: 100 }));
  assert.not.ok(dropped([entry], { version: 1, metric: 'auc', below: 0.6, minLabels: 100 }), 'equal is no drop');
  assert.not.ok(dropped([entry], { version: 1, metric: 'auc', below: 0.7, minLabels: 151 }), 'too few labels');
  assert.not.ok(dropped([entry], { version: 2, metric: 'auc', below: 0.7, minLabels: 1 }), 'another version');
  assert.not.ok(
    dropped([{ ...(entry as object), auc: null } as never], { version: 1, metric: 'auc', below: 0.7, minLabels: 1 }),
  );
});

test("a concept shift drops v1's AUC below the bound: the window's labelled rows are written with their sha256", async () => {
  const data = await evaluateQuality(options(0.7));
  const v1 = data.versions[0]!;
  const expectedAuc = qualityMetrics(rows.scores, rows.labels).auc!;
  assert.ok(Math.abs(v1.auc! - expectedAuc) < 1e-9, `${v1.auc} vs ${expectedAuc}`);
  assert.ok(v1.auc! < 0.5, `the old rule scores the shifted labels badly: AUC ${v1.auc}`);
  assert.is(v1.predictions, 301);
  const snapshot = data.snapshot!;
  assert.ok(snapshot, 'a snapshot');
  assert.match(
    snapshot.uri,
    new RegExp(`^${base}/snapshots/${ns}/${service}/20261201T120000000Z-${snapshot.sha256.slice(0, 16)}\\.csv$`),
  );
  const bytes = readFileSync(fileURLToPath(snapshot.uri));
  assert.is(createHash('sha256').update(bytes).digest('hex'), snapshot.sha256);
  assert.is(snapshot.rows, 300);
  const lines = bytes.toString('utf8').trim().split('\n');
  assert.is(lines[0], [...CREDIT_FEATURES, 'label'].join(','));
  // Ordered by request id; each line the logged inputs and the label of that request.
  const order = rows.requestIds.map((id, i) => [id, i] as const).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  lines.slice(1).forEach((line, k) => {
    const i = order[k]![1];
    const cells = line.split(',').map(Number);
    assert.equal(cells.slice(0, 5), rows.inputs[i], `row ${k} inputs`);
    assert.is(cells[5], rows.labels[i], `row ${k} label`);
  });
  const read = await readCreditRiskCsv(snapshot.uri, `sha256:${snapshot.sha256}`);
  assert.is(read.x.length, 300);
  assert.equal(
    read.y,
    order.map(([, i]) => rows.labels[i]),
  );

  const again = await evaluateQuality(options(0.7));
  assert.is(again.snapshot!.sha256, snapshot.sha256, 'the same window and labels make the same bytes');
});

test('no snapshot while the metric holds the bound or too few labels are in', async () => {
  const before = readdirSync(join(root, 'snapshots', ns, service)).length;
  assert.is((await evaluateQuality(options(0.2))).snapshot, undefined);
  assert.is((await evaluateQuality(options(0.7, 301))).snapshot, undefined);
  assert.is((await evaluateQuality({ ...options(0.7), snapshotWhen: undefined as never })).snapshot, undefined);
  assert.is(readdirSync(join(root, 'snapshots', ns, service)).length, before);
});

test("trainingData.include: the version's training rows follow the production rows, in file order, under the recorded hash", async () => {
  // The training data as the trainer reads it: two CSV parts under a prefix, the label in `defaulted`.
  const training = [
    generateCreditRisk({ rows: 40, seed: 5, shift: 0 }),
    generateCreditRisk({ rows: 25, seed: 6, shift: 0 }),
  ];
  const dir = join(root, 'datasets', 'credit-risk');
  mkdirSync(dir, { recursive: true });
  const texts = training.map(toCsv);
  texts.forEach((text, i) => writeFileSync(join(dir, `part-${i}.csv`), text));
  const hash = `sha256:${createHash('sha256').update(texts.join('')).digest('hex')}`;
  const mix = { uri: `${base}/datasets/credit-risk/`, hash, labelColumn: 'defaulted' };
  const data = await evaluateQuality({ ...options(0.7), snapshotWhen: { ...options(0.7).snapshotWhen, mix } });
  const snapshot = data.snapshot!;
  assert.is(snapshot.rows, 300 + 65);
  assert.is(snapshot.trainingRows, 65);
  const bytes = readFileSync(fileURLToPath(snapshot.uri));
  assert.is(createHash('sha256').update(bytes).digest('hex'), snapshot.sha256);
  const read = await readCreditRiskCsv(snapshot.uri, `sha256:${snapshot.sha256}`);
  const order = rows.requestIds.map((id, i) => [id, i] as const).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  assert.equal(read.y, [...order.map(([, i]) => rows.labels[i]), ...training.flatMap((d) => d.y)]);
  const expectedX = training.flatMap((d) => d.x);
  read.x
    .slice(300)
    .forEach((row, k) =>
      row.forEach((v, j) =>
        assert.ok(
          Number.isNaN(expectedX[k]![j]!) ? Number.isNaN(v) : v === expectedX[k]![j],
          `training row ${k} column ${j}: ${v} vs ${expectedX[k]![j]}`,
        ),
      ),
    );
  const again = await evaluateQuality({ ...options(0.7), snapshotWhen: { ...options(0.7).snapshotWhen, mix } });
  assert.is(again.snapshot!.sha256, snapshot.sha256, 'the same window, labels and training data make the same bytes');

  // Data changed since the version was trained: no snapshot, and the error says why.
  writeFileSync(join(dir, 'part-1.csv'), `${texts[1]}1,0.5,30,0.2,1,0\n`);
  const changed = await evaluateQuality({ ...options(0.7), snapshotWhen: { ...options(0.7).snapshotWhen, mix } }).then(
    () => undefined,
    (error: Error) => error.message,
  );
  assert.match(
    changed ?? '',
    /has sha256:[0-9a-f]{64}, not the sha256:[0-9a-f]{64} its ModelVersion's lineage.dataset records/,
  );
  // A dataset without the label column named.
  const unlabelled = await evaluateQuality({
    ...options(0.7),
    snapshotWhen: { ...options(0.7).snapshotWhen, mix: { uri: mix.uri, labelColumn: 'outcome' } },
  }).then(
    () => undefined,
    (error: Error) => error.message,
  );
  assert.match(unlabelled ?? '', /the training data has no column outcome \(it has income, .*defaulted\)/);
  rmSync(dir, { recursive: true, force: true });
});

test('bad --snapshot-* flags exit 2 naming the flag', async () => {
  const cases: Array<[string[], RegExp]> = [
    [
      ['--snapshot-version', '1', '--snapshot-metric', 'logLoss', '--snapshot-below', '0.7'],
      /--snapshot-metric "logLoss" is not one of auc, accuracy/,
    ],
    [['--snapshot-version', '1', '--snapshot-metric', 'auc'], /--snapshot-below is required/],
    [
      ['--snapshot-version', 'two', '--snapshot-metric', 'auc', '--snapshot-below', '0.7'],
      /--snapshot-version "two" is not a version number/,
    ],
    [
      ['--snapshot-version', '1', '--snapshot-metric', 'auc', '--snapshot-below', '1.5'],
      /--snapshot-below "1.5" is not a number in \[0, 1\]/,
    ],
    [
      ['--snapshot-version', '1', '--snapshot-metric', 'auc', '--snapshot-below', '0.7', '--snapshot-min-labels', '0'],
      /--snapshot-min-labels "0"/,
    ],
    [
      [
        '--snapshot-version',
        '1',
        '--snapshot-metric',
        'auc',
        '--snapshot-below',
        '0.7',
        '--snapshot-mix-uri',
        'http://x/',
      ],
      /--snapshot-mix-uri "http:\/\/x\/" is neither s3:/,
    ],
    [
      ['--snapshot-version', '1', '--snapshot-metric', 'auc', '--snapshot-below', '0.7', '--snapshot-mix-label', 'y'],
      /--snapshot-mix-label goes with --snapshot-mix-uri/,
    ],
    [
      [
        ...['--snapshot-version', '1', '--snapshot-metric', 'auc', '--snapshot-below', '0.7'],
        ...['--snapshot-mix-uri', 'file:///d/', '--snapshot-mix-hash', 'md5:abc'],
      ],
      /--snapshot-mix-hash "md5:abc" is not sha256:<64 hex digits>/,
    ],
  ];
  for (const [flags, message] of cases) {
    const out: string[] = [];
    const code = await runEvaluate(
      ['--namespace', ns, '--service', service, '--uri', base, ...flags],
      (l) => out.push(l),
      {},
    );
    assert.is(code, 2, flags.join(' '));
    assert.match(out.join('\n'), message);
  }
});

test.run();
