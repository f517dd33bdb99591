// What the protocol routes share: the model slot, metrics, configuration, and the
// bookkeeping every prediction does (outcome metrics, drift schema-violation counts).
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ModelConfig, ServerConfig } from '../config.ts';
import type { InferenceLog } from '../ground-truth/inference-log.ts';
import type { Outcome, ServerMetrics } from '../metrics/metrics.ts';
import type { Feeds } from '../runtime/batcher.ts';
import type { ModelSlot, ServedModel } from '../serving.ts';
import type { ParsedV2Request } from './validation.ts';
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
  /** The sample of predictions written to object storage (spec.logging), when it is on. */
  inferenceLog?: InferenceLog;
  /** Hot swap: this process's slot, or every worker's of the pod (workers.ts). */
  swap(model: ModelConfig): Promise<{ previous: string | undefined }>;
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
export const REQUEST_ID_HEADER = 'x-request-id';
const MAX_REQUEST_ID_LENGTH = 128;

/** A caller's request id (x-request-id header or gRPC metadata), if it is one we pass on; else undefined. */
export function givenRequestId(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_REQUEST_ID_LENGTH ? value : undefined;
}

/** HttpError 404 unless `model` is the served model and `version`, if given, the served version. */
export function checkServedModel(ctx: ProtocolContext, model: string, version: string | undefined): void {
  const { config, slot } = ctx;
  if (model !== config.model.name)
    throw new HttpError(404, `model "${model}" is not served here (this server serves "${config.model.name}")`);
  const serving = slot.current?.version ?? config.model.version;
  if (version !== undefined && version !== serving) {
    throw new HttpError(404, `model "${model}" version "${version}" is not served here (serving version "${serving}")`);
  }
}

/** The ready model version, or HttpError 503 saying why there is none. */
export function readyModel(ctx: ProtocolContext): ServedModel {
  const served = ctx.slot.current;
  if (!served || !ctx.slot.serving) {
    throw new HttpError(
      503,
      `model ${ctx.config.model.name} is not ready (${ctx.slot.state}${ctx.slot.failure ? `: ${ctx.slot.failure}` : ''})`,
    );
  }
  return served;
}

/** The ready model version for a request, pinned for the rest of it (a swap mid-request does not move it). */
export function servedModel(ctx: ProtocolContext, request: FastifyRequest, reply: FastifyReply): ServedModel {
  const served = readyModel(ctx);
  request.served = served;
  reply.header(MODEL_VERSION_HEADER, served.version);
  return served;
}

/**
 * Infer a parsed V2 request on `served`, copy its input rows into the version's drift window and offer the
 * prediction to the inference log under `requestId` (the request's `id`, else its x-request-id).
 */
export async function inferV2(
  ctx: ProtocolContext,
  served: ServedModel,
  parsed: ParsedV2Request,
  requestId: string,
): Promise<Feeds> {
  const outputs = await served.model.infer(parsed.feeds, parsed.rows);
  const drift = served.drift;
  const tensor = parsed.feeds[served.model.signature.inputs[0].name];
  if (drift) {
    if (tensor.shape.length === 2 && tensor.shape[1] === drift.featureCount)
      drift.record(tensor.data as Float32Array, tensor.shape[0]);
  }
  if (ctx.inferenceLog) {
    const layout = typeof served.rows === 'string' ? undefined : served.rows.layout;
    const input =
      layout && tensor.shape.length === 2 && tensor.shape[1] === layout.features
        ? { data: tensor.data as Float32Array, features: layout.features }
        : undefined;
    ctx.inferenceLog.record(served, requestId, input, outputs, parsed.rows);
  }
  return outputs;
}

/** One prediction request answered by `served` (or refused before a version was chosen), whatever the protocol. */
export function countPrediction(
  ctx: ProtocolContext,
  served: ServedModel | undefined,
  outcome: Outcome,
  seconds: number,
): void {
  const model = served?.name ?? ctx.config.model.name;
  const version = served?.version ?? ctx.slot.current?.version ?? ctx.config.model.version;
  ctx.metrics.recordPrediction(model, version, outcome, seconds);
}

/** Bad input on a prediction is a schema violation of the version that would have answered it. */
export function countViolation(ctx: ProtocolContext, served: ServedModel | undefined): void {
  const version = served ?? (ctx.slot.serving ? ctx.slot.current : undefined);
  if (!version) return;
  ctx.metrics.schemaViolations.inc({ model: version.name, model_version: version.version });
  version.drift?.recordViolation();
}

export function recordPrediction(
  ctx: ProtocolContext,
  request: FastifyRequest,
  reply: FastifyReply,
  outcome: Outcome,
): void {
  countPrediction(ctx, request.served, outcome, reply.elapsedTime / 1000);
}

export function recordViolation(ctx: ProtocolContext, request: FastifyRequest): void {
  countViolation(ctx, request.served);
}

export function outcomeOf(status: number): Outcome {
  if (status === 503) return 'unavailable';
  if (status >= 500) return 'error';
  return 'invalid_input';
}

export function isInputError(error: unknown): error is InputError {
  return error instanceof InputError;
}
