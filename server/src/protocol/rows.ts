// The simple API of the seed tutorials: POST /predict with one row ("features") or
// many ("instances"), GET /health, and POST /predict/stream for scoring a large
// NDJSON file or stream chunk by chunk without holding it in memory.
import { PassThrough, type Readable } from 'node:stream';
import { once } from 'node:events';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TensorValue } from '../runtime/batcher.ts';
import { InputError } from '../runtime/tensors.ts';
import type { ServedModel } from '../serving.ts';
import { HttpError, recordPrediction, recordViolation, servedModel, type ProtocolContext } from './context.ts';
import { ROWS_REQUEST_SCHEMA, type RowsLayout, type RowsRequest, type RowParser } from './validation.ts';

type Prediction = number | number[] | Record<string, number | number[]>;

/** Per-row predictions: a scalar for a single [N, 1] output, an array for [N, K], an object for several outputs. */
function predictionsOf(served: ServedModel, outputs: Record<string, TensorValue>, rows: number): Prediction[] {
  const specs = served.model.signature.outputs;
  const perOutput = specs.map((spec) => {
    const out = outputs[spec.name];
    const width = rows === 0 ? 0 : out.data.length / rows;
    const data = out.data as Float32Array;
    return Array.from({ length: rows }, (_, r) =>
      width === 1 ? Number(data[r]) : Array.from(data.subarray(r * width, (r + 1) * width), Number),
    );
  });
  if (specs.length === 1) return perOutput[0];
  return Array.from({ length: rows }, (_, r) =>
    Object.fromEntries(specs.map((spec, k) => [spec.name, perOutput[k][r]])),
  );
}

function rowsApi(served: ServedModel): { layout: RowsLayout; parseRow: RowParser } {
  if (typeof served.rows === 'string') throw new HttpError(400, `this model cannot take rows: ${served.rows}`);
  return served.rows;
}

/**
 * Predict `rows` on `served`; their raw values (NaN where a cell was null) go to the drift window and, under
 * `requestId` (row ids from `rowId` when given), to the inference log.
 */
async function predictRows(
  ctx: ProtocolContext,
  served: ServedModel,
  rows: unknown[],
  field: (i: number) => string,
  requestId: string,
  rowId?: (i: number) => string,
): Promise<Prediction[]> {
  const { layout, parseRow } = rowsApi(served);
  const n = rows.length;
  const raw = new Float32Array(n * layout.features);
  const filled = new Float32Array(n * layout.features);
  for (let i = 0; i < n; i++) parseRow(rows[i], raw, filled, i * layout.features, field(i));
  const outputs = await served.model.infer(
    { [layout.input]: { datatype: 'FP32', shape: [n, layout.features], data: filled } },
    n,
  );
  served.drift?.record(raw, n);
  ctx.inferenceLog?.record(served, requestId, { data: raw, features: layout.features }, outputs, n, rowId);
  return predictionsOf(served, outputs, n);
}

/** Lines of a byte stream, refusing any line longer than maxLine bytes. */
async function* lines(stream: Readable, maxLine: number): AsyncGenerator<string | InputError> {
  let carry = '';
  let lineNo = 0;
  let skipping = false;
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    let text = carry + decoder.decode(chunk as Buffer, { stream: true });
    let start = 0;
    let nl: number;
    while ((nl = text.indexOf('\n', start)) >= 0) {
      if (skipping) skipping = false;
      else yield text.slice(start, nl);
      start = nl + 1;
      lineNo++;
    }
    text = text.slice(start);
    if (text.length > maxLine) {
      if (!skipping) yield new InputError(`line ${lineNo + 1}`, `longer than ${maxLine} bytes`);
      skipping = true;
      text = '';
    }
    carry = text;
  }
  carry += decoder.decode();
  if (carry.trim() && !skipping) yield carry;
}

const STREAM_CHUNK_ROWS = 256;

