// What is being served right now: one model version with its request parsers and drift
// monitor, and how it is replaced (hot swap) without failing a request: the new version
// is loaded and warmed beside the old one, new requests go to it, and the old one is
// retired only after its last accepted request has been answered.
import type { Logger } from 'pino';
import type { ArtifactRef, ModelConfig } from './config.ts';
import { DriftMonitor, type DriftReport, type MonitorOptions } from './drift/monitor.ts';
import { imputationValue, loadReferenceProfile, type ReferenceProfile } from './drift/profile.ts';
import type { ServerMetrics } from './metrics/metrics.ts';
import {
  compileRowParser,
  compileV2RequestParser,
  rowsLayoutOf,
  type RowParser,
  type RowsLayout,
  type V2RequestParser,
} from './protocol/validation.ts';
import { DigestMismatchError } from './runtime/artifact.ts';
import { LoadedModel, type RuntimeOptions } from './runtime/model.ts';

export interface ServedModel {
  name: string;
  version: string;
  config: ModelConfig;
  model: LoadedModel;
  profile: ReferenceProfile | undefined;
  drift: DriftMonitor | undefined;
  parseV2: V2RequestParser;
  /** The simple row API, or why this model cannot use it. */
  rows: { layout: RowsLayout; parseRow: RowParser } | string;
}

export interface ServingOptions {
  runtime: Omit<RuntimeOptions, 'onRun'>;
  drift: Omit<MonitorOptions, 'model' | 'modelVersion' | 'onReport' | 'onError'>;
  onDriftReport: (report: DriftReport) => void;
  log: Logger;
  metrics: ServerMetrics;
}

/**
 * First wait before loading the first version again after a failure that may pass (storage unreachable, a 5xx,
 * an object not there yet); it doubles up to the maximum. A digest mismatch is not retried: that artifact is
 * not the one registered.
 */
export const LOAD_RETRY_BASE_MS = 1000;
export const LOAD_RETRY_MAX_MS = 30_000;

/**
 * `draining`: the server is shutting down but still answers. Readiness is false (load balancers take the pod out of
 * their lists) while predictions keep being served, because a gateway may still send some until the change
 * reaches it (SHUTDOWN_DELAY_MS). `stopping`: the listener is closing and the model is being freed.
 */
export type SlotState = 'loading' | 'ready' | 'failed' | 'draining' | 'stopping';

export class SwapInProgressError extends Error {}

export class ModelSlot {
  current: ServedModel | undefined;
  state: SlotState = 'loading';
  /** Why the last load failed, for /health and the logs. */
  failure: string | undefined;
  private swapping = false;
  private retiring = new Set<Promise<void>>();

  constructor(private readonly options: ServingOptions) {}

  /** What readiness probes see: a loaded model, and not shutting down. */
  get ready(): boolean {
    return this.state === 'ready' && this.current !== undefined;
  }

  /** Whether predictions are answered: a loaded model, also while draining (readiness is false by then). */
  get serving(): boolean {
    return (this.state === 'ready' || this.state === 'draining') && this.current !== undefined;
  }

  private get closing(): boolean {
    return this.state === 'draining' || this.state === 'stopping';
  }

  /** Readiness false, predictions still answered: the first step of a graceful shutdown. */
  drain(): void {
    clearTimeout(this.retryTimer);
    if (!this.closing) this.state = 'draining';
  }

  /**
   * Load the first version. On failure the slot stays unready with the reason in `failure`, and loading is tried
   * again with backoff until it works (object storage that was down while the pod started comes back without a
   * pod restart), the slot stops, or a swap installs another version. Resolves after the first attempt.
   */
  async start(config: ModelConfig): Promise<boolean> {
    const ok = await this.attempt(config);
    if (!ok && !this.permanent) this.retryLater(config, LOAD_RETRY_BASE_MS, 2);
    return ok;
  }

  private permanent = false;
  private retryTimer: NodeJS.Timeout | undefined;

  private async attempt(config: ModelConfig, attempt = 1): Promise<boolean> {
    try {
      const loaded = await this.load(config);
      // Stopped, or another version swapped in, while this one loaded: it is not wanted any more.
      if (this.closing || this.current) {
        await loaded.model.retire();
        return this.current !== undefined;
      }
      this.install(loaded);
      if (attempt > 1)
        this.options.log.info(
          { model: config.name, version: config.version, attempt },
          'model loaded after retrying; ready',
        );
      return true;
    } catch (error) {
      if (this.closing || this.current) return false;
      this.state = 'failed';
      this.failure = (error as Error).message;
      this.permanent = error instanceof DigestMismatchError;
      this.logLoadFailure(config, error, attempt);
      return false;
    }
  }

