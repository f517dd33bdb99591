// The result contract: the JSON a training container leaves in its termination message
// (operator/api/training-result.schema.json). Nothing is registered from a result that fails here.
import { Ajv, type ErrorObject } from 'ajv';
import schema from '../api/training-result.schema.json' with { type: 'json' };
import type { TensorSpec } from '../api/types.ts';

/** What operator/api/training-result.schema.json describes. */
export interface TrainingResult {
  artifact: { uri: string; digest: string; format: 'onnx' };
  metrics: Record<string, number>;
  signature: { inputs: TensorSpec[]; outputs: TensorSpec[] };
  referenceProfile?: { uri: string; digest: string };
  inputExample?: Array<Array<number | string | null>>;
}

export type ResultVerdict = { ok: true; result: TrainingResult } | { ok: false; reason: string };

const validate = new Ajv({ allErrors: true, strict: false }).compile<TrainingResult>(schema);

/** Parses and validates the termination message of a training container; on failure says exactly what was wrong. */
export function parseTrainingResult(message: string | undefined): ResultVerdict {
  const text = message?.trim() ?? '';
  if (text === '') {
    return {
      ok: false,
      reason:
        'the trainer exited 0 but wrote no training result: write the result JSON to the termination message path (LOOPLINE_RESULT_PATH, /dev/termination-log)',
    };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return {
      ok: false,
      reason: `the training result is not valid JSON (${(err as Error).message}); it starts with ${JSON.stringify(text.slice(0, 60))}`,
    };
  }
  const artifact = (parsed as { artifact?: { digest?: unknown } } | null)?.artifact;
  if (
    parsed &&
    typeof parsed === 'object' &&
    artifact &&
    typeof artifact === 'object' &&
    artifact.digest === undefined
  ) {
    return {
      ok: false,
      reason:
        'the training result has no artifact.digest: a model is never registered without the sha256 digest of its file (sha256:<64 hex>)',
    };
  }
  if (!validate(parsed)) {
    return {
      ok: false,
      reason: `the training result does not match the result contract: ${describeErrors(validate.errors ?? [])}`,
    };
  }
  return { ok: true, result: parsed };
}

function describeErrors(errors: ErrorObject[]): string {
  return errors
    .slice(0, 5)
    .map((e) => {
      const where = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : 'the result';
      if (e.keyword === 'additionalProperties')
        return `${where} has unknown field ${(e.params as { additionalProperty: string }).additionalProperty}`;
      if (e.keyword === 'required')
        return `${where} is missing ${(e.params as { missingProperty: string }).missingProperty}`;
      return `${where} ${e.message}`;
    })
    .join('; ');
}
