// Test models: the trainer's ONNX logistic regression written to a temp dir, with its
// digest computed here, and a reference profile built from known data.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildLogisticRegressionModel } from '../../../examples/trainer/src/onnx.ts';
import { normalFrom, seededRandom } from '../../../examples/trainer/src/random.ts';
import type { ServerConfig } from '../../src/config.ts';
import { DEFAULT_DRIFT_OPTIONS } from '../../src/drift/detector.ts';
import type { ReferenceProfile } from '../../src/drift/profile.ts';
import onnxProto from 'onnx-proto';
import type { Datatype, Signature } from '../../src/runtime/tensors.ts';

export interface Artifact {
  uri: string;
  digest: string;
  path: string;
}

export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export class Workspace {
  readonly dir = mkdtempSync(join(tmpdir(), 'loopline-server-'));

  write(name: string, bytes: Uint8Array | string): Artifact {
    const path = join(this.dir, name);
    writeFileSync(path, bytes);
    return { uri: pathToFileURL(path).href, digest: sha256(bytes), path };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

export interface LogisticModel {
  weights: number[];
  bias: number;
  artifact: Artifact;
  signature: Signature;
  /** Expected probability for one row, computed here in double precision. */
  expected(row: number[]): number;
}

export function logisticModel(ws: Workspace, name: string, weights: number[], bias: number): LogisticModel {
  const artifact = ws.write(name, buildLogisticRegressionModel({ weights, bias }));
  return {
    weights,
    bias,
    artifact,
    signature: {
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, weights.length] }],
      outputs: [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }],
    },
    expected: (row) => sigmoid(row.reduce((s, v, j) => s + v * weights[j], bias)),
  };
}

/** Deterministic pseudo-random numbers (the example trainer's mulberry32) so profiles and traffic are reproducible. */
export const random = seededRandom;

/** One normal draw from `rand` (the trainer's Box-Muller). */
export function normal(rand: () => number, mean = 0, std = 1): number {
  return mean + std * normalFrom(rand)();
}

/** A profile of `numeric` standard-normal features followed by one categorical feature with codes 0..2. */
export function referenceProfile(numeric: number, seed = 1): ReferenceProfile {
  const rand = random(seed);
  const features: ReferenceProfile['features'] = [];
  for (let j = 0; j < numeric; j++) {
    const sample = Array.from({ length: 2000 }, () => normal(rand));
    const sorted = [...sample].sort((a, b) => a - b);
    const edges = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9].map((q) => sorted[Math.floor(q * sorted.length)]);
    const counts = new Array(edges.length + 1).fill(0);
    for (const v of sample) counts[edges.filter((e) => e <= v).length]++;
    const mean = sample.reduce((s, v) => s + v, 0) / sample.length;
    features.push({
      name: `x${j}`,
      type: 'numeric',
      missingRate: 0,
      binEdges: edges,
      binFrequencies: counts.map((c) => c / sample.length),
      quantiles: { '0.5': sorted[1000] },
      mean,
      std: Math.sqrt(sample.reduce((s, v) => s + (v - mean) ** 2, 0) / sample.length),
      sample,
    });
  }
  features.push({ name: 'region', type: 'categorical', missingRate: 0, frequencies: { '0': 0.5, '1': 0.3, '2': 0.2 } });
  return { rows: 2000, features };
}

/** Server configuration for tests: loopback, random port, quiet logs, no NATS unless given. */
export function testConfig(
  model: { artifact: { uri: string; digest: string }; signature?: Signature },
  overrides: Partial<ServerConfig> = {},
): ServerConfig {
  return {
    port: 0,
    workers: 1,
    grpcPort: 0,
    host: '127.0.0.1',
    model: {
      name: 'credit',
      version: '1',
      artifact: { uri: model.artifact.uri, digest: model.artifact.digest },
      signature: model.signature,
    },
    batching: true,
    batchMaxSize: 64,
    batchMaxWaitMs: 2,
    intraOpThreads: 1,
    bodyLimitBytes: 64 * 1024,
    namespace: 'default',
    inferenceService: 'credit',
    drift: { ...DEFAULT_DRIFT_OPTIONS, windowSize: 1000, windowSeconds: 60 },
    shutdownDelayMs: 0,
    logLevel: process.env.LOG_LEVEL ?? 'silent',
    ...overrides,
  };
}

const ONNX_TYPE: Record<Datatype, number> = {
  FP32: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  BYTES: 8,
  BOOL: 9,
  FP16: 10,
  FP64: 11,
  UINT32: 12,
  UINT64: 13,
};

/** A model that answers each input unchanged: input `in_<DATATYPE>` [-1, 2] → output `out_<DATATYPE>`, one pair per datatype. */
export function identityModel(
  ws: Workspace,
  name: string,
  datatypes: readonly Datatype[],
): { artifact: Artifact; signature: Signature } {
  const { onnx } = onnxProto;
  const tensorType = (datatype: Datatype) => ({
    tensorType: { elemType: ONNX_TYPE[datatype], shape: { dim: [{ dimParam: 'batch' }, { dimValue: 2 }] } },
  });
  const graph = {
    name: 'identity',
    node: datatypes.map((d) => ({ name: `copy_${d}`, opType: 'Identity', input: [`in_${d}`], output: [`out_${d}`] })),
    input: datatypes.map((d) => ({ name: `in_${d}`, type: tensorType(d) })),
    output: datatypes.map((d) => ({ name: `out_${d}`, type: tensorType(d) })),
  };
  const bytes = onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 13 }],
      producerName: 'loopline-tests',
      graph,
    }),
  ).finish();
  return {
    artifact: ws.write(name, bytes),
    signature: {
      inputs: datatypes.map((d) => ({ name: `in_${d}`, datatype: d, shape: [-1, 2] })),
      outputs: datatypes.map((d) => ({ name: `out_${d}`, datatype: d, shape: [-1, 2] })),
    },
  };
}
