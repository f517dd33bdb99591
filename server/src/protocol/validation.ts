// Request validation against the ModelVersion signature: ajv schemas compiled once per
// loaded model check structure (names, datatypes, shapes, field types); one pass over
// the data then checks element types and converts to typed arrays.
// Every failure becomes an InputError naming the field, answered with 400 {error}.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { Feeds } from '../runtime/batcher.ts';
import { DATATYPES, InputError, tensorFromBytes, tensorFromJson, type Signature } from '../runtime/tensors.ts';

const ajv = new Ajv({ allErrors: false, strict: true, strictTuples: false, allowUnionTypes: true });

/** `/inputs/0/shape/1` → `inputs[0].shape[1]`. */
export function fieldOf(instancePath: string): string {
  let field = '';
  for (const part of instancePath.split('/').slice(1)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    field += /^\d+$/.test(key) ? `[${key}]` : field ? `.${key}` : key;
  }
  return field;
}

function valueAt(body: unknown, instancePath: string): unknown {
  let node = body;
  for (const part of instancePath.split('/').slice(1)) node = (node as Record<string, unknown> | undefined)?.[part];
  return node;
}

export function describeAjvError(error: ErrorObject, body: unknown, root = 'body'): InputError {
  const field = fieldOf(error.instancePath);
  const at = (name: string) => (field ? `${field}.${name}` : name);
  const p = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return new InputError(at(String(p.missingProperty)), 'is required');
    case 'additionalProperties':
      return new InputError(at(String(p.additionalProperty)), 'is not a known field');
    case 'const':
      return new InputError(field || root, `must be ${JSON.stringify(p.allowedValue)}`);
    case 'enum':
      return new InputError(
        field || root,
        `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(valueAt(body, error.instancePath))}`,
      );
    case 'type': {
      const value = valueAt(body, error.instancePath);
      if (typeof value === 'number' && !Number.isFinite(value))
        return new InputError(field || root, 'must be a finite number');
      return new InputError(
        field || root,
        `must be ${String(p.type).replace(',', ' or ')}, got ${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value}`,
      );
    }
    case 'minItems':
    case 'maxItems': {
      const value = valueAt(body, error.instancePath);
      const length = Array.isArray(value) ? value.length : 0;
      return new InputError(
        field || root,
        `must have ${error.keyword === 'minItems' ? 'at least' : 'at most'} ${p.limit} items, has ${length}`,
      );
    }
    default:
      return new InputError(field || root, error.message ?? 'is invalid');
  }
}

function check<T>(validate: ValidateFunction<T>, body: unknown): asserts body is T {
  if (!validate(body)) {
    // if/then schemas report the failing branch twice; the specific error comes first.
    const error = validate.errors!.find((e) => e.keyword !== 'if') ?? validate.errors![0];
    throw describeAjvError(error, body);
  }
}

export interface V2Request {
  id?: string;
  parameters?: Record<string, unknown>;
  inputs: Array<{
    name: string;
    shape: number[];
    datatype: string;
    data?: unknown[];
    parameters?: Record<string, unknown>;
  }>;
  outputs?: Array<{ name: string; parameters?: Record<string, unknown> }>;
}

export interface ParsedV2Request {
  feeds: Feeds;
  rows: number;
  /** Output names to return, in request order; all outputs when the request names none. */
  outputs: string[];
}

/**
 * Where input tensors' data is when it is not JSON `data`: binary data (gRPC raw_input_contents, the REST binary
 * data extension) and how errors name an input's data in the protocol the request came by.
 */
export interface TensorSources {
  /** Input i's elements in the binary layout (see tensorFromBytes), or undefined where it carries `data`. */
  binary?: ReadonlyArray<Uint8Array | undefined>;
  /** The name of input i's data in errors; `inputs[i].data` unless given. */
  field?: (i: number, binary: boolean) => string;
}

