// From an accepted training result to the ModelVersion record that registers it.
import { LABELS } from '../api/contracts.ts';
import type { DesiredObject } from '../engine/types.ts';
import type { ModelVersionSpec } from '../modelversion/resource.ts';
import { LABEL_MODEL, LABEL_TRAININGJOB, labelValue } from './pods.ts';
import type { TrainingJob } from './resource.ts';
import type { TrainingResult } from './result.ts';

/** Marks the ModelVersion a TrainingJob registered, so a restarted operator finds it instead of registering twice. */
export const LABEL_TRAININGJOB_UID = LABELS.trainingJobUid;

/** What started a TrainingJob (e.g. the drift event behind a retrain); copied into the ModelVersion's lineage.trigger. */
export const TRIGGER_ANNOTATION = 'loopline.dev/trigger';

export function modelVersionName(model: string, version: number): string {
  return `${model}-v${version}`;
}

/**
 * The ModelVersion for `result` at `version`. No owner reference to the job: versions outlive the
 * TrainingJob that made them; the lineage names it instead.
 */
export function desiredModelVersion(job: TrainingJob, result: TrainingResult, version: number): DesiredObject {
  const spec: ModelVersionSpec = {
    model: job.spec.model,
    version,
    artifact: { uri: result.artifact.uri, digest: result.artifact.digest, format: result.artifact.format },
    signature: result.signature,
    metrics: result.metrics,
    lineage: { trainingJob: job.metadata.name },
    stage: job.spec.registration?.stage ?? 'None',
    aliases: [...(job.spec.registration?.aliases ?? [])],
  };
  const firstGate = job.spec.registration?.gates?.[0]?.metric;
  const primary = firstGate && firstGate in result.metrics ? firstGate : Object.keys(result.metrics).sort()[0];
  if (primary) spec.primaryMetric = primary;
  if (result.inputExample) spec.inputExample = result.inputExample;
  if (result.referenceProfile) spec.referenceProfile = result.referenceProfile;
  if (job.spec.dataset) spec.lineage!.dataset = job.spec.dataset;
  if (job.spec.code) spec.lineage!.code = job.spec.code;
  if (job.spec.hyperparameters) spec.lineage!.hyperparameters = job.spec.hyperparameters;
  if (job.spec.modelCard) spec.modelCard = job.spec.modelCard;
  const trigger = job.metadata.annotations?.[TRIGGER_ANNOTATION];
  if (trigger) spec.lineage!.trigger = trigger.slice(0, 512);
  return {
    apiVersion: 'loopline.dev/v1alpha1',
    kind: 'ModelVersion',
    metadata: {
      name: modelVersionName(job.spec.model, version),
      namespace: job.metadata.namespace,
      labels: {
        [LABEL_MODEL]: job.spec.model,
        [LABEL_TRAININGJOB]: labelValue(job.metadata.name),
        [LABEL_TRAININGJOB_UID]: job.metadata.uid!,
      },
    },
    spec,
  };
}
