// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ort from 'onnxruntime-node';
import { generateCreditRisk, toCsv } from '../src/dataset.ts';
import { logLines, profileSchemaErrors, resultSchemaErrors, runTrainer, type TrainerRun } from './run-trainer.ts';

const runs: TrainerRun[] = [];
async function run(env: Record<string, string> = {}): Promise<TrainerRun> {
  const r = await runTrainer(env);
  runs.push(r);
  return r;
}

function sha256(path: string): string {
  return 'sha256:' + createHash('sha256').update(readFileSync(path)).digest('hex');
}

let defaultRun: TrainerRun;
let predictionsPath: string;

test.before(async () => {
  predictionsPath = join(tmpdir(), `loopline-trainer-predictions-${process.pid}.json`);
  defaultRun = await run({ LOOPLINE_PREDICTIONS_PATH: predictionsPath });
});

test.after(() => {
  for (const r of runs) rmSync(r.dir, { recursive: true, force: true });
  rmSync(predictionsPath, { force: true });
});

test('default run succeeds and writes a schema-valid result of at most 4 KiB', () => {
  const r = defaultRun;
  assert.is(r.code, 0, r.stderr + r.stdout);
  assert.ok(r.resultText, 'no termination message written');
  const result = JSON.parse(r.resultText!);
  assert.is(resultSchemaErrors(result), undefined);
  assert.ok(Buffer.byteLength(r.resultText!) <= 4096);
  assert.is(r.lastStdoutLine, r.resultText, 'the result is also the last stdout line');
  assert.is(r.stderr, '', 'nothing on stderr');
});

test('metrics are finite and auc on the default data is above 0.75', () => {
  const { metrics } = JSON.parse(defaultRun.resultText!);
  for (const name of ['auc', 'accuracy', 'logloss'])
    assert.ok(Number.isFinite(metrics[name]), `${name}=${metrics[name]}`);
  assert.ok(metrics.auc > 0.75, `auc=${metrics.auc}`);
  assert.ok(metrics.accuracy > 0.5 && metrics.accuracy <= 1);
  assert.ok(metrics.logloss > 0 && metrics.logloss < Math.log(2), `logloss=${metrics.logloss} beats a coin`);
});

test('artifact and profile digests are the sha256 of the files on disk', () => {
  const { artifact, referenceProfile } = JSON.parse(defaultRun.resultText!);
  const modelPath = fileURLToPath(artifact.uri);
  const profilePath = fileURLToPath(referenceProfile.uri);
  assert.is(modelPath, join(defaultRun.outputDir, 'model.onnx'));
  assert.is(profilePath, join(defaultRun.outputDir, 'profile.json'));
  assert.is(artifact.digest, sha256(modelPath));
  assert.is(referenceProfile.digest, sha256(profilePath));
});

test('reference profile validates against its schema and describes the training rows', () => {
  const profile = JSON.parse(readFileSync(join(defaultRun.outputDir, 'profile.json'), 'utf8'));
  assert.is(profileSchemaErrors(profile), undefined);
  assert.is(profile.rows, 3200);
  assert.equal(
    profile.features.map((f: { name: string; type: string }) => `${f.name}:${f.type}`),
    ['income:numeric', 'debt_ratio:numeric', 'age:numeric', 'utilization:numeric', 'region:categorical'],
  );
  for (const f of profile.features) {
    assert.is(f.missingRate, 0);
    if (f.type === 'numeric') {
      assert.is(f.binFrequencies.length, f.binEdges.length + 1);
      assert.ok(Math.abs(f.binFrequencies.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-9);
      assert.ok(
        f.binEdges.every((e: number, i: number) => i === 0 || e > f.binEdges[i - 1]),
        'edges ascend',
      );
      assert.is(f.sample.length, 2000);
      assert.ok(f.quantiles['0.5'] >= f.quantiles['0.25'] && f.quantiles['0.75'] >= f.quantiles['0.5']);
    } else {
      assert.equal(Object.keys(f.frequencies).sort(), ['0', '1', '2', '3']);
    }
  }
});

test("ONNX model in onnxruntime reproduces the trainer's held-out predictions and its auc", async () => {
  const { x, y, probabilities } = JSON.parse(readFileSync(predictionsPath, 'utf8'));
  const result = JSON.parse(defaultRun.resultText!);
  const session = await ort.InferenceSession.create(join(defaultRun.outputDir, 'model.onnx'));
  assert.equal(session.inputNames, [result.signature.inputs[0].name]);
  assert.equal(session.outputNames, [result.signature.outputs[0].name]);
  const input = new ort.Tensor('float32', Float32Array.from(x.flat()), [x.length, x[0].length]);
  const out = (await session.run({ input })).probability;
  assert.equal(out.dims, [x.length, 1]);
  const onnxP = out.data as Float32Array;
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(onnxP[i] - probabilities[i]));
  assert.ok(worst < 1e-5, `largest difference ${worst}`);
  // Independent auc: share of (positive, negative) pairs ranked right, from the ONNX outputs.
  let wins = 0;
  let pairs = 0;
  for (let i = 0; i < y.length; i++) {
    if (y[i] !== 1) continue;
    for (let j = 0; j < y.length; j++) {
      if (y[j] !== 0) continue;
      pairs++;
      wins += onnxP[i] > onnxP[j] ? 1 : onnxP[i] === onnxP[j] ? 0.5 : 0;
    }
  }
  assert.ok(Math.abs(wins / pairs - result.metrics.auc) < 1e-3, `onnx auc ${wins / pairs} vs ${result.metrics.auc}`);
  assert.equal(result.inputExample, x.slice(0, 3));
});

