// Every error leaves as the protocol's {"error": "..."} body. Bad input of any kind is a
// 400 naming the field (malformed JSON, oversized bodies and schema failures included);
// 5xx is kept for the server's own failures.
import type { FastifyError, FastifyInstance } from 'fastify';
import { InputError } from '../runtime/tensors.ts';
import { describeAjvError } from './validation.ts';
import { HttpError, outcomeOf, recordPrediction, recordViolation, type ProtocolContext } from './context.ts';

interface Classified {
  status: number;
  message: string;
}

function classify(error: FastifyError, body: unknown, bodyLimit: number): Classified {
  if (error instanceof InputError) return { status: 400, message: error.message };
  if (error instanceof HttpError) return { status: error.statusCode, message: error.message };
  if (error.validation?.length) {
    const first = error.validation[0] as Parameters<typeof describeAjvError>[0];
    return { status: 400, message: describeAjvError(first, body, error.validationContext ?? 'body').message };
  }
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 400, message: `body: larger than the limit of ${bodyLimit} bytes` };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, message: `body: ${error.message}` };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, message: `content-type: ${error.message}` };
  }
  if (error instanceof SyntaxError || (error as { statusCode?: number }).statusCode === 400) {
    return { status: 400, message: `body: malformed JSON: ${error.message}` };
  }
  const status = error.statusCode ?? 500;
  if (status < 500) return { status, message: error.message };
  return { status, message: 'internal error; the server log has the details' };
}

export function installErrorHandling(app: FastifyInstance, ctx: ProtocolContext): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const { status, message } = classify(error, request.body, ctx.config.bodyLimitBytes);
    if (status >= 500 && status !== 503)
      request.log.error({ err: error, reqId: request.id, url: request.url }, 'request failed');
    if (request.routeOptions.config?.prediction) {
      if (status === 400) recordViolation(ctx, request);
      recordPrediction(ctx, request, reply, outcomeOf(status));
    }
    void reply.code(status).send({ error: message });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: `no route for ${request.method} ${request.url.split('?')[0]}` });
  });
}
