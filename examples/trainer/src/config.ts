// What the operator tells a training pod, read from its environment.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkOutputUri } from './storage.ts';

export interface Hyperparameters {
  learning_rate: number;
  epochs: number;
  l2: number;
  rows: number;
  seed: number;
  shift: number;
  holdout_fraction: number;
}

export const DEFAULT_HYPERPARAMETERS: Hyperparameters = {
  learning_rate: 0.5,
  epochs: 200,
  l2: 0.001,
  rows: 4000,
  seed: 42,
  shift: 0,
  holdout_fraction: 0.2,
};

const INTEGER_HYPERPARAMETERS = new Set<keyof Hyperparameters>(['epochs', 'rows', 'seed']);

/** Ways to make the trainer misbehave on purpose, so the operator's failure handling meets the real thing. */
export type FailureMode =
  | { kind: 'crash' }
  | { kind: 'bad-result' }
  | { kind: 'no-digest' }
  | { kind: 'sleep'; seconds: number };

export interface TrainerConfig {
  hyperparameters: Hyperparameters;
  /** Hyperparameter names given but not understood; logged, not fatal, so templates can carry extras. */
  ignoredHyperparameters: string[];
  /** file:// directory or s3:// prefix for model.onnx and profile.json. */
  outputUri: string;
  resultPath: string;
  datasetUri?: string;
  /** LOOPLINE_DATASET_HASH, `sha256:<hex>`: the dataset's bytes must have this hash (the TrainingJob's spec.dataset.hash). */
  datasetHash?: string;
  rank: number;
  worldSize: number;
  /** LOOPLINE_EPOCH_DELAY_MS: a pause after every epoch, so a demo or test can watch progress; 0 by default. */
  epochDelayMs: number;
}

function parseHyperparameter(name: keyof Hyperparameters, raw: string): number {
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value)) throw new Error(`hyperparameter ${name}="${raw}" is not a number`);
  if (INTEGER_HYPERPARAMETERS.has(name) && !Number.isInteger(value)) {
    throw new Error(`hyperparameter ${name}="${raw}" must be an integer`);
  }
  const positive: Array<keyof Hyperparameters> = ['learning_rate', 'epochs', 'rows'];
  if (positive.includes(name) && value <= 0) throw new Error(`hyperparameter ${name}="${raw}" must be > 0`);
  if (name === 'l2' && value < 0) throw new Error(`hyperparameter l2="${raw}" must be >= 0`);
  if (name === 'holdout_fraction' && !(value > 0 && value < 1)) {
    throw new Error(`hyperparameter holdout_fraction="${raw}" must be between 0 and 1`);
  }
  return value;
}

/**
 * Hyperparameters from HP_<NAME> variables (HP_LEARNING_RATE -> learning_rate) and from
 * LOOPLINE_HYPERPARAMETERS (a JSON object of strings); the JSON object wins where both name one.
 */
function readHyperparameters(env: NodeJS.ProcessEnv): { hyperparameters: Hyperparameters; ignored: string[] } {
  const given = new Map<string, string>();
  for (const [key, value] of Object.entries(env)) {
    if (key.startsWith('HP_') && value !== undefined) given.set(key.slice(3).toLowerCase(), value);
  }
  if (env.LOOPLINE_HYPERPARAMETERS) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(env.LOOPLINE_HYPERPARAMETERS);
    } catch (err) {
      throw new Error(`LOOPLINE_HYPERPARAMETERS is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new Error('LOOPLINE_HYPERPARAMETERS must be a JSON object of strings');
    }
    for (const [key, value] of Object.entries(parsed)) {
      if (typeof value !== 'string' && typeof value !== 'number') {
        throw new Error(`LOOPLINE_HYPERPARAMETERS.${key} must be a string`);
      }
      given.set(key, String(value));
    }
  }
  const hyperparameters = { ...DEFAULT_HYPERPARAMETERS };
  const ignored: string[] = [];
  for (const [name, raw] of given) {
    if (name in hyperparameters) {
      const key = name as keyof Hyperparameters;
      hyperparameters[key] = parseHyperparameter(key, raw);
    } else {
      ignored.push(name);
    }
  }
  return { hyperparameters, ignored: ignored.sort() };
}

export function parseFailures(spec: string | undefined): FailureMode[] {
  if (!spec) return [];
  return spec.split(',').map((part) => {
    const mode = part.trim();
    if (mode === 'crash' || mode === 'bad-result' || mode === 'no-digest') return { kind: mode };
    const sleep = /^sleep:(\d+(?:\.\d+)?)$/.exec(mode);
    if (sleep) return { kind: 'sleep', seconds: Number(sleep[1]) };
    throw new Error(`LOOPLINE_FAIL="${spec}": unknown mode "${mode}" (crash, bad-result, no-digest, sleep:<seconds>)`);
  });
}

/** RANK/WORLD_SIZE as plain PyTorch reads them, else the torchrun (PET_*) names. */
function readRank(env: NodeJS.ProcessEnv): { rank: number; worldSize: number } {
  const worldRaw = env.WORLD_SIZE ?? env.PET_NNODES ?? '1';
  const rankRaw = env.RANK ?? env.PET_NODE_RANK ?? '0';
  const worldSize = Number(worldRaw);
  const rank = Number(rankRaw);
  if (!Number.isInteger(worldSize) || worldSize < 1)
    throw new Error(`WORLD_SIZE="${worldRaw}" must be a positive integer`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) {
    throw new Error(`RANK="${rankRaw}" must be an integer in [0, ${worldSize})`);
  }
  return { rank, worldSize };
}

function outputUriOf(uri: string): string {
  checkOutputUri(uri);
  return uri;
}

export function readConfig(env: NodeJS.ProcessEnv, cwd: string): TrainerConfig {
  const { hyperparameters, ignored } = readHyperparameters(env);
  return {
    hyperparameters,
    ignoredHyperparameters: ignored,
    outputUri: outputUriOf(env.LOOPLINE_OUTPUT_URI || pathToFileURL(resolve(cwd, 'out')).href),
    resultPath: env.LOOPLINE_RESULT_PATH || '/dev/termination-log',
    datasetUri: env.LOOPLINE_DATASET_URI || undefined,
    ...(env.LOOPLINE_DATASET_HASH && readDatasetHash(env.LOOPLINE_DATASET_HASH)
      ? { datasetHash: readDatasetHash(env.LOOPLINE_DATASET_HASH) }
      : {}),
    ...readRank(env),
    epochDelayMs: readEpochDelay(env.LOOPLINE_EPOCH_DELAY_MS),
  };
}

/** A sha256 to check; another algorithm (a DVC md5, say) is recorded in lineage but not checked here. */
function readDatasetHash(raw: string): string | undefined {
  const hash = raw.trim().toLowerCase();
  if (!hash.startsWith('sha256:')) return undefined;
  if (!/^sha256:[0-9a-f]{64}$/.test(hash))
    throw new Error(`LOOPLINE_DATASET_HASH="${raw}" is not sha256:<64 hex digits> (spec.dataset.hash)`);
  return hash;
}

function readEpochDelay(raw: string | undefined): number {
  if (raw === undefined || raw === '') return 0;
  const ms = Number(raw);
  if (!Number.isFinite(ms) || ms < 0 || ms > 60_000)
    throw new Error(`LOOPLINE_EPOCH_DELAY_MS="${raw}" must be a number of milliseconds from 0 to 60000`);
  return ms;
}