export type V2RequestParser = (body: unknown, sources?: TensorSources) => ParsedV2Request;

const jsonDataField = (i: number) => `inputs[${i}].data`;

/** The generic Open Inference Protocol request shape, as the route's fastify schema. */
export const V2_REQUEST_SCHEMA = {
  type: 'object',
  required: ['inputs'],
  additionalProperties: false,
  properties: {
    id: { type: 'string' },
    parameters: { type: 'object' },
    inputs: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        // `data` is required unless the input's data is binary: checked by the parser, which knows.
        required: ['name', 'shape', 'datatype'],
        additionalProperties: false,
        properties: {
          name: { type: 'string' },
          shape: { type: 'array', items: { type: 'integer', minimum: 0 } },
          datatype: { enum: DATATYPES },
          parameters: { type: 'object' },
          data: { type: 'array' },
        },
      },
    },
    outputs: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: { name: { type: 'string' }, parameters: { type: 'object' } },
      },
    },
  },
} as const;

export function compileV2RequestParser(signature: Signature, batched: boolean): V2RequestParser {
  const inputNames = signature.inputs.map((t) => t.name);
  const outputNames = signature.outputs.map((t) => t.name);
  const schema = structuredClone(V2_REQUEST_SCHEMA) as unknown as {
    properties: {
      inputs: { items: Record<string, unknown> & { properties: Record<string, unknown> } };
      outputs: { items: { properties: Record<string, unknown> } };
    };
  };
  const item = schema.properties.inputs.items;
  item.properties.name = { enum: inputNames };
  item.allOf = signature.inputs.map((spec) => ({
    if: { properties: { name: { const: spec.name } }, required: ['name'] },
    // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then, not a thenable
    then: {
      properties: {
        datatype: { const: spec.datatype },
        shape: {
          type: 'array',
          minItems: spec.shape.length,
          maxItems: spec.shape.length,
          items: spec.shape.map((d) => (d < 0 ? { type: 'integer' } : { const: d })),
        },
      },
    },
  }));
  schema.properties.outputs.items.properties.name = { enum: outputNames };
  const validate = ajv.compile<V2Request>(schema);

  return (body, sources) => {
    check(validate, body);
    const binary = sources?.binary;
    const fieldOfData = sources?.field ?? jsonDataField;
    const feeds: Feeds = {};
    let rows = -1;
    body.inputs.forEach((input, i) => {
      if (feeds[input.name]) throw new InputError(`inputs[${i}].name`, `input "${input.name}" is given more than once`);
      const spec = signature.inputs.find((t) => t.name === input.name)!;
      if (batched) {
        if (rows >= 0 && input.shape[0] !== rows) {
          throw new InputError(
            `inputs[${i}].shape[0]`,
            `must be ${rows} like the other inputs (they share the batch dimension)`,
          );
        }
        rows = input.shape[0];
      }
      const bytes = binary?.[i];
      let data;
      if (bytes) {
        if (input.data !== undefined)
          throw new InputError(`inputs[${i}].data`, "must be absent when the input's data is binary");
        data = tensorFromBytes(bytes, input.shape, spec.datatype, fieldOfData(i, true));
      } else {
        if (input.data === undefined) throw new InputError(fieldOfData(i, false), 'is required');
        data = tensorFromJson(input.data, input.shape, spec.datatype, fieldOfData(i, false));
      }
      feeds[input.name] = { datatype: spec.datatype, shape: input.shape, data };
    });
    const missing = inputNames.filter((name) => !feeds[name]);
    if (missing.length)
      throw new InputError(
        'inputs',
        `missing input${missing.length > 1 ? 's' : ''} ${missing.map((n) => `"${n}"`).join(', ')}`,
      );
    const outputs = body.outputs?.map((o) => o.name) ?? outputNames;
    return { feeds, rows: Math.max(rows, 1), outputs };
  };
}

// ---- the simple API: rows of features ----

