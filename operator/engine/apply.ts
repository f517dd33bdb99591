import { createHash } from 'node:crypto';
import type { DesiredObject, KubeObject } from './types.ts';

/**
 * Annotation holding a fingerprint of the fields last applied. A subset comparison alone cannot see a field
 * that was dropped from the desired state (server-side apply would remove it), the fingerprint can.
 */
export const APPLIED_ANNOTATION = 'loopline.dev/applied';

/** Fingerprint of a desired object (stable key order, the annotation itself excluded). */
export function appliedFingerprint(desired: DesiredObject): string {
  const { [APPLIED_ANNOTATION]: _ignored, ...annotations } = desired.metadata.annotations ?? {};
  const canonical = stableStringify({ ...desired, metadata: { ...desired.metadata, annotations } });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** The object to send: the desired state stamped with its fingerprint. */
export function withFingerprint(desired: DesiredObject): DesiredObject {
  return {
    ...desired,
    metadata: {
      ...desired.metadata,
      annotations: { ...desired.metadata.annotations, [APPLIED_ANNOTATION]: appliedFingerprint(desired) },
    },
  };
}

/** True when applying `desired` to `actual` would change nothing: same fingerprint and every desired field already there. */
export function applyIsNoop(desired: DesiredObject, actual: KubeObject | undefined): boolean {
  if (!actual || actual.metadata.deletionTimestamp) return false;
  if (actual.metadata.annotations?.[APPLIED_ANNOTATION] !== appliedFingerprint(desired)) return false;
  const { apiVersion: _a, kind: _k, ...fields } = desired;
  return isSubset(fields, actual);
}

/** Keys the list elements of Kubernetes objects are merged by, in the order they are tried. */
const MERGE_KEYS = ['name', 'type', 'key', 'containerPort', 'port', 'uid'];

/**
 * True when every field in `desired` is present with an equal value in `actual`. Extra fields in
 * `actual` (server defaults, other managers' fields) are ignored; list elements are matched by their
 * merge key (`name`, `type`, ...) or else by position; resource quantities compare by value (`0.5` = `500m`).
 */
export function isSubset(desired: unknown, actual: unknown, quantities = false): boolean {
  if (desired === undefined || desired === null) return true;
  if (Array.isArray(desired)) {
    if (desired.length === 0)
      return actual === undefined || actual === null || (Array.isArray(actual) && actual.length === 0);
    if (!Array.isArray(actual)) return false;
    if (desired.every((d) => !isPlainObject(d))) {
      return desired.length === actual.length && desired.every((d, i) => isSubset(d, actual[i], quantities));
    }
    return desired.every((d, i) => isSubset(d, matchElement(d, i, actual), quantities));
  }
  if (isPlainObject(desired)) {
    const entries = Object.entries(desired).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return actual === undefined || isPlainObject(actual);
    if (!isPlainObject(actual)) return false;
    return entries.every(([k, v]) =>
      isSubset(v, actual[k], quantities || k === 'limits' || k === 'requests' || k === 'capacity'),
    );
  }
  if (desired === actual) return true;
  if (typeof desired === 'number' && typeof actual === 'string')
    return String(desired) === actual || (quantities && sameQuantity(desired, actual));
  if (quantities && (typeof desired === 'string' || typeof desired === 'number') && typeof actual === 'string') {
    return sameQuantity(desired, actual);
  }
  return false;
}

function matchElement(element: unknown, index: number, actual: unknown[]): unknown {
  if (isPlainObject(element)) {
    for (const key of MERGE_KEYS) {
      const value = element[key];
      if (value !== undefined && (typeof value === 'string' || typeof value === 'number')) {
        return actual.find((a) => isPlainObject(a) && a[key] === value);
      }
    }
  }
  return actual[index];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const QUANTITY_SUFFIX: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** Value of a Kubernetes resource quantity (`500m`, `1Gi`, `2`), or NaN when it is not one. */
export function quantityValue(quantity: string | number): number {
  if (typeof quantity === 'number') return quantity;
  const match = /^([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)(?:[eE]([+-]?\d+))?([a-zA-Z]*)$/.exec(quantity.trim());
  if (!match) return NaN;
  const factor = QUANTITY_SUFFIX[match[3]];
  if (factor === undefined) return NaN;
  return Number(match[1]) * 10 ** Number(match[2] ?? 0) * factor;
}

function sameQuantity(a: string | number, b: string | number): boolean {
  const x = quantityValue(a);
  const y = quantityValue(b);
  return !Number.isNaN(x) && !Number.isNaN(y) && Math.abs(x - y) <= Math.abs(x) * 1e-12;
}

function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (isPlainObject(value)) {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Top-level status fields a field manager owns according to the object's managedFields
 * (`f:status` of its Apply entry on the status subresource). Used to notice a status field that
 * Loopline stopped applying, which a subset comparison cannot see.
 */
export function ownedStatusFields(object: KubeObject, fieldManager: string): Set<string> | undefined {
  const entries = (object.metadata.managedFields ?? []) as Array<{
    manager?: string;
    operation?: string;
    subresource?: string;
    fieldsV1?: Record<string, unknown>;
  }>;
  const entry = entries.find(
    (e) => e.manager === fieldManager && e.operation === 'Apply' && e.subresource === 'status',
  );
  const status = entry?.fieldsV1?.['f:status'];
  if (!isPlainObject(status)) return undefined;
  return new Set(
    Object.keys(status)
      .filter((k) => k.startsWith('f:'))
      .map((k) => k.slice(2)),
  );
}
