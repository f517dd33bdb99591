// The HTTP floor for serve.bench.ts: a bare fastify route that parses the same JSON body
// and answers a constant V2 infer response of the same shape.
//   PORT=... node --import tsx server/bench/bare.ts
import Fastify from 'fastify';

const app = Fastify();
const answer = { model_name: 'credit', model_version: '1', id: 'constant', outputs: [{ name: 'probability', datatype: 'FP32', shape: [1, 1], data: [0.5] }] };
app.post('/v2/models/credit/infer', async () => answer);
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.stdout.write('listening\n');
