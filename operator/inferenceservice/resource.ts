// The InferenceService as this controller sees it: the generated types of crds/inferenceservices.yaml,
// with conditions in the engine's form (the status writer fills in transition times). AnalysisResult and
// ServedModel are the controller's own records, not CRD fields.
import type * as api from '../api/types.ts';
import type { Condition, KubeObject } from '../engine/types.ts';

export type VersionSelector = api.VersionSelector;
export type AnalysisSpec = api.InferenceServiceRolloutAnalysis;
export type RolloutSpec = api.InferenceServiceRollout;
export type PredictorSpec = api.InferenceServicePredictor;
export type TrafficSpec = api.InferenceServiceTraffic;
export type ShadowSpec = api.InferenceServiceShadow;
export type DriftSpec = api.InferenceServiceDrift;
export type LoggingSpec = api.InferenceServiceLogging;
export type RetrainSpec = api.InferenceServiceRetrain;
export type InferenceServiceSpec = api.InferenceServiceSpec;

export type Phase = NonNullable<api.InferenceServiceStatus['phase']>;
export type AnalysisStatus = api.InferenceServiceAnalysisStatus;
export type DriftStatus = api.InferenceServiceDriftStatus;
export type RetrainStatus = api.InferenceServiceLastRetrainStatus;
export type InferenceServiceStatus = Omit<api.InferenceServiceStatus, 'conditions'> & { conditions?: Condition[] };

/** One analysis of the canary: what Prometheus said and what we concluded. */
export interface AnalysisResult {
  time: string;
  step: number;
  requests: number;
  errorRate: number | null;
  latencyP95Ms: number | null;
  latencyP99Ms: number | null;
  /** Inconclusive: Prometheus gave no answer; the step holds. */
  verdict: 'Passed' | 'Failed' | 'Inconclusive';
  reason: string;
  /** The canary's quality against stable's (spec.rollout.analysis.quality), when gated on it. */
  quality?: api.InferenceServiceAnalysisQualityStatus;
  decisions?: api.InferenceServiceAnalysisDecisionsStatus;
}

/** A type literal (not an interface) so it stays assignable to the engine's KubeObject; namespaced, so it has one. */
export type InferenceService = {
  apiVersion: string;
  kind: string;
  metadata: KubeObject['metadata'] & { namespace: string };
  spec: InferenceServiceSpec;
  status?: InferenceServiceStatus;
};

/** A ModelVersion reduced to what serving needs. */
export interface ServedModel {
  version: number;
  /** Name of the ModelVersion object. */
  name: string;
  uri: string;
  digest: string;
  signature?: unknown;
  /** Drift reference profile of the version (the predictor verifies the digest). */
  referenceProfile?: { uri: string; digest: string };
}
