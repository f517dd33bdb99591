/**
 * What a chaos scenario reports: faults injected, invariant checks made and the ones violated, and the time
 * each recovery took; and the table `npm run chaos` writes to bench/results/chaos.md.
 */
import { percentile } from '../../test/support/figures.ts';

export interface ScenarioResult {
  scenario: string;
  /** The faults, in words (what was injected and for how long). */
  fault: string;
  faults: number;
  checks: number;
  violations: string[];
  /** One entry per recovery: from the fault's end to the operator's next reconcile that a probe sees. */
  recoveriesMs: number[];
  notes: string[];
  seconds: number;
}

export class ScenarioRecord {
  private faultCount = 0;
  private checkCount = 0;
  private readonly violations: string[] = [];
  private readonly recoveries: number[] = [];
  private readonly notes: string[] = [];
  private readonly started = Date.now();

  constructor(
    readonly scenario: string,
    readonly fault: string,
  ) {}

  injected(count = 1): void {
    this.faultCount += count;
  }

  /** One invariant check; `what` says the invariant (and, when it fails, what was seen instead). */
  check(holds: boolean, what: string): boolean {
    this.checkCount++;
    if (!holds) this.violations.push(what);
    return holds;
  }

  recovered(ms: number): void {
    this.recoveries.push(ms);
  }

  note(text: string): void {
    this.notes.push(text);
  }

  result(): ScenarioResult {
    return {
      scenario: this.scenario,
      fault: this.fault,
      faults: this.faultCount,
      checks: this.checkCount,
      violations: [...this.violations],
      recoveriesMs: [...this.recoveries],
      notes: [...this.notes],
      seconds: Math.round((Date.now() - this.started) / 100) / 10,
    };
  }
}

const seconds = (ms: number) => (Number.isNaN(ms) ? '–' : `${(ms / 1000).toFixed(1)} s`);

/** The summary table, one row per scenario, with the violations and notes listed under it. */
export function chaosTable(results: ScenarioResult[]): string {
  const lines = [
    '| scenario | faults injected | faults | invariant checks | violations | recovery p50 | recovery p99 | recoveries | took |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    lines.push(
      `| ${r.scenario} | ${r.fault} | ${r.faults} | ${r.checks} | ${r.violations.length} | ${seconds(percentile(r.recoveriesMs, 50))} | ${seconds(percentile(r.recoveriesMs, 99))} | ${r.recoveriesMs.length} | ${r.seconds.toFixed(0)} s |`,
    );
  }
  const details = results.flatMap((r) => [
    ...r.violations.map((v) => `- **${r.scenario}** violation: ${v}`),
    ...r.notes.map((n) => `- ${r.scenario}: ${n}`),
  ]);
  return [...lines, ...(details.length ? ['', ...details] : [])].join('\n');
}
