// One batch scoring run: the predictor's model loading (artifact fetched and checked against its sha256 digest,
// signature checked against the graph) and its row validation (the /predict rules: every feature present and a
// finite FP32 number, nulls imputed from the reference profile), over every row of the input; valid rows are
// scored in chunks of batchSize and written to the output in one transaction, invalid ones go to the rejects file
// with the reason.
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Logger } from 'pino';
import { segmentOf, type BatchRunConfig, type BatchRunSummary } from '../../../operator/api/batch-run.ts';
import { parseS3Uri, storageError } from '../../../operator/api/object-storage.ts';
import type { ModelConfig } from '../config.ts';
import { imputationValue, loadReferenceProfile } from '../drift/profile.ts';
import { compileRowParser, rowsLayoutOf, type RowParser } from '../protocol/validation.ts';
import { LoadedModel } from '../runtime/model.ts';
import { InputError } from '../runtime/tensors.ts';
import { openInput, rowOf, type ColumnChunk, type Row } from './input.ts';
import { parquetSink, postgresSink, type ScoreSink } from './output.ts';

export interface BatchRunOptions {
  model: ModelConfig;
  config: BatchRunConfig;
  /** Name of this run (its Job): the rejects file is <rejects prefix><run>.ndjson. */
  run: string;
  s3: S3Client;
  /** Connection string for a postgres output. */
  databaseUrl?: string;
  intraOpThreads: number;
  log: Logger;
}

/** A reject as the rejects file has it: which row, which field, why, and the row's values. */
interface Reject {
  row: number;
  field: string;
  reason: string;
  values: Row;
}

/** Rejected rows kept for the rejects file; beyond it they are counted, not kept (an input of only bad rows must not exhaust memory). */
export const MAX_REJECTS_KEPT = 100_000;

const json = (value: unknown) => JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? v.toString() : v));

