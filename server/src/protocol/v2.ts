// The Open Inference Protocol (KServe V2) REST API: health, server and model metadata,
// model readiness and inference, with the paths, bodies and errors of the specification.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import {
  EXTENSION as BINARY_EXTENSION,
  binaryInputs,
  binaryOutputs,
  inferBodyParser,
  sendInferAnswer,
} from './binary.ts';
import { checkServedModel, inferV2, recordPrediction, servedModel, type ProtocolContext } from './context.ts';
import { V2_REQUEST_SCHEMA, type V2Request } from './validation.ts';

export const SERVER_NAME = 'loopline-predictor';
export const SERVER_VERSION = '0.1.0';
/** onnxruntime's platform name in the protocol's platform list. */
export const PLATFORM = 'onnxruntime_onnx';
/** Protocol extensions this server implements, as server metadata lists them (REST and gRPC). */
export const EXTENSIONS: string[] = [BINARY_EXTENSION];

interface ModelParams {
  model: string;
  version?: string;
}

const ERROR_SCHEMA = { type: 'object', properties: { error: { type: 'string' } }, required: ['error'] } as const;
const TENSOR_METADATA = {
  type: 'object',
  required: ['name', 'datatype', 'shape'],
  properties: {
    name: { type: 'string' },
    datatype: { type: 'string' },
    shape: { type: 'array', items: { type: 'integer' } },
  },
} as const;

export const v2Routes: FastifyPluginAsync<ProtocolContext> = async (app, ctx) => {
  const { slot, config } = ctx;

  const checkModel = (params: ModelParams) => checkServedModel(ctx, params.model, params.version);

  app.get(
    '/v2/health/live',
    { schema: { response: { 200: { type: 'object', properties: { live: { type: 'boolean' } } } } } },
    async () => ({ live: true }),
  );

  app.get('/v2/health/ready', async (_request, reply) => {
    const ready = slot.ready;
    return reply.code(ready ? 200 : 503).send({ ready });
  });

  app.get(
    '/v2',
    {
      schema: {
        response: {
          200: {
            type: 'object',
            properties: {
              name: { type: 'string' },
              version: { type: 'string' },
              extensions: { type: 'array', items: { type: 'string' } },
            },
          },
        },
      },
    },
    async () => ({
      name: SERVER_NAME,
      version: SERVER_VERSION,
      extensions: EXTENSIONS,
    }),
  );

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

  const infer = async (request: FastifyRequest<{ Params: ModelParams; Body: V2Request }>, reply: FastifyReply) => {
    checkModel(request.params);
    const served = servedModel(ctx, request, reply);
    const body = request.body;
    const parsed = served.parseV2(body, binaryInputs(body, request.tensorBinary));
    const binary = binaryOutputs(body, parsed.outputs);
    const outputs = await inferV2(ctx, served, parsed, body.id || request.id);
    recordPrediction(ctx, request, reply, 'success');
    // servedModel() already set x-model-version to this version.
    return sendInferAnswer(
      reply,
      { model_name: served.name, model_version: served.version, id: body.id ?? request.id },
      parsed.outputs,
      outputs,
      binary,
    );
  };
  const inferOptions = { schema: { body: V2_REQUEST_SCHEMA }, config: { prediction: true } };
  // Infer bodies are JSON, or JSON then binary tensor data (binary.ts); a body with no content type is read the
  // same way, as the binary extension's clients send none.
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(
    ['application/json', 'application/octet-stream', '*'],
    { parseAs: 'buffer' },
    inferBodyParser(json),
  );
  app.post('/v2/models/:model/infer', inferOptions, infer);
  app.post('/v2/models/:model/versions/:version/infer', inferOptions, infer);
};
