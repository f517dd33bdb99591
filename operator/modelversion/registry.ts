// The registry state machine for the versions of one model: stages None -> Staging -> Production ->
// Archived, aliases held by at most one version, one Production version at a time, metric-gated
// promotion. Pure: the controller feeds it every version of the model and carries out the plan.
import { rfc3339 } from '../api/contracts.ts';
import type { Condition } from '../engine/types.ts';
import { evaluateGates } from './gates.ts';
import type { HistoryEntry, ModelVersion, ModelVersionStatus, Stage } from './resource.ts';

/** Stamped by the admission policy (crds/admission-policy.yaml) with the user the API server authenticated. */
export const ANNOTATION_REQUESTED_BY = 'loopline.dev/requested-by';
/** Free text a user may set next to a stage or alias change: the "why" of the history entry. */
export const ANNOTATION_CHANGE_REASON = 'loopline.dev/change-reason';
export const HISTORY_LIMIT = 100;

export interface RegistryEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface VersionPlan {
  name: string;
  /** The status the version should have (conditions without transition times). */
  status: ModelVersionStatus;
  /** Desired fields the registry must rewrite because the change of another version displaced them. */
  specPatch?: { stage?: Stage; aliases?: string[] };
  events: RegistryEvent[];
  /** The history entries this plan appends (final form): each becomes a lifecycle event once status holds it. */
  recorded: HistoryEntry[];
}

interface Working {
  mv: ModelVersion;
  stage: Stage;
  aliases: Set<string>;
  desiredStage: Stage;
  desiredAliases: Set<string>;
  history: HistoryEntry[];
  /** Entries appended by this plan; the merge in `record` may still extend them. */
  recorded: HistoryEntry[];
  events: RegistryEvent[];
  specPatch?: { stage?: Stage; aliases?: string[] };
  refused?: string[];
}

function requester(mv: ModelVersion): string {
  return mv.metadata.annotations?.[ANNOTATION_REQUESTED_BY] ?? 'unknown';
}

function sorted(set: Iterable<string>): string[] {
  return [...set].sort();
}

/** When a history last records an entry `test` accepts (RFC 3339, so ordered as strings), or '' if never. */
function lastGain(history: readonly HistoryEntry[] | undefined, test: (e: HistoryEntry) => boolean): string {
  for (let i = (history?.length ?? 0) - 1; i >= 0; i--) if (test(history![i])) return history![i].at;
  return '';
}

/** Of two versions claiming one thing, the one that gained it last by its history; the higher version on a tie. */
function newerClaim<V extends { spec: { version: number }; status?: { history?: HistoryEntry[] } }>(
  a: V,
  b: V,
  test: (e: HistoryEntry) => boolean,
): V {
  const ta = lastGain(a.status?.history, test);
  const tb = lastGain(b.status?.history, test);
  if (ta !== tb) return ta > tb ? a : b;
  return a.spec.version > b.spec.version ? a : b;
}

/**
 * The version an alias names when its status shows several holders: while the registry moves an alias it writes
 * the new holder first, and for that moment the one that gained the alias last is the one meant.
 */
export function aliasHolder<
  V extends { spec: { version: number }; status?: { aliases?: string[]; history?: HistoryEntry[] } },
>(versions: readonly V[], alias: string): V | undefined {
  const holders = versions.filter((v) => (v.status?.aliases ?? []).includes(alias));
  return holders.length === 0
    ? undefined
    : holders.reduce((a, b) => newerClaim(a, b, (e) => e.aliasesAdded?.includes(alias) ?? false));
}

function newer(a: Working, b: Working, test: (e: HistoryEntry) => boolean): Working {
  return newerClaim(a.mv, b.mv, test) === a.mv ? a : b;
}

export function formatPrimaryMetric(mv: ModelVersion): string | undefined {
  const metrics = mv.spec.metrics ?? {};
  const name = mv.spec.primaryMetric ?? Object.keys(metrics).sort()[0];
  if (name === undefined || metrics[name] === undefined) return undefined;
  return `${name}=${Number(metrics[name].toFixed(4))}`;
}

