import { createHash } from 'node:crypto';
import type { DesiredObject } from './types.ts';

/** Annotation holding a fingerprint of the fields last applied, so a field dropped from the desired state is noticed. */
export const APPLIED_ANNOTATION = 'loopline.dev/applied';

/** Fingerprint of a desired object (stable key order, annotation itself excluded). */
export function appliedFingerprint(desired: DesiredObject): string {
  const { [APPLIED_ANNOTATION]: _ignored, ...annotations } = desired.metadata.annotations ?? {};
  const canonical = stableStringify({ ...desired, metadata: { ...desired.metadata, annotations } });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** True when every field in `desired` is present with an equal value in `actual` (server defaults in `actual` are ignored). */
export function isSubset(desired: unknown, actual: unknown): boolean {
  throw new Error(`not implemented yet ${String(desired)} ${String(actual)}`);
}

function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
