/** Shared set-up for the engine's tests against the real API server of the local cluster. */
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeApi } from '../kube.ts';
import { waitFor as sharedWaitFor } from '../../../test/support/local.ts';

export { quietLogger, requireKubeconfig, sleep, uniqueName } from '../../../test/support/local.ts';
export { createNamespace, deleteNamespace } from '../../../test/support/namespaces.ts';

/** The shared waitFor, polling every 25 ms with a 10 s default: the engine's tests wait on fast, local changes. */
export function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | null | Promise<T | undefined | false | null>,
  timeoutMs = 10_000,
): Promise<T> {
  return sharedWaitFor(what, probe, timeoutMs, 25);
}

export function testApi(kc: KubeConfig): KubeApi {
  return new KubeApi(kc);
}
