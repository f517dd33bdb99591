/** Set-up shared by this folder's tests against the local cluster's real API server. */
import { readFileSync } from 'node:fs';
import * as yaml from 'js-yaml';
import type { KubeApi, KubeObject, ResourceKind } from '../../../engine/index.ts';
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
export {
  registerVersion,
  setEffectiveAliases,
  type VersionArtifact,
} from '../../../../test/support/model-versions.ts';

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
