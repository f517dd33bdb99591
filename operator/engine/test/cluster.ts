/** Shared set-up for the engine's tests against the real API server of the local cluster. */
import { randomBytes } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { KubeApi } from '../kube.ts';
import { kinds } from '../kinds.ts';

export function requireKubeconfig(): KubeConfig {
  if (!process.env.KUBECONFIG) {
    throw new Error('KUBECONFIG is not set: start the local cluster (bash e2e/cluster/cluster.sh up) and eval "$(bash e2e/cluster/cluster.sh env)"');
  }
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}

export const quietLogger = () => pino({ level: process.env.LOG_LEVEL ?? 'warn' });

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

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

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function testApi(kc: KubeConfig): KubeApi {
  return new KubeApi(kc);
}
