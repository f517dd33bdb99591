// The Open Inference Protocol over gRPC (inference.GRPCInferenceService, grpc_predict_v2.proto beside this
// file) on its own port. A request is turned into the REST request's shape and goes through the same parser
// (validation.ts), model slot, batcher, drift window and metrics as REST; only the envelope differs:
// typed `contents` or `raw_input_contents` in, the same out, errors as gRPC status codes with the message
// naming the field (INVALID_ARGUMENT), NOT_FOUND for a model or version not served here, UNAVAILABLE while
// no version is ready.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Feeds } from '../runtime/batcher.ts';
import { InputError, tensorToBytes, tensorToJson, type Datatype } from '../runtime/tensors.ts';
import type { ServedModel } from '../serving.ts';
import {
  HttpError,
  MODEL_VERSION_HEADER,
  REQUEST_ID_HEADER,
  checkServedModel,
  givenRequestId,
  countPrediction,
  countViolation,
  inferV2,
  outcomeOf,
  readyModel,
  type ProtocolContext,
} from './context.ts';
import { inferenceService } from './grpc-service.ts';
import { PLATFORM, SERVER_NAME, SERVER_VERSION, EXTENSIONS } from './v2.ts';
import type { V2Request } from './validation.ts';

type Contents = Partial<Record<ContentsField, unknown[]>>;
type ContentsField =
  | 'bool_contents'
  | 'int_contents'
  | 'int64_contents'
  | 'uint_contents'
  | 'uint64_contents'
  | 'fp32_contents'
  | 'fp64_contents'
  | 'bytes_contents';

interface InferRequest {
  model_name?: string;
  model_version?: string;
  id?: string;
  inputs: Array<{ name?: string; datatype?: string; shape: number[]; contents?: Contents }>;
  outputs: Array<{ name?: string }>;
  raw_input_contents: Buffer[];
}

interface OutputTensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  contents?: Contents;
}

/** The typed field of each datatype; FP16 has none and travels raw only. */
const CONTENTS_FIELD: Record<Datatype, ContentsField | undefined> = {
  BOOL: 'bool_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
  FP16: undefined,
};

/** The gRPC status of an HTTP status, as the protocol's REST and gRPC bindings pair them. */
function codeOf(status: number): grpc.status {
  switch (status) {
    case 400:
      return grpc.status.INVALID_ARGUMENT;
    case 401:
      return grpc.status.UNAUTHENTICATED;
    case 404:
      return grpc.status.NOT_FOUND;
    case 409:
      return grpc.status.ABORTED;
    case 503:
      return grpc.status.UNAVAILABLE;
    default:
      return grpc.status.INTERNAL;
  }
}

/** The request's typed data as the JSON `data` the parser checks; `field` says where it came from. */
function typedData(input: InferRequest['inputs'][number], i: number): unknown[] | undefined {
  const datatype = input.datatype as Datatype;
  if (!(datatype in CONTENTS_FIELD)) return undefined; // the parser reports the datatype
  const field = CONTENTS_FIELD[datatype];
  const contents = input.contents ?? {};
  const set = (Object.keys(contents) as ContentsField[]).filter((k) => (contents[k]?.length ?? 0) > 0);
  if (!field) {
    if (set.length)
      throw new InputError(`inputs[${i}].contents`, 'FP16 has no typed contents; send its data in raw_input_contents');
    return [];
  }
  const stray = set.find((k) => k !== field);
  if (stray)
    throw new InputError(`inputs[${i}].contents.${stray}`, `${datatype} data goes in ${field}; ${stray} must be empty`);
  const values = contents[field] ?? [];
  return field === 'bytes_contents' ? (values as Buffer[]).map((b) => b.toString('utf8')) : values;
}

function outputTensors(names: string[], outputs: Feeds, raw: boolean): { tensors: OutputTensor[]; raw: Uint8Array[] } {
  const tensors: OutputTensor[] = [];
  const bytes: Uint8Array[] = [];
  for (const name of names) {
    const out = outputs[name];
    const tensor: OutputTensor = { name, datatype: out.datatype, shape: out.shape };
    if (raw) bytes.push(tensorToBytes(out.data, out.datatype));
    else {
      const json = tensorToJson(out.data, out.datatype);
      tensor.contents = {
        [CONTENTS_FIELD[out.datatype]!]:
          out.datatype === 'BYTES' ? (json as string[]).map((s) => Buffer.from(s, 'utf8')) : json,
      };
    }
    tensors.push(tensor);
  }
  return { tensors, raw: bytes };
}

export interface GrpcOptions {
  host: string;
  port: number;
  maxMessageBytes: number;
  nextRequestId: () => string;
  log: Logger;
}

export interface RunningGrpcServer {
  port: number;
  /** Stop taking calls, let in-flight calls finish (at most `graceMs`), then close. */
  close(graceMs: number): Promise<void>;
}

type Handler = (
  call: grpc.ServerUnaryCall<any, any>,
  requestId: string,
) => Promise<{ response: unknown; served?: ServedModel }>;

