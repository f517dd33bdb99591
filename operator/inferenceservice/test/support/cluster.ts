/** Set-up shared by this folder's tests against the local cluster's real API server. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as yaml from 'js-yaml';
import { type KubeApi, kinds, type KubeObject, type ResourceKind } from '../../../engine/index.ts';
import { virtualServiceCrdFile } from './traffic-crds.ts';
import { requireKubeconfig, waitFor as sharedWaitFor } from '../../../../test/support/local.ts';
import { installCrds as installLooplineCrds } from '../../../api/install.ts';

export const CRD: ResourceKind = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  plural: 'customresourcedefinitions',
  namespaced: false,
};

export { quietLogger, requireKubeconfig, sleep, uniqueName } from '../../../../test/support/local.ts';
export { createNamespace, deleteNamespace } from '../../../../test/support/namespaces.ts';

/** The shared waitFor with this folder's 20 s default. */
export function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | null | Promise<T | undefined | false | null>,
  timeoutMs = 20_000,
): Promise<T> {
  return sharedWaitFor(what, probe, timeoutMs);
}

async function applyCrdFile(api: KubeApi, file: string): Promise<void> {
  for (const doc of yaml.loadAll(readFileSync(file, 'utf8')) as KubeObject[]) {
    if (doc?.kind !== 'CustomResourceDefinition') continue;
    await api.apply(CRD, doc as never, 'loopline-test');
    await waitFor(`CRD ${doc.metadata.name} established`, async () => {
      const crd = await api.get(CRD, undefined, doc.metadata.name);
      return crd.status?.conditions?.some(
        (c: { type: string; status: string }) => c.type === 'Established' && c.status === 'True',
      );
    });
  }
}

/**
 * Our CRDs as in this checkout, by the installer `loopline install` uses, plus Istio's VirtualService CRD
 * (the cluster has Gateway API's and Traefik's).
 */
export async function installCrds(api: KubeApi): Promise<void> {
  await installLooplineCrds(requireKubeconfig());
  await applyCrdFile(api, virtualServiceCrdFile());
}

/** The artifact of a version a real predictor serves: where it is, its bytes, its input width. */
export interface VersionArtifact {
  uri: string;
  bytes: Uint8Array;
  /** Columns of its one FP32 input; its output is the example trainer's `probability`. */
  features: number;
}

/**
 * A registered ModelVersion (as the TrainingJob controller would create it), with its aliases in effect unless
 * `effective` is false (where the suite runs the registry controller, which sets them itself). Without an artifact
 * it names a file no predictor reads (KWOK plays the pods).
 */
export async function registerVersion(
  api: KubeApi,
  namespace: string,
  model: string,
  version: number,
  aliases: string[] = [],
  artifact?: VersionArtifact,
  { effective = true } = {},
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