  private retryLater(config: ModelConfig, delayMs: number, attempt: number): void {
    this.retryTimer = setTimeout(async () => {
      if (this.state !== 'failed' || this.current) return;
      if (await this.attempt(config, attempt)) return;
      if (!this.permanent) this.retryLater(config, Math.min(delayMs * 2, LOAD_RETRY_MAX_MS), attempt + 1);
    }, delayMs);
    this.retryTimer.unref();
  }

  /** Replace the served version; the old one keeps serving until the new one is ready. */
  async swap(config: ModelConfig): Promise<{ previous: string | undefined }> {
    if (this.swapping) throw new SwapInProgressError('another model swap is in progress');
    if (this.closing) throw new SwapInProgressError('the server is shutting down');
    this.swapping = true;
    try {
      let next: ServedModel;
      try {
        next = await this.load(config);
      } catch (error) {
        this.logLoadFailure(config, error);
        throw error;
      }
      const previous = this.current;
      this.install(next);
      if (previous) this.retire(previous, 'swap');
      this.options.log.info({ model: next.name, version: next.version, previous: previous?.version }, 'model swapped');
      return { previous: previous?.version };
    } finally {
      this.swapping = false;
    }
  }

  /** Readiness false; then wait for in-flight requests and free everything. */
  async stop(): Promise<void> {
    this.state = 'stopping';
    clearTimeout(this.retryTimer);
    const last = this.current;
    if (last) this.retire(last, 'shutdown');
    await Promise.all(this.retiring);
  }

  private install(next: ServedModel): void {
    this.current = next;
    this.state = 'ready';
    this.failure = undefined;
    this.options.metrics.modelServing(next.name, next.version);
  }

  private retire(old: ServedModel, reason: 'swap' | 'shutdown'): void {
    const done = (async () => {
      await old.model.retire();
      // After the last request was answered, so the final window has every row.
      await old.drift?.stop(reason);
      this.options.metrics.modelLoaded.set({ model: old.name, model_version: old.version }, 0);
    })().catch((error) =>
      this.options.log.error({ err: error, version: old.version }, 'retiring a model version failed'),
    );
    this.retiring.add(done);
    void done.finally(() => this.retiring.delete(done));
  }

  private logLoadFailure(config: ModelConfig, error: unknown, attempt?: number): void {
    const fields = {
      model: config.name,
      version: config.version,
      uri: config.artifact.uri,
      ...(attempt ? { attempt } : {}),
    };
    if (error instanceof DigestMismatchError) {
      this.options.log.error(
        { ...fields, expected: error.expected, actual: error.actual },
        `refusing to serve: ${error.message}`,
      );
    } else {
      this.options.log.error(
        { ...fields, err: error },
        `model version failed to load${attempt ? ' (retrying with backoff)' : ''}: ${(error as Error).message}`,
      );
    }
  }

  private async load(config: ModelConfig): Promise<ServedModel> {
    const { metrics } = this.options;
    const batchRows = metrics.batchSize.series({ model: config.name, model_version: config.version });
    const model = await LoadedModel.load(
      {
        name: config.name,
        version: config.version,
        uri: config.artifact.uri,
        digest: config.artifact.digest,
        signature: config.signature,
      },
      { ...this.options.runtime, onRun: (rows) => batchRows.observe(rows) },
    );
    let profile: ReferenceProfile | undefined;
    try {
      profile = config.referenceProfile ? await this.loadProfile(config.referenceProfile) : undefined;
    } catch (error) {
      await model.retire();
      throw error;
    }
    const rowsLayout = rowsLayoutOf(
      model.signature,
      profile?.features.map((f) => f.name),
      profile?.features.map(imputationValue),
    );
    let drift: DriftMonitor | undefined;
    if (profile && typeof rowsLayout !== 'string' && profile.features.length === rowsLayout.features) {
      drift = new DriftMonitor(profile, {
        ...this.options.drift,
        model: config.name,
        modelVersion: config.version,
        onReport: this.options.onDriftReport,
        onError: (error) => this.options.log.error({ err: error, version: config.version }, 'drift evaluation failed'),
      });
    } else if (profile) {
      this.options.log.warn(
        { version: config.version },
        'reference profile does not describe the model input as [-1, features]; drift monitoring is off',
      );
    }
    return {
      name: config.name,
      version: config.version,
      config,
      model,
      profile,
      drift,
      parseV2: compileV2RequestParser(model.signature, model.batchable),
      rows:
        typeof rowsLayout === 'string' ? rowsLayout : { layout: rowsLayout, parseRow: compileRowParser(rowsLayout) },
    };
  }

  private async loadProfile(ref: ArtifactRef): Promise<ReferenceProfile> {
    return loadReferenceProfile(ref.uri, ref.digest);
  }
}
