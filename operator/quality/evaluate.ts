/**
 * One quality evaluation of an InferenceService, as the CronJob the operator owns runs it (the operator image's
 * `operator/main.js evaluate ...`; `npx loopline evaluate ...` by hand): gather the window's inference-log parts and every label file under the base URI, join and
 * measure each version (join.ts), publish the result as a quality event on NATS, and print it.
 *   node operator/main.js evaluate --namespace N --service S --uri s3://bucket/prefix [--window 1h|all] [--threshold 0.5]
 *                                    [--end <RFC 3339>] [--calibration-bins 10] [--memory-limit 1GB]
 *                                    [--canary V --stable V --since <RFC 3339>]
 * Environment: the storage variables (operator/api/storage-env.ts), NATS_URL and NATS_CREDS_FILE; without
 * NATS_URL the result is only printed.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { datasetHash, datasetParts, namesParts } from '../api/dataset-parts.ts';
import { s3ClientFromEnv } from '../api/object-storage.ts';
import type { CloudEvent } from '../events/cloudevents.ts';
import { connectNats } from '../events/connect.ts';
import { qualityCloudEvent, qualitySubject, type QualityEventData } from '../events/quality-event.ts';
import { parseDuration } from '../api/contracts.ts';
import { evaluate, type SnapshotRequest } from './join.ts';
import {
  DROP_METRICS,
  dropped,
  snapshotKey,
  type DropCondition,
  type DropMetric,
  type TrainingDataMix,
} from './snapshot.ts';
import { gatherSources, storageFor } from './sources.ts';
import { psi } from '../../server/src/drift/statistics.ts';
import type { PairedDecisions } from './join.ts';

type Env = Record<string, string | undefined>;

export interface EvaluateOptions {
  namespace: string;
  service: string;
  /** The ground-truth base: spec.logging.uri. */
  uri: string;
  /** A duration (`1h`, `30m`, `24h`) back from end, or `all`: every labelled prediction so far. */
  window: string;
  threshold: number;
  /** The window's end; now by default. */
  end?: Date;
  calibrationBins?: number;
  memoryLimit?: string;
  /** Storage variables for s3:// (process.env by default). */
  env?: Env;
  /** Write a snapshot of the window's labelled rows when this holds (snapshot.ts). */
  snapshotWhen?: DropCondition;
  /** During a rollout: compare the canary with stable on the predictions each answered after `since`. */
  compare?: { canary: number; stable: number; since: Date };
}

/** PSI of the canary's scores (actual) against stable's (expected) over the paired requests, as drift computes it. */
export function scorePsi(paired: PairedDecisions): number {
  const shares = (bins: number[]) => bins.map((n) => n / paired.pairs);
  return psi(shares(paired.stableBins), shares(paired.canaryBins));
}

/** The window's start in ms, or null for `all`; throws naming --window when it is neither. */
export function windowStart(window: string, endMs: number): number | null {
  if (window === 'all') return null;
  const ms = parseDuration('--window', window);
  if (!(ms > 0)) throw new Error(`--window: "${window}" is no time: give a duration (e.g. 30m, 1h, 7d) or "all"`);
  return endMs - ms;
}

