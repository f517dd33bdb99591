// What several scenarios check of the operator itself: its queues drain, and what its log says its watches did.
import type { ChaosHarness } from '../harness.ts';
import type { ScenarioRecord } from '../report.ts';

/** Every work queue empties and no reconcile stays in flight (no key stuck), within `timeoutMs`. */
export async function checkQueuesDrain(h: ChaosHarness, record: ScenarioRecord, timeoutMs = 30_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const idle = await Promise.race([
    h.operator.waitIdle().then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
  ]);
  clearTimeout(timer);
  record.check(idle, `the operator's work queues drain (no key stuck in flight) within ${timeoutMs / 1000} s`);
}

/** Counts, from now on, the operator's watches that ended in an error and those answered 410 Gone. */
export function watchRestarts(h: ChaosHarness): {
  ended(): number;
  expired(): number;
  expiredKinds(): Set<string>;
  lastExpiredAt(): number | undefined;
} {
  const from = h.logLines.length;
  const lines = () =>
    h.logLines.slice(from).map((line) => JSON.parse(line) as { msg: string; kind?: string; time: number });
  return {
    /** When the last watch answered 410 Gone was re-listed (its log line's time). */
    lastExpiredAt: () =>
      lines()
        .filter((l) => l.msg === 'watch expired (410 Gone); re-listing')
        .at(-1)?.time,
    ended: () =>
      lines().filter((l) => l.msg === 'list/watch failed; retrying' || l.msg === 'watch expired (410 Gone); re-listing')
        .length,
    expired: () => lines().filter((l) => l.msg === 'watch expired (410 Gone); re-listing').length,
    expiredKinds: () =>
      new Set(
        lines()
          .filter((l) => l.msg === 'watch expired (410 Gone); re-listing')
          .map((l) => l.kind!),
      ),
  };
}