export const rowRoutes: FastifyPluginAsync<ProtocolContext> = async (app, ctx) => {
  const { slot, config } = ctx;

  app.get('/health', async (_request, reply) => {
    const served = slot.current;
    const loaded = slot.ready;
    return reply.code(loaded ? 200 : 503).send({
      status: loaded ? 'ok' : slot.state,
      model_loaded: loaded,
      model_name: config.model.name,
      model_version: served?.version ?? config.model.version,
      ...(slot.failure ? { error: slot.failure } : {}),
    });
  });

  app.post(
    '/predict',
    { schema: { body: ROWS_REQUEST_SCHEMA }, config: { prediction: true } },
    async (request: FastifyRequest, reply: FastifyReply) => {
      const body = request.body as RowsRequest;
      const served = servedModel(ctx, request, reply);
      const single = body.features !== undefined;
      if (single === (body.instances !== undefined)) {
        throw new InputError(
          'body',
          single
            ? 'give either features (one row) or instances (many rows), not both'
            : 'needs features (one row) or instances (many rows)',
        );
      }
      const predictions = single
        ? await predictRows(ctx, served, [body.features], () => 'features', request.id)
        : await predictRows(ctx, served, body.instances!, (i) => `instances[${i}]`, request.id);
      recordPrediction(ctx, request, reply, 'success');
      const common = {
        model_name: served.name,
        model_version: served.version,
        request_id: request.id,
        latency_ms: reply.elapsedTime,
      };
      return single ? { prediction: predictions[0], ...common } : { predictions, ...common };
    },
  );

  // The body stays a stream for this route: it is parsed line by line, never buffered whole.
  app.addContentTypeParser('application/x-ndjson', (_request, payload, done) => done(null, payload));

  app.post(
    '/predict/stream',
    { config: { prediction: true } },
    async (request: FastifyRequest, reply: FastifyReply) => {
      const served = servedModel(ctx, request, reply);
      rowsApi(served);
      if (!request.body || typeof (request.body as Readable).pipe !== 'function') {
        throw new InputError('content-type', 'send newline-delimited JSON rows as application/x-ndjson');
      }
      const input = request.body as Readable;
      const out = new PassThrough();
      void reply.type('application/x-ndjson').send(out);
      const write = async (line: unknown) => {
        if (!out.write(`${JSON.stringify(line)}\n`)) await once(out, 'drain');
      };
      let rows = 0;
      let errors = 0;
      // Answers keep the input order: unparseable lines wait in the chunk as errors.
      let pending: Array<{ index: number; row?: unknown; error?: string }> = [];
      const score = async (p: { index: number; row?: unknown; error?: string }) => {
        if (p.error === undefined) {
          try {
            const [prediction] = await predictRows(
              ctx,
              served,
              [p.row],
              () => `row ${p.index}`,
              request.id,
              () => `${request.id}:${p.index}`,
            );
            return { row: p.index, prediction };
          } catch (error) {
            if (!(error instanceof InputError)) throw error;
            p.error = error.message;
          }
        }
        errors++;
        recordViolation(ctx, request);
        return { row: p.index, error: p.error };
      };
      const flush = async () => {
        if (pending.length === 0) return;
        const chunk = pending;
        pending = [];
        const valid = chunk.filter((p) => p.error === undefined);
        let predictions: Prediction[] | undefined;
        if (valid.length === chunk.length) {
          try {
            predictions = await predictRows(
              ctx,
              served,
              valid.map((p) => p.row),
              (i) => `row ${valid[i].index}`,
              request.id,
              (i) => `${request.id}:${valid[i].index}`,
            );
          } catch (error) {
            if (!(error instanceof InputError)) throw error;
          }
        }
        if (predictions) {
          for (let i = 0; i < chunk.length; i++) await write({ row: chunk[i].index, prediction: predictions[i] });
          return;
        }
        // A bad row must not sink its chunk: score the rows one by one to isolate it.
        for (const p of chunk) await write(await score(p));
      };
      try {
        for await (const line of lines(input, config.bodyLimitBytes)) {
          if (line instanceof InputError) {
            pending.push({ index: rows++, error: line.message });
            continue;
          }
          if (!line.trim()) continue;
          const index = rows++;
          try {
            pending.push({ index, row: JSON.parse(line) });
          } catch (error) {
            pending.push({ index, error: `row ${index}: malformed JSON: ${(error as Error).message}` });
          }
          if (pending.length >= STREAM_CHUNK_ROWS) await flush();
        }
        await flush();
        await write({
          summary: {
            rows,
            errors,
            model_name: served.name,
            model_version: served.version,
            request_id: request.id,
            latency_ms: reply.elapsedTime,
          },
        });
        recordPrediction(ctx, request, reply, 'success');
      } catch (error) {
        request.log.error({ err: error, reqId: request.id }, 'stream scoring failed');
        await write({ error: 'stream scoring failed; the server log has the details' }).catch(() => undefined);
        recordPrediction(ctx, request, reply, 'error');
      } finally {
        out.end();
      }
      return reply;
    },
  );
};
