// Metric gates: `auc >= 0.85`-style conditions on a model's metrics. TrainingJobs use them to decide
// whether a result is registered, ModelVersions to decide whether a promotion is allowed.
import type { RegistrationGate as MetricGate } from '../api/types.ts';

export interface GateVerdict {
  passed: boolean;
  /** One sentence per failed gate, naming the metric, its value and the threshold. */
  failures: string[];
}

const compare: Record<MetricGate['operator'], (a: number, b: number) => boolean> = {
  '>=': (a, b) => a >= b,
  '>': (a, b) => a > b,
  '<=': (a, b) => a <= b,
  '<': (a, b) => a < b,
};

export function describeGate(gate: MetricGate): string {
  return `${gate.metric} ${gate.operator} ${gate.value}`;
}

export function evaluateGates(
  gates: readonly MetricGate[] | undefined,
  metrics: Readonly<Record<string, number>> | undefined,
): GateVerdict {
  const failures: string[] = [];
  for (const gate of gates ?? []) {
    const value = metrics?.[gate.metric];
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      const known = Object.keys(metrics ?? {}).sort();
      failures.push(
        `metric ${gate.metric} is missing (gate ${describeGate(gate)}; metrics are: ${known.length ? known.join(', ') : 'none'})`,
      );
    } else if (!compare[gate.operator](value, gate.value)) {
      failures.push(`${gate.metric} = ${value} fails ${describeGate(gate)}`);
    }
  }
  return { passed: failures.length === 0, failures };
}
