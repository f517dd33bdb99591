// The contract between the operator and a batch scoring pod (the predictor image run as `main.js batch`): the
// environment the operator sets on the pod and the summary the pod leaves in its termination message, which the
// operator reads when the Job finishes. One module, so both sides spell every name the same way.
export const BATCH_ENV = {
  /** JSON BatchRunConfig. */
  config: 'BATCH_CONFIG',
  /** The PostgreSQL connection string, from the Secret spec.batch[].output.postgres.connectionSecret names. */
  databaseUrl: 'DATABASE_URL',
  /** Name of the run (its Job), for the rejects file's name. */
  run: 'BATCH_RUN',
  /** Where the summary goes: the container's termination message path. */
  resultPath: 'LOOPLINE_RESULT_PATH',
} as const;

/** The argument that starts the predictor image in batch mode. */
export const BATCH_MODE_ARG = 'batch';

/** A score band (spec.batch[].segments[]); kept apart from types.ts so the predictor image needs only this file. */
export interface ScoreSegment {
  name: string;
  minScore: number;
}

/** Columns every output row has besides the carried ones, in this order. */
export const SCORE_COLUMNS = ['score', 'segment', 'model_version', 'scored_at'] as const;

export interface BatchRunConfig {
  /** The spec.batch entry's name. */
  name: string;
  input: { uri: string; format: 'parquet' | 'csv' };
  /** Input columns fed to the model in input-tensor order; unset: the reference profile's feature names. */
  features?: string[];
  /** Input columns copied to the output. */
  columns: string[];
  segments: ScoreSegment[];
  output: { uri: string } | { postgres: { table: string } };
  /** s3:// prefix of the rejects files. */
  rejects: string;
  batchSize: number;
}

/** What a finished run reports (the termination message, at most 4 KiB). */
export interface BatchRunSummary {
  succeeded: boolean;
  /** The model version scored with. */
  version?: number;
  rows: number;
  written: number;
  rejects: number;
  rejectsUri?: string;
  durationSeconds: number;
  startTime: string;
  completionTime: string;
  /** Why a failed run failed. */
  error?: string;
}

export const MAX_SUMMARY_BYTES = 4096;

/** The summary a pod left, or why it cannot be read. */
export function parseBatchSummary(text: string | undefined): BatchRunSummary | string {
  if (!text) return 'the batch pod left no summary in its termination message';
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `the batch pod's termination message is not JSON: ${(error as Error).message}`;
  }
  const summary = value as Partial<BatchRunSummary>;
  const counts = ['rows', 'written', 'rejects'] as const;
  if (
    typeof summary !== 'object' ||
    summary === null ||
    typeof summary.succeeded !== 'boolean' ||
    counts.some((c) => !Number.isInteger(summary[c]) || summary[c]! < 0)
  ) {
    return "the batch pod's termination message is not a batch run summary (succeeded, rows, written, rejects)";
  }
  return summary as BatchRunSummary;
}

/** The input's format: as given, else from the URI's extension. */
export function inputFormat(input: { uri: string; format?: 'parquet' | 'csv' }): 'parquet' | 'csv' {
  return input.format ?? (input.uri.endsWith('.csv') ? 'csv' : 'parquet');
}

/** The rejects prefix: as given, else next to the input. */
export function rejectsPrefix(batch: { input: { uri: string }; rejects?: string }): string {
  const prefix = batch.rejects ?? `${batch.input.uri}.rejects/`;
  return prefix.endsWith('/') ? prefix : `${prefix}/`;
}

/** The segment a score falls in: the band with the greatest minScore at or below it (segments ascending). */
export function segmentOf(segments: readonly ScoreSegment[], score: number): string | null {
  let segment: string | null = null;
  for (const band of segments) {
    if (score >= band.minScore) segment = band.name;
    else break;
  }
  return segment;
}
