// A grpc-js client of the Open Inference Protocol for tests: the service from the predictor's proto,
// each method as a promise of the response and the server's initial metadata, or of the ServiceError.
import * as grpc from '@grpc/grpc-js';
import { inferenceService } from '../../src/protocol/grpc-service.ts';

const Service = inferenceService();

export type Method = 'ServerLive' | 'ServerReady' | 'ModelReady' | 'ServerMetadata' | 'ModelMetadata' | 'ModelInfer';

export interface Answer<T = any> {
  response: T;
  metadata: grpc.Metadata;
}

export class InferenceClient {
  private readonly client: grpc.Client;

  constructor(port: number) {
    this.client = new Service(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    });
  }

  call<T = any>(method: Method, request: object, metadata: Record<string, string> = {}): Promise<Answer<T>> {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(metadata)) md.set(k, v);
    return new Promise((resolve, reject) => {
      let received = new grpc.Metadata();
      const call = (this.client as any)[method](
        request,
        md,
        { deadline: Date.now() + 10_000 },
        (error: grpc.ServiceError | null, response: T) => {
          if (error) reject(error);
          else resolve({ response, metadata: received });
        },
      );
      call.on('metadata', (m: grpc.Metadata) => (received = m));
    });
  }

  /** The ServiceError of a call that must fail. */
  async error(method: Method, request: object): Promise<grpc.ServiceError> {
    try {
      await this.call(method, request);
    } catch (error) {
      return error as grpc.ServiceError;
    }
    throw new Error(`${method} succeeded but should have failed: ${JSON.stringify(request)}`);
  }

  close(): void {
    this.client.close();
  }
}

export const { status } = grpc;

/** Little-endian bytes of an FP32 tensor, as raw_input_contents carries it. */
export function fp32Bytes(values: number[]): Buffer {
  return Buffer.from(Float32Array.from(values).buffer);
}

export function fp32Of(bytes: Uint8Array): number[] {
  return Array.from(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)));
}
