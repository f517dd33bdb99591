/**
 * Four elements of every datatype but FP16, covering its range, and their little-endian byte layout (the binary
 * extension's and raw gRPC contents' alike), written here independently of the server's code; and a server
 * answering each datatype's input unchanged, to round-trip them.
 */
import type { Datatype } from '../../src/runtime/tensors.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { identityModel, testConfig, type Workspace } from './model.ts';

export type WholeDatatype = Exclude<Datatype, 'FP16'>;

export const VALUES: Record<WholeDatatype, unknown[]> = {
  BOOL: [true, false, false, true],
  UINT8: [0, 255, 7, 1],
  UINT16: [0, 65535, 300, 1],
  UINT32: [0, 4294967295, 70000, 1],
  UINT64: [0, Number.MAX_SAFE_INTEGER, 2 ** 40, 1],
  INT8: [-128, 127, 0, -1],
  INT16: [-32768, 32767, 0, -1],
  INT32: [-2147483648, 2147483647, 0, -1],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 0, -1],
  FP32: [1.5, -2.25, 0, 3.125],
  FP64: [1e300, -1e-300, 0.1, 2],
  BYTES: ['a', 'héllo', '', 'zz'],
};
export const DATATYPES = Object.keys(VALUES) as WholeDatatype[];

/** The bytes of VALUES[datatype]: BYTES elements each behind its 4-byte length, the others packed. */
export function bytesOf(datatype: WholeDatatype): Buffer {
  const v = VALUES[datatype];
  if (datatype === 'BOOL') return Buffer.from((v as boolean[]).map(Number));
  if (datatype === 'BYTES') {
    return Buffer.concat(
      (v as string[]).flatMap((s) => {
        const length = Buffer.alloc(4);
        length.writeUInt32LE(Buffer.byteLength(s));
        return [length, Buffer.from(s)];
      }),
    );
  }
  if (datatype === 'UINT64') return Buffer.from(BigUint64Array.from((v as number[]).map(BigInt)).buffer);
  if (datatype === 'INT64') return Buffer.from(BigInt64Array.from((v as number[]).map(BigInt)).buffer);
  const Typed = {
    UINT8: Uint8Array,
    UINT16: Uint16Array,
    UINT32: Uint32Array,
    INT8: Int8Array,
    INT16: Int16Array,
    INT32: Int32Array,
    FP32: Float32Array,
    FP64: Float64Array,
  }[datatype];
  return Buffer.from(Typed.from(v as number[]).buffer);
}

/** A server of model `identity` version 1: input `in_<DATATYPE>` answered as output `out_<DATATYPE>`. */
export async function identityServer(ws: Workspace): Promise<RunningServer> {
  const identity = identityModel(ws, 'identity.onnx', DATATYPES);
  const server = await startServer(
    testConfig(identity, {
      model: { name: 'identity', version: '1', artifact: identity.artifact, signature: identity.signature },
    }),
  );
  if (!(await server.loaded)) {
    await server.close();
    throw new Error('the identity model did not load');
  }
  return server;
}
