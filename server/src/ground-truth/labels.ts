// Labels sent to the feedback endpoints: checked, then written as one Parquet part per request under
// labels/<namespace>/<service>/ (layout.ts), with the time they were recorded. The answer waits for the part
// to be durable. A request id labelled again simply gets a newer row: readers take the latest (idempotent).
import { Ajv } from 'ajv';
import { InputError } from '../runtime/tensors.ts';
import { labelsKey, partNamer, type Scope } from './layout.ts';
import { encodeParquet } from './parquet.ts';
import type { PartStore } from './store.ts';

export interface Label {
  request_id: string;
  label: number;
}

/** Most labels one request may carry; more go in several requests, or as a bulk file (docs/ground-truth.md). */
export const MAX_LABELS_PER_REQUEST = 10_000;
/** Request ids as the predictor takes them (x-request-id), with room for `:<row>`. */
const MAX_REQUEST_ID_LENGTH = 256;

const ajv = new Ajv({ allErrors: false, strict: true });
const LABEL_SCHEMA = {
  type: 'object',
  required: ['request_id', 'label'],
  additionalProperties: false,
  properties: {
    request_id: { type: 'string', minLength: 1, maxLength: MAX_REQUEST_ID_LENGTH },
    label: { type: 'number' },
  },
} as const;
const validateOne = ajv.compile<Label>(LABEL_SCHEMA);

function checkOne(value: unknown, field: string): Label {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InputError(
      field,
      `must be an object {"request_id": "...", "label": 1}, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`,
    );
  }
  if (!validateOne(value)) {
    const error = validateOne.errors![0];
    const p = error.params as Record<string, unknown>;
    const at = error.instancePath ? `${field}.${error.instancePath.slice(1)}` : field;
    switch (error.keyword) {
      case 'required':
        throw new InputError(`${field}.${String(p.missingProperty)}`, 'is required');
      case 'additionalProperties':
        throw new InputError(
          `${field}.${String(p.additionalProperty)}`,
          'is not a known field (a label has request_id and label)',
        );
      case 'type': {
        const given = (value as Record<string, unknown>)[error.instancePath.slice(1)];
        if (p.type === 'number' && typeof given === 'number') throw new InputError(at, 'must be a finite number');
        throw new InputError(at, `must be a ${String(p.type)}, got ${JSON.stringify(given)}`);
      }
      case 'minLength':
      case 'maxLength':
        throw new InputError(at, `must be a request id of 1 to ${MAX_REQUEST_ID_LENGTH} characters`);
      default:
        throw new InputError(at, error.message ?? 'is invalid');
    }
  }
  // JSON numbers like 1e999 parse to Infinity.
  if (!Number.isFinite(value.label)) throw new InputError(`${field}.label`, 'must be a finite number');
  return value;
}

/**
 * The labels of a feedback body: one `{request_id, label}` or an array of 1 to MAX_LABELS_PER_REQUEST of them;
 * an InputError naming the field otherwise. Within one request the last label of an id wins.
 */
export function parseFeedback(body: unknown): Label[] {
  let labels: Label[];
  if (Array.isArray(body)) {
    if (body.length === 0) throw new InputError('body', 'is an empty array: send at least one {"request_id", "label"}');
    if (body.length > MAX_LABELS_PER_REQUEST)
      throw new InputError('body', `has ${body.length} labels; send at most ${MAX_LABELS_PER_REQUEST} per request`);
    labels = body.map((item, i) => checkOne(item, `body[${i}]`));
  } else {
    labels = [checkOne(body, 'body')];
  }
  const last = new Map<string, Label>();
  for (const l of labels) {
    last.delete(l.request_id);
    last.set(l.request_id, l);
  }
  return [...last.values()];
}

export class LabelWriter {
  private readonly nextPart: (now: number) => string;

  constructor(
    private readonly base: string,
    private readonly scope: Scope,
    private readonly store: PartStore,
    pod: string,
  ) {
    this.nextPart = partNamer(pod);
  }

  /** Writes `labels` as one part, recorded now; resolves with its URI once it is durable. */
  async write(labels: Label[]): Promise<string> {
    const now = Date.now();
    const bytes = encodeParquet([
      { name: 'request_id', kind: 'string', data: labels.map((l) => l.request_id), unique: true },
      { name: 'label', kind: 'double', data: labels.map((l) => l.label) },
      { name: 'time', kind: 'timestamp', data: new Array(labels.length).fill(now) },
    ]);
    const uri = labelsKey(this.base, this.scope, now, this.nextPart(now));
    await this.store.put(uri, bytes, 'application/vnd.apache.parquet');
    return uri;
  }
}
