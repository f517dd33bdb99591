// Batch mode of the predictor image (`main.js batch`), run by the CronJob of an InferenceService spec.batch entry:
// one run, its summary written to the termination message (LOOPLINE_RESULT_PATH) for the operator, exit 0 when
// the output was committed and 1 when nothing was written. The environment is the predictor's MODEL_* and
// object storage variables plus operator/api/batch-run.ts's BATCH_ENV.
import { writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import {
  BATCH_ENV,
  MAX_SUMMARY_BYTES,
  type BatchRunConfig,
  type BatchRunSummary,
} from '../../../operator/api/batch-run.ts';
import { s3ClientFromEnv } from '../../../operator/api/object-storage.ts';
import { configFromEnv } from '../config.ts';
import { runBatch } from './run.ts';

type Env = Record<string, string | undefined>;

function batchConfig(env: Env): BatchRunConfig {
  const text = env[BATCH_ENV.config];
  if (!text) throw new Error(`${BATCH_ENV.config} is required (the operator sets it from spec.batch)`);
  try {
    return JSON.parse(text) as BatchRunConfig;
  } catch (error) {
    throw new Error(`${BATCH_ENV.config} is not JSON: ${(error as Error).message}`);
  }
}

/** The summary, its error text shortened where it would not fit a termination message. */
function summaryText(summary: BatchRunSummary): string {
  const text = JSON.stringify(summary);
  if (Buffer.byteLength(text) <= MAX_SUMMARY_BYTES || !summary.error) return text;
  return JSON.stringify({ ...summary, error: `${summary.error.slice(0, MAX_SUMMARY_BYTES / 2)}…` });
}

export async function batchMain(env: Env, log: Logger): Promise<number> {
  const started = new Date();
  let summary: BatchRunSummary;
  let version: number | undefined;
  try {
    const model = configFromEnv(env).model;
    version = Number(model.version);
    summary = await runBatch({
      model,
      config: batchConfig(env),
      run: env[BATCH_ENV.run] || `run-${started.getTime()}`,
      s3: s3ClientFromEnv(env),
      databaseUrl: env[BATCH_ENV.databaseUrl],
      intraOpThreads: Number(env.ORT_INTRA_OP_THREADS) || 1,
      log,
    });
  } catch (error) {
    const finished = new Date();
    const message = (error as Error).message ?? String(error);
    log.error({ err: error }, `batch run failed, nothing written: ${message}`);
    summary = {
      succeeded: false,
      ...(Number.isInteger(version) ? { version } : {}),
      rows: 0,
      written: 0,
      rejects: 0,
      durationSeconds: (finished.getTime() - started.getTime()) / 1000,
      startTime: started.toISOString(),
      completionTime: finished.toISOString(),
      error: message,
    };
  }
  const resultPath = env[BATCH_ENV.resultPath];
  if (resultPath) writeFileSync(resultPath, summaryText(summary));
  return summary.succeeded ? 0 : 1;
}
