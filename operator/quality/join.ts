/**
 * Where logged predictions meet their labels: DuckDB reads the Parquet parts and label files, keeps the label
 * recorded last per request id, joins it to the window's predictions and reduces each version to the sums the
 * metrics are made of (server/src/quality/metrics.ts, QualitySums). The sums are exact or compensated (fsum),
 * the AUC's rank sum an integer, so the metrics equal a row-by-row computation while no row ever reaches
 * JavaScript: a window of millions of rows costs the engine's memory, not the heap's.
 *
 * No extension is installed or loaded at run time (Parquet, CSV and ICU are built into the Node bindings); the
 * instance refuses to try, so a missing one fails here instead of reaching the network from a pod.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { calibrationEdges, emptySums, LOG_LOSS_EPS, qualityFromSums } from '../../server/src/quality/metrics.ts';
import type { ComparisonSide, PairedSide } from '../../server/src/quality/compare.ts';
import { QUALITY_METRICS, type VersionQuality } from '../events/quality-event.ts';
import type { EvaluationSources, SourceFile } from './sources.ts';

export interface JoinOptions {
  /** Predictions answered in (startMs, endMs]; startMs null: every logged prediction. Labels recorded up to endMs. */
  startMs: number | null;
  endMs: number;
  threshold: number;
  calibrationBins?: number;
  /** DuckDB's memory_limit (e.g. `1GB`); beyond it the engine spills to tempDir. */
  memoryLimit?: string;
  threads?: number;
  tempDir?: string;
  /** Also write the window's labelled rows (snapshot.ts) to `path` as CSV, when `when` holds for the evaluation. */
  snapshot?: SnapshotRequest;
  /** Also compare a canary with stable on the predictions each answered in (sinceMs, endMs] (the rollout so far). */
  compare?: { canary: number; stable: number; sinceMs: number };
}

export interface SnapshotRequest {
  path: string;
  when: (versions: VersionQuality[]) => boolean;
  /** Also append the rows of these CSV files (the version's training data), their label in `labelColumn`. */
  mix?: { files: () => Promise<string[]>; labelColumn: string };
  /** Set once written: the rows in it. */
  rows?: number;
  /** Set once written with `mix`: of `rows`, those from the training data. */
  trainingRows?: number;
}

/** The inference log's `input_<feature>` columns, in the order the parts have them. */
const inputColumns = (columns: Set<string>) => [...columns].filter((c) => c.startsWith('input_') && c.length > 6);
const sqlName = (name: string) => `"${name.replace(/"/g, '""')}"`;

const sqlString = (text: string) => `'${text.replace(/'/g, "''")}'`;
/** A double as DuckDB reads it back bit for bit (JavaScript's shortest round-trip form, cast from text). */
const sqlDouble = (value: number) => `CAST(${sqlString(String(value))} AS DOUBLE)`;
const fileList = (files: SourceFile[]) => `[${files.map((f) => sqlString(f.path)).join(', ')}]`;

async function columnsOf(connection: DuckDBConnection, scan: string): Promise<Set<string>> {
  const reader = await connection.runAndReadAll(`DESCRIBE SELECT * FROM ${scan}`);
  return new Set(reader.getRowObjectsJS().map((row) => String(row.column_name)));
}

/** One label source as (request_id, label, recorded_ms, key, ordinal); `time` optional, LastModified standing in. */
async function labelSelect(
  connection: DuckDBConnection,
  scan: string,
  rowExpression: string,
  files: SourceFile[],
): Promise<string> {
  const columns = await columnsOf(connection, scan);
  for (const required of ['request_id', 'label']) {
    if (!columns.has(required))
      throw new Error(
        `label files lack a "${required}" column (${files.map((f) => f.key).join(', ')}): label files need request_id and label (docs/ground-truth.md)`,
      );
  }
  const time = columns.has('time') ? 'epoch_ms(TRY_CAST(l.time AS TIMESTAMPTZ))' : 'NULL';
  return `SELECT CAST(l.request_id AS VARCHAR) AS request_id, TRY_CAST(l.label AS DOUBLE) AS label,
      coalesce(${time}, o.modified_ms) AS recorded_ms, o.key AS key, ${rowExpression} AS ordinal
    FROM ${scan} l JOIN label_objects o ON o.path = l.filename`;
}

