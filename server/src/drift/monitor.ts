// Windows of live inputs, closed by count or by time. Recording a request only copies
// its rows into a preallocated buffer; the statistics run after the window closes, off the
// request path: in a slice per event-loop turn that evaluates every window closed but the
// last, and features of that one for up to SLICE_MS (always at least one), so closed windows
// are evaluated as fast as they close instead of piling up behind one feature per turn.
import { performance } from 'node:perf_hooks';
import {
  featureDrift,
  windowDrift,
  type DriftOptions,
  type FeatureDrift,
  type FeatureReference,
  type WindowDrift,
} from './detector.ts';
import type { ReferenceProfile } from './profile.ts';
import { sortInPlace } from './statistics.ts';

/** How long a slice goes on with the last closed window's features (a started feature always finishes). */
export const SLICE_MS = 1;
/** Window buffers kept for reuse once their window has been evaluated. */
const SPARE_BUFFERS = 2;

export type WindowClose = 'count' | 'time' | 'swap' | 'shutdown';

export interface DriftReport extends WindowDrift {
  model: string;
  modelVersion: string;
  window: { start: string; end: string; rows: number; closedBy: WindowClose };
  /** Prediction requests rejected for not matching the signature while the window was open. */
  schemaViolations: number;
}

export interface MonitorOptions {
  model: string;
  modelVersion: string;
  windowSize: number;
  windowSeconds: number;
  drift: DriftOptions;
  onReport: (report: DriftReport) => void;
  onError: (error: unknown) => void;
}

export class DriftMonitor {
  private readonly features: number;
  private buffer: Float64Array;
  private rows = 0;
  private violations = 0;
  private start = new Date();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Closed windows not yet reported, oldest first; the first may be part-evaluated. */
  private readonly closed: ClosedWindow[] = [];
  private sliceScheduled = false;
  private idleWaiters: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
  /** An error thrown by onError itself: stop() rejects with it, as the evaluations' promise chain once did. */
  private failure: { error: unknown } | undefined;
  /** Evaluated windows' buffers, reused for the next windows instead of allocating 8 bytes per value each time. */
  private readonly spare: Float64Array[] = [];
  /** One feature's values of the window being evaluated; sorted in place. */
  private readonly column: Float64Array;

  /** The profile's features, each numeric sample sorted once into a Float64Array instead of every window. */
  private readonly reference: FeatureReference[];

  constructor(
    profile: ReferenceProfile,
    private readonly options: MonitorOptions,
  ) {
    this.reference = profile.features.map((f) =>
      f.type === 'numeric' ? { ...f, sample: Float64Array.from(f.sample).sort() } : f,
    );
    this.features = profile.features.length;
    this.buffer = new Float64Array(options.windowSize * this.features);
    this.column = new Float64Array(options.windowSize);
    this.armTimer();
  }

  get featureCount(): number {
    return this.features;
  }

  /** Copy `rows` rows of row-major values (NaN = missing) into the open window. */
  record(values: ArrayLike<number>, rows: number): void {
    if (this.stopped) return;
    const f = this.features;
    let row = 0;
    while (row < rows) {
      const take = Math.min(rows - row, this.options.windowSize - this.rows);
      const base = this.rows * f;
      if (values instanceof Float32Array || values instanceof Float64Array) {
        // A request's Float32Array is copied and widened as one block.
        this.buffer.set(values.subarray(row * f, (row + take) * f), base);
      } else {
        for (let i = 0, n = take * f; i < n; i++) this.buffer[base + i] = values[row * f + i];
      }
      this.rows += take;
      row += take;
      if (this.rows === this.options.windowSize) this.close('count');
    }
  }

  recordViolation(): void {
    if (!this.stopped) this.violations++;
  }

  /** Close the open window (if it has rows) and wait for every pending evaluation. */
  async stop(reason: WindowClose): Promise<void> {
    if (!this.stopped) {
      this.close(reason);
      this.stopped = true;
      clearTimeout(this.timer);
    }
    return this.idle();
  }

