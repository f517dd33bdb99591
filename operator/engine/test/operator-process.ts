/**
 * A stand-alone operator process for the SIGTERM test: one engine with leader election whose only
 * controller mirrors ConfigMaps labelled role=source (slowly, when asked to), printing what it does.
 * argv: namespace, lease name.
 */
import { createEngine } from '../engine.ts';
import { controllerReference } from '../keys.ts';
import { kinds } from '../kinds.ts';
import type { KubeObject } from '../types.ts';
import { quietLogger } from './cluster.ts';

const [namespace, leaseName] = process.argv.slice(2);
const engine = createEngine({
  namespace,
  leaderElection: {
    namespace,
    name: leaseName,
    identity: `process-${process.pid}`,
    leaseDurationMs: 4000,
    renewDeadlineMs: 3000,
    retryPeriodMs: 500,
  },
  httpPort: 0,
  httpHost: '127.0.0.1',
  logger: quietLogger(),
});
engine.register({
  name: 'mirror',
  for: kinds.ConfigMap,
  async reconcile({ namespace: ns, name }, ctx) {
    const source = ctx.cache.get<KubeObject & { data?: Record<string, string> }>(kinds.ConfigMap, ns, name);
    if (!source || source.metadata.labels?.role !== 'source') return;
    console.log(`reconciling ${name}`);
    await new Promise((resolve) => setTimeout(resolve, Number(source.data?.delayMs ?? 0)));
    await ctx.apply({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: `${name}-mirror`, namespace: ns, ownerReferences: [controllerReference(source)] },
      data: { from: `process-${process.pid}` },
    });
    console.log(`reconciled ${name}`);
  },
});
engine.handleSignals();
await engine.start();
await engine.whenLeader();
console.log('leading');
