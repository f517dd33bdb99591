// What the protocol routes share: the model slot, metrics, configuration, and the
// bookkeeping every prediction does (outcome metrics, drift schema-violation counts).
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerConfig } from '../config.ts';
import type { Outcome, ServerMetrics } from '../metrics/metrics.ts';
import type { ModelSlot, ServedModel } from '../serving.ts';
import { InputError } from '../runtime/tensors.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Counted in prediction_requests_total / prediction_latency_seconds. */
    prediction?: boolean;
  }
  interface FastifyRequest {
    /** The model version answering this request, once chosen. */
    served?: ServedModel;
  }
}

export interface ProtocolContext {
  slot: ModelSlot;
  metrics: ServerMetrics;
  config: ServerConfig;
}

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

export const MODEL_VERSION_HEADER = 'x-model-version';

/** The ready model version for a request, pinned for the rest of it (a swap mid-request does not move it). */
export function servedModel(ctx: ProtocolContext, request: FastifyRequest, reply: FastifyReply): ServedModel {
  const served = ctx.slot.current;
  if (!served || !ctx.slot.ready) {
    throw new HttpError(503, `model ${ctx.config.model.name} is not ready (${ctx.slot.state}${ctx.slot.failure ? `: ${ctx.slot.failure}` : ''})`);
  }
  request.served = served;
  reply.header(MODEL_VERSION_HEADER, served.version);
  return served;
}

export function recordPrediction(ctx: ProtocolContext, request: FastifyRequest, reply: FastifyReply, outcome: Outcome): void {
  const model = request.served?.name ?? ctx.config.model.name;
  const version = request.served?.version ?? ctx.slot.current?.version ?? ctx.config.model.version;
  ctx.metrics.recordPrediction(model, version, outcome, reply.elapsedTime / 1000);
}

/** Bad input on a prediction route is a schema violation of the version that would have answered it. */
export function recordViolation(ctx: ProtocolContext, request: FastifyRequest): void {
  const served = request.served ?? (ctx.slot.ready ? ctx.slot.current : undefined);
  if (!served) return;
  ctx.metrics.schemaViolations.inc({ model: served.name, model_version: served.version });
  served.drift?.recordViolation();
}

export function outcomeOf(status: number): Outcome {
  if (status === 503) return 'unavailable';
  if (status >= 500) return 'error';
  return 'invalid_input';
}

export function isInputError(error: unknown): error is InputError {
  return error instanceof InputError;
}
