/**
 * What a data set URI (a TrainingJob's spec.dataset.uri, a ModelVersion's lineage.dataset.uri) names, and the
 * hash spec.dataset.hash is checked against: the one rule the example trainer reads a data set by and the
 * evaluator mixes a version's training data by (docs/object-storage.md), so both read the same rows.
 *
 * - One object or file, unless the URI is a file:// directory or an s3:// prefix ending in "/" (or a bucket).
 * - A directory or prefix holds every `*.csv` (any case) at any depth below it, in the order of their keys
 *   relative to it (code-unit order, which for ASCII keys is S3's listing order).
 * - The hash is the sha256 over the parts' bytes in that order: of a single object, its sha256.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseS3Uri } from './object-storage.ts';

/** Whether `uri` names a directory or prefix of parts rather than one object. */
export async function namesParts(uri: string): Promise<boolean> {
  if (uri.startsWith('s3://')) {
    const { key } = parseS3Uri(uri);
    return key === '' || key.endsWith('/');
  }
  if (uri.startsWith('file://')) return (await stat(fileURLToPath(uri))).isDirectory();
  throw new Error(`dataset uri ${uri}: only file:// and s3:// are supported`);
}

/** Of the keys below a directory or prefix (relative to it), the data set's parts, in the order they are read. */
export function datasetParts(keys: Iterable<string>): string[] {
  return [...keys].filter((key) => /\.csv$/i.test(key) && !key.endsWith('/')).sort(byCodeUnit);
}

const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** `sha256:<hex>` over the parts' bytes in order. */
export function datasetHash(parts: Iterable<Uint8Array>): string {
  const digest = createHash('sha256');
  for (const part of parts) digest.update(part);
  return `sha256:${digest.digest('hex')}`;
}
