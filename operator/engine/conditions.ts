import { rfc3339 } from '../api/contracts.ts';
import type { Condition } from './types.ts';

/**
 * Merges desired conditions into the existing list the way metav1 expects: one entry per type,
 * `lastTransitionTime` moves only when `status` changes, `observedGeneration` defaults to `generation`.
 * Conditions of other types that are not desired are kept (another writer may own them).
 */
export function mergeConditions(
  existing: readonly Condition[] | undefined,
  desired: readonly Condition[],
  generation: number | undefined,
  now: Date = new Date(),
): Condition[] {
  const result: Condition[] = (existing ?? []).map((c) => ({ ...c }));
  for (const want of desired) {
    const merged = setCondition(result, want, generation, now);
    result.splice(0, result.length, ...merged);
  }
  return result;
}

/** Returns `conditions` with `condition` set (added or replaced by type), transition time kept when the status is unchanged. */
export function setCondition(
  conditions: readonly Condition[],
  condition: Condition,
  generation: number | undefined,
  now: Date = new Date(),
): Condition[] {
  const previous = conditions.find((c) => c.type === condition.type);
  const next: Condition = {
    type: condition.type,
    status: condition.status,
    reason: condition.reason,
    message: condition.message,
    lastTransitionTime:
      previous && previous.status === condition.status && previous.lastTransitionTime
        ? previous.lastTransitionTime
        : (condition.lastTransitionTime ?? rfc3339(now)),
    ...(condition.observedGeneration !== undefined || generation !== undefined
      ? { observedGeneration: condition.observedGeneration ?? generation }
      : {}),
  };
  return previous ? conditions.map((c) => (c.type === condition.type ? next : c)) : [...conditions, next];
}

export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === 'True';
}

export { rfc3339 };
