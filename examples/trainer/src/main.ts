// Loopline's example trainer (image loopline/example-trainer): trains a credit-risk logistic
// regression, writes model.onnx and profile.json to the output location (file:// or s3://) and the
// training result to the termination message path. See examples/trainer/README.md for the environment contract.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { setImmediate, setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { parseFailures, readConfig, type FailureMode } from './config.ts';
import { generateCreditRisk, readCreditRiskCsv, shardOf, splitRows } from './dataset.ts';
import { accuracy, auc, logLoss } from './evaluation.ts';
import {
  impute,
  imputationValues,
  logisticRegressionEpochs,
  predictProbabilities,
  type LogisticModel,
} from './logistic.ts';
import { buildLogisticRegressionModel } from './onnx.ts';
import { buildReferenceProfile } from './profile.ts';
import { ProgressReporter } from './progress.ts';
import { assertValidReferenceProfile, serializeResult, type TrainingResult } from './result.ts';
import { writeArtifact } from './storage.ts';

const INPUT_NAME = 'input';
const OUTPUT_NAME = 'probability';
const EPOCH_LOG_BATCHES = 10;
/** Longest the trainer waits, after its last epoch, for its last progress report to go out. */
const PROGRESS_FLUSH_MS = 2000;

// Synchronous so the log lines and the final result line reach stdout in order before exit.
const log = pino({ base: { component: 'example-trainer' } }, pino.destination({ dest: 1, sync: true }));

function sha256(bytes: Uint8Array): string {
  return 'sha256:' + createHash('sha256').update(bytes).digest('hex');
}

function writeResult(resultPath: string, text: string): void {
  mkdirSync(dirname(resultPath), { recursive: true });
  writeFileSync(resultPath, text);
  writeSync(1, text + '\n');
}

async function applyEarlyFailures(failures: FailureMode[]): Promise<void> {
  for (const failure of failures) {
    if (failure.kind === 'sleep') {
      log.info({ seconds: failure.seconds }, 'LOOPLINE_FAIL: sleeping before training');
      await sleep(failure.seconds * 1000);
    } else if (failure.kind === 'crash') {
      log.error('LOOPLINE_FAIL=crash: exiting with code 1');
      process.exit(1);
    }
  }
}

/**
 * Gradient descent one epoch at a time, giving the event loop a turn after each epoch so progress reports
 * go out while training runs; `epochDelayMs` slows each epoch down (demos and tests that watch progress).
 */
async function train(
  x: number[][],
  y: number[],
  hp: { learning_rate: number; epochs: number; l2: number },
  epochDelayMs: number,
  onEpoch: (epoch: number, loss: number, elapsedMs: number) => void,
): Promise<LogisticModel> {
  const started = performance.now();
  const epochs = logisticRegressionEpochs(x, y, { learningRate: hp.learning_rate, epochs: hp.epochs, l2: hp.l2 });
  for (;;) {
    const step = epochs.next();
    if (step.done) return step.value;
    onEpoch(step.value.epoch, step.value.loss, performance.now() - started);
    await (epochDelayMs > 0 ? sleep(epochDelayMs) : setImmediate());
  }
}

