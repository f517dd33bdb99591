// ONNX export of the trainer's models, built directly as protobuf with onnx-proto
// (no Python toolchain in the pod image).
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** Opset 13 is understood by every onnxruntime release of the last years and has all ops we use. */
const DEFAULT_OPSET = 13;
/** IR version 8 is what onnx-proto (ONNX 1.10) writes and onnxruntime accepts. */
const IR_VERSION = 8;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

export interface LogisticRegressionModelOptions {
  /** One weight per input feature, in the column order of the input tensor. */
  weights: number[];
  bias: number;
  /** Name of the FP32 input tensor [batch, features]; default "input". */
  inputName?: string;
  /** Name of the FP32 output tensor [batch, 1]; default "probability". */
  outputName?: string;
  /** ai.onnx opset version; default 13. */
  opset?: number;
}

function floatTensorType(dims: Array<number | string>): onnxProto.onnx.ITypeProto {
  return {
    tensorType: {
      elemType: FLOAT,
      shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
    },
  };
}

function floatInitializer(name: string, dims: number[], values: number[]): onnxProto.onnx.ITensorProto {
  return { name, dims, dataType: FLOAT, floatData: values };
}

/**
 * Serialized ONNX ModelProto computing probability = sigmoid(input · weights + bias)
 * with MatMul, Add and Sigmoid; the batch dimension is dynamic ("batch").
 */
export function buildLogisticRegressionModel(opts: LogisticRegressionModelOptions): Uint8Array {
  const { weights, bias } = opts;
  const inputName = opts.inputName ?? 'input';
  const outputName = opts.outputName ?? 'probability';
  const opset = opts.opset ?? DEFAULT_OPSET;
  if (weights.length === 0) throw new Error('logistic regression needs at least one weight');
  if (![...weights, bias].every(Number.isFinite)) throw new Error('weights and bias must be finite numbers');
  if (inputName === outputName) throw new Error('input and output names must differ');
  const features = weights.length;

  const graph: onnxProto.onnx.IGraphProto = {
    name: 'logistic_regression',
    initializer: [floatInitializer('weights', [features, 1], weights), floatInitializer('bias', [1], [bias])],
    node: [
      { name: 'linear', opType: 'MatMul', input: [inputName, 'weights'], output: ['linear_out'] },
      { name: 'add_bias', opType: 'Add', input: ['linear_out', 'bias'], output: ['logit'] },
      { name: 'sigmoid', opType: 'Sigmoid', input: ['logit'], output: [outputName] },
    ],
    input: [{ name: inputName, type: floatTensorType(['batch', features]) }],
    output: [{ name: outputName, type: floatTensorType(['batch', 1]) }],
  };

  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: opset }],
    producerName: 'loopline-example-trainer',
    producerVersion: '0.1.0',
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}