export interface RowsRequest {
  /** One row: an array in input-column order, or an object keyed by feature name. */
  features?: unknown;
  /** Many rows, each like `features`. */
  instances?: unknown[];
}

/** The generic /predict body shape, as the route's fastify schema. */
export const ROWS_REQUEST_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    features: { type: ['array', 'object'] },
    instances: { type: 'array', minItems: 1, items: { type: ['array', 'object'] } },
  },
} as const;

export interface RowsLayout {
  /** Name of the model's single 2-D input. */
  input: string;
  features: number;
  featureNames: string[] | undefined;
  /** Values that replace null cells, when a reference profile says what to impute. */
  imputation: number[] | undefined;
}

/** Parses one row into `target` at `offset`: `raw` keeps NaN for missing cells, `filled` the imputed value. */
export type RowParser = (row: unknown, raw: Float32Array, filled: Float32Array, offset: number, field: string) => void;

/** The simple API works for models with one FP32 input of shape [-1, F]. */
export function rowsLayoutOf(
  signature: Signature,
  featureNames: string[] | undefined,
  imputation: number[] | undefined,
): RowsLayout | string {
  if (signature.inputs.length !== 1)
    return `the model has ${signature.inputs.length} inputs; use the V2 infer endpoint`;
  const [input] = signature.inputs;
  if (input.datatype !== 'FP32' || input.shape.length !== 2 || input.shape[1] < 1) {
    return `the model input is ${input.datatype} [${input.shape}], not FP32 [-1, F]; use the V2 infer endpoint`;
  }
  if (featureNames && featureNames.length !== input.shape[1]) featureNames = undefined;
  return { input: input.name, features: input.shape[1], featureNames, imputation };
}

export function compileRowParser(layout: RowsLayout): RowParser {
  const cell = layout.imputation ? { type: ['number', 'null'] } : { type: 'number' };
  const validateArray = ajv.compile<unknown[]>({
    type: 'array',
    minItems: layout.features,
    maxItems: layout.features,
    items: cell,
  });
  const names = layout.featureNames;
  const validateObject = names
    ? ajv.compile<Record<string, number | null>>({
        type: 'object',
        required: names,
        additionalProperties: false,
        properties: Object.fromEntries(names.map((n) => [n, cell])),
      })
    : undefined;
  const F = layout.features;
  const put = (value: unknown, j: number, raw: Float32Array, filled: Float32Array, offset: number, field: string) => {
    if (value === null) {
      raw[offset + j] = NaN;
      filled[offset + j] = layout.imputation![j];
      return;
    }
    const v = value as number;
    if (Math.abs(v) > 3.4028234663852886e38) throw new InputError(field, `${v} is outside the FP32 range`);
    raw[offset + j] = v;
    filled[offset + j] = v;
  };
  return (row, raw, filled, offset, field) => {
    if (Array.isArray(row)) {
      if (!validateArray(row)) throw prefixed(describeAjvError(validateArray.errors![0], row, ''), field);
      for (let j = 0; j < F; j++) put(row[j], j, raw, filled, offset, `${field}[${j}]`);
      return;
    }
    if (!validateObject)
      throw new InputError(
        field,
        'rows by feature name need a reference profile naming the features; send an array in input-column order',
      );
    if (typeof row !== 'object' || row === null)
      throw new InputError(field, 'must be an array or an object of features');
    if (!validateObject(row)) throw prefixed(describeAjvError(validateObject.errors![0], row, ''), field);
    for (let j = 0; j < F; j++)
      put((row as Record<string, unknown>)[names![j]], j, raw, filled, offset, `${field}.${names![j]}`);
  };
}

function prefixed(error: InputError, field: string): InputError {
  const inner = error.field.startsWith('[') || error.field === '' ? error.field : `.${error.field}`;
  return new InputError(`${field}${inner}`, error.message.slice(error.field.length + 2));
}
