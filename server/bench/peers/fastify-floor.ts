// The floor for peers.bench.ts: bare fastify with no model and no Loopline logic. It receives the very same Open
// Inference Protocol infer request, JSON-parses it (fastify's own parser), and answers the answer our predictor
// gave to the same request (captured by the bench before timing; ANSWERS: a JSON file keyed by row count), as an
// object fastify serializes per request, so the 100 probabilities are turned into text on every answer as ours are.
// Same headers (x-request-id as long as ours, x-model-version) and the same bytes on the wire.
//   PORT=... ANSWERS=/path/answers.json node server/bench/peers/fastify-floor.js
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const answers = JSON.parse(readFileSync(process.env.ANSWERS!, 'utf8')) as Record<string, unknown>;
const requestId = '00000000-0000-4000-8000-000000000001';
const app = Fastify({ bodyLimit: 64 * 2 ** 20 });
app.get('/', async () => ({ ready: true }));
app.post('/v2/models/credit/infer', async (request, reply) => {
  const rows = (request.body as { inputs?: Array<{ shape?: number[] }> }).inputs?.[0]?.shape?.[0];
  const answer = answers[String(rows)];
  if (!answer) return reply.code(400).send({ error: `no captured answer for ${rows} rows` });
  reply.header('x-request-id', requestId).header('x-model-version', '1');
  return { ...(answer as object), id: requestId };
});
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.stdout.write('listening\n');