/** Runs the batch; resolves with the summary of a committed run, rejects (nothing written) on any failure. */
export async function runBatch(options: BatchRunOptions): Promise<BatchRunSummary> {
  const { config, model: source, log } = options;
  const started = new Date();
  const version = Number(source.version);
  const model = await LoadedModel.load(
    {
      name: source.name,
      version: source.version,
      uri: source.artifact.uri,
      digest: source.artifact.digest,
      signature: source.signature,
    },
    { batching: false, maxBatchSize: config.batchSize, maxWaitMs: 0, intraOpThreads: options.intraOpThreads },
  );
  try {
    const profile = source.referenceProfile
      ? await loadReferenceProfile(source.referenceProfile.uri, source.referenceProfile.digest)
      : undefined;
    const features = config.features ?? profile?.features.map((f) => f.name);
    if (!features)
      throw new Error(
        'no feature names: set spec.batch[].features to the input columns in model-input order, or register the version with a reference profile',
      );
    const profiled = features.map((name) => profile?.features.find((f) => f.name === name));
    const imputation = profiled.every((f) => f !== undefined) ? profiled.map((f) => imputationValue(f!)) : undefined;
    const layout = rowsLayoutOf(model.signature, features, imputation);
    if (typeof layout === 'string') throw new Error(`this model cannot score rows: ${layout}`);
    if (!layout.featureNames)
      throw new Error(
        `spec.batch[].features names ${features.length} columns but the model takes ${layout.features}: name exactly its input columns`,
      );
    const parseRow = compileRowParser(layout);
    const scoreSpec = model.signature.outputs[0];
    const F = layout.features;

    const wanted = [...new Set([...features, ...config.columns])];
    const input = await openInput(options.s3, config.input, wanted, features);
    const stamp = { version, scoredAt: started };
    const sink: ScoreSink =
      'postgres' in config.output
        ? await postgresSink(requireUrl(options.databaseUrl), config.output.postgres.table, config.columns, stamp)
        : parquetSink(options.s3, config.output.uri, config.columns, stamp);

    let rows = 0;
    let written = 0;
    const rejects: Reject[] = [];
    let rejected = 0;
    let rejectsUri: string | undefined;
    try {
      const raw = new Float32Array(config.batchSize * F);
      const filled = new Float32Array(config.batchSize * F);
      // One row's model inputs, reused: the parser reads them at once, and a million arrays are GC work.
      const cells = new Array<unknown>(F);
      const rowIndex = new Int32Array(config.batchSize);
      for await (const chunk of input.chunks(config.batchSize)) {
        const featureColumns = features.map((name) => chunk.columns[name]);
        let valid = 0;
        for (let i = 0; i < chunk.rows; i++) {
          const index = rows++;
          for (let j = 0; j < F; j++) {
            const value = featureColumns[j][i];
            // Parquet INT64 columns (pandas' default for integers) decode to bigint.
            cells[j] = typeof value === 'bigint' ? Number(value) : value;
          }
          try {
            parseRow(cells, raw, filled, valid * F, `row ${index}`);
          } catch (error) {
            if (!(error instanceof InputError)) throw error;
            if (rejected++ < MAX_REJECTS_KEPT) rejects.push(rejectOf(chunk, i, index, features, parseRow));
            continue;
          }
          rowIndex[valid++] = i;
        }
        if (valid === 0) continue;
        const outputs = await model.infer(
          { [layout.input]: { datatype: 'FP32', shape: [valid, F], data: filled.subarray(0, valid * F) } },
          valid,
        );
        const scores = outputs[scoreSpec.name].data as Float32Array;
        if (scores.length !== valid)
          throw new Error(
            `the model's first output "${scoreSpec.name}" has ${scores.length / valid} values per row; batch scoring takes a score output of shape [-1, 1]`,
          );
        const segments = new Array<string | null>(valid);
        for (let i = 0; i < valid; i++) segments[i] = segmentOf(config.segments, scores[i]);
        await sink.write({
          carried: config.columns.map((c) => chunk.columns[c]),
          rowIndex,
          scores,
          segments,
          count: valid,
        });
        written += valid;
      }
      // Before the commit: a run whose rejects cannot be kept commits nothing.
      rejectsUri = rejects.length
        ? await putRejects(options.s3, `${config.rejects}${options.run}.ndjson`, rejects)
        : undefined;
      await sink.commit();
    } catch (error) {
      await sink.abort();
      throw error;
    }
    const finished = new Date();
    const summary: BatchRunSummary = {
      succeeded: true,
      version,
      rows,
      written,
      rejects: rejected,
      ...(rejectsUri ? { rejectsUri } : {}),
      durationSeconds: Math.round(finished.getTime() - started.getTime()) / 1000,
      startTime: started.toISOString(),
      completionTime: finished.toISOString(),
    };
    log.info({ batch: config.name, run: options.run, ...summary }, 'batch run committed');
    return summary;
  } finally {
    await model.retire();
  }
}

/**
 * The reject record of chunk row `i`: the row by column name, and the reason as /predict would give it for that
 * row sent by name (`row 17.income: ...`), which the parser says when given the row as an object.
 */
function rejectOf(chunk: ColumnChunk, i: number, index: number, features: string[], parseRow: RowParser): Reject {
  const values = rowOf(chunk, i);
  const byName: Row = {};
  for (const name of features) byName[name] = typeof values[name] === 'bigint' ? Number(values[name]) : values[name];
  // Scratch buffers: the chunk's own hold the rows parsed so far.
  const scratch = new Float32Array(features.length);
  try {
    parseRow(byName, scratch, new Float32Array(features.length), 0, `row ${index}`);
  } catch (error) {
    if (error instanceof InputError)
      return { row: index, field: error.field.replace(/^row \d+\.?/, ''), reason: error.message, values };
    throw error;
  }
  throw new Error(`row ${index} failed validation in input-column order but not by name`);
}

function requireUrl(url: string | undefined): string {
  if (!url)
    throw new Error(
      'DATABASE_URL is empty: put the connection string in the Secret spec.batch[].output.postgres.connectionSecret names',
    );
  return url;
}

async function putRejects(s3: S3Client, uri: string, rejects: Reject[]): Promise<string> {
  const { bucket, key } = parseS3Uri(uri);
  const body = rejects.map((r) => json(r)).join('\n') + '\n';
  try {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/x-ndjson' }));
  } catch (error) {
    throw storageError(uri, 'PUT', error);
  }
  return uri;
}
