// The floor for protocols.bench.ts: the same two protocols with no model behind them. A bare fastify route and a
// bare grpc-js ModelInfer that decode the request as the predictor must (fastify's JSON parser, the binary
// extension's JSON header, protobuf) and answer, byte for byte, what the predictor answered to the same request,
// captured by the bench beforehand (ANSWERS: a JSON file). What is left between the floor and the predictor is the
// work behind the answer: validation, tensors, session.run, metrics, request ids.
//   PORT=... GRPC_PORT=... ANSWERS=/path/answers.json node server/bench/protocol-floor.js
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import Fastify from 'fastify';
import { answerKey, type FloorAnswers } from './protocol-requests.ts';

const answers = JSON.parse(readFileSync(process.env.ANSWERS!, 'utf8')) as FloorAnswers;
const rest = Object.fromEntries(
  Object.entries(answers.rest).map(([k, a]) => [k, { ...a, body: Buffer.from(a.bodyBase64, 'base64') }]),
);

const app = Fastify({ bodyLimit: 64 * 2 ** 20 });
app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
app.post('/v2/models/credit/infer', async (request, reply) => {
  let kind = 'rest-json';
  let head = request.body as { inputs?: Array<{ shape?: number[] }> };
  if (Buffer.isBuffer(request.body)) {
    kind = 'rest-binary';
    const length = Number(request.headers['inference-header-content-length']);
    head = JSON.parse(request.body.subarray(0, length).toString('utf8'));
  }
  const answer = rest[answerKey(kind, head.inputs?.[0]?.shape?.[0] ?? 0)];
  if (!answer) return reply.code(400).send({ error: 'no captured answer for this request' });
  for (const [name, value] of Object.entries(answer.headers)) reply.header(name, value);
  return reply.type(answer.contentType).send(answer.body);
});
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });

const proto = fileURLToPath(new URL('../src/protocol/grpc_predict_v2.proto', import.meta.url));
const definition = protoLoader.loadSync(proto, { keepCase: true, longs: String, enums: String, oneofs: true });
const Service = (grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject)
  .GRPCInferenceService as grpc.ServiceClientConstructor;
const grpcAnswers = Object.fromEntries(
  Object.entries(answers.grpc).map(([k, a]) => {
    const answer = a as { raw_output_contents?: string[] };
    return [
      k,
      answer.raw_output_contents
        ? { ...answer, raw_output_contents: answer.raw_output_contents.map((b) => Buffer.from(b, 'base64')) }
        : answer,
    ];
  }),
);
// The predictor's response metadata: a request id as long as its, and the model version.
const metadata = new grpc.Metadata();
metadata.set('x-request-id', '00000000-0000-4000-8000-000000000001');
metadata.set('x-model-version', '1');
const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 2 ** 20 });
server.addService(Service.service, {
  ModelInfer: (
    call: grpc.ServerUnaryCall<{ inputs?: Array<{ shape?: string[] }>; raw_input_contents?: Buffer[] }, unknown>,
    callback: grpc.sendUnaryData<unknown>,
  ) => {
    const kind = call.request.raw_input_contents?.length ? 'grpc-raw' : 'grpc-typed';
    const answer = grpcAnswers[answerKey(kind, Number(call.request.inputs?.[0]?.shape?.[0] ?? 0))];
    if (!answer) callback({ code: grpc.status.INVALID_ARGUMENT, details: 'no captured answer for this request' });
    else {
      call.sendMetadata(metadata);
      callback(null, answer);
    }
  },
});
await new Promise<void>((resolve, reject) =>
  server.bindAsync(`127.0.0.1:${process.env.GRPC_PORT}`, grpc.ServerCredentials.createInsecure(), (error) =>
    error ? reject(error) : resolve(),
  ),
);
process.stdout.write('listening\n');
