/** Shared set-up for the engine's tests against the real API server of the local cluster. */
import { KubeConfig } from '@kubernetes/client-node';
import { KubeApi } from '../kube.ts';
import { kinds } from '../kinds.ts';
import { sleep } from '../../../test/support/local.ts';

export { quietLogger, requireKubeconfig, sleep, uniqueName } from '../../../test/support/local.ts';

export async function createNamespace(api: KubeApi, name: string): Promise<void> {
  await api.create(kinds.Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as never, 'engine-test');
}

export async function deleteNamespace(api: KubeApi, name: string): Promise<void> {
  await api.delete(kinds.Namespace, undefined, name).catch(() => undefined);
}

export async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false && value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

export function testApi(kc: KubeConfig): KubeApi {
  return new KubeApi(kc);
}
