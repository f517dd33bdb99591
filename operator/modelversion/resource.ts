// The ModelVersion as the registry sees it: the generated types of crds/modelversions.yaml, with
// conditions in the engine's form (the status writer fills in transition times).
import type * as api from '../api/types.ts';
import type { Condition, KubeObject } from '../engine/types.ts';

/** The lifecycle stage a version is in (None, Staging, Production, Archived). */
export type Stage = NonNullable<api.ModelVersionSpec['stage']>;
export type HistoryEntry = api.PromotionRecord;
export type ModelVersionSpec = api.ModelVersionSpec;
export type ModelVersionStatus = Omit<api.ModelVersionStatus, 'conditions'> & { conditions?: Condition[] };

/** A type literal (not an interface) so it stays assignable to the engine's KubeObject. */
export type ModelVersion = {
  apiVersion?: string;
  kind?: string;
  metadata: KubeObject['metadata'];
  spec: ModelVersionSpec;
  status?: ModelVersionStatus;
};
