/** ModelVersions as the TrainingJob controller registers them, for suites and benchmarks on the real API server. */
import { createHash } from 'node:crypto';
import { kinds, type KubeApi, type KubeObject } from '../../operator/engine/index.ts';

/** The artifact of a version a real predictor serves: where it is, its bytes, its input width. */
export interface VersionArtifact {
  uri: string;
  bytes: Uint8Array;
  /** Columns of its one FP32 input; its output is the example trainer's `probability`. */
  features: number;
}

/**
 * A registered ModelVersion (as the TrainingJob controller would create it), with its aliases in effect unless
 * `effective` is false (where the suite runs the registry controller, which sets them itself), and any further
 * `spec` fields (metrics, stage, ...). Without an artifact it names a file no predictor reads (KWOK plays the pods).
 */
export async function registerVersion(
  api: KubeApi,
  namespace: string,
  model: string,
  version: number,
  aliases: string[] = [],
  artifact?: VersionArtifact,
  { effective = true, spec = {} }: { effective?: boolean; spec?: Record<string, unknown> } = {},
): Promise<KubeObject> {
  const name = `${model}-v${version}`;
  const digest = artifact
    ? `sha256:${createHash('sha256').update(artifact.bytes).digest('hex')}`
    : `sha256:${(version.toString(16) + '0'.repeat(64)).slice(0, 64)}`;
  const created = await api.create(
    kinds.ModelVersion,
    {
      apiVersion: 'loopline.dev/v1alpha1',
      kind: 'ModelVersion',
      metadata: { name, namespace },
      spec: {
        model,
        version,
        artifact: { uri: artifact?.uri ?? `file:///models/${model}/v${version}/model.onnx`, digest, format: 'onnx' },
        signature: artifact
          ? {
              inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, artifact.features] }],
              outputs: [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }],
            }
          : {
              inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }],
              outputs: [{ name: 'output', datatype: 'FP32', shape: [-1, 1] }],
            },
        aliases,
        ...spec,
      },
    } as never,
    'loopline-test',
  );
  return effective ? await setEffectiveAliases(api, namespace, name, aliases) : created;
}

/** Plays the registry controller's part where a test needs an alias in effect: status.aliases. */
export async function setEffectiveAliases(
  api: KubeApi,
  namespace: string,
  name: string,
  aliases: string[],
  stage = 'None',
): Promise<KubeObject> {
  return await api.mergePatch(
    kinds.ModelVersion,
    namespace,
    name,
    { status: { aliases, stage } },
    'loopline-test',
    'status',
  );
}
