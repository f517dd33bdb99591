// The TrainingJob as this controller sees it: the generated types of crds/trainingjobs.yaml, with
// conditions in the engine's form (the status writer fills in transition times).
import type * as api from '../api/types.ts';
import type { Condition, KubeObject } from '../engine/types.ts';

export type MetricGate = api.RegistrationGate;
export type Toleration = api.Toleration;
export type EnvVar = api.EnvVar;
export type TrainingJobSpec = api.TrainingJobSpec;
export type TrainingJobQueueStatus = api.TrainingJobQueueStatus;
export type TrainingJobPhase = NonNullable<api.TrainingJobStatus['phase']>;
export type TrainingJobStatus = Omit<api.TrainingJobStatus, 'conditions'> & { conditions?: Condition[] };

/** A type literal (not an interface) so it stays assignable to the engine's KubeObject. */
export type TrainingJob = {
  apiVersion?: string;
  kind?: string;
  metadata: KubeObject['metadata'];
  spec: TrainingJobSpec;
  status?: TrainingJobStatus;
};
