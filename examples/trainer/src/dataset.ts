// The credit-risk data set: generated deterministically from a seed, or read from CSV (file:// or s3://).
import { normalFrom, permutation, seededRandom } from './random.ts';
import { datasetHash } from '../../../operator/api/dataset-parts.ts';
import { readDataParts } from './storage.ts';

export type FeatureType = 'numeric' | 'categorical';

export interface Feature {
  name: string;
  type: FeatureType;
}

/** Columns of the model's input tensor, in order. `region` is integer-coded and fed to the model as a float. */
export const CREDIT_RISK_FEATURES: readonly Feature[] = [
  { name: 'income', type: 'numeric' }, // thousands per year
  { name: 'debt_ratio', type: 'numeric' },
  { name: 'age', type: 'numeric' },
  { name: 'utilization', type: 'numeric' },
  { name: 'region', type: 'categorical' }, // 0..3
];

export const LABEL = 'defaulted';

export interface Dataset {
  features: readonly Feature[];
  /** Row-major feature values; NaN marks a missing value. */
  x: number[][];
  /** 0 or 1 per row. */
  y: number[];
}

const REGION_BASE_LOGITS = [0.9, 0.6, 0.2, -0.4];
const REGION_SHIFT_TILT = [0, 0.3, 0.6, 0.9];
const REGION_RISK = [0, 0.25, 0.5, 0.75];

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

function round(v: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(v * f) / f;
}

function pickCategory(logits: number[], uniform: () => number): number {
  const weights = logits.map(Math.exp);
  let u = uniform() * weights.reduce((a, b) => a + b, 0);
  for (let k = 0; k < weights.length - 1; k++) {
    u -= weights[k];
    if (u < 0) return k;
  }
  return weights.length - 1;
}

/**
 * The log-odds of default of one row (`income, debt_ratio, age, utilization, region`). Concept 0 is the original
 * rule; concept 1 is a concept shift: the same inputs, another rule (young borrowers with high utilization no longer
 * default more, older ones with high income do), which no input distribution shows.
 */
export function riskLogit(row: readonly number[], concept = 0): number {
  const [income, debtRatio, age, utilization, region] = row as [number, number, number, number, number];
  const z = {
    income: (Math.log(income) - 3.9) / 0.45,
    debt: (debtRatio - 0.35) / 0.15,
    age: (age - 42) / 12,
    utilization: (utilization - 0.4) / 0.25,
  };
  if (concept === 1) return -1.3 + 1.1 * z.income + 0.4 * z.debt + 1.2 * z.age - 1.2 * z.utilization;
  return -1.3 - 0.9 * z.income + 1.3 * z.debt - 0.5 * z.age + 1.4 * z.utilization + REGION_RISK[region]!;
}

/**
 * A synthetic credit-risk population. `shift` moves every numeric feature by `shift` of its
 * spread and tilts regions towards 3, while the risk function stays the same: covariate drift,
 * so a retrain on shifted data learns the same relationship on moved inputs. `concept` 1 draws the labels from the
 * shifted rule of riskLogit instead.
 */
export function generateCreditRisk(opts: { rows: number; seed: number; shift: number; concept?: number }): Dataset {
  const uniform = seededRandom(opts.seed);
  const normal = normalFrom(uniform);
  const { shift } = opts;
  const x: number[][] = [];
  const y: number[] = [];
  for (let i = 0; i < opts.rows; i++) {
    const income = round(Math.exp(3.9 + 0.45 * (normal() + shift)), 1);
    const debtRatio = round(clamp(0.35 + 0.15 * (normal() + shift), 0, 1.5), 3);
    const age = clamp(Math.round(42 + 12 * (normal() + shift)), 18, 90);
    const utilization = round(1 / (1 + Math.exp(-(-0.5 + 1.2 * (normal() + shift)))), 3);
    const region = pickCategory(
      REGION_BASE_LOGITS.map((l, k) => l + shift * REGION_SHIFT_TILT[k]),
      uniform,
    );
    const row = [income, debtRatio, age, utilization, region];
    x.push(row);
    y.push(uniform() < 1 / (1 + Math.exp(-riskLogit(row, opts.concept ?? 0))) ? 1 : 0);
  }
  return { features: CREDIT_RISK_FEATURES, x, y };
}