export async function evaluateQuality(options: EvaluateOptions): Promise<QualityEventData> {
  const endMs = (options.end ?? new Date()).getTime();
  const startMs = windowStart(options.window, endMs);
  if (!(options.threshold >= 0 && options.threshold <= 1))
    throw new Error(`--threshold ${options.threshold} is not a probability in [0, 1]`);
  const storage = storageFor(options.uri, () => s3ClientFromEnv(options.env ?? process.env));
  const dir = await mkdtemp(join(tmpdir(), 'loopline-quality-'));
  try {
    const sinceMs = options.compare?.since.getTime();
    const sources = await gatherSources(storage, {
      namespace: options.namespace,
      service: options.service,
      startMs: sinceMs === undefined || startMs === null ? startMs : Math.min(startMs, sinceMs),
      endMs,
      dir: join(dir, 'objects'),
    });
    const condition = options.snapshotWhen;
    const snapshot: SnapshotRequest | undefined = condition
      ? {
          path: join(dir, 'snapshot.csv'),
          when: (versions) => dropped(versions, condition) !== undefined,
          ...(condition.mix
            ? {
                mix: {
                  files: () => trainingDataFiles(condition.mix!, join(dir, 'training'), options.env ?? process.env),
                  labelColumn: condition.mix.labelColumn,
                },
              }
            : {}),
        }
      : undefined;
    const { versions, comparison } = await evaluate(sources, {
      startMs,
      endMs,
      threshold: options.threshold,
      tempDir: join(dir, 'spill'),
      ...(options.calibrationBins !== undefined ? { calibrationBins: options.calibrationBins } : {}),
      ...(options.memoryLimit ? { memoryLimit: options.memoryLimit } : {}),
      ...(snapshot ? { snapshot } : {}),
      ...(options.compare
        ? { compare: { canary: options.compare.canary, stable: options.compare.stable, sinceMs: sinceMs! } }
        : {}),
    });
    let written: QualityEventData['snapshot'];
    if (snapshot?.rows !== undefined) {
      const body = await readFile(snapshot.path);
      const sha256 = createHash('sha256').update(body).digest('hex');
      const key = snapshotKey(options.namespace, options.service, new Date(endMs), sha256);
      await storage.put(key, body, 'text/csv');
      written = {
        uri: storage.uri(key),
        sha256,
        rows: snapshot.rows,
        ...(snapshot.trainingRows !== undefined ? { trainingRows: snapshot.trainingRows } : {}),
      };
    }
    return {
      namespace: options.namespace,
      inferenceService: options.service,
      window: {
        start: startMs === null ? null : new Date(startMs).toISOString(),
        end: new Date(endMs).toISOString(),
        duration: options.window,
      },
      versions,
      ...(written ? { snapshot: written } : {}),
      ...(options.compare && comparison
        ? {
            comparison: {
              canaryVersion: options.compare.canary,
              stableVersion: options.compare.stable,
              since: options.compare.since.toISOString(),
              threshold: options.threshold,
              canary: comparison.canary,
              stable: comparison.stable,
              paired: {
                pairs: comparison.paired.pairs,
                flipped: comparison.paired.flipped,
                scorePsi: comparison.paired.pairs > 0 ? scorePsi(comparison.paired) : null,
                ...(comparison.paired.labelled ? { labelled: comparison.paired.labelled } : {}),
              },
            },
          }
        : {}),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Publishes the evaluation through JetStream (stored once: the CloudEvent id is the message id). */
export async function publishQuality(
  nc: NatsConnection,
  data: QualityEventData,
): Promise<CloudEvent<QualityEventData>> {
  const event = qualityCloudEvent(data);
  await jetstream(nc).publish(qualitySubject(data.namespace, data.inferenceService), JSON.stringify(event), {
    msgID: event.id,
  });
  return event;
}

export const EVALUATE_USAGE = `usage: loopline evaluate --namespace <ns> --service <inferenceservice> --uri <s3://bucket/prefix | file:///path>
                [--window <duration> | all] [--threshold <0..1>] [--end <RFC 3339 time>]
                [--calibration-bins <n>] [--memory-limit <e.g. 1GB>]
                [--snapshot-version <n> --snapshot-metric auc|accuracy --snapshot-below <0..1> [--snapshot-min-labels <n>]
                 [--snapshot-mix-uri <training data> [--snapshot-mix-label <column>] [--snapshot-mix-hash sha256:<hex>]]]
                [--canary <version> --stable <version> --since <RFC 3339 time>]

Joins the service's logged predictions with their labels (docs/ground-truth.md) per version over the window
(default 1h; "all" for every labelled prediction so far), prints the quality and publishes it on
loopline.quality.<ns>.<service> when NATS_URL is set. With --snapshot-*: when that version's metric is below the
bound on at least min-labels labels, the window's labelled rows are written as CSV under <uri>/snapshots/ with their
sha256, named in the event (a retrain's dataset, spec.retrain.onQualityDrop); --snapshot-mix-uri appends the rows of
the version's training data (a CSV file or every *.csv below a prefix, checked against --snapshot-mix-hash). With --canary, --stable and --since
(the operator passes them during a rollout) it also compares the two versions on the predictions each answered since
then (spec.rollout.analysis.quality).`;

/** The --snapshot-* flags as a condition, or an error naming the flag; undefined when none is given. */
export function snapshotCondition(values: Record<string, string | boolean | undefined>): DropCondition | undefined {
  const given = ['snapshot-version', 'snapshot-metric', 'snapshot-below', 'snapshot-min-labels'].filter(
    (name) => values[name] !== undefined,
  );
  if (given.length === 0) return undefined;
  for (const name of ['snapshot-version', 'snapshot-metric', 'snapshot-below'])
    if (values[name] === undefined) throw new Error(`--${name} is required with --${given.join(', --')}`);
  const version = Number(values['snapshot-version']);
  if (!(Number.isInteger(version) && version >= 1))
    throw new Error(`--snapshot-version "${values['snapshot-version']}" is not a version number (1, 2, ...)`);
  const metric = String(values['snapshot-metric']) as DropMetric;
  if (!DROP_METRICS.includes(metric))
    throw new Error(`--snapshot-metric "${metric}" is not one of ${DROP_METRICS.join(', ')}`);
  const below = Number(values['snapshot-below']);
  if (String(values['snapshot-below']).trim() === '' || !(below >= 0 && below <= 1))
    throw new Error(`--snapshot-below "${values['snapshot-below']}" is not a number in [0, 1]`);
  const minLabels = values['snapshot-min-labels'] === undefined ? 1 : Number(values['snapshot-min-labels']);
  if (!(Number.isInteger(minLabels) && minLabels >= 1))
    throw new Error(`--snapshot-min-labels "${values['snapshot-min-labels']}" is not a whole number of at least 1`);
  const mixUri = values['snapshot-mix-uri'];
  if (mixUri === undefined) {
    for (const name of ['snapshot-mix-label', 'snapshot-mix-hash'])
      if (values[name] !== undefined) throw new Error(`--${name} goes with --snapshot-mix-uri`);
    return { version, metric, below, minLabels };
  }
  const uri = String(mixUri);
  if (!/^(s3|file):\/\/./.test(uri))
    throw new Error(`--snapshot-mix-uri "${uri}" is neither s3://<bucket>/<key or prefix> nor file:///<path>`);
  const labelColumn = String(values['snapshot-mix-label'] ?? 'label');
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(labelColumn))
    throw new Error(`--snapshot-mix-label "${labelColumn}" is not a column name (letters, digits, _)`);
  const hash = values['snapshot-mix-hash'];
  if (hash !== undefined && !/^sha256:[0-9a-f]{64}$/.test(String(hash)))
    throw new Error(`--snapshot-mix-hash "${hash}" is not sha256:<64 hex digits>`);
  return { version, metric, below, minLabels, mix: { uri, labelColumn, ...(hash ? { hash: String(hash) } : {}) } };
}

/**
 * The data set `mix.uri` names (its CSV file, or every *.csv below its directory or prefix: dataset-parts.ts, the
 * rule the trainer read it by), downloaded into `dir` in order; with `hash`, the sha256 over their bytes in that
 * order (as the trainer checks spec.dataset.hash) must match it.
 */
export async function trainingDataFiles(mix: TrainingDataMix, dir: string, env: Env): Promise<string[]> {
  const parts = await namesParts(mix.uri);
  const base = parts ? mix.uri : mix.uri.slice(0, mix.uri.lastIndexOf('/'));
  const name = parts ? undefined : mix.uri.slice(mix.uri.lastIndexOf('/') + 1);
  const storage = storageFor(base, () => s3ClientFromEnv(env));
  const listed = await storage.list(name ?? '');
  const keys =
    name !== undefined
      ? listed.filter((o) => o.key === name).map((o) => o.key)
      : datasetParts(listed.map((o) => o.key));
  if (keys.length === 0)
    throw new Error(`the training data ${mix.uri} (trainingData.include) has no CSV to mix into the snapshot`);
  const byKey = new Map(listed.map((o) => [o.key, o]));
  const files: string[] = [];
  const bytes: Uint8Array[] = [];
  for (const key of keys) {
    const path = await storage.local(byKey.get(key)!, dir);
    bytes.push(await readFile(path));
    files.push(path);
  }
  const actual = datasetHash(bytes);
  if (mix.hash && actual !== mix.hash)
    throw new Error(
      `the training data ${mix.uri} has ${actual}, not the ${mix.hash} its ModelVersion's lineage.dataset records: it changed since the version was trained, so it is not mixed into a snapshot`,
    );
  return files;
}

/** The command; returns the exit code. Failures print one line naming what to fix. */
export async function runEvaluate(
  argv: string[],
  out: (line: string) => void = console.log,
  env: Env = process.env,
): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args: argv,
      options: {
        namespace: { type: 'string', short: 'n' },
        service: { type: 'string' },
        uri: { type: 'string' },
        window: { type: 'string', default: '1h' },
        threshold: { type: 'string', default: '0.5' },
        end: { type: 'string' },
        'calibration-bins': { type: 'string' },
        'memory-limit': { type: 'string' },
        'snapshot-version': { type: 'string' },
        'snapshot-metric': { type: 'string' },
        'snapshot-below': { type: 'string' },
        'snapshot-min-labels': { type: 'string' },
        'snapshot-mix-uri': { type: 'string' },
        'snapshot-mix-label': { type: 'string' },
        'snapshot-mix-hash': { type: 'string' },
        canary: { type: 'string' },
        stable: { type: 'string' },
        since: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (error) {
    out(`loopline evaluate: ${(error as Error).message}\n${EVALUATE_USAGE}`);
    return 2;
  }
  if (values.help) {
    out(EVALUATE_USAGE);
    return 0;
  }
  const missing = (['namespace', 'service', 'uri'] as const).filter((name) => !values[name]);
  if (missing.length > 0) {
    out(`loopline evaluate: --${missing.join(', --')} required\n${EVALUATE_USAGE}`);
    return 2;
  }
  const end = values.end !== undefined ? new Date(values.end) : undefined;
  if (end && Number.isNaN(end.getTime())) {
    out(`loopline evaluate: --end "${values.end}" is not a time (RFC 3339, e.g. 2026-12-01T10:00:00Z)`);
    return 2;
  }
  const threshold = Number(values.threshold);
  const bins = values['calibration-bins'] !== undefined ? Number(values['calibration-bins']) : undefined;
  if (bins !== undefined && !(Number.isInteger(bins) && bins >= 1 && bins <= 1000)) {
    out(`loopline evaluate: --calibration-bins "${values['calibration-bins']}" is not a whole number from 1 to 1000`);
    return 2;
  }
  let snapshotWhen: DropCondition | undefined;
  try {
    snapshotWhen = snapshotCondition(values);
  } catch (error) {
    out(`loopline evaluate: ${(error as Error).message}`);
    return 2;
  }
  const compareFlags = (['canary', 'stable', 'since'] as const).filter((name) => values[name] !== undefined);
  let compare: EvaluateOptions['compare'];
  if (compareFlags.length > 0) {
    if (compareFlags.length < 3) {
      out(
        `loopline evaluate: --canary, --stable and --since go together; ${compareFlags.map((f) => `--${f}`).join(', ')} given`,
      );
      return 2;
    }
    const [canary, stable] = [Number(values.canary), Number(values.stable)];
    for (const [flag, version] of [
      ['canary', canary],
      ['stable', stable],
    ] as const) {
      if (!(Number.isInteger(version) && version >= 1)) {
        out(`loopline evaluate: --${flag} "${values[flag]}" is not a version number (a whole number from 1)`);
        return 2;
      }
    }
    const since = new Date(values.since!);
    if (Number.isNaN(since.getTime())) {
      out(`loopline evaluate: --since "${values.since}" is not a time (RFC 3339, e.g. 2026-12-01T10:00:00Z)`);
      return 2;
    }
    compare = { canary, stable, since };
  }
  let nc: NatsConnection | undefined;
  try {
    const data = await evaluateQuality({
      ...(snapshotWhen ? { snapshotWhen } : {}),
      namespace: values.namespace!,
      service: values.service!,
      uri: values.uri!,
      window: values.window!,
      threshold: values.threshold!.trim() === '' ? Number.NaN : threshold,
      env,
      ...(end ? { end } : {}),
      ...(bins !== undefined ? { calibrationBins: bins } : {}),
      ...(values['memory-limit'] ? { memoryLimit: values['memory-limit'] } : {}),
      ...(compare ? { compare } : {}),
    });
    let published: string | undefined;
    if (env.NATS_URL) {
      nc = await connectNats(
        { url: env.NATS_URL, ...(env.NATS_CREDS_FILE ? { credsFile: env.NATS_CREDS_FILE } : {}) },
        'loopline-evaluator',
      );
      published = (await publishQuality(nc, data)).id;
    }
    out(
      JSON.stringify({
        ...(published ? { published, subject: qualitySubject(data.namespace, data.inferenceService) } : {}),
        ...data,
      }),
    );
    return 0;
  } catch (error) {
    out(`loopline evaluate: ${(error as Error).message}`);
    return 1;
  } finally {
    await nc?.drain().catch(() => undefined);
  }
}
