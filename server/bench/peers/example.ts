// The example trainer's output, which every peer is measured on: model.onnx (and its weights, for the
// scikit-learn copy MLServer serves) and profile.json (the drift reference Evidently gets as its reference data).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import onnxProto from 'onnx-proto';
import { parseReferenceProfile, type ReferenceProfile } from '../../src/drift/profile.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));

export interface ExampleModel {
  modelPath: string;
  profilePath: string;
  profile: ReferenceProfile;
  /** The predictor's environment for this model, as the operator would set it. */
  env: Record<string, string>;
  /** The first row of the trainer's input example (the features of one request). */
  row: number[];
  /** The float32 weights and bias in the ONNX initializers, widened to numbers exactly. */
  weights: number[];
  bias: number;
}

/** Runs examples/trainer (defaults: 4000 generated rows, seed 42) into `dir`. */
export function trainExample(dir: string): ExampleModel {
  mkdirSync(dir, { recursive: true });
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'examples/trainer/src/main.ts'], {
    cwd: root,
    env: {
      ...process.env,
      LOOPLINE_OUTPUT_URI: pathToFileURL(dir).href,
      LOOPLINE_RESULT_PATH: join(dir, 'result.json'),
      LOG_LEVEL: 'warn',
    },
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`example trainer failed (${run.status}): ${run.stderr.slice(-2000)}`);
  const result = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8'));
  const modelPath = fileURLToPath(result.artifact.uri);
  const profilePath = fileURLToPath(result.referenceProfile.uri);
  const model = onnxProto.onnx.ModelProto.decode(readFileSync(modelPath));
  const initializer = (name: string) => {
    const values = model.graph?.initializer?.find((t) => t.name === name)?.floatData;
    if (!values?.length) throw new Error(`model.onnx has no float initializer ${name}`);
    return [...values];
  };
  return {
    modelPath,
    profilePath,
    profile: parseReferenceProfile(readFileSync(profilePath, 'utf8'), profilePath),
    env: {
      MODEL_URI: result.artifact.uri,
      MODEL_DIGEST: result.artifact.digest,
      MODEL_SIGNATURE: JSON.stringify(result.signature),
      REFERENCE_PROFILE_URI: result.referenceProfile.uri,
      REFERENCE_PROFILE_DIGEST: result.referenceProfile.digest,
    },
    row: result.inputExample[0],
    weights: initializer('weights'),
    bias: initializer('bias')[0],
  };
}
