/**
 * The operator as it ships, for the benchmarks that time it against a floor: one esbuild bundle (Dockerfile.operator,
 * scripts/bundle-operator.ts) run by plain node with the chart's NODE_OPTIONS. Through tsx it would spend CPU on the
 * loader that the API server needs in a burst.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { bundleOperator, chartNodeOptions } from '../../../scripts/bundle-operator.ts';
import { freePort, waitFor } from '../../../test/support/local.ts';
import { REPO_ROOT } from '../../../test/support/operator-harness.ts';

export interface ShippedOperator {
  process: ChildProcess;
  /** Its HTTP port on 127.0.0.1 (/metrics, /readyz). */
  port: number;
}

/** Bundles operator/main.ts, runs it for `namespace` without leader election, and resolves once /readyz says ready. */
export async function startShippedOperator(namespace: string, args: string[] = []): Promise<ShippedOperator> {
  const port = await freePort();
  const bundle = join(REPO_ROOT, 'node_modules/.cache/loopline-bench-dist/operator-main.mjs');
  await bundleOperator(join(REPO_ROOT, 'operator/main.ts'), bundle);
  const child = spawn(
    process.execPath,
    [
      ...chartNodeOptions(),
      bundle,
      '--namespace',
      namespace,
      '--no-leader-election',
      '--http-port',
      String(port),
      ...args,
    ],
    { cwd: REPO_ROOT, env: { ...process.env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  try {
    await waitFor(
      'the operator to be ready',
      async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok || undefined,
      60_000,
    );
  } catch (error) {
    child.kill('SIGTERM');
    throw error;
  }
  return { process: child, port };
}
