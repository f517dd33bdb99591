// ghz (github.com/bojand/ghz), a gRPC load generator written in Go, for protocols.bench.ts: a native client, so
// the gRPC figures are not bounded by grpc-js on the load generator's side of the same two cores.
// Built once from its module with the machine's Go toolchain and cached outside the repo, keyed by version.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const GHZ_VERSION = 'v0.93.0';

/** The ghz binary's path, built into ~/.cache/loopline/ghz/<version> when missing; undefined without Go. */
export function ensureGhz(): string | undefined {
  const dir = join(process.env.LOOPLINE_CACHE ?? join(homedir(), '.cache/loopline'), 'ghz', GHZ_VERSION);
  const binary = join(dir, 'ghz');
  if (existsSync(binary)) return binary;
  try {
    execFileSync('go', ['version'], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  console.log(`building ghz ${GHZ_VERSION} into ${dir}`);
  execFileSync('go', ['install', `github.com/bojand/ghz/cmd/ghz@${GHZ_VERSION}`], {
    stdio: 'inherit',
    env: { ...process.env, GOBIN: dir, CGO_ENABLED: '0', GOFLAGS: '-mod=mod' },
  });
  return binary;
}

/** The parts of ghz's `--format json` report the bench reads (latencies in nanoseconds). */
export interface GhzReport {
  count: number;
  total: number;
  rps: number;
  latencyDistribution: Array<{ percentage: number; latency: number }> | null;
  errorDistribution?: Record<string, number> | null;
  statusCodeDistribution?: Record<string, number> | null;
}
