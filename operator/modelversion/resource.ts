// The ModelVersion resource as crds/modelversions.yaml defines it, narrowed to what the registry reads and writes.
import type { Condition, KubeObject } from '../engine/types.ts';
import type { MetricGate, Stage } from '../trainingjob/resource.ts';

export type { Stage };

export interface HistoryEntry {
  from: Stage;
  to: Stage;
  aliasesAdded?: string[];
  aliasesRemoved?: string[];
  by?: string;
  at: string;
  reason?: string;
}

export interface ModelVersionSpec {
  model: string;
  version: number;
  artifact: { uri: string; digest: string; format?: 'onnx' };
  signature?: { inputs: unknown[]; outputs: unknown[] };
  inputExample?: unknown[][];
  metrics?: Record<string, number>;
  primaryMetric?: string;
  params?: Record<string, string>;
  lineage?: {
    trainingJob?: string;
    dataset?: { uri: string; snapshot?: string; hash?: string };
    code?: { repo: string; commit?: string };
    hyperparameters?: Record<string, string>;
    trigger?: string;
  };
  referenceProfile?: { uri: string; digest: string };
  modelCard?: { description?: string; intendedUse?: string; limitations?: string };
  stage?: Stage;
  aliases?: string[];
  promotionGates?: MetricGate[];
}

export interface ModelVersionStatus {
  stage?: Stage;
  aliases?: string[];
  primaryMetric?: string;
  conditions?: Condition[];
  history?: HistoryEntry[];
  observedGeneration?: number;
}

/** A type literal (not an interface) so it stays assignable to the engine's KubeObject. */
export type ModelVersion = {
  apiVersion?: string;
  kind?: string;
  metadata: KubeObject['metadata'];
  spec: ModelVersionSpec;
  status?: ModelVersionStatus;
};
