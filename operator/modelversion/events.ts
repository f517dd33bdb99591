// Lifecycle events of the registry on NATS (loopline.events.<namespace>.modelversion.<name>): one when a
// TrainingJob registers a version, one per history entry (promoted, archived, stage changed, aliases moved).
// Ids derive from the version's uid and what happened, so publishing the same happening again is dropped
// by JetStream's duplicate window (Nats-Msg-Id) and a consumer can tell repeats by the CloudEvent id.
import { createHash } from 'node:crypto';
import type { LifecycleEvent } from '../events/publisher.ts';
import type { HistoryEntry, ModelVersion } from './resource.ts';

export const MODELVERSION_EVENT_KIND = 'modelversion';

/** `promoted` (into Production), `archived`, `stagechanged` (any other stage move) or `aliasmoved` (only aliases gained or lost). */
export function historyEventReason(entry: HistoryEntry): string {
  if (entry.to === 'Production' && entry.from !== 'Production') return 'promoted';
  if (entry.to === 'Archived' && entry.from !== 'Archived') return 'archived';
  if (entry.to !== entry.from) return 'stagechanged';
  return 'aliasmoved';
}

/** `<uid>/history/<hash of the entry>`: the entry carries its time, so two changes never share an id. */
export function historyEventId(uid: string, entry: HistoryEntry): string {
  const canonical = JSON.stringify([
    entry.at,
    entry.from,
    entry.to,
    entry.aliasesAdded ?? [],
    entry.aliasesRemoved ?? [],
    entry.by ?? '',
    entry.reason ?? '',
  ]);
  return `${uid}/history/${createHash('sha256').update(canonical).digest('hex').slice(0, 16)}`;
}

export function historyEvent(mv: ModelVersion, entry: HistoryEntry, aliases: readonly string[]): LifecycleEvent {
  return {
    kind: MODELVERSION_EVENT_KIND,
    namespace: mv.metadata.namespace!,
    name: mv.metadata.name!,
    reason: historyEventReason(entry),
    id: historyEventId(mv.metadata.uid!, entry),
    data: { model: mv.spec.model, version: mv.spec.version, ...entry, aliases: [...aliases] },
  };
}

/** The version a TrainingJob registered; `<uid>/registered`, as a version is registered once. */
export function registeredEvent(mv: ModelVersion, trainingJob: string): LifecycleEvent {
  return {
    kind: MODELVERSION_EVENT_KIND,
    namespace: mv.metadata.namespace!,
    name: mv.metadata.name!,
    reason: 'registered',
    id: `${mv.metadata.uid}/registered`,
    data: {
      model: mv.spec.model,
      version: mv.spec.version,
      trainingJob,
      artifact: mv.spec.artifact,
      metrics: mv.spec.metrics ?? {},
      stage: mv.spec.stage ?? 'None',
      aliases: mv.spec.aliases ?? [],
      ...(mv.spec.lineage ? { lineage: mv.spec.lineage } : {}),
    },
  };
}
