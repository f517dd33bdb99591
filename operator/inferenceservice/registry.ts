/**
 * What this controller asks of the model registry (operator/modelversion): make a version the production one.
 * The registry controller carries the request out: it moves the `production` alias, sets the stage and archives
 * the version that held Production before, recording who and why in the promotion history.
 */
import { kinds, type KubeObject, type Writer } from '../engine/index.ts';
import { ANNOTATION_CHANGE_REASON } from '../modelversion/registry.ts';
import type { HistoryEntry } from '../modelversion/resource.ts';

export const PRODUCTION_ALIAS = 'production';
export const CANDIDATE_ALIAS = 'candidate';

export type ModelVersionObject = KubeObject & {
  spec: {
    model: string;
    version: number;
    artifact: { uri: string; digest: string };
    signature?: unknown;
    referenceProfile?: { uri: string; digest?: string };
    /** Metrics of the training run (e.g. auc, accuracy on its held-out rows). */
    metrics?: Record<string, number | string>;
    stage?: string;
    aliases?: string[];
  };
  status?: { stage?: string; aliases?: string[]; history?: HistoryEntry[] };
};

/**
 * Requests Production + the production alias on `mv` with a merge patch of its desired spec (the registry's
 * input), leaving every other field and owner alone. Idempotent: a repeat asks for what is already asked.
 */
export async function promoteVersion(
  writer: Pick<Writer, 'patch'>,
  mv: ModelVersionObject,
  reason: string,
): Promise<void> {
  const aliases = [...new Set([...(mv.spec.aliases ?? []), PRODUCTION_ALIAS])].sort();
  if (mv.spec.stage === 'Production' && (mv.spec.aliases ?? []).includes(PRODUCTION_ALIAS)) return;
  await writer.patch(kinds.ModelVersion, mv.metadata.namespace, mv.metadata.name, {
    metadata: { annotations: { [ANNOTATION_CHANGE_REASON]: `canary analysis: ${reason}`.slice(0, 1000) } },
    spec: { stage: 'Production', aliases },
  });
}