/**
 * Plans every version of one model. Pending requests (spec differs from status) are applied in
 * version order, so when two versions ask for the same alias or for Production at once, the higher
 * version wins and the other is rewritten to match; the invariants hold whatever the order of events.
 */
export function planRegistry(versions: readonly ModelVersion[], now: Date): VersionPlan[] {
  const at = rfc3339(now);
  const live = versions.filter((v) => !v.metadata.deletionTimestamp).sort((a, b) => a.spec.version - b.spec.version);
  const work: Working[] = live.map((mv) => ({
    mv,
    stage: mv.status?.stage ?? 'None',
    aliases: new Set(mv.status?.aliases ?? []),
    desiredStage: mv.spec.stage ?? 'None',
    desiredAliases: new Set(mv.spec.aliases ?? []),
    history: [...(mv.status?.history ?? [])],
    recorded: [],
    events: [],
  }));

  const recordedNow = new Map<Working, HistoryEntry>();
  /** Appends a history entry; changes another version's request caused in this same plan join one entry. */
  const record = (w: Working, entry: Omit<HistoryEntry, 'at'>, merge = false) => {
    const previous = recordedNow.get(w);
    if (merge && previous && previous.by === entry.by) {
      previous.to = entry.to;
      const added = [...(previous.aliasesAdded ?? []), ...(entry.aliasesAdded ?? [])];
      const removed = [...(previous.aliasesRemoved ?? []), ...(entry.aliasesRemoved ?? [])];
      if (added.length) previous.aliasesAdded = added;
      if (removed.length) previous.aliasesRemoved = removed;
      previous.reason = [previous.reason, entry.reason].filter(Boolean).join('; ');
      return;
    }
    const e: HistoryEntry = { ...entry, at };
    if (!e.aliasesAdded?.length) delete e.aliasesAdded;
    if (!e.aliasesRemoved?.length) delete e.aliasesRemoved;
    w.history.push(e);
    w.recorded.push(e);
    if (merge) recordedNow.set(w, e);
  };
  const displace = (w: Working, patch: { stage?: Stage; aliases?: string[] }) => {
    w.specPatch = { ...w.specPatch, ...patch };
    if (patch.stage) w.desiredStage = patch.stage;
    if (patch.aliases) w.desiredAliases = new Set(patch.aliases);
  };

  // Repair what concurrent writes may have left: two Production versions, or one alias on two versions.
  const producers = work.filter((w) => w.stage === 'Production');
  if (producers.length > 1) {
    const keep = producers.reduce((a, b) => newer(a, b, (e) => e.to === 'Production' && e.from !== 'Production'));
    for (const w of producers.filter((p) => p !== keep)) {
      record(w, {
        from: 'Production',
        to: 'Archived',
        by: requester(keep.mv),
        reason: `archived: ${keep.mv.metadata.name} is in Production`,
      });
      w.stage = 'Archived';
      displace(w, { stage: 'Archived' });
      w.events.push({
        type: 'Normal',
        reason: 'Archived',
        message: `archived: ${keep.mv.metadata.name} is in Production`,
      });
    }
  }
  for (const alias of new Set(work.flatMap((w) => [...w.aliases]))) {
    const holders = work.filter((w) => w.aliases.has(alias));
    if (holders.length < 2) continue;
    const keep = holders.reduce((a, b) => newer(a, b, (e) => e.aliasesAdded?.includes(alias) ?? false));
    for (const w of holders.filter((h) => h !== keep)) {
      w.aliases.delete(alias);
      record(w, {
        from: w.stage,
        to: w.stage,
        aliasesRemoved: [alias],
        by: requester(keep.mv),
        reason: `alias ${alias} is held by ${keep.mv.metadata.name}`,
      });
      displace(w, { aliases: sorted([...w.desiredAliases].filter((a) => a !== alias)) });
    }
  }

  for (const w of work) {
    const name = w.mv.metadata.name;
    const by = requester(w.mv);
    const why = w.mv.metadata.annotations?.[ANNOTATION_CHANGE_REASON];
    const from = w.stage;
    let to = w.stage;
    const displaced: string[] = [];

    if (w.desiredStage !== w.stage) {
      const verdict =
        w.desiredStage === 'Production'
          ? evaluateGates(w.mv.spec.promotionGates, w.mv.spec.metrics)
          : { passed: true, failures: [] };
      if (!verdict.passed) {
        w.refused = verdict.failures;
      } else {
        if (w.desiredStage === 'Production') {
          for (const other of work.filter((o) => o !== w && o.stage === 'Production')) {
            const reason = `archived: ${name} promoted to Production`;
            record(other, { from: 'Production', to: 'Archived', by, reason }, true);
            other.stage = 'Archived';
            displace(other, { stage: 'Archived' });
            other.events.push({ type: 'Normal', reason: 'Archived', message: `${reason} by ${by}` });
            displaced.push(other.mv.metadata.name);
          }
        }
        to = w.desiredStage;
        w.stage = to;
      }
    }

    const added = sorted([...w.desiredAliases].filter((a) => !w.aliases.has(a)));
    const removed = sorted([...w.aliases].filter((a) => !w.desiredAliases.has(a)));
    for (const alias of added) {
      for (const other of work.filter((o) => o !== w && o.aliases.has(alias))) {
        other.aliases.delete(alias);
        const reason = `alias ${alias} moved to ${name}`;
        record(other, { from: other.stage, to: other.stage, aliasesRemoved: [alias], by, reason }, true);
        displace(other, { aliases: sorted([...other.desiredAliases].filter((a) => a !== alias)) });
        other.events.push({ type: 'Normal', reason: 'AliasMoved', message: `${reason} by ${by}` });
      }
      w.aliases.add(alias);
    }
    for (const alias of removed) w.aliases.delete(alias);

    if (to !== from || added.length || removed.length) {
      const parts = [
        to !== from ? `stage ${from} -> ${to}` : '',
        added.length ? `aliases +${added.join(',')}` : '',
        removed.length ? `aliases -${removed.join(',')}` : '',
      ].filter(Boolean);
      const reason =
        why ??
        [
          `requested in spec: ${parts.join(', ')}`,
          ...(displaced.length ? [`archived ${displaced.join(', ')}`] : []),
        ].join('; ');
      record(w, { from, to, aliasesAdded: added, aliasesRemoved: removed, by, reason });
      const eventReason =
        to === 'Production' && from !== 'Production' ? 'Promoted' : to !== from ? 'StageChanged' : 'AliasesChanged';
      w.events.push({ type: 'Normal', reason: eventReason, message: `${name}: ${parts.join(', ')} (by ${by})` });
    }
  }

  return work.map((w) => {
    const conditions: Condition[] = [
      { type: 'Ready', status: 'True', reason: 'Registered', message: `${w.mv.metadata.name} is registered` },
    ];
    const previous = w.mv.status?.conditions?.find((c) => c.type === 'Promoted');
    if (w.refused) {
      const message = `promotion of ${w.mv.metadata.name} to ${w.desiredStage} refused: ${w.refused.join('; ')}. Stage in effect stays ${w.stage}; register a version that passes spec.promotionGates or change the gates`;
      conditions.push({ type: 'Promoted', status: 'False', reason: 'GatesNotMet', message });
      if (previous?.status !== 'False' || previous.message !== message)
        w.events.push({ type: 'Warning', reason: 'PromotionRefused', message });
    } else {
      conditions.push({
        type: 'Promoted',
        status: 'True',
        reason: 'StageInEffect',
        message: `stage ${w.stage} is in effect`,
      });
    }
    const status: ModelVersionStatus = {
      stage: w.stage,
      aliases: sorted(w.aliases),
      history: w.history.slice(-HISTORY_LIMIT),
      conditions,
    };
    const primary = formatPrimaryMetric(w.mv);
    if (primary) status.primaryMetric = primary;
    return { name: w.mv.metadata.name, status, specPatch: w.specPatch, events: w.events, recorded: w.recorded };
  });
}