  /** Resolves once every closed window has been reported. */
  private idle(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure.error);
    if (this.closed.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.idleWaiters.push({ resolve, reject }));
  }

  private armTimer(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.rows > 0) this.close('time');
      else {
        // Nothing to compare yet: keep counting violations into the next window.
        this.start = new Date();
        this.armTimer();
      }
    }, this.options.windowSeconds * 1000);
    this.timer.unref();
  }

  private close(closedBy: WindowClose): void {
    if (this.rows === 0) return;
    const buffer = this.buffer;
    const rows = this.rows;
    const window = { start: this.start.toISOString(), end: new Date().toISOString(), rows, closedBy };
    this.closed.push({ buffer, rows, window, schemaViolations: this.violations, results: [] });
    this.buffer = this.spare.pop() ?? new Float64Array(this.options.windowSize * this.features);
    this.rows = 0;
    this.violations = 0;
    this.start = new Date();
    if (!this.stopped) this.armTimer();
    this.scheduleSlice();
  }

  private scheduleSlice(): void {
    if (this.sliceScheduled) return;
    this.sliceScheduled = true;
    setImmediate(() => {
      this.sliceScheduled = false;
      this.slice();
    });
  }

  /** Evaluate the closed windows, oldest first, all but the last and that for up to SLICE_MS; report each finished. */
  private slice(): void {
    const deadline = performance.now() + SLICE_MS;
    do {
      const head = this.closed[0];
      if (!head) break;
      try {
        head.results.push(this.evaluateFeature(head, head.results.length));
        if (head.results.length < this.features) continue;
        this.closed.shift();
        this.release(head.buffer);
        this.options.onReport({
          model: this.options.model,
          modelVersion: this.options.modelVersion,
          window: head.window,
          schemaViolations: head.schemaViolations,
          ...windowDrift(head.results, this.options.drift, head.rows),
        });
      } catch (error) {
        if (this.closed[0] === head) this.closed.shift();
        try {
          this.options.onError(error);
        } catch (thrown) {
          this.failure ??= { error: thrown };
        }
      }
      // Past the slice's time, go on while more than one window waits: windows then never pile up behind
      // a busy event loop (each turn pays for the windows the turn before it closed), and one big window
      // still yields between its features.
    } while (this.closed.length > 1 || (this.closed.length > 0 && performance.now() < deadline));
    if (this.closed.length > 0) {
      this.scheduleSlice();
      return;
    }
    const waiters = this.idleWaiters.splice(0);
    for (const w of waiters) this.failure ? w.reject(this.failure.error) : w.resolve();
  }

  private release(buffer: Float64Array): void {
    if (this.spare.length < SPARE_BUFFERS) this.spare.push(buffer);
  }

  /**
   * Feature j of a closed window: its non-missing values (NaN marks missing) gathered into the column buffer,
   * numeric ones sorted in place there (the statistics need them in order and would otherwise sort a copy).
   */
  private evaluateFeature(window: ClosedWindow, j: number): FeatureDrift {
    const f = this.features;
    const values = window.buffer;
    const column = this.column;
    let present = 0;
    for (let r = 0, n = window.rows * f; j + r < n; r += f) {
      const v = values[j + r];
      if (!Number.isNaN(v)) column[present++] = v;
    }
    const reference = this.reference[j];
    const current = column.subarray(0, present);
    if (reference.type === 'numeric') sortInPlace(current);
    return featureDrift(reference, current, window.rows - present, this.options.drift);
  }
}

interface ClosedWindow {
  /** Row-major values; the first `rows` rows are the window's. */
  buffer: Float64Array;
  rows: number;
  window: DriftReport['window'];
  schemaViolations: number;
  /** Features evaluated so far, in profile order. */
  results: FeatureDrift[];
}
