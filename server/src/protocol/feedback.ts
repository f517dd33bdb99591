// Ground-truth labels for logged predictions: POST /v2/models/{model}/feedback and POST /feedback (the simple
// API) take one {request_id, label} or an array of them, and answer only once the labels are durable in object
// storage (docs/ground-truth.md). Its own plugin, so the default JSON body parser applies: an infer body's
// binary extension has no place here.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { parseFeedback, type LabelWriter } from '../ground-truth/labels.ts';
import { HttpError, checkServedModel, type ProtocolContext } from './context.ts';

export const feedbackRoutes: FastifyPluginAsync<ProtocolContext & { labels: LabelWriter | undefined }> = async (
  app,
  ctx,
) => {
  const { config, metrics, labels } = ctx;

  const feedback = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!labels) {
      throw new HttpError(
        409,
        `feedback needs the inference log, which is off for InferenceService ${config.namespace}/${config.inferenceService}: set spec.logging.enabled and spec.logging.uri`,
      );
    }
    const type = request.headers['content-type'] ?? '';
    if (!/^application\/json\s*(;|$)/i.test(type))
      throw new HttpError(415, `content-type: send labels as application/json, got ${JSON.stringify(type)}`);
    const parsed = parseFeedback(request.body);
    let uri: string;
    try {
      uri = await labels.write(parsed);
    } catch (error) {
      request.log.error({ err: error, reqId: request.id, labels: parsed.length }, 'writing feedback labels failed');
      // The storage error names the URI and the S3 code, never a key: the caller may retry the same labels.
      throw new HttpError(503, `labels not stored, send them again: ${(error as Error).message}`);
    }
    metrics.feedbackLabels.inc(parsed.length);
    return reply.code(200).send({ accepted: parsed.length, part: uri });
  };

  app.post('/v2/models/:model/feedback', async (request: FastifyRequest<{ Params: { model: string } }>, reply) => {
    checkServedModel(ctx, request.params.model, undefined);
    return feedback(request, reply);
  });
  app.post('/feedback', feedback);
};