interface VersionRow {
  version: number;
  model: string;
  predictions: number;
  labelled: number;
}

export interface Evaluation {
  /** Per version: its quality over the window, ascending by version. */
  versions: VersionQuality[];
  /** With options.compare: what the canary test needs of each side (compare.ts, ComparisonSide). */
  comparison?: { canary: ComparisonSide; stable: ComparisonSide; paired: PairedDecisions };
}

/**
 * The requests both versions answered (shadow mode mirrors each to the canary; the inference log holds both
 * answers under one request id), labelled or not: how many, how many were decided differently at the threshold,
 * and each version's scores over them in 10 equal-width bins of [0, 1] (for the PSI of the two).
 */
export interface PairedDecisions {
  pairs: number;
  flipped: number;
  canaryBins: number[];
  stableBins: number[];
  /** The labelled ones, for the paired tests (compare.ts comparePaired); unset without pairs. */
  labelled?: PairedSide;
}

export const SCORE_BINS = 10;

const NO_LABELS: ComparisonSide = { count: 0, positives: 0, correct: 0, auc: null, aucVariance: null };
const noPairs = (): PairedDecisions => ({
  pairs: 0,
  flipped: 0,
  canaryBins: new Array(SCORE_BINS).fill(0),
  stableBins: new Array(SCORE_BINS).fill(0),
});

/** Per version: its quality over the window, ascending by version. */
export async function evaluateVersions(sources: EvaluationSources, options: JoinOptions): Promise<VersionQuality[]> {
  return (await evaluate(sources, options)).versions;
}

