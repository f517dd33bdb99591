// Tensor datatypes of the Open Inference Protocol and their onnxruntime counterparts,
// and the conversion between JSON tensor data and typed arrays.
import type { Tensor } from 'onnxruntime-node';

export type Datatype =
  | 'BOOL'
  | 'UINT8'
  | 'UINT16'
  | 'UINT32'
  | 'UINT64'
  | 'INT8'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'FP16'
  | 'FP32'
  | 'FP64'
  | 'BYTES';

export interface TensorSpec {
  name: string;
  datatype: Datatype;
  /** -1 marks a variable-size dimension. */
  shape: number[];
}

export interface Signature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | string[];

export const DATATYPES: Datatype[] = [
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
  'BYTES',
];

export const ORT_TYPE: Record<Datatype, Tensor.Type> = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
};

export const DATATYPE_OF_ORT: Partial<Record<string, Datatype>> = Object.fromEntries(
  Object.entries(ORT_TYPE).map(([datatype, ort]) => [ort, datatype as Datatype]),
);

/** Thrown for input a client must fix; `field` names where in the request the problem is. */
export class InputError extends Error {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}

const INTEGER_RANGE: Partial<Record<Datatype, [number, number]>> = {
  UINT8: [0, 255],
  UINT16: [0, 65535],
  UINT32: [0, 4294967295],
  UINT64: [0, Number.MAX_SAFE_INTEGER],
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  INT32: [-2147483648, 2147483647],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};
const FP32_MAX = 3.4028234663852886e38;
const FP16_MAX = 65504;

export function allocate(datatype: Datatype, length: number): TensorData {
  switch (datatype) {
    case 'FP32':
      return new Float32Array(length);
    case 'FP64':
      return new Float64Array(length);
    case 'FP16':
      return new Uint16Array(length);
    case 'BOOL':
    case 'UINT8':
      return new Uint8Array(length);
    case 'UINT16':
      return new Uint16Array(length);
    case 'UINT32':
      return new Uint32Array(length);
    case 'UINT64':
      return new BigUint64Array(length);
    case 'INT8':
      return new Int8Array(length);
    case 'INT16':
      return new Int16Array(length);
    case 'INT32':
      return new Int32Array(length);
    case 'INT64':
      return new BigInt64Array(length);
    case 'BYTES':
      return new Array<string>(length).fill('');
  }
}

