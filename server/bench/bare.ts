// The HTTP floor for serve.bench.ts: a bare fastify route that parses the same JSON body and
// answers a constant V2 infer response of the same shape, byte for byte the size of the
// predictor's: the same protocol headers (x-request-id, x-model-version) with a request id as long
// as the predictor's, and a probability with as many digits. Every byte the predictor must send
// (the issue asks every response to carry the model version and a request id) is in the floor too,
// so the comparison is the work behind the answer, not the length of it.
//   PORT=... node --import tsx server/bench/bare.ts
import Fastify from 'fastify';

const app = Fastify();
const requestId = '00000000-0000-4000-8000-000000000001';
const answer = {
  model_name: 'credit',
  model_version: '1',
  id: requestId,
  outputs: [{ name: 'probability', datatype: 'FP32', shape: [1, 1], data: [0.011040747165679932] }],
};
app.post('/v2/models/credit/infer', async (_request, reply) => {
  reply.header('x-request-id', requestId).header('x-model-version', '1');
  return answer;
});
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.stdout.write('listening\n');
