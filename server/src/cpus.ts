// How many cores a predictor pod may use, from its cgroup's CPU limit.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/**
 * Workers for a pod: the CPU limit (cgroup v2 cpu.max, else v1 cfs quota) rounded down, at least 1, and
 * at most the cores this process may run on; without a limit, those cores.
 */
export function defaultWorkers(readFile: (path: string) => string = (path) => readFileSync(path, 'utf8')): number {
  const cores = availableParallelism();
  const quota = cgroupCpuLimit(readFile);
  return quota === undefined ? cores : Math.max(1, Math.min(cores, Math.floor(quota)));
}

function cgroupCpuLimit(readFile: (path: string) => string): number | undefined {
  const attempt = (read: () => number | undefined) => {
    try {
      return read();
    } catch {
      return undefined;
    }
  };
  const v2 = attempt(() => {
    const [quota, period] = readFile('/sys/fs/cgroup/cpu.max').trim().split(/\s+/);
    return quota === 'max' ? Infinity : Number(quota) / Number(period);
  });
  if (v2 !== undefined) return Number.isFinite(v2) && v2 > 0 ? v2 : undefined;
  const v1 = attempt(
    () =>
      Number(readFile('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')) /
      Number(readFile('/sys/fs/cgroup/cpu/cpu.cfs_period_us')),
  );
  return v1 !== undefined && Number.isFinite(v1) && v1 > 0 ? v1 : undefined;
}
