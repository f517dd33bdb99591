// What every benchmark records of the machine it ran on, beside its figures: on a shared 2-core machine the load
// before and after says how far to trust them.
import { cpus, loadavg } from 'node:os';

/** The cores, the CPU model, Node's version and the load averages (1, 5, 15 min) before the run and now. */
export function machineFacts(loadBefore: number[], extra: Record<string, unknown> = {}) {
  return {
    cpus: cpus().length,
    model: cpus()[0]?.model,
    ...extra,
    loadAverageBefore: loadBefore,
    loadAverageAfter: loadavg(),
    node: process.version,
  };
}
