// An onnxruntime session that runs in the call. onnxruntime-node's public
// InferenceSession.run defers the native call with setImmediate, so a batch read in one
// event-loop turn would be answered only in the next one, while the load waits; the
// package's native binding (typed in onnxruntime-node/dist/binding.d.ts as "a simple
// synchronized inference session object wrap") runs on the calling thread and returns
// the outputs. The public run does exactly this call, one loop turn later; nothing runs
// in the background in either case. Tensors are onnxruntime-common's.
import ort from 'onnxruntime-node';
import { binding, initOrt } from 'onnxruntime-node/dist/binding.js';
import type { Datatype, TensorSpec } from './tensors.ts';

type NativeSession = InstanceType<typeof binding.InferenceSession>;
type NativeMetadata = NativeSession['inputMetadata'][number];

/** ONNX TensorProto element types the protocol can carry (onnx.proto's DataType enum). */
const DATATYPE_OF_ONNX: Partial<Record<number, Datatype>> = {
  1: 'FP32',
  2: 'UINT8',
  3: 'INT8',
  4: 'UINT16',
  5: 'INT16',
  6: 'INT32',
  7: 'INT64',
  8: 'BYTES',
  9: 'BOOL',
  10: 'FP16',
  11: 'FP64',
  12: 'UINT32',
  13: 'UINT64',
};

export interface SessionOptions {
  intraOpThreads: number;
}

export class Session {
  readonly inputs: TensorSpec[];
  readonly outputs: TensorSpec[];
  private readonly inputNames: string[];
  /** Every output, fetched by name (null: let the runtime allocate it). */
  private readonly fetches: Record<string, null>;
  private released = false;

  private constructor(private readonly native: NativeSession) {
    this.inputs = native.inputMetadata.map(tensorSpecOf);
    this.outputs = native.outputMetadata.map(tensorSpecOf);
    this.inputNames = this.inputs.map((t) => t.name);
    this.fetches = Object.fromEntries(this.outputs.map((t) => [t.name, null]));
  }

  /** Load a model from its bytes; throws what onnxruntime says about a model it cannot load. */
  static create(bytes: Uint8Array, options: SessionOptions): Session {
    initOrt();
    const native = new binding.InferenceSession();
    native.loadModel(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength, {
      intraOpNumThreads: options.intraOpThreads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
    return new Session(native);
  }

  /** Run the graph now, on this thread; every input must be fed. */
  run(feeds: Record<string, ort.Tensor>): Record<string, ort.Tensor> {
    if (this.released) throw new Error('the model session was released');
    for (const name of this.inputNames) {
      if (feeds[name] === undefined) throw new Error(`input '${name}' is missing in the feeds`);
    }
    const results = this.native.run(feeds, this.fetches, {});
    const tensors: Record<string, ort.Tensor> = {};
    for (const name in results) {
      const value = results[name] as ort.Tensor | { type: ort.Tensor.Type; data: ort.Tensor.DataType; dims: number[] };
      tensors[name] =
        value instanceof ort.Tensor ? value : new ort.Tensor(value.type, value.data as Float32Array, value.dims);
    }
    return tensors;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.native.dispose();
  }
}

function tensorSpecOf(meta: NativeMetadata): TensorSpec {
  if (!meta.isTensor) throw new Error(`model value ${meta.name} is not a tensor; only tensor models are served`);
  const datatype = DATATYPE_OF_ONNX[meta.type];
  if (!datatype)
    throw new Error(`model value ${meta.name} has ONNX element type ${meta.type}, which the protocol cannot carry`);
  // The binding reports a symbolic (named or unnamed) dimension as -1.
  return { name: meta.name, datatype, shape: meta.shape.map((d) => (d >= 0 ? d : -1)) };
}
