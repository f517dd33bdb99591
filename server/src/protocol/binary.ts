// The binary tensor data extension of the Open Inference Protocol's REST API (Triton's and KServe's
// "binary_tensor_data"): a body whose first Inference-Header-Content-Length bytes are the JSON request and
// the rest the inputs' data in the binary layout (tensors.ts), in input order, each `binary_data_size`
// bytes long. Outputs asked for with `binary_data: true` (or all, with the request parameter
// `binary_data_output: true`) come back the same way: the JSON answer names each one's
// `binary_data_size`, the header gives the JSON's length, and their bytes follow it.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Feeds } from '../runtime/batcher.ts';
import { InputError, tensorToBytes, tensorToJson } from '../runtime/tensors.ts';
import type { TensorSources, V2Request } from './validation.ts';

export const HEADER_LENGTH = 'inference-header-content-length';
export const EXTENSION = 'binary_tensor_data';

declare module 'fastify' {
  interface FastifyRequest {
    /** The bytes after the JSON part of a binary-extension body. */
    tensorBinary?: Buffer;
  }
}

type JsonParser = (request: FastifyRequest, body: string, done: (error: Error | null, body?: unknown) => void) => void;

/** A content-type parser for infer bodies: plain JSON, or JSON then binary tensor data when the header says so. */
export function inferBodyParser(json: JsonParser) {
  return (request: FastifyRequest, body: Buffer, done: (error: Error | null, body?: unknown) => void) => {
    const given = request.headers[HEADER_LENGTH];
    if (given === undefined) return json(request, body.toString('utf8'), done);
    const length = typeof given === 'string' && /^\d+$/.test(given) ? Number(given) : NaN;
    if (!(length <= body.length)) {
      return done(
        new InputError(
          HEADER_LENGTH,
          `must be the byte length of the JSON part of the body, 0 to ${body.length}, got ${JSON.stringify(given)}`,
        ),
      );
    }
    request.tensorBinary = body.subarray(length);
    json(request, body.subarray(0, length).toString('utf8'), done);
  };
}

const binaryField = (i: number) => `inputs[${i}].binary_data`;

/**
 * The tensor sources of a request: each input with a `binary_data_size` takes that many bytes of the binary
 * part, in input order; undefined when no input is binary. Every byte must be claimed by exactly one input.
 */
export function binaryInputs(body: V2Request, binary: Buffer | undefined): TensorSources | undefined {
  let offset = 0;
  let any = false;
  const slices = body.inputs.map((input, i) => {
    const size = input.parameters?.binary_data_size;
    if (size === undefined) return undefined;
    const field = `inputs[${i}].parameters.binary_data_size`;
    if (typeof size !== 'number' || !Number.isInteger(size) || size < 0)
      throw new InputError(field, `must be a byte count (an integer ≥ 0), got ${JSON.stringify(size)}`);
    if (!binary)
      throw new InputError(
        field,
        `binary data needs the ${HEADER_LENGTH} header, giving the length of the JSON before it`,
      );
    if (offset + size > binary.length)
      throw new InputError(
        field,
        `is ${size} but only ${binary.length - offset} bytes of binary data remain after the JSON and the inputs before it`,
      );
    any = true;
    const slice = binary.subarray(offset, offset + size);
    offset += size;
    return slice;
  });
  if (binary && offset !== binary.length) {
    throw new InputError(
      'body',
      `has ${binary.length - offset} bytes of binary data after the JSON that no input's binary_data_size claims`,
    );
  }
  return any
    ? { binary: slices, field: (i, isBinary) => (isBinary ? binaryField(i) : `inputs[${i}].data`) }
    : undefined;
}

/** Which of the answered outputs go back binary, from `binary_data` on requested outputs and `binary_data_output`. */
export function binaryOutputs(body: V2Request, names: string[]): boolean[] {
  const all = body.parameters?.binary_data_output;
  if (all !== undefined && typeof all !== 'boolean')
    throw new InputError('parameters.binary_data_output', `must be true or false, got ${JSON.stringify(all)}`);
  const requested = new Map<string, boolean>();
  body.outputs?.forEach((o, i) => {
    const flag = o.parameters?.binary_data;
    if (flag !== undefined && typeof flag !== 'boolean')
      throw new InputError(
        `outputs[${i}].parameters.binary_data`,
        `must be true or false, got ${JSON.stringify(flag)}`,
      );
    if (flag !== undefined) requested.set(o.name, flag);
  });
  return names.map((name) => requested.get(name) ?? all === true);
}

/** The infer answer: JSON, or — when an output goes back binary — the JSON header followed by their bytes. */
export function sendInferAnswer(
  reply: FastifyReply,
  head: { model_name: string; model_version: string; id: string },
  names: string[],
  outputs: Feeds,
  binary: boolean[],
): FastifyReply {
  if (!binary.includes(true)) {
    return reply.send({
      ...head,
      outputs: names.map((name) => {
        const out = outputs[name];
        return { name, datatype: out.datatype, shape: out.shape, data: tensorToJson(out.data, out.datatype) };
      }),
    });
  }
  const parts: Uint8Array[] = [];
  const json = {
    ...head,
    outputs: names.map((name, k) => {
      const out = outputs[name];
      if (!binary[k])
        return { name, datatype: out.datatype, shape: out.shape, data: tensorToJson(out.data, out.datatype) };
      const bytes = tensorToBytes(out.data, out.datatype);
      parts.push(bytes);
      return { name, datatype: out.datatype, shape: out.shape, parameters: { binary_data_size: bytes.byteLength } };
    }),
  };
  const header = Buffer.from(JSON.stringify(json), 'utf8');
  return reply
    .header(HEADER_LENGTH, header.length)
    .type('application/octet-stream')
    .send(Buffer.concat([header, ...parts]));
}
