// Windows of live inputs, closed by count or by time. Recording a request only copies
// its rows into a preallocated buffer; the statistics run after the window closes,
// one feature per event-loop turn, so they never sit on a request's path.
import {
  featureDrift,
  presentValues,
  windowDrift,
  type DriftOptions,
  type FeatureDrift,
  type FeatureReference,
  type WindowDrift,
} from './detector.ts';
import type { ReferenceProfile } from './profile.ts';

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
  private evaluations: Promise<void> = Promise.resolve();
  private stopped = false;

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
      for (let i = 0, n = take * f; i < n; i++) this.buffer[base + i] = values[row * f + i];
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
    if (this.stopped) return this.evaluations;
    this.close(reason);
    this.stopped = true;
    clearTimeout(this.timer);
    return this.evaluations;
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
    const values = this.buffer.subarray(0, this.rows * this.features);
    const rows = this.rows;
    const window = { start: this.start.toISOString(), end: new Date().toISOString(), rows, closedBy };
    const schemaViolations = this.violations;
    this.buffer = new Float64Array(this.options.windowSize * this.features);
    this.rows = 0;
    this.violations = 0;
    this.start = new Date();
    if (!this.stopped) this.armTimer();
    this.evaluations = this.evaluations
      .then(() => this.evaluate(values, rows))
      .then((drift) =>
        this.options.onReport({
          model: this.options.model,
          modelVersion: this.options.modelVersion,
          window,
          schemaViolations,
          ...drift,
        }),
      )
      .catch(this.options.onError);
  }

  private async evaluate(values: Float64Array, rows: number): Promise<WindowDrift> {
    const results: FeatureDrift[] = [];
    for (let j = 0; j < this.features; j++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      const column = new Float64Array(rows);
      for (let r = 0; r < rows; r++) column[r] = values[r * this.features + j];
      const { values: present, missing } = presentValues(column);
      results.push(featureDrift(this.reference[j], present, missing, this.options.drift));
    }
    return windowDrift(results, this.options.drift, rows);
  }
}
