import { rfc3339Micro } from '../api/contracts.ts';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { kinds } from './kinds.ts';
import type { KubeApi } from './kube.ts';
import type { EventType, KubeObject } from './types.ts';

/** Repeats within this window join the first event's series instead of creating new Event objects. */
const SERIES_WINDOW_MS = 10 * 60_000;
/** A series is written back at most this often; counts in between accumulate in memory. */
const SERIES_FLUSH_MS = 30_000;

interface Series {
  name: string;
  namespace: string;
  count: number;
  firstSeen: number;
  lastWritten: number;
  lastObserved: Date;
  dirty: boolean;
  timer?: NodeJS.Timeout;
}

/**
 * Records events.k8s.io/v1 Events (what `kubectl describe` and `kubectl events` show). Like client-go's
 * event broadcaster it aggregates: the same type/reason/message about the same object becomes one Event
 * whose series count grows, written back at most every 30 s.
 */
export class EventRecorder {
  private readonly series = new Map<string, Series>();

  constructor(
    private readonly api: KubeApi,
    private readonly reportingController: string,
    private readonly reportingInstance: string,
    private readonly fieldManager: string,
    private readonly log: Logger,
  ) {}

  async record(
    regarding: KubeObject,
    type: EventType,
    reason: string,
    message: string,
    action = reason,
  ): Promise<void> {
    const now = Date.now();
    const id = `${regarding.metadata.uid ?? regarding.metadata.name}|${type}|${reason}|${message}`;
    const existing = this.series.get(id);
    if (existing && now - existing.firstSeen < SERIES_WINDOW_MS) {
      existing.count += 1;
      existing.lastObserved = new Date(now);
      existing.dirty = true;
      if (now - existing.lastWritten >= SERIES_FLUSH_MS) await this.flushSeries(existing);
      else existing.timer ??= setTimeout(() => void this.flushSeries(existing), SERIES_FLUSH_MS).unref();
      return;
    }
    if (existing) this.forget(id, existing);

    const namespace = regarding.metadata.namespace || 'default';
    const name = `${regarding.metadata.name}.${randomBytes(8).toString('hex')}`;
    await this.api.create(
      kinds.Event,
      {
        apiVersion: kinds.Event.apiVersion,
        kind: kinds.Event.kind,
        metadata: { name, namespace },
        eventTime: rfc3339Micro(new Date(now)),
        reportingController: this.reportingController,
        reportingInstance: this.reportingInstance,
        action: action.slice(0, 128),
        reason: reason.slice(0, 128),
        type,
        note: message.slice(0, 1024),
        regarding: {
          apiVersion: regarding.apiVersion,
          kind: regarding.kind,
          name: regarding.metadata.name,
          namespace: regarding.metadata.namespace,
          uid: regarding.metadata.uid,
          resourceVersion: regarding.metadata.resourceVersion,
        },
      } as { metadata: { namespace: string } },
      this.fieldManager,
    );
    this.series.set(id, {
      name,
      namespace,
      count: 1,
      firstSeen: now,
      lastWritten: now,
      lastObserved: new Date(now),
      dirty: false,
    });
    this.prune(now);
  }

  /** Writes back pending series counts (graceful shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.series.values()].filter((s) => s.dirty).map((s) => this.flushSeries(s)));
    for (const s of this.series.values()) clearTimeout(s.timer);
  }

  /** Drops pending timers without writing (hard stop). */
  discard(): void {
    for (const s of this.series.values()) clearTimeout(s.timer);
    this.series.clear();
  }

  private async flushSeries(series: Series): Promise<void> {
    clearTimeout(series.timer);
    series.timer = undefined;
    if (!series.dirty) return;
    series.dirty = false;
    series.lastWritten = Date.now();
    try {
      await this.api.mergePatch(
        kinds.Event,
        series.namespace,
        series.name,
        { series: { count: series.count, lastObservedTime: rfc3339Micro(series.lastObserved) } },
        this.fieldManager,
      );
    } catch (err) {
      this.log.warn({ event: `${series.namespace}/${series.name}`, err: String(err) }, 'could not update event series');
    }
  }

  private forget(id: string, series: Series): void {
    clearTimeout(series.timer);
    this.series.delete(id);
  }

  private prune(now: number): void {
    for (const [id, s] of this.series) {
      if (now - s.firstSeen >= SERIES_WINDOW_MS && !s.dirty) this.forget(id, s);
    }
  }
}