const MISSING = new Set(['', 'na', 'nan', 'null']);

/**
 * The CSV file or object `uri` names, or every *.csv below its directory or prefix (storage.ts): a header naming
 * every credit-risk feature and the `defaulted` label (other columns are ignored). Empty, NA, NaN or null cells
 * are missing values.
 */
export async function readCreditRiskCsv(uri: string, expectedHash?: string): Promise<Dataset> {
  const sources = await readDataParts(uri);
  if (expectedHash) {
    const actual = datasetHash(sources.map((part) => part.bytes));
    if (actual !== expectedHash)
      throw new Error(
        `dataset ${uri} has ${actual}, not the ${expectedHash} of spec.dataset.hash: the data changed since it was recorded; point the TrainingJob at the data the hash is of`,
      );
  }
  const parts = sources.map((part) => parseCreditRiskCsv(part.bytes.toString('utf8'), part.uri));
  return { features: CREDIT_RISK_FEATURES, x: parts.flatMap((d) => d.x), y: parts.flatMap((d) => d.y) };
}

/** One CSV text; `source` names it in errors. */
export function parseCreditRiskCsv(text: string, source: string): Dataset {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length < 2) throw new Error(`${source}: needs a header and at least one row`);
  const header = lines[0].split(',').map((h) => h.trim());
  const columnOf = (name: string) => {
    const c = header.indexOf(name);
    if (c < 0) throw new Error(`${source}: header has no column "${name}" (have: ${header.join(', ')})`);
    return c;
  };
  const featureColumns = CREDIT_RISK_FEATURES.map((f) => columnOf(f.name));
  // A snapshot of labelled production rows (docs/ground-truth.md) names its label column `label`.
  const labelColumn = header.includes(LABEL) || !header.includes('label') ? columnOf(LABEL) : header.indexOf('label');
  const x: number[][] = [];
  const y: number[] = [];
  lines.slice(1).forEach((line, i) => {
    const cells = line.split(',').map((c) => c.trim());
    const lineNo = i + 2;
    x.push(
      featureColumns.map((c, j) => {
        const cell = cells[c] ?? '';
        if (MISSING.has(cell.toLowerCase())) return NaN;
        const v = Number(cell);
        if (!Number.isFinite(v))
          throw new Error(`${source}:${lineNo}: ${CREDIT_RISK_FEATURES[j].name}="${cell}" is not a number`);
        return v;
      }),
    );
    const label = cells[labelColumn];
    if (label !== '0' && label !== '1')
      throw new Error(`${source}:${lineNo}: ${header[labelColumn]}="${label}" must be 0 or 1`);
    y.push(Number(label));
  });
  return { features: CREDIT_RISK_FEATURES, x, y };
}

export function toCsv(data: Dataset): string {
  const header = [...data.features.map((f) => f.name), LABEL].join(',');
  const body = data.x.map((row, i) => [...row.map((v) => (Number.isNaN(v) ? '' : String(v))), data.y[i]].join(','));
  return [header, ...body].join('\n') + '\n';
}

export interface Split {
  train: number[];
  holdout: number[];
}

/** Seeded held-out split of row indices. */
export function splitRows(rows: number, holdoutFraction: number, seed: number): Split {
  const order = permutation(rows, seededRandom(seed ^ 0x5eed));
  const holdoutRows = Math.max(1, Math.round(rows * holdoutFraction));
  if (holdoutRows >= rows)
    throw new Error(`holdout fraction ${holdoutFraction} leaves no training rows out of ${rows}`);
  return { holdout: order.slice(0, holdoutRows), train: order.slice(holdoutRows) };
}

/** The training rows one rank of a distributed job works on: every world-th row, starting at rank. */
export function shardOf(rows: number[], rank: number, worldSize: number): number[] {
  return rows.filter((_, i) => i % worldSize === rank);
}
