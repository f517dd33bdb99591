// PUT /admin/model: hot swap to another model version. Enabled only when the server has
// an admin token; the operator normally rolls a new Deployment instead.
import { timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import type { ModelConfig } from '../config.ts';
import { SwapInProgressError } from '../serving.ts';
import type { Signature } from '../runtime/tensors.ts';
import { HttpError, type ProtocolContext } from './context.ts';

const DIGEST = '^sha256:[0-9a-f]{64}$';
const URI = '^(file|https?|s3)://';

interface SwapBody {
  version: string;
  uri: string;
  digest: string;
  signature?: Signature;
  referenceProfile?: { uri: string; digest: string };
}

const SWAP_SCHEMA = {
  type: 'object',
  required: ['version', 'uri', 'digest'],
  additionalProperties: false,
  properties: {
    version: { type: 'string', minLength: 1 },
    uri: { type: 'string', pattern: URI },
    digest: { type: 'string', pattern: DIGEST },
    signature: {
      type: 'object',
      required: ['inputs', 'outputs'],
      properties: { inputs: { type: 'array', minItems: 1 }, outputs: { type: 'array', minItems: 1 } },
    },
    referenceProfile: {
      type: 'object',
      required: ['uri', 'digest'],
      additionalProperties: false,
      properties: { uri: { type: 'string', pattern: URI }, digest: { type: 'string', pattern: DIGEST } },
    },
  },
} as const;

function tokenMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(header?.startsWith('Bearer ') ? header.slice(7) : '');
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export const adminRoutes: FastifyPluginAsync<ProtocolContext & { token: string }> = async (app, ctx) => {
  app.addHook('onRequest', async (request) => {
    if (!tokenMatches(request.headers.authorization, ctx.token))
      throw new HttpError(401, 'admin endpoints need "Authorization: Bearer <ADMIN_TOKEN>"');
  });

  app.put('/admin/model', { schema: { body: SWAP_SCHEMA } }, async (request) => {
    const body = request.body as SwapBody;
    const next: ModelConfig = {
      name: ctx.config.model.name,
      version: body.version,
      artifact: { uri: body.uri, digest: body.digest },
      signature: body.signature,
      referenceProfile: body.referenceProfile,
    };
    try {
      const { previous } = await ctx.swap(next);
      return { model_name: next.name, model_version: next.version, previous_version: previous ?? null };
    } catch (error) {
      if (error instanceof SwapInProgressError) throw new HttpError(409, error.message);
      // The old version keeps serving; the caller learns why the new one was refused.
      throw new HttpError(400, `model version ${body.version} was not loaded: ${(error as Error).message}`);
    }
  });
};
