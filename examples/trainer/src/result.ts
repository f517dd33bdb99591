// The training result (operator/api/training-result.schema.json) the operator reads from the
// termination message, and validation of what we write against the project's contracts.
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';

/** Kubernetes truncates termination messages beyond 4 KiB. */
export const MAX_RESULT_BYTES = 4096;

export interface TensorSpec {
  name: string;
  datatype: 'FP32';
  shape: number[];
}

export interface TrainingResult {
  artifact: { uri: string; digest: string; format: 'onnx' };
  metrics: Record<string, number>;
  signature: { inputs: TensorSpec[]; outputs: TensorSpec[] };
  referenceProfile?: { uri: string; digest: string };
  inputExample?: number[][];
}

function loadSchema(name: string): object {
  return JSON.parse(readFileSync(new URL(`../../../operator/api/${name}`, import.meta.url), 'utf8'));
}

const ajv = new Ajv({ allErrors: true, allowUnionTypes: true });
const resultValidator = ajv.compile(loadSchema('training-result.schema.json'));
const profileValidator = ajv.compile(loadSchema('reference-profile.schema.json'));

function check(validate: typeof resultValidator, what: string, value: unknown): void {
  if (!validate(value)) throw new Error(`${what} does not match its schema: ${ajv.errorsText(validate.errors)}`);
}

export function assertValidReferenceProfile(profile: unknown): void {
  check(profileValidator, 'reference profile', profile);
}

/** The result as one JSON line, after checking it against the schema and the size limit. */
export function serializeResult(result: TrainingResult): string {
  check(resultValidator, 'training result', result);
  const text = JSON.stringify(result);
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_RESULT_BYTES)
    throw new Error(`training result is ${bytes} bytes, over the ${MAX_RESULT_BYTES}-byte limit`);
  return text;
}
