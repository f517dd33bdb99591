/**
 * Batch scoring benchmark: `npx tsx server/bench/batch.bench.ts` with the local cluster's S3 and PostgreSQL
 * settings in the environment (`npm run bench -- batch` brings the cluster up). One million customer rows as a
 * Parquet object on the local S3 server (versitygw) are scored by the predictor's batch mode, run as the CronJob's
 * pod runs it (`server/src/main.ts batch`, a fresh process), into a PostgreSQL table in one transaction. Beside it,
 * on the same rows:
 *   - the floor: `psql \copy` of the run's own output rows (score, segment, ... as a local file) into a table
 *     of the same shape, replacing its rows in one transaction as the run does: what loading those rows costs
 *     PostgreSQL and psql, with no reading, validating or scoring;
 *   - raw session.run: the same model on the same batches of 1024 rows, already as Float32Arrays in memory;
 *   - the input alone: the run's reader over the same object (ranged GETs, hyparquet decoding to columns), nothing done with the rows.
 * Writes bench/results/batch.json and bench/results/batch.md.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Upload } from '@aws-sdk/lib-storage';
import ort from 'onnxruntime-node';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { buildLogisticRegressionModel } from '../../examples/trainer/src/onnx.ts';
import type { BatchRunConfig, BatchRunSummary } from '../../operator/api/batch-run.ts';
import { parseS3Uri, s3ClientFromEnv } from '../../operator/api/object-storage.ts';
import { startPostgres } from '../../test/support/postgres.ts';
import { requireS3 } from '../../test/support/s3.ts';
import { openInput } from '../src/batch/input.ts';
import { Session } from '../src/runtime/session.ts';
import { machineFacts } from '../../test/support/machine.ts';
import { median } from '../../test/support/figures.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const ROWS = Number(process.env.BENCH_BATCH_ROWS ?? 1_000_000);
const BATCH = 1024;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const FEATURES = ['income', 'debt_ratio', 'age', 'utilization', 'region'];
const WEIGHTS = [-0.02, 2.1, -0.01, 1.4, 0.3];

/** Deterministic rows: the same million every run. */
function columns(n: number): { customerId: string[]; values: Float64Array[]; region: Int32Array } {
  const customerId = new Array<string>(n);
  const values = [0, 1, 2, 3].map(() => new Float64Array(n));
  const region = new Int32Array(n);
  let s = 12345;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296;
  for (let i = 0; i < n; i++) {
    customerId[i] = `C${String(i).padStart(8, '0')}`;
    values[0][i] = 20 + next() * 120;
    values[1][i] = next();
    values[2][i] = 18 + next() * 60;
    values[3][i] = next();
    region[i] = Math.floor(next() * 4);
  }
  return { customerId, values, region };
}

function runBatch(
  env: Record<string, string>,
): Promise<{ summary: BatchRunSummary; wallSeconds: number; output: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-batch-'));
  const resultPath = join(dir, 'termination-log');
  const started = performance.now();
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'server/src/main.ts', 'batch'],
      { cwd: root, env: { ...env, LOOPLINE_RESULT_PATH: resultPath }, maxBuffer: 1 << 24, timeout: 600_000 },
      (error, stdout, stderr) => {
        const wallSeconds = (performance.now() - started) / 1000;
        try {
          const summary = JSON.parse(readFileSync(resultPath, 'utf8')) as BatchRunSummary;
          if (!summary.succeeded) throw new Error(`batch run failed: ${summary.error}\n${stdout}${stderr}`);
          resolve({ summary, wallSeconds, output: stdout + stderr });
        } catch (e) {
          reject(error ?? e);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );
  });
}

