/**
 * Inference-log parts and label files in the layout and column types of docs/ground-truth.md, written with
 * hyparquet-writer (the library the predictor's logger writes them with), for the evaluator's tests and bench.
 */
import { parquetWriteBuffer } from 'hyparquet-writer';
import { randomBytes } from 'node:crypto';

export interface LoggedRow {
  requestId: string;
  /** ms since the epoch */
  time: number;
  model: string;
  version: number;
  score: number;
  inputs?: Record<string, number>;
}

export interface LabelRow {
  requestId: string;
  label: number;
  /** ms since the epoch; left out of the file when no row has one (a bulk file without a time column). */
  time?: number;
}

const timestampMillisUtc = {
  type: 'INT64',
  logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' },
} as const;

/** A part's name: `<yyyymmddThhmmssmmmZ>-<pod>-<sequence>-<8 random hex>`, after its first row's time. */
export function partName(firstRowMs: number, pod: string, sequence: number): string {
  const stamp = new Date(firstRowMs).toISOString().replace(/[-:]/g, '').replace('.', '');
  return `${stamp}-${pod}-${sequence}-${randomBytes(4).toString('hex')}`;
}

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** Key (below the base) and bytes of one inference-log part of `rows` (all of one version). */
export function inferenceLogPart(
  namespace: string,
  service: string,
  rows: LoggedRow[],
  pod = 'predictor-0',
  sequence = 0,
): { key: string; body: Uint8Array } {
  const first = rows[0]!;
  const features = Object.keys(first.inputs ?? {});
  const buffer = parquetWriteBuffer({
    columnData: [
      { name: 'request_id', data: rows.map((r) => r.requestId) },
      { name: 'time', data: rows.map((r) => BigInt(r.time)) },
      { name: 'model', data: rows.map((r) => r.model) },
      { name: 'version', data: rows.map((r) => r.version) },
      { name: 'pod', data: rows.map(() => pod) },
      { name: 'score', data: rows.map((r) => r.score) },
      ...features.map((f) => ({ name: `input_${f}`, data: rows.map((r) => r.inputs?.[f] ?? null) })),
      { name: 'output_0', data: rows.map((r) => r.score) },
    ],
    schema: [
      { name: 'root', num_children: 7 + features.length },
      { name: 'request_id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
      { name: 'time', ...timestampMillisUtc, repetition_type: 'REQUIRED' },
      { name: 'model', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
      { name: 'version', type: 'INT32', repetition_type: 'REQUIRED' },
      { name: 'pod', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
      { name: 'score', type: 'DOUBLE', repetition_type: 'OPTIONAL' },
      ...features.map((f) => ({ name: `input_${f}`, type: 'DOUBLE' as const, repetition_type: 'OPTIONAL' as const })),
      { name: 'output_0', type: 'DOUBLE', repetition_type: 'OPTIONAL' },
    ],
  });
  return {
    key: `inference-log/${namespace}/${service}/v${first.version}/date=${day(first.time)}/${partName(first.time, pod, sequence)}.parquet`,
    body: new Uint8Array(buffer),
  };
}

/** A label part as the feedback endpoint writes it (with time), or a bulk file (without, when no row has one). */
export function labelPart(
  namespace: string,
  service: string,
  rows: LabelRow[],
  name?: string,
): { key: string; body: Uint8Array } {
  const timed = rows.some((r) => r.time !== undefined);
  const buffer = parquetWriteBuffer({
    columnData: [
      { name: 'request_id', data: rows.map((r) => r.requestId) },
      { name: 'label', data: rows.map((r) => r.label) },
      ...(timed ? [{ name: 'time', data: rows.map((r) => BigInt(r.time ?? 0)) }] : []),
    ],
    schema: [
      { name: 'root', num_children: timed ? 3 : 2 },
      { name: 'request_id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
      { name: 'label', type: 'DOUBLE', repetition_type: 'REQUIRED' },
      ...(timed ? [{ name: 'time', ...timestampMillisUtc, repetition_type: 'REQUIRED' as const }] : []),
    ],
  });
  const key = name
    ? `labels/${namespace}/${service}/${name}.parquet`
    : `labels/${namespace}/${service}/date=${day(rows[0]!.time ?? Date.now())}/${partName(rows[0]!.time ?? Date.now(), 'feedback-0', 0)}.parquet`;
  return { key, body: new Uint8Array(buffer) };
}

/** A bulk CSV label file: header request_id,label[,time] with RFC 3339 times. */
export function labelCsv(
  namespace: string,
  service: string,
  rows: LabelRow[],
  name: string,
): { key: string; body: Uint8Array } {
  const timed = rows.some((r) => r.time !== undefined);
  const lines = [
    timed ? 'request_id,label,time' : 'request_id,label',
    ...rows.map((r) => [r.requestId, r.label, ...(timed ? [new Date(r.time!).toISOString()] : [])].join(',')),
  ];
  return { key: `labels/${namespace}/${service}/${name}.csv`, body: new TextEncoder().encode(`${lines.join('\n')}\n`) };
}