/** IEEE 754 half-precision bits of a finite number within the FP16 range (round to nearest even). */
export function toHalfBits(value: number): number {
  const f32 = new Float32Array([value]);
  const bits = new Uint32Array(f32.buffer)[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  let mantissa = bits & 0x7fffff;
  if (exponent <= 0) {
    if (exponent < -10) return sign;
    mantissa = (mantissa | 0x800000) >>> (1 - exponent);
    return sign | ((mantissa + 0xfff + ((mantissa >>> 13) & 1)) >>> 13);
  }
  const rounded = mantissa + 0xfff + ((mantissa >>> 13) & 1);
  if (rounded & 0x800000) return sign | ((exponent + 1) << 10);
  return sign | (exponent << 10) | (rounded >>> 13);
}

export function fromHalfBits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Store one JSON element into target[index]; returns why it does not fit the datatype, if it does not. */
function store(target: TensorData, datatype: Datatype, index: number, element: unknown): string | undefined {
  switch (datatype) {
    case 'FP32':
    case 'FP64':
    case 'FP16': {
      if (typeof element !== 'number') return `must be a number for ${datatype}, got ${describe(element)}`;
      if (!Number.isFinite(element)) return 'must be a finite number';
      const max = datatype === 'FP32' ? FP32_MAX : datatype === 'FP16' ? FP16_MAX : Number.MAX_VALUE;
      if (Math.abs(element) > max) return `${element} is outside the ${datatype} range`;
      if (datatype === 'FP16') (target as Uint16Array)[index] = toHalfBits(element);
      else (target as Float32Array)[index] = element;
      return undefined;
    }
    case 'BOOL':
      if (typeof element !== 'boolean') return `must be true or false for BOOL, got ${describe(element)}`;
      (target as Uint8Array)[index] = element ? 1 : 0;
      return undefined;
    case 'BYTES':
      if (typeof element !== 'string') return `must be a string for BYTES, got ${describe(element)}`;
      (target as string[])[index] = element;
      return undefined;
    default: {
      const [min, max] = INTEGER_RANGE[datatype]!;
      if (typeof element !== 'number' || !Number.isInteger(element)) {
        return `must be an integer for ${datatype}, got ${describe(element)}`;
      }
      if (element < min || element > max) return `${element} is outside the ${datatype} range [${min}, ${max}]`;
      if (datatype === 'INT64' || datatype === 'UINT64') (target as BigInt64Array)[index] = BigInt(element);
      else (target as Int32Array)[index] = element;
      return undefined;
    }
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 20 ? `${value.slice(0, 20)}…` : value)}`;
  return `${typeof value} ${typeof value === 'object' ? '' : String(value)}`.trim();
}

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Typed data from protocol tensor data, which is either flat (row-major) or nested exactly as `shape`.
 * Every element is checked against the datatype; `field` prefixes error locations, e.g. `inputs[0].data`.
 */
export function tensorFromJson(
  data: unknown[],
  shape: readonly number[],
  datatype: Datatype,
  field: string,
): TensorData {
  const count = elementCount(shape);
  const nested = shape.length > 1 && data.length > 0 && Array.isArray(data[0]);
  // Check the element count before allocating: the shape is client input and may be huge.
  const flat = nested ? flatten(data, shape, field) : data;
  if (flat.length !== count) {
    throw new InputError(field, `has ${flat.length} elements but shape [${shape.join(', ')}] needs ${count}`);
  }
  if (datatype === 'FP32') return float32FromJson(flat, count, nested, shape, field);
  const target = allocate(datatype, count);
  for (let i = 0; i < count; i++) {
    const problem = store(target, datatype, i, flat[i]);
    // Nested data is reported with its nested indexes, so the client finds the element.
    if (problem) throw new InputError(nested ? nestedPath(field, shape, i) : `${field}[${i}]`, problem);
  }
  return target;
}

/** tensorFromJson for FP32, the common case: the checks of store() inline in one loop; the same errors. */
function float32FromJson(
  flat: unknown[],
  count: number,
  nested: boolean,
  shape: readonly number[],
  field: string,
): Float32Array {
  const target = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const element = flat[i];
    // Also false for NaN and ±Infinity, which store() then names.
    if (typeof element === 'number' && element <= FP32_MAX && element >= -FP32_MAX) target[i] = element;
    else {
      const problem = store(target, 'FP32', i, element);
      if (problem) throw new InputError(nested ? nestedPath(field, shape, i) : `${field}[${i}]`, problem);
    }
  }
  return target;
}

function flatten(data: unknown[], shape: readonly number[], field: string): unknown[] {
  const out: unknown[] = [];
  const walk = (node: unknown, depth: number, path: string): void => {
    if (depth === shape.length) {
      out.push(node);
      return;
    }
    if (!Array.isArray(node) || node.length !== shape[depth]) {
      throw new InputError(path, `must be an array of ${shape[depth]} elements to match shape [${shape.join(', ')}]`);
    }
    for (let i = 0; i < node.length; i++) walk(node[i], depth + 1, `${path}[${i}]`);
  };
  walk(data, 0, field);
  return out;
}

function nestedPath(field: string, shape: readonly number[], index: number): string {
  const parts: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    parts.unshift(index % shape[d]);
    index = Math.floor(index / shape[d]);
  }
  return `${field}${parts.map((p) => `[${p}]`).join('')}`;
}

/** JSON-ready flat data of an output tensor. */
export function tensorToJson(data: TensorData, datatype: Datatype): Array<number | boolean | string> {
  if (datatype === 'BOOL') return Array.from(data as Uint8Array, (v) => v !== 0);
  if (datatype === 'FP16') return Array.from(data as Uint16Array, fromHalfBits);
  if (datatype === 'INT64' || datatype === 'UINT64') return Array.from(data as BigInt64Array, (v) => Number(v));
  if (datatype === 'BYTES') return data as string[];
  return Array.from(data as Float32Array);
}

/** Bytes per element in the protocol's binary layout (BYTES elements are length-prefixed, so variable). */
export const ELEMENT_BYTES: Record<Exclude<Datatype, 'BYTES'>, number> = {
  BOOL: 1,
  UINT8: 1,
  INT8: 1,
  UINT16: 2,
  INT16: 2,
  FP16: 2,
  UINT32: 4,
  INT32: 4,
  FP32: 4,
  UINT64: 8,
  INT64: 8,
  FP64: 8,
};

// The binary layout is little-endian; typed arrays use the host's order, so this runs on little-endian hosts only
// (x86-64 and arm64 Linux, which onnxruntime-node ships for).
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('the predictor needs a little-endian host');

/**
 * Typed data from the protocol's binary tensor layout (gRPC raw_input_contents, the REST binary data extension):
 * row-major, little-endian, no padding; BOOL one byte of 0 or 1; BYTES each a 4-byte little-endian length and its
 * bytes. Checked as JSON data is: the element count against the shape, floats finite, BOOL bytes 0 or 1.
 * `field` names where the bytes are in the request, e.g. `raw_input_contents[0]`.
 */
export function tensorFromBytes(
  bytes: Uint8Array,
  shape: readonly number[],
  datatype: Datatype,
  field: string,
): TensorData {
  const count = elementCount(shape);
  if (datatype === 'BYTES') return stringsFromBytes(bytes, count, shape, field);
  const size = ELEMENT_BYTES[datatype];
  if (bytes.byteLength !== count * size) {
    throw new InputError(
      field,
      `has ${bytes.byteLength} bytes but shape [${shape.join(', ')}] of ${datatype} needs ${count * size} (${size} per element)`,
    );
  }
  // A typed array view needs an offset aligned to its element size; protobuf and HTTP buffers may not be.
  const aligned = bytes.byteOffset % size === 0 ? bytes : new Uint8Array(bytes);
  const data = viewOf(datatype, aligned.buffer as ArrayBuffer, aligned.byteOffset, count);
  switch (datatype) {
    case 'FP32':
    case 'FP64': {
      const floats = data as Float32Array;
      for (let i = 0; i < count; i++)
        if (!Number.isFinite(floats[i])) throw new InputError(`${field}[${i}]`, 'must be a finite number');
      break;
    }
    case 'FP16': {
      const halves = data as Uint16Array;
      for (let i = 0; i < count; i++)
        if ((halves[i] & 0x7c00) === 0x7c00) throw new InputError(`${field}[${i}]`, 'must be a finite number');
      break;
    }
    case 'BOOL': {
      const flags = data as Uint8Array;
      for (let i = 0; i < count; i++)
        if (flags[i] > 1) throw new InputError(`${field}[${i}]`, `must be 0 or 1 for BOOL, got ${flags[i]}`);
      break;
    }
  }
  return data;
}

function viewOf(datatype: Exclude<Datatype, 'BYTES'>, buffer: ArrayBuffer, offset: number, count: number): TensorData {
  switch (datatype) {
    case 'FP32':
      return new Float32Array(buffer, offset, count);
    case 'FP64':
      return new Float64Array(buffer, offset, count);
    case 'FP16':
    case 'UINT16':
      return new Uint16Array(buffer, offset, count);
    case 'BOOL':
    case 'UINT8':
      return new Uint8Array(buffer, offset, count);
    case 'UINT32':
      return new Uint32Array(buffer, offset, count);
    case 'UINT64':
      return new BigUint64Array(buffer, offset, count);
    case 'INT8':
      return new Int8Array(buffer, offset, count);
    case 'INT16':
      return new Int16Array(buffer, offset, count);
    case 'INT32':
      return new Int32Array(buffer, offset, count);
    case 'INT64':
      return new BigInt64Array(buffer, offset, count);
  }
}

function stringsFromBytes(bytes: Uint8Array, count: number, shape: readonly number[], field: string): string[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const out: string[] = [];
  let offset = 0;
  while (offset < bytes.byteLength) {
    if (out.length === count)
      throw new InputError(field, `has more than the ${count} elements shape [${shape.join(', ')}] needs`);
    if (offset + 4 > bytes.byteLength)
      throw new InputError(`${field}[${out.length}]`, 'is cut short inside its 4-byte length');
    const length = view.getUint32(offset, true);
    offset += 4;
    if (offset + length > bytes.byteLength)
      throw new InputError(
        `${field}[${out.length}]`,
        `says ${length} bytes but only ${bytes.byteLength - offset} remain`,
      );
    try {
      out.push(decoder.decode(bytes.subarray(offset, offset + length)));
    } catch {
      throw new InputError(`${field}[${out.length}]`, 'is not valid UTF-8');
    }
    offset += length;
  }
  if (out.length !== count)
    throw new InputError(field, `has ${out.length} elements but shape [${shape.join(', ')}] needs ${count}`);
  return out;
}

/** The protocol's binary layout of typed data (see tensorFromBytes); numeric data is viewed, not copied. */
export function tensorToBytes(data: TensorData, datatype: Datatype): Uint8Array {
  if (datatype !== 'BYTES') {
    const typed = data as Float32Array;
    return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  }
  const encoded = (data as string[]).map((s) => Buffer.from(s, 'utf8'));
  const out = Buffer.allocUnsafe(encoded.reduce((n, b) => n + 4 + b.byteLength, 0));
  let offset = 0;
  for (const b of encoded) {
    out.writeUInt32LE(b.byteLength, offset);
    b.copy(out, offset + 4);
    offset += 4 + b.byteLength;
  }
  return out;
}