async function main(): Promise<void> {
  const failures = parseFailures(process.env.LOOPLINE_FAIL);
  await applyEarlyFailures(failures);
  const config = readConfig(process.env, process.cwd());
  const hp = config.hyperparameters;
  const { rank, worldSize } = config;
  log.info({ hyperparameters: hp, rank, worldSize, output: config.outputUri }, 'starting training');
  if (config.ignoredHyperparameters.length > 0) {
    log.warn({ ignored: config.ignoredHyperparameters }, 'ignoring hyperparameters this trainer does not know');
  }

  const data = config.datasetUri
    ? await readCreditRiskCsv(config.datasetUri, config.datasetHash)
    : generateCreditRisk({ rows: hp.rows, seed: hp.seed, shift: hp.shift });
  const split = splitRows(data.x.length, hp.holdout_fraction, hp.seed);
  const trainRows = shardOf(split.train, rank, worldSize);
  log.info(
    {
      source: config.datasetUri ?? 'generated',
      ...(config.datasetHash ? { verified: config.datasetHash } : {}),
      rows: data.x.length,
      positives: data.y.reduce((a, b) => a + b, 0),
      trainRows: trainRows.length,
      holdoutRows: split.holdout.length,
    },
    'dataset ready',
  );

  const rawTrainX = trainRows.map((i) => data.x[i]);
  const fill = imputationValues(data.features, rawTrainX);
  const trainX = impute(rawTrainX, fill);
  const trainY = trainRows.map((i) => data.y[i]);
  const logEvery = Math.max(1, Math.ceil(hp.epochs / EPOCH_LOG_BATCHES));
  // Rank 0 speaks for the group, as it writes the result.
  const progress = rank === 0 ? ProgressReporter.fromEnv(process.env, log) : undefined;
  const model = await train(trainX, trainY, hp, config.epochDelayMs, (epoch, loss, elapsedMs) => {
    if (epoch % logEvery !== 0 && epoch !== hp.epochs) return;
    log.info({ epoch, epochs: hp.epochs, loss, rank }, 'epoch');
    progress?.report({ epoch, totalEpochs: hp.epochs, loss, eta: ((hp.epochs - epoch) * elapsedMs) / epoch / 1000 });
  });
  await progress?.flush(PROGRESS_FLUSH_MS);
  progress?.close();

  if (rank !== 0) {
    log.info({ rank, worldSize }, 'shard trained; rank 0 writes the result');
    return;
  }

  const holdoutX = impute(
    split.holdout.map((i) => data.x[i]),
    fill,
  );
  const holdoutY = split.holdout.map((i) => data.y[i]);
  const probabilities = predictProbabilities(model, holdoutX);
  const metrics = {
    auc: auc(holdoutY, probabilities),
    accuracy: accuracy(holdoutY, probabilities),
    logloss: logLoss(holdoutY, probabilities),
  };
  log.info({ metrics }, 'evaluated on held-out rows');

  const modelBytes = buildLogisticRegressionModel({ ...model, inputName: INPUT_NAME, outputName: OUTPUT_NAME });
  const profile = buildReferenceProfile(data.features, rawTrainX, hp.seed);
  assertValidReferenceProfile(profile);
  const profileBytes = Buffer.from(JSON.stringify(profile));
  const modelUri = await writeArtifact(config.outputUri, 'model.onnx', modelBytes);
  const profileUri = await writeArtifact(config.outputUri, 'profile.json', profileBytes);
  if (process.env.LOOPLINE_PREDICTIONS_PATH) {
    // For tests and debugging: the exact held-out inputs and what this trainer predicted for them.
    writeFileSync(
      process.env.LOOPLINE_PREDICTIONS_PATH,
      JSON.stringify({ features: data.features.map((f) => f.name), x: holdoutX, y: holdoutY, probabilities }),
    );
  }

  const features = data.features.length;
  const result: TrainingResult = {
    artifact: { uri: modelUri, digest: sha256(modelBytes), format: 'onnx' },
    metrics,
    signature: {
      inputs: [{ name: INPUT_NAME, datatype: 'FP32', shape: [-1, features] }],
      outputs: [{ name: OUTPUT_NAME, datatype: 'FP32', shape: [-1, 1] }],
    },
    referenceProfile: { uri: profileUri, digest: sha256(profileBytes) },
    inputExample: holdoutX.slice(0, 3),
  };
  log.info({ artifact: result.artifact, referenceProfile: result.referenceProfile }, 'artifacts written');

  if (failures.some((f) => f.kind === 'bad-result')) {
    log.warn('LOOPLINE_FAIL=bad-result: writing a malformed result');
    writeResult(config.resultPath, JSON.stringify(result).slice(0, 40));
    return;
  }
  if (failures.some((f) => f.kind === 'no-digest')) {
    log.warn('LOOPLINE_FAIL=no-digest: writing a result without the artifact digest');
    const { digest: _omitted, ...artifact } = result.artifact;
    writeResult(config.resultPath, JSON.stringify({ ...result, artifact }));
    return;
  }
  writeResult(config.resultPath, serializeResult(result));
}

main().catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  log.error({ err }, 'training failed');
  // Kubernetes shows the termination message in the pod status: say what went wrong there too.
  try {
    const resultPath = process.env.LOOPLINE_RESULT_PATH || '/dev/termination-log';
    mkdirSync(dirname(resultPath), { recursive: true });
    writeFileSync(resultPath, `training failed: ${message}`.slice(0, 4096));
  } catch {
    // The log line above already carries the error.
  }
  process.exit(1);
});
