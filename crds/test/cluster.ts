/** Set-up shared by the CRD tests that run against the real API server of the local cluster. */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { ApiException, CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { load } from 'js-yaml';
import type { LooplineKind } from '../../operator/api/crds.ts';
import { looplineResources } from '../../operator/api/types.ts';

export const GROUP = 'loopline.dev';
export const VERSION = 'v1alpha1';
const FIELD_MANAGER = 'loopline-crd-test';

export { requireKubeconfig, uniqueName as uniqueNamespace } from '../../test/support/local.ts';

const EXAMPLE_FILES: Record<LooplineKind, string> = {
  TrainingJob: 'trainingjob.yaml',
  ModelVersion: 'modelversion.yaml',
  InferenceService: 'inferenceservice.yaml',
};

/** A fresh copy of an example object, free to mutate. */
export function example(kind: LooplineKind): Record<string, any> {
  return load(readFileSync(new URL(`../../examples/${EXAMPLE_FILES[kind]}`, import.meta.url), 'utf8')) as Record<
    string,
    any
  >;
}

/** For test hooks: log the failure with what was being done (uvu does not print hook errors), then fail. */
export function reportAndThrow(doing: string): (err: unknown) => never {
  return (err) => {
    console.error(`${doing} failed:`, err instanceof ApiException ? `${err.code} ${JSON.stringify(err.body)}` : err);
    throw err;
  };
}

/** The API server's answer to a refused request: HTTP code, Status reason and message. */
export interface Refusal {
  code: number;
  reason: string;
  message: string;
}

export function refusalOf(err: unknown): Refusal {
  if (!(err instanceof ApiException)) throw err;
  const body =
    typeof err.body === 'string'
      ? (JSON.parse(err.body || '{}') as Record<string, unknown>)
      : (err.body as Record<string, unknown>);
  return { code: err.code, reason: String(body?.reason ?? ''), message: String(body?.message ?? err.message) };
}

/** Thin wrappers over the custom objects API with strict field validation, as kubectl does by default. */
export class LooplineObjects {
  readonly custom: CustomObjectsApi;
  readonly core: CoreV1Api;

  constructor(
    kc: KubeConfig,
    readonly namespace: string,
  ) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.core = kc.makeApiClient(CoreV1Api);
  }

  private target(kind: LooplineKind) {
    return { group: GROUP, version: VERSION, namespace: this.namespace, plural: looplineResources[kind].plural };
  }

  create(kind: LooplineKind, body: object, dryRun = false): Promise<Record<string, any>> {
    return this.custom.createNamespacedCustomObject({
      ...this.target(kind),
      body,
      dryRun: dryRun ? 'All' : undefined,
      fieldManager: FIELD_MANAGER,
      fieldValidation: 'Strict',
    });
  }

  get(kind: LooplineKind, name: string): Promise<Record<string, any>> {
    return this.custom.getNamespacedCustomObject({ ...this.target(kind), name });
  }

  replace(kind: LooplineKind, body: Record<string, any>, dryRun = false): Promise<Record<string, any>> {
    return this.custom.replaceNamespacedCustomObject({
      ...this.target(kind),
      name: body.metadata.name,
      body,
      dryRun: dryRun ? 'All' : undefined,
      fieldManager: FIELD_MANAGER,
      fieldValidation: 'Strict',
    });
  }

  replaceStatus(kind: LooplineKind, body: Record<string, any>): Promise<Record<string, any>> {
    return this.custom.replaceNamespacedCustomObjectStatus({
      ...this.target(kind),
      name: body.metadata.name,
      body,
      fieldManager: FIELD_MANAGER,
      fieldValidation: 'Strict',
    });
  }

  async createNamespace(): Promise<void> {
    await this.core.createNamespace({
      body: { metadata: { name: this.namespace, labels: { 'loopline.dev/test': 'crds' } } },
    });
  }

  /** Deletes the namespace without waiting for its objects to go. */
  async deleteNamespace(): Promise<void> {
    await this.core.deleteNamespace({ name: this.namespace }).catch(() => undefined);
  }
}

const run = promisify(execFile);

/** Runs the real kubectl ($LOOPLINE_KUBECTL, else kubectl on PATH) against $KUBECONFIG. */
export async function kubectl(...args: string[]): Promise<string> {
  const binary = process.env.LOOPLINE_KUBECTL || 'kubectl';
  const { stdout } = await run(binary, args, { env: process.env, timeout: 30_000 });
  return stdout;
}

/**
 * Parses kubectl's aligned table output into one record per row, keyed by header. Cells are cut at
 * the header's column offsets, because an empty cell leaves nothing to split on.
 */
export function parseTable(output: string): Array<Record<string, string>> {
  const [header, ...rows] = output.split('\n').filter((line) => line.trim() !== '');
  if (!header) return [];
  const starts = [...header.matchAll(/\S+/g)].map((m) => ({ name: m[0], at: m.index! }));
  return rows.map((row) =>
    Object.fromEntries(starts.map((col, i) => [col.name, row.slice(col.at, starts[i + 1]?.at ?? row.length).trim()])),
  );
}
