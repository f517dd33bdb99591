// A model version ready to serve: verified artifact, onnxruntime session, its
// signature checked against the session, and the batcher in front of it.
import ort from 'onnxruntime-node';
import { fetchVerified } from './artifact.ts';
import { Batcher, type Feeds, type TensorValue } from './batcher.ts';
import { Session } from './session.ts';
import { ORT_TYPE, allocate, type Signature, type TensorSpec } from './tensors.ts';

export interface ModelSource {
  name: string;
  version: string;
  uri: string;
  digest: string;
  /** The ModelVersion signature; read from the ONNX graph when absent. */
  signature?: Signature;
}

export interface RuntimeOptions {
  batching: boolean;
  maxBatchSize: number;
  maxWaitMs: number;
  intraOpThreads: number;
  onRun?: (rows: number) => void;
}

export class LoadedModel {
  /** Every input and output has a variable first dimension, so rows can be split and joined. */
  readonly batchable: boolean;
  private readonly batcher: Batcher | undefined;
  private unbatchedActive = 0;
  private unbatchedIdle: Array<() => void> = [];

  private constructor(
    readonly name: string,
    readonly version: string,
    readonly signature: Signature,
    private readonly session: Session,
    private readonly options: RuntimeOptions,
  ) {
    this.batchable = batchable(signature);
    this.batcher =
      options.batching && this.batchable
        ? new Batcher((feeds) => this.run(feeds), {
            maxBatchSize: options.maxBatchSize,
            maxWaitMs: options.maxWaitMs,
            onRun: options.onRun,
          })
        : undefined;
  }

  static async load(source: ModelSource, options: RuntimeOptions): Promise<LoadedModel> {
    const bytes = await fetchVerified(source.uri, source.digest);
    const session = Session.create(bytes, { intraOpThreads: options.intraOpThreads });
    try {
      const signature = source.signature ?? signatureOf(session);
      checkSignature(signature, session);
      const model = new LoadedModel(source.name, source.version, signature, session, options);
      model.warmUp();
      return model;
    } catch (error) {
      session.release();
      throw error;
    }
  }

  get batching(): boolean {
    return this.batcher !== undefined;
  }

  /** Infer `rows` rows (dimension 0 of every input). */
  infer(feeds: Feeds, rows: number): Promise<Feeds> {
    // The batcher's own promise, handed back as it is: wrapping it in an async function's
    // promise would cost another promise and two microtask turns per request.
    return this.batcher ? this.batcher.infer(feeds, rows) : this.inferAlone(feeds, rows);
  }

  private async inferAlone(feeds: Feeds, rows: number): Promise<Feeds> {
    this.unbatchedActive++;
    try {
      // Unbatched, a request still runs after this turn's I/O rather than inside its own callback (as
      // onnxruntime-node's public run() defers it): the answers to the requests read in one turn then go
      // out together. Run inline, each answer was written alone and c=16 fell from 13.6k to 8.7k req/s.
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.options.onRun?.(rows);
      return this.run(feeds);
    } finally {
      if (--this.unbatchedActive === 0) for (const wake of this.unbatchedIdle.splice(0)) wake();
    }
  }

  /** Wait for every accepted request to be answered, then free the session. */
  async retire(): Promise<void> {
    if (this.batcher) await this.batcher.idle();
    if (this.unbatchedActive > 0) await new Promise<void>((resolve) => this.unbatchedIdle.push(resolve));
    this.session.release();
  }

  /** One session run, synchronous (see session.ts). */
  private run(feeds: Feeds): Feeds {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const name in feeds) {
      const t = feeds[name];
      ortFeeds[name] = new ort.Tensor(ORT_TYPE[t.datatype], t.data as Float32Array, t.shape);
    }
    const results = this.session.run(ortFeeds);
    const outputs: Feeds = {};
    for (const spec of this.signature.outputs) {
      const tensor = results[spec.name] as ort.Tensor;
      outputs[spec.name] = {
        datatype: spec.datatype,
        shape: tensor.dims.slice(),
        data: tensor.data as TensorValue['data'],
      };
    }
    return outputs;
  }

  /** One run on zeros so the first real request does not pay for lazy initialisation. */
  private warmUp(): void {
    const feeds: Feeds = {};
    for (const spec of this.signature.inputs) {
      const shape = spec.shape.map((d) => (d < 0 ? 1 : d));
      feeds[spec.name] = {
        datatype: spec.datatype,
        shape,
        data: allocate(
          spec.datatype,
          shape.reduce((a, b) => a * b, 1),
        ),
      };
    }
    this.run(feeds);
  }
}

/** Batching splits along dimension 0, so every input and output must have a variable first dimension. */
function batchable(signature: Signature): boolean {
  return [...signature.inputs, ...signature.outputs].every((t) => t.shape.length >= 1 && t.shape[0] === -1);
}

export function signatureOf(session: Session): Signature {
  return { inputs: session.inputs, outputs: session.outputs };
}

/** The declared signature must describe the graph: same names, datatypes and compatible shapes. */
function checkSignature(declared: Signature, session: Session): void {
  const actual = signatureOf(session);
  const problems: string[] = [];
  const compare = (kind: 'input' | 'output', want: TensorSpec[], have: TensorSpec[]) => {
    for (const spec of want) {
      const real = have.find((t) => t.name === spec.name);
      if (!real) {
        problems.push(`${kind} "${spec.name}" is not in the model (it has ${have.map((t) => t.name).join(', ')})`);
        continue;
      }
      if (real.datatype !== spec.datatype)
        problems.push(`${kind} "${spec.name}" is ${real.datatype} in the model, ${spec.datatype} in the signature`);
      const shapeOk =
        real.shape.length === spec.shape.length && real.shape.every((d, i) => d === -1 || spec.shape[i] === d);
      if (!shapeOk)
        problems.push(
          `${kind} "${spec.name}" has shape [${real.shape}] in the model, [${spec.shape}] in the signature`,
        );
    }
  };
  compare('input', declared.inputs, actual.inputs);
  compare('output', declared.outputs, actual.outputs);
  for (const real of actual.inputs) {
    if (!declared.inputs.some((t) => t.name === real.name))
      problems.push(`model input "${real.name}" is missing from the signature`);
  }
  if (problems.length) throw new Error(`signature does not match the model: ${problems.join('; ')}`);
}
