import type { InferenceService, ServedModel } from '../../resource.ts';

export function inferenceService(overrides: Partial<InferenceService['spec']> = {}, name = 'fraud'): InferenceService {
  return {
    apiVersion: 'loopline.dev/v1alpha1',
    kind: 'InferenceService',
    metadata: { name, namespace: 'risk', uid: '0000-1111', generation: 1 },
    spec: { model: 'fraud-detector', stable: { alias: 'production' }, ...overrides },
  };
}

export function servedModel(version: number): ServedModel {
  return {
    version,
    name: `fraud-detector-v${version}`,
    uri: `file:///models/fraud/v${version}/model.onnx`,
    digest: `sha256:${String(version).repeat(64).slice(0, 64)}`,
    signature: {
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [{ name: 'output', datatype: 'FP32', shape: [-1, 1] }],
    },
    referenceProfile: { uri: `file:///models/fraud/v${version}/profile.json`, digest: `sha256:${'ab'.repeat(32)}` },
  };
}
