// inference.GRPCInferenceService from grpc_predict_v2.proto beside this file: the one way the predictor's gRPC
// server and every client of it (tests, benchmarks, the gateway's tests) load the service.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const PROTO_PATH = fileURLToPath(new URL('./grpc_predict_v2.proto', import.meta.url));
// keepCase: the proto's own field names; longs as numbers, like JSON numbers over REST; arrays and objects:
// repeated fields and maps always present, so an empty tensor needs no special case.
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: false,
  arrays: true,
  objects: true,
  oneofs: true,
};

let service: grpc.ServiceClientConstructor | undefined;

/** The service's constructor: a client of it (`new (…)(address, credentials)`), and `.service` for a server. */
export function inferenceService(): grpc.ServiceClientConstructor {
  service ??= (
    grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS)).inference as grpc.GrpcObject
  ).GRPCInferenceService as grpc.ServiceClientConstructor;
  return service;
}
