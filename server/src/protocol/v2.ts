// The Open Inference Protocol (KServe V2) REST API: health, server and model metadata,
// model readiness and inference, with the paths, bodies and errors of the specification.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { tensorToJson } from '../runtime/tensors.ts';
import { checkServedModel, inferV2, recordPrediction, servedModel, type ProtocolContext } from './context.ts';
import { V2_REQUEST_SCHEMA } from './validation.ts';

export const SERVER_NAME = 'loopline-predictor';
export const SERVER_VERSION = '0.1.0';
/** onnxruntime's platform name in the protocol's platform list. */
export const PLATFORM = 'onnxruntime_onnx';
/** Protocol extensions this server implements, as server metadata lists them (REST and gRPC). */
export const EXTENSIONS: string[] = [];

interface ModelParams {
  model: string;
  version?: string;
}

const ERROR_SCHEMA = { type: 'object', properties: { error: { type: 'string' } }, required: ['error'] } as const;
const TENSOR_METADATA = {
  type: 'object',
  required: ['name', 'datatype', 'shape'],
  properties: { name: { type: 'string' }, datatype: { type: 'string' }, shape: { type: 'array', items: { type: 'integer' } } },
} as const;

export const v2Routes: FastifyPluginAsync<ProtocolContext> = async (app, ctx) => {
  const { slot, config } = ctx;

  const checkModel = (params: ModelParams) => checkServedModel(ctx, params.model, params.version);

  app.get('/v2/health/live', { schema: { response: { 200: { type: 'object', properties: { live: { type: 'boolean' } } } } } }, async () => ({ live: true }));

  app.get('/v2/health/ready', async (_request, reply) => {
    const ready = slot.ready;
    return reply.code(ready ? 200 : 503).send({ ready });
  });

  app.get('/v2', { schema: { response: { 200: { type: 'object', properties: { name: { type: 'string' }, version: { type: 'string' }, extensions: { type: 'array', items: { type: 'string' } } } } } } }, async () => ({
    name: SERVER_NAME,
    version: SERVER_VERSION,
    extensions: EXTENSIONS,
  }));

  const modelReady = async (request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    checkModel(request.params);
    const ready = slot.ready;
    return reply.code(ready ? 200 : 503).send({ name: config.model.name, ready });
  };
  app.get('/v2/models/:model/ready', modelReady);
  app.get('/v2/models/:model/versions/:version/ready', modelReady);

  const metadataSchema = {
    response: {
      200: {
        type: 'object',
        required: ['name', 'platform', 'inputs', 'outputs'],
        properties: {
          name: { type: 'string' },
          versions: { type: 'array', items: { type: 'string' } },
          platform: { type: 'string' },
          inputs: { type: 'array', items: TENSOR_METADATA },
          outputs: { type: 'array', items: TENSOR_METADATA },
        },
      },
      '4xx': ERROR_SCHEMA,
      '5xx': ERROR_SCHEMA,
    },
  };
  const modelMetadata = async (request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    checkModel(request.params);
    const served = servedModel(ctx, request, reply);
    return {
      name: served.name,
      versions: [served.version],
      platform: PLATFORM,
      inputs: served.model.signature.inputs,
      outputs: served.model.signature.outputs,
    };
  };
  app.get('/v2/models/:model', { schema: metadataSchema }, modelMetadata);
  app.get('/v2/models/:model/versions/:version', { schema: metadataSchema }, modelMetadata);

  const infer = async (request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    checkModel(request.params);
    const served = servedModel(ctx, request, reply);
    const parsed = served.parseV2(request.body);
    const outputs = await inferV2(served, parsed);
    const body = {
      model_name: served.name,
      model_version: served.version,
      id: (request.body as { id?: string }).id ?? request.id,
      outputs: parsed.outputs.map((name) => {
        const out = outputs[name];
        return { name, datatype: out.datatype, shape: out.shape, data: tensorToJson(out.data, out.datatype) };
      }),
    };
    recordPrediction(ctx, request, reply, 'success');
    // servedModel() already set x-model-version to this version.
    return reply.send(body);
  };
  const inferOptions = { schema: { body: V2_REQUEST_SCHEMA }, config: { prediction: true } };
  app.post('/v2/models/:model/infer', inferOptions, infer);
  app.post('/v2/models/:model/versions/:version/infer', inferOptions, infer);
};
