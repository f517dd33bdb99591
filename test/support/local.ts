// Small pieces every suite that runs against the local cluster or local servers needs; one copy here.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';

/** The local cluster's kubeconfig ($KUBECONFIG, which the test runner sets), or a clear error saying how to get one. */
export function requireKubeconfig(): KubeConfig {
  if (!process.env.KUBECONFIG) {
    throw new Error(
      'KUBECONFIG is not set: run through `npm test`, or `bash e2e/cluster/cluster.sh up && eval "$(bash e2e/cluster/cluster.sh env)"` first',
    );
  }
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}

/** `prefix-` plus six random hex digits: a namespace or object name no other run uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Components' logs at warn unless LOG_LEVEL says otherwise, so test output stays readable. */
export const quietLogger = () => pino({ level: process.env.LOG_LEVEL ?? 'warn' });

/**
 * Engine options of an operator run in the test's own process: one namespace, no leader election, no HTTP port, no
 * periodic resync, quiet logs. Spread first; a suite adds or overrides what it needs.
 */
export function inProcessEngine(kubeconfig: KubeConfig, namespace: string) {
  return {
    kubeconfig,
    namespace,
    leaderElection: false as const,
    httpPort: false as const,
    logger: quietLogger(),
    resyncPeriodMs: 0,
  };
}

/** CPU seconds (user + system) process `pid` has used so far, from /proc/<pid>/stat (clock ticks of 10 ms). */
export function cpuSecondsOf(pid: number | string): number {
  // Fields after the parenthesised command name; utime and stime are the 12th and 13th of them.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** A TCP port free on loopback right now. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Polls `probe` until it returns something other than undefined, false or null. A probe that throws is tried
 * again (the API server may not serve a new kind yet); after `timeoutMs` the error names `what`, and the last
 * error the probe threw, if it threw.
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | null | Promise<T | undefined | false | null>,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false && value !== null) return value;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${lastError instanceof Error ? lastError.message : String(lastError)}` : ''}`,
      );
    }
    await sleep(intervalMs);
  }
}