/** The window's quality per version and, with options.compare, the canary's comparison with stable. */
export async function evaluate(sources: EvaluationSources, options: JoinOptions): Promise<Evaluation> {
  if (sources.predictions.length === 0)
    return {
      versions: [],
      ...(options.compare ? { comparison: { canary: NO_LABELS, stable: NO_LABELS, paired: noPairs() } } : {}),
    };
  const edges = calibrationEdges(options.calibrationBins ?? 10);
  // Loaded here, not at the top: the operator's bundle holds this module and must not load DuckDB to reconcile.
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const instance = await DuckDBInstance.create(':memory:', {
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
    ...(options.memoryLimit ? { memory_limit: options.memoryLimit } : {}),
    ...(options.threads ? { threads: String(options.threads) } : {}),
    ...(options.tempDir ? { temp_directory: options.tempDir } : {}),
  });
  const connection = await instance.connect();
  try {
    await connection.run("SET TimeZone = 'UTC'");
    await connection.run('CREATE TABLE label_objects (path VARCHAR, key VARCHAR, modified_ms BIGINT)');
    const appender = await connection.createAppender('label_objects');
    for (const file of [...sources.labelParquet, ...sources.labelCsv]) {
      appender.appendVarchar(file.path);
      appender.appendVarchar(file.key);
      appender.appendBigInt(BigInt(Math.round(file.modifiedMs)));
      appender.endRow();
    }
    appender.closeSync();

    const labelSources: string[] = [];
    if (sources.labelParquet.length > 0) {
      const scan = `read_parquet(${fileList(sources.labelParquet)}, union_by_name = true, hive_partitioning = false, filename = true, file_row_number = true)`;
      labelSources.push(await labelSelect(connection, scan, 'l.file_row_number', sources.labelParquet));
    }
    if (sources.labelCsv.length > 0) {
      // CSV has no row-number column; the scan keeps each file's row order (preserve_insertion_order).
      const scan = `(SELECT *, row_number() OVER () AS csv_row FROM read_csv(${fileList(sources.labelCsv)}, header = true, all_varchar = true, union_by_name = true, hive_partitioning = false, filename = true))`;
      labelSources.push(await labelSelect(connection, scan, 'l.csv_row', sources.labelCsv));
    }
    // The label recorded last wins; among labels recorded at the same instant, the later object key, then the later
    // row. A window over the labels rather than arg_max in a hash aggregate: the sort spills to disk under the memory
    // limit, where the aggregate of 5M labels ran out of memory at 1 GB (bench/results/quality.md).
    await connection.run(
      labelSources.length === 0
        ? 'CREATE TABLE labels (request_id VARCHAR, label DOUBLE)'
        : `CREATE TABLE labels AS
         SELECT request_id, label FROM (${labelSources.join(' UNION ALL ')})
         WHERE request_id IS NOT NULL AND recorded_ms <= ${options.endMs}
         QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY recorded_ms DESC, key DESC, ordinal DESC) = 1`,
    );

    const predictionScan = `read_parquet(${fileList(sources.predictions)}, union_by_name = true, hive_partitioning = false)`;
    const predictionColumns = await columnsOf(connection, predictionScan);
    for (const required of ['request_id', 'time', 'model', 'version', 'score']) {
      if (!predictionColumns.has(required))
        throw new Error(
          `inference-log parts lack a "${required}" column: they are not in the layout of docs/ground-truth.md`,
        );
    }
    // The rows read reach back to the earlier of the window's start and the comparison's.
    const starts = [options.startMs, options.compare?.sinceMs ?? options.startMs];
    const earliest = starts.includes(null) ? null : Math.min(...(starts as number[]));
    const after = earliest === null ? '' : `AND epoch_ms(p.time) > ${earliest}`;
    const inputs = options.snapshot ? inputColumns(predictionColumns) : [];
    if (options.snapshot && inputs.length === 0)
      throw new Error(
        'inference-log parts have no input_<feature> columns, so no snapshot can be written for a retrain: only models with one FP32 input of shape [-1, F] log their inputs (docs/ground-truth.md)',
      );
    const carried = options.snapshot
      ? `, CAST(p.request_id AS VARCHAR) AS request_id, ${inputs.map((c) => `CAST(p.${sqlName(c)} AS DOUBLE) AS ${sqlName(c)}`).join(', ')}`
      : '';
    await connection.run(`CREATE TABLE joined AS
      SELECT CAST(p.version AS INTEGER) AS version, CAST(p.model AS VARCHAR) AS model, CAST(p.score AS DOUBLE) AS score,
        l.label AS label, epoch_ms(p.time) AS ms${options.compare && !options.snapshot ? ', CAST(p.request_id AS VARCHAR) AS request_id' : ''}${carried}
      FROM ${predictionScan} p LEFT JOIN labels l ON l.request_id = CAST(p.request_id AS VARCHAR)
      WHERE epoch_ms(p.time) <= ${options.endMs} ${after} AND p.version IS NOT NULL`);
    const inWindow = options.startMs === null || options.startMs === earliest ? '' : `AND ms > ${options.startMs}`;
    await connection.run(`CREATE TABLE labelled AS
      SELECT version, score, CAST(label AS INTEGER) AS label FROM joined
      WHERE label IN (0, 1) AND score >= 0 AND score <= 1 ${inWindow}`);

    const versions = (
      await connection.runAndReadAll(`
      SELECT version, min(model) AS model, CAST(count(*) AS DOUBLE) AS predictions, CAST(count(label) AS DOUBLE) AS labelled
      FROM joined WHERE true ${inWindow} GROUP BY version ORDER BY version`)
    ).getRowObjectsJS() as unknown as VersionRow[];

    const eps = sqlDouble(LOG_LOSS_EPS);
    const clipped = `least(greatest(score, ${eps}), 1 - ${eps})`;
    const bin = edges.length ? edges.map((edge) => `CAST(score > ${sqlDouble(edge)} AS INTEGER)`).join(' + ') : '0';
    const binRows = (
      await connection.runAndReadAll(`
      SELECT version, bin, CAST(count(*) AS DOUBLE) AS n, CAST(sum(label) AS DOUBLE) AS positives,
        CAST(sum(decided) AS DOUBLE) AS decided, CAST(sum(decided * label) AS DOUBLE) AS true_positive,
        CAST(sum(CASE WHEN decided = label THEN 1 ELSE 0 END) AS DOUBLE) AS correct,
        fsum(CASE WHEN label = 1 THEN -ln(${clipped}) ELSE -ln(1 - ${clipped}) END) AS log_loss,
        fsum((score - label) * (score - label)) AS brier, fsum(score) AS score_sum
      FROM (SELECT version, score, label, CAST(score >= ${sqlDouble(options.threshold)} AS INTEGER) AS decided, ${bin} AS bin FROM labelled)
      GROUP BY version, bin`)
    ).getRowObjectsJS() as Array<Record<string, number>>;
    // Twice each positive's mid-rank among the version's scores: 2 * (rows below its score) + (rows at it) + 1.
    const rankRows = (
      await connection.runAndReadAll(`
      WITH ties AS (SELECT version, score, count(*) AS n, sum(label) AS positives FROM labelled GROUP BY version, score),
      ranked AS (SELECT version, positives,
        2 * (sum(n) OVER (PARTITION BY version ORDER BY score ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - n) + n + 1 AS mid_rank2 FROM ties)
      SELECT version, CAST(sum(positives * mid_rank2) AS DOUBLE) AS rank_sum2 FROM ranked GROUP BY version`)
    ).getRowObjectsJS() as Array<Record<string, number>>;

    const comparison = options.compare
      ? await comparisonSides(connection, options.compare, options.threshold)
      : undefined;
    const measured = versions.map((row) => {
      const sums = emptySums(edges.length + 1);
      sums.positiveRankSum2 = rankRows.find((r) => r.version === row.version)?.rank_sum2 ?? 0;
      // Bins in ascending order, so the sums add up in the same order on every run.
      for (const b of binRows.filter((r) => r.version === row.version).sort((x, y) => x.bin! - y.bin!)) {
        sums.count += b.n!;
        sums.positives += b.positives!;
        sums.decidedPositive += b.decided!;
        sums.truePositive += b.true_positive!;
        sums.correct += b.correct!;
        sums.logLossSum += b.log_loss!;
        sums.brierSum += b.brier!;
        sums.bins[b.bin!] = { count: b.n!, positives: b.positives!, scoreSum: b.score_sum! };
      }
      const base = {
        model: row.model,
        version: row.version,
        predictions: row.predictions,
        count: sums.count,
        positives: sums.positives,
        excluded: row.labelled - sums.count,
        threshold: options.threshold,
      };
      if (sums.count === 0)
        return { ...base, ...Object.fromEntries(QUALITY_METRICS.map((m) => [m, null])) } as VersionQuality;
      const { count: _c, positives: _p, threshold: _t, ...metrics } = qualityFromSums(sums, options.threshold);
      return { ...base, ...metrics };
    });
    if (options.snapshot?.when(measured)) {
      // The rows the metrics were computed on, every version's, ordered by request id: the same window and labels
      // always give the same bytes, so the same sha256.
      const features = inputs.map((c) => `${sqlName(c)} AS ${sqlName(c.slice('input_'.length))}`).join(', ');
      const production = `SELECT ${features}, CAST(label AS INTEGER) AS label FROM joined
        WHERE label IN (0, 1) AND score >= 0 AND score <= 1 ${inWindow} ORDER BY request_id, version`;
      let select = production;
      const mix = options.snapshot.mix;
      if (mix) {
        // The training rows after the production ones, in file and row order; their columns by name, so a
        // dataset without a logged feature or the label fails here, naming what it lacks.
        const files = await mix.files();
        const names = inputs.map((c) => c.slice('input_'.length));
        await connection.run(`CREATE TABLE training AS SELECT * FROM read_csv([${files.map(sqlString).join(', ')}],
          header = true, union_by_name = true, all_varchar = true)`);
        const columns = (await connection.runAndReadAll('DESCRIBE training'))
          .getRowObjectsJS()
          .map((r) => String(r.column_name));
        const missing = [...names, mix.labelColumn].filter((name) => !columns.includes(name));
        if (missing.length)
          throw new Error(
            `the training data has no column ${missing.join(', ')} (it has ${columns.join(', ')}): trainingData needs every logged feature and its labelColumn`,
          );
        const bad = await connection.runAndReadAll(
          `SELECT CAST(count(*) AS DOUBLE) AS n FROM training WHERE ${sqlName(mix.labelColumn)} IS NULL OR ${sqlName(mix.labelColumn)} NOT IN ('0', '1')`,
        );
        if (Number(bad.getRowObjectsJS()[0]!.n) > 0)
          throw new Error(`the training data's label column ${mix.labelColumn} holds values other than 0 and 1`);
        const trainingFeatures = names
          .map((n) => `TRY_CAST(NULLIF(${sqlName(n)}, '') AS DOUBLE) AS ${sqlName(n)}`)
          .join(', ');
        // Sort keys make the bytes, so the sha256, the same for the same window, labels and training data.
        select = `SELECT ${names.map(sqlName).join(', ')}, label FROM (
          SELECT ${features}, CAST(label AS INTEGER) AS label, 0 AS src, request_id AS rid, version AS seq FROM joined
            WHERE label IN (0, 1) AND score >= 0 AND score <= 1 ${inWindow}
          UNION ALL
          SELECT ${trainingFeatures}, CAST(${sqlName(mix.labelColumn)} AS INTEGER) AS label, 1 AS src, '' AS rid, seq
            FROM (SELECT *, row_number() OVER () AS seq FROM training)
        ) ORDER BY src, rid, seq`;
        const counted = await connection.runAndReadAll('SELECT CAST(count(*) AS DOUBLE) AS n FROM training');
        options.snapshot.trainingRows = Number(counted.getRowObjectsJS()[0]!.n);
      }
      await connection.run(`COPY (${select}) TO ${sqlString(options.snapshot.path)} (FORMAT csv, HEADER true)`);
      const counted = await connection.runAndReadAll(`SELECT CAST(count(*) AS DOUBLE) AS n FROM (${select})`);
      options.snapshot.rows = Number(counted.getRowObjectsJS()[0]!.n);
    }
    return { versions: measured, ...(comparison ? { comparison } : {}) };
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/**
 * The labelled requests both versions answered (table `pairs`), for the paired tests: per request each version's DeLong
 * structural component (scored against that version's own scores of the shared requests, ties half), and whether
 * each decided right; the variance of the two differences over the requests. The same numbers as compare.ts's
 * pairedSide.
 */
async function pairedLabelled(connection: DuckDBConnection, thresholdSql: string): Promise<PairedSide> {
  // Per distinct score of one version: the negatives below it and the positives above it, ties counted half.
  const placed = (column: string) => `SELECT ${column} AS score,
        coalesce(sum(neg) OVER (ORDER BY ${column} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) + neg / 2 AS below,
        coalesce(sum(pos) OVER (ORDER BY ${column} ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING), 0) + pos / 2 AS above
      FROM (SELECT ${column}, CAST(sum(label) AS DOUBLE) AS pos, CAST(count(*) - sum(label) AS DOUBLE) AS neg FROM p GROUP BY ${column})`;
  const [row] = (
    await connection.runAndReadAll(`
    WITH p AS (SELECT cs, ss, CAST(label AS INTEGER) AS label FROM pairs WHERE label IN (0, 1)),
      k AS (SELECT CAST(sum(label) AS DOUBLE) AS m, CAST(count(*) - sum(label) AS DOUBLE) AS n FROM p),
      pc AS (${placed('cs')}), ps AS (${placed('ss')}),
      v AS (SELECT p.label,
          CASE WHEN p.label = 1 THEN pc.below / k.n ELSE pc.above / k.m END AS vc,
          CASE WHEN p.label = 1 THEN ps.below / k.n ELSE ps.above / k.m END AS vs,
          CAST(CAST(p.cs >= ${thresholdSql} AS INTEGER) = p.label AS INTEGER) AS rc,
          CAST(CAST(p.ss >= ${thresholdSql} AS INTEGER) = p.label AS INTEGER) AS rs
        FROM p JOIN pc ON pc.score = p.cs JOIN ps ON ps.score = p.ss, k)
    SELECT CAST(count(*) AS DOUBLE) AS count, CAST(coalesce(sum(rc), 0) AS DOUBLE) AS canary_correct,
      CAST(coalesce(sum(rs), 0) AS DOUBLE) AS stable_correct, var_samp(rc - rs) AS accuracy_variance,
      min(k.m) AS m, min(k.n) AS n,
      fsum(CASE WHEN label = 1 THEN vc END) / min(k.m) AS canary_auc, fsum(CASE WHEN label = 1 THEN vs END) / min(k.m) AS stable_auc,
      var_samp(CASE WHEN label = 1 THEN vc - vs END) / min(k.m) + var_samp(CASE WHEN label = 0 THEN vc - vs END) / min(k.n) AS auc_variance
    FROM v, k`)
  ).getRowObjectsJS() as Array<Record<string, number | null>>;
  const count = row?.count ?? 0;
  const aucs = (row?.m ?? 0) >= 2 && (row?.n ?? 0) >= 2;
  return {
    count,
    canaryCorrect: row?.canary_correct ?? 0,
    stableCorrect: row?.stable_correct ?? 0,
    accuracyDifferenceVariance: count >= 2 ? (row?.accuracy_variance ?? null) : null,
    canaryAuc: aucs ? (row?.canary_auc ?? null) : null,
    stableAuc: aucs ? (row?.stable_auc ?? null) : null,
    aucDifferenceVariance: aucs ? (row?.auc_variance ?? null) : null,
  };
}

/**
 * Canary and stable on their labelled predictions in (sinceMs, endMs]: counts, and each one's AUC with DeLong's
 * variance from its structural components (per positive, the share of the version's negatives scored below it, ties
 * half; per negative, the share of positives above), summed per distinct score so that rows never reach JavaScript.
 * Two passes (mean, then squared deviations), compensated sums: the same numbers as compare.ts's deLongAuc.
 */
async function comparisonSides(
  connection: DuckDBConnection,
  compare: NonNullable<JoinOptions['compare']>,
  threshold: number,
): Promise<{ canary: ComparisonSide; stable: ComparisonSide; paired: PairedDecisions }> {
  const thresholdSql = sqlDouble(threshold);
  // A score in [0, 1] to its bin: 0.1 steps, 1.0 in the last one.
  const binOf = (score: string) => `least(CAST(floor(${score} * ${SCORE_BINS}) AS INTEGER), ${SCORE_BINS - 1})`;
  // The requests both versions answered since the canary started, once: each version's score and the label.
  const side = (version: number) => `SELECT request_id, any_value(score) AS score, any_value(label) AS label
      FROM joined WHERE version = ${version} AND ms > ${compare.sinceMs} AND score >= 0 AND score <= 1 GROUP BY request_id`;
  await connection.run(`CREATE TABLE pairs AS
    WITH c AS (${side(compare.canary)}), s AS (${side(compare.stable)})
    SELECT c.score AS cs, s.score AS ss, coalesce(c.label, s.label) AS label FROM c JOIN s USING (request_id)`);
  const pairRows = (
    await connection.runAndReadAll(`
    WITH p AS (SELECT cs, ss FROM pairs)
    SELECT 'pairs' AS what, -1 AS bin, CAST(count(*) AS DOUBLE) AS n,
        CAST(coalesce(sum(CASE WHEN (cs >= ${thresholdSql}) <> (ss >= ${thresholdSql}) THEN 1 ELSE 0 END), 0) AS DOUBLE) AS flipped FROM p
    UNION ALL SELECT 'canary', ${binOf('cs')}, CAST(count(*) AS DOUBLE), 0 FROM p GROUP BY 2
    UNION ALL SELECT 'stable', ${binOf('ss')}, CAST(count(*) AS DOUBLE), 0 FROM p GROUP BY 2`)
  ).getRowObjectsJS() as Array<{ what: string; bin: number; n: number; flipped: number }>;
  const paired = noPairs();
  for (const row of pairRows) {
    if (row.what === 'pairs') Object.assign(paired, { pairs: row.n, flipped: row.flipped });
    else (row.what === 'canary' ? paired.canaryBins : paired.stableBins)[row.bin] = row.n;
  }
  if (paired.pairs > 0) paired.labelled = await pairedLabelled(connection, thresholdSql);
  const rows = (
    await connection.runAndReadAll(`
    WITH side AS (
      SELECT version, score, CAST(label AS INTEGER) AS label FROM joined
      WHERE version IN (${compare.canary}, ${compare.stable}) AND ms > ${compare.sinceMs}
        AND label IN (0, 1) AND score >= 0 AND score <= 1),
    counted AS (
      SELECT version, CAST(count(*) AS DOUBLE) AS count, CAST(sum(label) AS DOUBLE) AS positives,
        CAST(sum(CASE WHEN CAST(score >= ${sqlDouble(threshold)} AS INTEGER) = label THEN 1 ELSE 0 END) AS DOUBLE) AS correct
      FROM side GROUP BY version),
    ties AS (
      SELECT version, score, CAST(sum(label) AS DOUBLE) AS pos, CAST(count(*) - sum(label) AS DOUBLE) AS neg
      FROM side GROUP BY version, score),
    placed AS (
      SELECT t.version, t.pos, t.neg, c.positives AS m, c.count - c.positives AS n,
        (coalesce(sum(t.neg) OVER (PARTITION BY t.version ORDER BY t.score ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) + t.neg / 2)
          / (c.count - c.positives) AS v10,
        (coalesce(sum(t.pos) OVER (PARTITION BY t.version ORDER BY t.score ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING), 0) + t.pos / 2)
          / c.positives AS v01
      FROM ties t JOIN counted c USING (version)
      WHERE c.positives >= 2 AND c.count - c.positives >= 2),
    means AS (
      SELECT version, fsum(pos * v10) / min(m) AS auc, fsum(neg * v01) / min(n) AS mean01 FROM placed GROUP BY version),
    spread AS (
      SELECT p.version, min(e.auc) AS auc,
        fsum(p.pos * (p.v10 - e.auc) * (p.v10 - e.auc)) / (min(p.m) - 1) / min(p.m)
          + fsum(p.neg * (p.v01 - e.mean01) * (p.v01 - e.mean01)) / (min(p.n) - 1) / min(p.n) AS variance
      FROM placed p JOIN means e USING (version) GROUP BY p.version)
    SELECT c.version, c.count, c.positives, c.correct, s.auc, s.variance
    FROM counted c LEFT JOIN spread s USING (version)`)
  ).getRowObjectsJS() as Array<{
    version: number;
    count: number;
    positives: number;
    correct: number;
    auc: number | null;
    variance: number | null;
  }>;
  const sideOf = (version: number): ComparisonSide => {
    const row = rows.find((r) => r.version === version);
    if (!row) return NO_LABELS;
    return {
      count: row.count,
      positives: row.positives,
      correct: row.correct,
      auc: row.auc ?? null,
      aucVariance: row.variance ?? null,
    };
  };
  return { canary: sideOf(compare.canary), stable: sideOf(compare.stable), paired };
}