test('per-epoch progress is logged as structured JSON', () => {
  const epochs = logLines(defaultRun.stdout).filter((l) => l.msg === 'epoch');
  assert.equal(
    epochs.map((l) => l.epoch),
    [20, 40, 60, 80, 100, 120, 140, 160, 180, 200],
  );
  assert.ok(epochs.every((l) => typeof l.loss === 'number' && l.level === 30));
  assert.ok((epochs[9].loss as number) < (epochs[0].loss as number), 'loss falls');
});

test('same seed gives byte-identical artifacts; another seed gives a different model', async () => {
  const again = await run();
  const other = await run({ LOOPLINE_HYPERPARAMETERS: JSON.stringify({ seed: '7' }) });
  const a = JSON.parse(defaultRun.resultText!);
  const b = JSON.parse(again.resultText!);
  const c = JSON.parse(other.resultText!);
  assert.is(b.artifact.digest, a.artifact.digest);
  assert.is(b.referenceProfile.digest, a.referenceProfile.digest);
  assert.equal(b.metrics, a.metrics);
  assert.is.not(c.artifact.digest, a.artifact.digest);
  assert.ok(c.metrics.auc > 0.75);
});

test('hyperparameters from LOOPLINE_HYPERPARAMETERS and HP_* change the run; shift moves the data', async () => {
  const r = await run({
    LOOPLINE_HYPERPARAMETERS: JSON.stringify({ epochs: '30', rows: '1000', unknown_knob: '1' }),
    HP_SHIFT: '1.5',
    HP_EPOCHS: '999', // the JSON object wins over HP_*
  });
  assert.is(r.code, 0, r.stderr + r.stdout);
  const logs = logLines(r.stdout);
  assert.is(logs.filter((l) => l.msg === 'epoch').at(-1)?.epoch, 30);
  assert.equal(logs.find((l) => l.msg?.toString().startsWith('ignoring'))?.ignored, ['unknown_knob']);
  const shifted = JSON.parse(readFileSync(join(r.outputDir, 'profile.json'), 'utf8'));
  const base = JSON.parse(readFileSync(join(defaultRun.outputDir, 'profile.json'), 'utf8'));
  assert.is(shifted.rows, 800);
  for (const name of ['income', 'debt_ratio', 'age', 'utilization']) {
    const s = shifted.features.find((f: { name: string }) => f.name === name);
    const b = base.features.find((f: { name: string }) => f.name === name);
    // 1.5 spreads up: the new median lies beyond the old 90th percentile (1.28 spreads up).
    assert.ok(
      s.quantiles['0.5'] > b.quantiles['0.9'],
      `${name}: median ${s.quantiles['0.5']} vs old p90 ${b.quantiles['0.9']}`,
    );
  }
  assert.ok(shifted.features[4].frequencies['3'] > base.features[4].frequencies['3'] * 2, 'region 3 more common');
});

