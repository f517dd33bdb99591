// One rule for what a data set URI names (operator/api/dataset-parts.ts): the example trainer reads a TrainingJob's
// data set by it, and the evaluator mixes a version's training data into a retrain snapshot by it, so both take the
// same files in the same order and check the same hash.
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { generateCreditRisk, readCreditRiskCsv, toCsv } from '../../../examples/trainer/src/dataset.ts';
import { readDataParts } from '../../../examples/trainer/src/storage.ts';
import { trainingDataFiles } from '../../quality/evaluate.ts';
import { datasetHash, datasetParts, namesParts } from '../dataset-parts.ts';

let root: string;
let dir: string;

test.before(() => {
  root = mkdtempSync(join(tmpdir(), 'loopline-dataset-parts-'));
  dir = join(root, 'credit');
  mkdirSync(join(dir, 'date=2026-12-02'), { recursive: true });
  const csv = (seed: number) => toCsv(generateCreditRisk({ rows: 20, seed, shift: 0 }));
  writeFileSync(join(dir, 'date=2026-12-01.csv'), csv(1));
  writeFileSync(join(dir, 'EXPORT.CSV'), csv(2));
  writeFileSync(join(dir, 'date=2026-12-02', 'part-0.csv'), csv(3));
  writeFileSync(join(dir, 'README.txt'), 'not data');
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test('the parts of a prefix are its *.csv keys of any case and depth, in code-unit order', () => {
  assert.equal(datasetParts(['b.csv', 'a/z.CSV', 'notes.txt', 'A.csv', 'dir.csv/', 'a.csv.bak']), [
    'A.csv',
    'a/z.CSV',
    'b.csv',
  ]);
});

test('an s3:// URI names parts when it ends in "/" or is a bucket; a file:// one when it is a directory', async () => {
  assert.is(await namesParts('s3://data/credit/'), true);
  assert.is(await namesParts('s3://data'), true);
  assert.is(await namesParts('s3://data/credit'), false);
  assert.is(await namesParts('s3://data/credit.csv'), false);
  assert.is(await namesParts(pathToFileURL(dir).href), true);
  assert.is(await namesParts(pathToFileURL(join(dir, 'EXPORT.CSV')).href), false);
  await namesParts('http://x/data.csv').then(
    () => assert.unreachable('an http:// data set is refused'),
    (error: Error) => assert.match(error.message, /only file:\/\/ and s3:\/\/ are supported/),
  );
});

test('the hash is the sha256 over the parts in order: of one part, its own sha256', () => {
  const a = new TextEncoder().encode('x,y\n1,2\n');
  const b = new TextEncoder().encode('x,y\n3,4\n');
  assert.is(datasetHash([a]), `sha256:${createHash('sha256').update(a).digest('hex')}`);
  assert.is(datasetHash([a, b]), `sha256:${createHash('sha256').update(a).update(b).digest('hex')}`);
  assert.is.not(datasetHash([a, b]), datasetHash([b, a]));
});

test('the trainer and the evaluator take the same files of a directory, in the same order, under one hash', async () => {
  const uri = `${pathToFileURL(dir).href}/`;
  const trainer = (await readDataParts(uri)).map((part) => part.uri);
  const expected = ['EXPORT.CSV', 'date=2026-12-01.csv', 'date=2026-12-02/part-0.csv'].map(
    (key) => pathToFileURL(join(dir, key)).href,
  );
  assert.equal(trainer, expected);
  const evaluator = await trainingDataFiles({ uri, labelColumn: 'defaulted' }, join(root, 'download'), {});
  assert.equal(
    evaluator.map((path) => pathToFileURL(path).href),
    expected,
  );
  const hash = datasetHash(evaluator.map((path) => readFileSync(path)));
  // Each accepts the other's hash of the same data.
  const read = await readCreditRiskCsv(uri, hash);
  assert.is(read.y.length, 60);
  await trainingDataFiles({ uri, labelColumn: 'defaulted', hash }, join(root, 'download'), {});
});

test('a URI naming one file is that file alone, for the trainer and the evaluator', async () => {
  const uri = pathToFileURL(join(dir, 'date=2026-12-01.csv')).href;
  assert.equal(
    (await readDataParts(uri)).map((part) => part.uri),
    [uri],
  );
  const files = await trainingDataFiles({ uri, labelColumn: 'defaulted' }, join(root, 'download'), {});
  assert.equal(
    files.map((path) => pathToFileURL(path).href),
    [uri],
  );
});

test.run();
