// The TrainingJob resource as crds/trainingjobs.yaml defines it, narrowed to what this controller reads and writes.
import type { Condition, KubeObject } from '../engine/types.ts';

export type Stage = 'None' | 'Staging' | 'Production' | 'Archived';

export interface MetricGate {
  metric: string;
  operator: '>=' | '>' | '<=' | '<';
  value: number;
}

export interface Toleration {
  key?: string;
  operator?: 'Exists' | 'Equal';
  value?: string;
  effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  tolerationSeconds?: number;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: Record<string, unknown>;
}

export interface TrainingJobSpec {
  model: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  resources?: { gpus?: number; gpuType?: string; cpu?: string | number; memory?: string | number };
  workers?: number;
  masterPort?: number;
  hyperparameters?: Record<string, string>;
  dataset?: { uri: string; snapshot?: string; hash?: string };
  code?: { repo: string; commit?: string };
  output?: { uri: string };
  backoffLimit?: number;
  activeDeadlineSeconds?: number;
  ttlSecondsAfterFinished?: number;
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
  priorityClassName?: string;
  serviceAccountName?: string;
  queueName?: string;
  suspend?: boolean;
  registration?: { gates?: MetricGate[]; stage?: Stage; aliases?: string[] };
  modelCard?: { description?: string; intendedUse?: string; limitations?: string };
}

export type TrainingJobPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

export interface TrainingJobStatus {
  phase?: TrainingJobPhase;
  attempts?: number;
  startTime?: string;
  completionTime?: string;
  conditions?: Condition[];
  metrics?: Record<string, number>;
  modelVersion?: string;
  version?: number;
  message?: string;
  observedGeneration?: number;
}

/** A type literal (not an interface) so it stays assignable to the engine's KubeObject. */
export type TrainingJob = {
  apiVersion?: string;
  kind?: string;
  metadata: KubeObject['metadata'];
  spec: TrainingJobSpec;
  status?: TrainingJobStatus;
};
