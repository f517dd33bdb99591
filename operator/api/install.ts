// Installs Loopline's CRDs with server-side apply and waits until the API server serves them.
// Idempotent: applying the same manifests again changes nothing.
import { readFileSync } from 'node:fs';
import {
  ApiextensionsV1Api,
  type KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  loadYaml,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { LOOPLINE_KINDS, crdPath } from './crds.ts';

export const CRD_FIELD_MANAGER = 'loopline-crds';

export interface InstallOptions {
  fieldManager?: string;
  /** How long to wait for every CRD to be Established. */
  timeoutMs?: number;
}

/** Applies crds/*.yaml and resolves once each CRD is Established and its names are accepted. */
export async function installCrds(kc: KubeConfig, options: InstallOptions = {}): Promise<void> {
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const extensions = kc.makeApiClient(ApiextensionsV1Api);
  // loadYaml builds client-node's model objects; a plain object would lose every x-kubernetes-* field
  // (CEL rules included) when the client serializes it by the model's attribute names.
  const crds = LOOPLINE_KINDS.map((kind) => loadYaml<V1CustomResourceDefinition>(readFileSync(crdPath(kind), 'utf8')));
  for (const crd of crds) {
    // force: the manifests in crds/ own every field they set, whoever applied them before.
    await objects.patch(
      crd,
      undefined,
      undefined,
      options.fieldManager ?? CRD_FIELD_MANAGER,
      true,
      PatchStrategy.ServerSideApply,
    );
  }
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (const crd of crds) {
    for (;;) {
      const live = await extensions.readCustomResourceDefinition({ name: crd.metadata!.name! });
      const isTrue = (type: string) => live.status?.conditions?.some((c) => c.type === type && c.status === 'True');
      if (isTrue('Established') && isTrue('NamesAccepted')) break;
      if (Date.now() > deadline) {
        const conditions = JSON.stringify(live.status?.conditions ?? []);
        throw new Error(
          `CRD ${crd.metadata!.name!} not Established after ${options.timeoutMs ?? 30_000} ms: ${conditions}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