async function main(): Promise<void> {
  const started = Date.now();
  const loadBefore = loadavg();
  const s3 = requireS3('bench-batch');
  const db = await startPostgres();
  const psql = join(db.bin, 'psql');

  const data = columns(ROWS);
  const parquet = new Uint8Array(
    parquetWriteBuffer({
      columnData: [
        { name: 'customer_id', data: data.customerId, type: 'STRING' },
        ...data.values.map((v, j) => ({ name: FEATURES[j]!, data: Array.from(v), type: 'DOUBLE' as const })),
        { name: 'region', data: Array.from(data.region), type: 'INT32' },
      ],
      rowGroupSize: 100_000,
    }),
  );
  const inputUri = s3.uri('customers.parquet');
  const { bucket, key } = parseS3Uri(inputUri);
  await new Upload({
    client: s3.client,
    params: { Bucket: bucket, Key: key, Body: parquet },
    partSize: 8 << 20,
    queueSize: 2,
  }).done();
  const model = buildLogisticRegressionModel({ weights: WEIGHTS, bias: -1 });
  const modelUri = await s3.put('model.onnx', model);
  console.log(`input: ${ROWS} rows, ${(parquet.byteLength / (1 << 20)).toFixed(1)} MB of Parquet at ${inputUri}`);

  const config: BatchRunConfig = {
    name: 'bench',
    input: { uri: inputUri, format: 'parquet' },
    features: FEATURES,
    columns: ['customer_id'],
    segments: [
      { name: 'low', minScore: 0 },
      { name: 'medium', minScore: 0.3 },
      { name: 'high', minScore: 0.7 },
    ],
    output: { postgres: { table: 'bench_scores' } },
    rejects: s3.uri('rejects/'),
    batchSize: BATCH,
  };
  const env = {
    PATH: process.env.PATH!,
    HOME: process.env.HOME!,
    ...s3.env,
    LOG_LEVEL: 'warn',
    MODEL_NAME: 'bench',
    MODEL_VERSION: '1',
    MODEL_URI: modelUri,
    MODEL_DIGEST: `sha256:${createHash('sha256').update(model).digest('hex')}`,
    BATCH_CONFIG: JSON.stringify(config),
    BATCH_RUN: 'bench',
    DATABASE_URL: db.url,
  };

  // The floor's file: the run's own output rows, as COPY's text format on the local disk.
  const dir = mkdtempSync(join(tmpdir(), 'bench-floor-'));
  const floorFile = join(dir, 'scores.tsv');
  // The password through the environment, not argv: a command line is readable by every user of the machine.
  const dbUrl = new URL(db.url);
  const pgEnv = { ...process.env, PGCONNECT_TIMEOUT: '10', PGPASSWORD: decodeURIComponent(dbUrl.password) };
  dbUrl.password = '';
  /** psql's commands in one session, in order; the seconds it took, connecting included. */
  const psqlRun = (...commands: string[]) => {
    const t = performance.now();
    execFileSync(psql, [dbUrl.href, '-qX', '-v', 'ON_ERROR_STOP=1', ...commands.flatMap((c) => ['-c', c])], {
      env: pgEnv,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    return (performance.now() - t) / 1000;
  };

  const batchRounds: Array<{ wallSeconds: number; runSeconds: number }> = [];
  const floorRounds: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const { summary, wallSeconds } = await runBatch(env);
    if (summary.written !== ROWS) throw new Error(`the run wrote ${summary.written} of ${ROWS} rows`);
    batchRounds.push({ wallSeconds, runSeconds: summary.durationSeconds });
    console.log(`batch round ${round + 1}: ${wallSeconds.toFixed(1)} s wall, ${summary.durationSeconds} s in the run`);
    if (round === 0) {
      psqlRun(`\\copy bench_scores TO '${floorFile}'`);
      psqlRun('CREATE TABLE bench_floor (LIKE bench_scores)', `\\copy bench_floor FROM '${floorFile}'`);
    }
    // As the run does it: one transaction that deletes the previous million rows and COPYs the new ones.
    const seconds = psqlRun('BEGIN', 'DELETE FROM bench_floor', `\\copy bench_floor FROM '${floorFile}'`, 'COMMIT');
    floorRounds.push(seconds);
    console.log(`psql \\copy round ${round + 1}: ${seconds.toFixed(1)} s`);
  }
  const floorMb = statSync(floorFile).size / (1 << 20);

  // Raw session.run: the same model, the same 1024-row batches, already in memory as the run builds them.
  const session = Session.create(model, { intraOpThreads: 1 });
  const batches: Float32Array[] = [];
  for (let start = 0; start < ROWS; start += BATCH) {
    const n = Math.min(BATCH, ROWS - start);
    const x = new Float32Array(n * FEATURES.length);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < 4; j++) x[i * 5 + j] = data.values[j]![start + i]!;
      x[i * 5 + 4] = data.region[start + i]!;
    }
    batches.push(x);
  }
  const readRounds: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const t = performance.now();
    const source = await openInput(s3ClientFromEnv(process.env), config.input, [...FEATURES, 'customer_id'], FEATURES);
    let read = 0;
    for await (const chunk of source.chunks(BATCH)) read += chunk.rows;
    if (read !== ROWS) throw new Error(`read ${read} of ${ROWS} rows`);
    readRounds.push((performance.now() - t) / 1000);
  }
  const sessionRounds: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const t = performance.now();
    for (const x of batches) session.run({ input: new ort.Tensor('float32', x, [x.length / 5, 5]) });
    sessionRounds.push((performance.now() - t) / 1000);
  }
  session.release();
  rmSync(dir, { recursive: true, force: true });
  await db.query('DROP TABLE IF EXISTS bench_scores, bench_floor');
  await db.stop();

  const batchWall = median(batchRounds.map((r) => r.wallSeconds));
  const batchRun = median(batchRounds.map((r) => r.runSeconds));
  const floor = median(floorRounds);
  const sessionSeconds = median(sessionRounds);
  const readSeconds = median(readRounds);
  const rate = (s: number) => Math.round(ROWS / s);
  const results = {
    generatedAt: new Date().toISOString(),
    machine: machineFacts(loadBefore),
    rows: ROWS,
    batchSize: BATCH,
    parquetMb: parquet.byteLength / (1 << 20),
    floorFileMb: floorMb,
    rounds: { batch: batchRounds, psqlCopy: floorRounds, sessionRun: sessionRounds, inputOnly: readRounds },
    rowsPerSecond: {
      batchRun: rate(batchRun),
      batchProcess: rate(batchWall),
      psqlCopy: rate(floor),
      sessionRun: rate(sessionSeconds),
      inputOnly: rate(readSeconds),
    },
    durationSeconds: (Date.now() - started) / 1000,
  };
  const f0 = (n: number) => Math.round(n).toLocaleString('en-US');
  const f1 = (n: number) => n.toFixed(1);
  const f2 = (n: number) => n.toFixed(2);
  const md = `## Batch scoring (\`server/bench/batch.bench.ts\`)

${f0(ROWS)} rows (customer_id and five features; ${f1(results.parquetMb)} MB of Parquet in row groups of 100,000) on the local S3 server (versitygw) scored into a PostgreSQL 15 table (Debian's, fsync off) in one transaction, by the predictor's batch mode in a fresh process as the CronJob's pod runs it, batches of ${BATCH} rows. Median of ${ROUNDS} rounds; each run deletes the previous run's rows (the first finds an empty table). The S3 server, PostgreSQL and the run share the 2-core machine with whatever else runs on it (load average before/after: ${loadBefore.map(f2).join(', ')} / ${loadavg().map(f2).join(', ')}).

| what | seconds | rows/s |
|---|---|---|
| batch run: S3 Parquet → validate → score → COPY → COMMIT (the run's own clock, model load included) | ${f1(batchRun)} | ${f0(rate(batchRun))} |
| the same, process start to exit (Node start, module loading) | ${f1(batchWall)} | ${f0(rate(batchWall))} |
| floor: \`psql \\copy\` of the run's output rows (${f1(floorMb)} MB file on local disk), DELETE of the previous rows + COPY in one transaction | ${f1(floor)} | ${f0(rate(floor))} |
| raw \`session.run\` on the same ${BATCH}-row batches, already Float32Arrays in memory | ${f2(sessionSeconds)} | ${f0(rate(sessionSeconds))} |
| the input alone: the run's reader over the same object (ranged GETs, hyparquet decoding to columns) | ${f1(readSeconds)} | ${f0(rate(readSeconds))} |

The batch run takes ${f1(batchRun / floor)}× the time of loading its output with \`psql \\copy\` and ${f1(batchRun / sessionSeconds)}× that of the model alone; reading and decoding the input is ${f0((100 * readSeconds) / batchRun)}% of it.
`;
  const out = join(root, 'bench/results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'batch.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(out, 'batch.md'), md);
  console.log(`\n${md}`);
  console.log(`bench took ${results.durationSeconds.toFixed(0)} s; wrote bench/results/batch.json and batch.md`);
}

await main();
