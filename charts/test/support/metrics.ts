// What the chart's PromQL (dashboard, alert rules) may refer to: every metric the server and the operator
// define with prom-client, with its labels, and the metrics and labels one query reads.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PREDICTOR_METRICS } from '../../../operator/api/contracts.ts';
import { ROOT } from './chart.ts';

/** Metric name → label names, from every prom-client metric defined in the code that runs in the server and the operator. */
export function exportedMetrics(): Map<string, Set<string>> {
  const metrics = new Map<string, Set<string>>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) {
        if (name !== 'test') walk(path);
        continue;
      }
      if (!name.endsWith('.ts')) continue;
      const text = readFileSync(path, 'utf8');
      for (const m of text.matchAll(
        /new\s+(?:Prebound)?(Counter|Gauge|Histogram|Summary)\s*\(\s*\{([\s\S]*?)\}\s*\)/g,
      )) {
        // A name is a string literal, or one of the predictor metric names the contracts module holds.
        const named = /name:\s*PREDICTOR_METRICS\.(\w+)/.exec(m[2])?.[1];
        const metric = named
          ? (PREDICTOR_METRICS as Record<string, string>)[named]
          : /name:\s*['"]([a-zA-Z_:][a-zA-Z0-9_:]*)['"]/.exec(m[2])?.[1];
        if (!metric) continue;
        const labels = new Set(
          [...(/labelNames:\s*\[([^\]]*)\]/.exec(m[2])?.[1] ?? '').matchAll(/['"](\w+)['"]/g)].map((l) => l[1]),
        );
        if (m[1] === 'Histogram') {
          for (const suffix of ['_bucket', '_count', '_sum'])
            metrics.set(metric + suffix, new Set([...labels, ...(suffix === '_bucket' ? ['le'] : [])]));
        } else {
          metrics.set(metric, labels);
        }
      }
    }
  };
  walk(join(ROOT, 'server/src'));
  walk(join(ROOT, 'operator'));
  return metrics;
}

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'offset',
  'and',
  'or',
  'unless',
]);

/** Metric names a query reads, and the labels it filters or groups by. */
export function parts(expr: string): { metrics: string[]; labels: string[] } {
  const labels: string[] = [];
  for (const m of expr.matchAll(/\{([^}]*)\}/g))
    for (const l of m[1].matchAll(/(\w+)\s*(=~|!~|!=|=)/g)) labels.push(l[1]);
  for (const m of expr.matchAll(/\b(by|without|on|ignoring)\s*\(([^)]*)\)/g))
    labels.push(
      ...m[2]
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    );
  const bare = expr
    .replace(/"[^"]*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const metrics = [...bare.matchAll(/(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)]
    .map((m) => m[1])
    .filter((id) => !KEYWORDS.has(id));
  return { metrics, labels };
}