test('a CSV data set with missing cells is trained on and its missing rates profiled', async () => {
  const data = generateCreditRisk({ rows: 1500, seed: 3, shift: 0 });
  data.x.forEach((row, i) => {
    if (i % 10 === 0) row[1] = NaN; // debt_ratio missing in every 10th row
  });
  const csvPath = join(defaultRun.dir, 'credit.csv');
  writeFileSync(csvPath, toCsv(data));
  const r = await run({ LOOPLINE_DATASET_URI: pathToFileURL(csvPath).href });
  assert.is(r.code, 0, r.stderr + r.stdout);
  assert.is(resultSchemaErrors(JSON.parse(r.resultText!)), undefined);
  const profile = JSON.parse(readFileSync(join(r.outputDir, 'profile.json'), 'utf8'));
  assert.is(profile.rows, 1200);
  const debt = profile.features[1];
  assert.ok(debt.missingRate > 0.07 && debt.missingRate < 0.13, `missingRate=${debt.missingRate}`);
  assert.is(profile.features[0].missingRate, 0);
  assert.ok(JSON.parse(r.resultText!).metrics.auc > 0.7);
});

test("a dataset directory (the examples' dataset.uri) is read as every CSV file in it", async () => {
  const dir = join(defaultRun.dir, 'credit-risk-dataset');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, '2026-11-01.csv'), toCsv(generateCreditRisk({ rows: 1000, seed: 4, shift: 0 })));
  writeFileSync(join(dir, '2026-11-02.csv'), toCsv(generateCreditRisk({ rows: 500, seed: 5, shift: 0 })));
  writeFileSync(join(dir, 'README.txt'), 'not data');
  const r = await run({ LOOPLINE_DATASET_URI: `${pathToFileURL(dir).href}/` });
  assert.is(r.code, 0, r.stderr + r.stdout);
  const profile = JSON.parse(readFileSync(join(r.outputDir, 'profile.json'), 'utf8'));
  assert.is(profile.rows, 1200);
});

test("a production snapshot (label column `label`) is trained on when its bytes have spec.dataset.hash's sha256", async () => {
  const csv = toCsv(generateCreditRisk({ rows: 1000, seed: 6, shift: 0 })).replace(/^(.*),defaulted\n/, '$1,label\n');
  const path = join(defaultRun.dir, 'snapshot.csv');
  writeFileSync(path, csv);
  const hash = `sha256:${createHash('sha256').update(csv).digest('hex')}`;
  const r = await run({ LOOPLINE_DATASET_URI: pathToFileURL(path).href, LOOPLINE_DATASET_HASH: hash });
  assert.is(r.code, 0, r.stderr + r.stdout);
  const ready = logLines(r.stdout).find((l) => l.msg === 'dataset ready');
  assert.is(ready?.verified, hash);
  assert.is(ready?.rows, 1000);
});

test('a dataset whose bytes do not have spec.dataset.hash fails before training, naming both hashes', async () => {
  const csv = toCsv(generateCreditRisk({ rows: 300, seed: 7, shift: 0 }));
  const path = join(defaultRun.dir, 'changed.csv');
  writeFileSync(path, csv);
  const recorded = `sha256:${createHash('sha256').update(`${csv}1,2,3,4,0,1\n`).digest('hex')}`;
  const r = await run({ LOOPLINE_DATASET_URI: pathToFileURL(path).href, LOOPLINE_DATASET_HASH: recorded });
  assert.is(r.code, 1);
  const actual = `sha256:${createHash('sha256').update(csv).digest('hex')}`;
  assert.match(r.resultText ?? '', `has ${actual}, not the ${recorded} of spec.dataset.hash`);
  const bad = await run({ LOOPLINE_DATASET_URI: pathToFileURL(path).href, LOOPLINE_DATASET_HASH: 'sha256:abc' });
  assert.is(bad.code, 1);
  assert.match(bad.resultText ?? '', /LOOPLINE_DATASET_HASH="sha256:abc" is not sha256:<64 hex digits>/);
  const other = await run({
    LOOPLINE_DATASET_URI: pathToFileURL(path).href,
    LOOPLINE_DATASET_HASH: 'md5:abcdef0123456789',
  });
  assert.is(other.code, 0, 'a hash of another algorithm is lineage only, not checked');
});

test('invalid input fails with exit 1 and says what was wrong in the termination message', async () => {
  const r = await run({ HP_LEARNING_RATE: 'fast' });
  assert.is(r.code, 1);
  assert.match(r.resultText ?? '', /learning_rate="fast" is not a number/);
});

test.run();
