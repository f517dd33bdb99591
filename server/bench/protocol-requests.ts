// The infer requests protocols.bench.ts sends, one definition for the load generator (protocol-load.ts) and for
// capturing the predictor's answers that the floor (protocol-floor.ts) replays.
export type Kind = 'rest-json' | 'rest-binary' | 'grpc-typed' | 'grpc-raw';

export function inputValues(rows: number, features: number): number[] {
  return Array.from({ length: rows * features }, (_, i) => Math.round(((i * 7919) % 1000) - 500) / 100);
}

/** The REST body and headers of a request of `rows` rows: JSON, or the binary tensor data extension. */
export function restRequest(
  kind: 'rest-json' | 'rest-binary',
  rows: number,
  features: number,
): { body: string | Buffer; headers: Record<string, string> } {
  const values = inputValues(rows, features);
  const input = { name: 'input', shape: [rows, features], datatype: 'FP32' };
  if (kind === 'rest-json')
    return {
      body: JSON.stringify({ inputs: [{ ...input, data: values }] }),
      headers: { 'content-type': 'application/json' },
    };
  const binary = Buffer.from(Float32Array.from(values).buffer);
  const head = Buffer.from(
    JSON.stringify({
      inputs: [{ ...input, parameters: { binary_data_size: binary.length } }],
      parameters: { binary_data_output: true },
    }),
  );
  return {
    body: Buffer.concat([head, binary]),
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length) },
  };
}

/** The ModelInfer request of `rows` rows: typed contents or raw_input_contents. */
export function grpcRequest(kind: 'grpc-typed' | 'grpc-raw', rows: number, features: number): Record<string, unknown> {
  const values = inputValues(rows, features);
  const input = { name: 'input', datatype: 'FP32', shape: [rows, features] };
  return kind === 'grpc-typed'
    ? { model_name: 'credit', inputs: [{ ...input, contents: { fp32_contents: values } }] }
    : { model_name: 'credit', inputs: [input], raw_input_contents: [Buffer.from(Float32Array.from(values).buffer)] };
}

/** What the predictor answered, per protocol and row count: the floor (protocol-floor.ts) replays it. */
export interface FloorAnswers {
  rest: Record<string, { contentType: string; headers: Record<string, string>; bodyBase64: string }>;
  grpc: Record<string, unknown>;
}
export const answerKey = (kind: string, rows: number) => `${kind} ${rows}`;
