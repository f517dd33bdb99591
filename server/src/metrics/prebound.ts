// Counters and histograms for the metrics every prediction updates, with their series resolved
// once. prom-client's own bound children (`histogram.labels(...)`) still build, validate and hash
// a labels object on every observation; under load that was about 3% of the server's CPU and a
// quarter of what it spent beyond a bare HTTP route (CPU profiles of both). These observe into
// numbers and allocate nothing. They join the same prom-client Registry, which formats them with
// the rest: they implement what the Registry reads from a metric (name, help, type, aggregator,
// get(), reset()).
import type { Metric, Registry } from 'prom-client';

/** One sample line as the Registry formats it: `metricName{labels} value`. */
interface Sample {
  metricName?: string;
  labels: Record<string, string | number>;
  value: number;
}

interface Options<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
  registers: Registry[];
}

type Labels<L extends string> = Record<L, string>;

/** The series of one metric by label values, resolved once per distinct combination. */
abstract class PreboundMetric<L extends string, S extends { readonly labels: Labels<L>; clear(): void }> {
  readonly name: string;
  readonly help: string;
  abstract readonly type: 'counter' | 'histogram';
  readonly aggregator = 'sum' as const;
  private readonly labelNames: readonly L[];
  private readonly all = new Map<string, S>();

  constructor(options: Options<L>) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames;
    // The Registry duck-types its metrics; its TypeScript signature names prom-client's classes only.
    for (const registry of options.registers) registry.registerMetric(this as unknown as Metric<L>);
  }

  /** The series for these label values (every label name must be given). */
  series(labels: Labels<L>): S {
    const key = this.labelNames.map((name) => labels[name]).join('\u0000');
    let found = this.all.get(key);
    if (!found) {
      for (const name of this.labelNames) {
        if (typeof labels[name] !== 'string') throw new TypeError(`${this.name}: label ${name} needs a string value`);
      }
      const own = Object.fromEntries(this.labelNames.map((name) => [name, labels[name]])) as Labels<L>;
      this.all.set(key, (found = this.create(own)));
    }
    return found;
  }

  protected abstract create(labels: Labels<L>): S;
  protected abstract valuesOf(series: S): Sample[];

  get(): { name: string; help: string; type: 'counter' | 'histogram'; aggregator: 'sum'; values: Sample[] } {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: [...this.all.values()].flatMap((s) => this.valuesOf(s)),
    };
  }

  /** Zero every series (Registry.resetMetrics); series already handed out stay the ones exposed. */
  reset(): void {
    for (const series of this.all.values()) series.clear();
  }
}

export class CounterSeries<L extends string> {
  value = 0;
  constructor(readonly labels: Labels<L>) {}

  inc(by = 1): void {
    if (by >= 0) this.value += by;
  }

  clear(): void {
    this.value = 0;
  }
}

export class PreboundCounter<L extends string> extends PreboundMetric<L, CounterSeries<L>> {
  readonly type = 'counter' as const;

  protected create(labels: Labels<L>): CounterSeries<L> {
    return new CounterSeries(labels);
  }

  protected valuesOf(series: CounterSeries<L>): Sample[] {
    return [{ labels: series.labels, value: series.value }];
  }
}

export class HistogramSeries<L extends string> {
  /** Observations per bucket, not cumulative: counts[i] holds those above bounds[i - 1] and at most bounds[i]. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Labels<L>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    // A NaN or infinite observation would poison _sum for good: dropped, as prom-client refuses it.
    if (!Number.isFinite(value)) return;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    if (i < bounds.length) this.counts[i]++;
    this.sum += value;
    this.count++;
  }

  clear(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

export class PreboundHistogram<L extends string> extends PreboundMetric<L, HistogramSeries<L>> {
  readonly type = 'histogram' as const;
  private readonly buckets: readonly number[];

  constructor(options: Options<L> & { buckets: readonly number[] }) {
    super(options);
    this.buckets = [...options.buckets].sort((a, b) => a - b);
  }

  protected create(labels: Labels<L>): HistogramSeries<L> {
    return new HistogramSeries(labels, this.buckets);
  }

  protected valuesOf(series: HistogramSeries<L>): Sample[] {
    // The exposition format's histogram: cumulative buckets by upper bound `le`, then +Inf, _sum and _count.
    const values: Sample[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      cumulative += series.counts[i];
      values.push({
        metricName: `${this.name}_bucket`,
        labels: { le: this.buckets[i], ...series.labels },
        value: cumulative,
      });
    }
    values.push(
      { metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...series.labels }, value: series.count },
      { metricName: `${this.name}_sum`, labels: series.labels, value: series.sum },
      { metricName: `${this.name}_count`, labels: series.labels, value: series.count },
    );
    return values;
  }
}
