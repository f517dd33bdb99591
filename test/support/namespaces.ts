/** Test namespaces on the local cluster's real API server: made for one suite, deleted after it. */
import { kinds, type KubeApi } from '../../operator/engine/index.ts';

export async function createNamespace(api: KubeApi, name: string, fieldManager = 'loopline-test'): Promise<void> {
  await api.create(kinds.Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as never, fieldManager);
}

/** Deletes it, if it is there; what it held goes with it in the background. */
export async function deleteNamespace(api: KubeApi, name: string): Promise<void> {
  await api.delete(kinds.Namespace, undefined, name).catch(() => undefined);
}
