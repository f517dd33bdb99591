// Where logged predictions and feedback labels live below the base URI of spec.logging.uri: the layout of
// docs/ground-truth.md, the contract with the evaluator and with users' own pipelines. Pure functions.
import { randomBytes } from 'node:crypto';

export interface Scope {
  namespace: string;
  inferenceService: string;
}

/** `s3://bucket/prefix/` or `file:///dir/` with exactly one trailing slash, whatever the user wrote. */
export function normalizeBase(uri: string): string {
  return uri.replace(/\/+$/, '') + '/';
}

/** The UTC day of `ms` as yyyy-mm-dd. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** `<yyyymmddThhmmssmmmZ>`: the part name's leading timestamp, sortable as text. */
function compactTime(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace('.', '');
}

/**
 * Part names of one process: `<yyyymmddThhmmssmmmZ>-<pod>-<sequence>-<8 random hex>`. The sequence orders one
 * process's parts; the random suffix keeps two processes of one pod (workers, or a restart in the same
 * millisecond) apart, so a name is never written twice.
 */
export function partNamer(pod: string): (now: number) => string {
  let sequence = 0;
  const safePod = pod.replace(/[^A-Za-z0-9.-]/g, '_') || 'predictor';
  return (now) =>
    `${compactTime(now)}-${safePod}-${String(++sequence).padStart(6, '0')}-${randomBytes(4).toString('hex')}`;
}

/** `<base>/inference-log/<namespace>/<service>/v<version>/date=<day>/<part>.parquet` */
export function inferenceLogKey(base: string, scope: Scope, version: string, firstRowMs: number, part: string): string {
  return `${normalizeBase(base)}inference-log/${scope.namespace}/${scope.inferenceService}/v${version}/date=${utcDay(firstRowMs)}/${part}.parquet`;
}

/** `<base>/labels/<namespace>/<service>/date=<day>/<part>.parquet` */
export function labelsKey(base: string, scope: Scope, firstRowMs: number, part: string): string {
  return `${normalizeBase(base)}labels/${scope.namespace}/${scope.inferenceService}/date=${utcDay(firstRowMs)}/${part}.parquet`;
}