export async function startGrpcServer(ctx: ProtocolContext, options: GrpcOptions): Promise<RunningGrpcServer> {
  const { slot, config, metrics } = ctx;
  const service = inferenceService();

  /** Request id, response metadata, status codes, the duration metric and, for ModelInfer, the prediction metrics. */
  const unary =
    (method: string, handle: Handler, prediction = false): grpc.handleUnaryCall<any, any> =>
    (call, callback) => {
      const started = performance.now();
      const requestId = givenRequestId(call.metadata.get(REQUEST_ID_HEADER)[0]) ?? options.nextRequestId();
      const finish = (code: grpc.status, served: ServedModel | undefined) => {
        const metadata = new grpc.Metadata();
        metadata.set(REQUEST_ID_HEADER, requestId);
        metadata.set(MODEL_VERSION_HEADER, served?.version ?? slot.current?.version ?? config.model.version);
        call.sendMetadata(metadata);
        metrics.grpcRequestDuration
          .series({ grpc_method: method, grpc_code: grpc.status[code] })
          .observe((performance.now() - started) / 1000);
      };
      handle(call, requestId).then(
        ({ response, served }) => {
          if (prediction) countPrediction(ctx, served, 'success', (performance.now() - started) / 1000);
          finish(grpc.status.OK, served);
          callback(null, response);
        },
        (error: unknown) => {
          const status = error instanceof InputError ? 400 : error instanceof HttpError ? error.statusCode : 500;
          const served = slot.serving ? slot.current : undefined;
          if (prediction) {
            if (status === 400) countViolation(ctx, served);
            countPrediction(ctx, served, outcomeOf(status), (performance.now() - started) / 1000);
          }
          if (status >= 500 && status !== 503)
            options.log.error({ err: error, reqId: requestId, method }, 'gRPC call failed');
          const code = codeOf(status);
          finish(code, served);
          callback({
            code,
            details:
              status >= 500 && status !== 503
                ? 'internal error; the server log has the details'
                : (error as Error).message,
          });
        },
      );
    };

  const modelInfer: Handler = async (call, requestId) => {
    const request = call.request as InferRequest;
    checkServedModel(ctx, request.model_name ?? '', request.model_version || undefined);
    const served = readyModel(ctx);
    const raw = request.raw_input_contents;
    if (raw.length > 0 && raw.length !== request.inputs.length) {
      throw new InputError(
        'raw_input_contents',
        `has ${raw.length} entries for ${request.inputs.length} inputs; give one per input, in the order of inputs`,
      );
    }
    const body: V2Request = {
      inputs: request.inputs.map((input, i) => {
        let data: unknown[] | undefined;
        if (raw.length === 0) data = typedData(input, i);
        else if (input.contents && Object.values(input.contents).some((v) => v.length > 0)) {
          throw new InputError(`inputs[${i}].contents`, 'must be empty when the request carries raw_input_contents');
        }
        return {
          name: input.name ?? '',
          datatype: input.datatype ?? '',
          shape: input.shape,
          ...(data ? { data } : {}),
        };
      }),
      ...(request.outputs.length ? { outputs: request.outputs.map((o) => ({ name: o.name ?? '' })) } : {}),
    };
    const parsed = served.parseV2(body, {
      binary: raw.length ? raw : undefined,
      field: (i, binary) =>
        binary
          ? `raw_input_contents[${i}]`
          : `inputs[${i}].contents.${CONTENTS_FIELD[request.inputs[i].datatype as Datatype] ?? 'contents'}`,
    });
    const outputs = await inferV2(ctx, served, parsed, request.id || requestId);
    // Raw answers raw; a typed request gets typed contents unless an output is FP16, which has none.
    const answerRaw = raw.length > 0 || parsed.outputs.some((name) => outputs[name].datatype === 'FP16');
    const { tensors, raw: rawOutputs } = outputTensors(parsed.outputs, outputs, answerRaw);
    return {
      served,
      response: {
        model_name: served.name,
        model_version: served.version,
        id: request.id || requestId,
        outputs: tensors,
        raw_output_contents: rawOutputs,
      },
    };
  };

  const modelMetadata: Handler = async (call) => {
    checkServedModel(ctx, call.request.name ?? '', call.request.version || undefined);
    const served = readyModel(ctx);
    const { inputs, outputs } = served.model.signature;
    return { served, response: { name: served.name, versions: [served.version], platform: PLATFORM, inputs, outputs } };
  };

  const server = new grpc.Server({ 'grpc.max_receive_message_length': options.maxMessageBytes });
  server.addService(service.service, {
    ServerLive: unary('ServerLive', async () => ({ response: { live: true } })),
    ServerReady: unary('ServerReady', async () => ({ response: { ready: slot.ready } })),
    ModelReady: unary('ModelReady', async (call) => {
      checkServedModel(ctx, call.request.name ?? '', call.request.version || undefined);
      return { response: { ready: slot.ready } };
    }),
    ServerMetadata: unary('ServerMetadata', async () => ({
      response: { name: SERVER_NAME, version: SERVER_VERSION, extensions: EXTENSIONS },
    })),
    ModelMetadata: unary('ModelMetadata', modelMetadata),
    ModelInfer: unary('ModelInfer', modelInfer, true),
  });
  const address = `${options.host.includes(':') ? `[${options.host}]` : options.host}:${options.port}`;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    );
  });
  return {
    port,
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
