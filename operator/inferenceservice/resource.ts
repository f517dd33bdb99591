/**
 * The InferenceService fields this controller reads and writes. The CRD in crds/inferenceservices.yaml is
 * the source of truth; these are the narrow views of it that the pure functions take.
 */
import type {
  BatchScoring,
  BatchScoringStatus,
  InferenceServiceAnalysisDecisionsStatus,
  InferenceServiceAnalysisQualityStatus,
  InferenceServiceRolloutAnalysisDecisions,
  InferenceServiceRolloutAnalysisQuality,
  InferenceServiceQuality,
  InferenceServiceQualityStatus,
  InferenceServiceRetrainOnQualityDrop,
} from '../api/types.ts';
import type { KubeObject } from '../engine/types.ts';

/** A ModelVersion chosen by number or by alias (`production`, `candidate`). */
export interface VersionSelector {
  version?: number;
  alias?: string;
}

export interface AnalysisSpec {
  maxErrorRate?: number;
  maxLatencyP95Ms?: number;
  maxLatencyP99Ms?: number;
  minRequests?: number;
  failureLimit?: number;
  quality?: InferenceServiceRolloutAnalysisQuality;
  decisions?: InferenceServiceRolloutAnalysisDecisions;
}

export interface RolloutSpec {
  /** Canary weights in percent, ascending, e.g. [5, 10, 25, 50, 100]. */
  steps?: number[];
  /** Time each step is held before its analysis, e.g. `30s`, `2m`. */
  interval?: string;
  /** How long the canary may have no ready pod before it is rolled back, e.g. `10m`. */
  progressDeadline?: string;
  analysis?: AnalysisSpec;
  autoPromote?: boolean;
  autoRollback?: boolean;
  paused?: boolean;
  abort?: boolean;
  promoteNow?: boolean;
}

export interface PredictorSpec {
  image?: string;
  replicas?: number;
  /** Setting maxReplicas turns the HorizontalPodAutoscaler on; minReplicas defaults to replicas. */
  minReplicas?: number;
  maxReplicas?: number;
  targetUtilization?: number;
  resources?: { cpu?: string | number; memory?: string | number; gpus?: number };
  batching?: { enabled?: boolean; maxBatchSize?: number; maxWaitMs?: number };
  env?: Array<{ name: string; value?: string }>;
  serviceAccountName?: string;
  nodeSelector?: Record<string, string>;
  /** rest always; grpc adds the Open Inference Protocol over gRPC on port 8081. */
  protocols?: Array<'rest' | 'grpc'>;
}

export interface TrafficSpec {
  provider?: 'gatewayAPI' | 'istio' | 'traefik';
  parentRefs?: Array<{ name: string; namespace?: string; sectionName?: string; group?: string; kind?: string }>;
  hostnames?: string[];
  /** Istio gateways the VirtualService binds to (defaults to the mesh). */
  gateways?: string[];
  /** Traefik entry points the IngressRoute listens on (defaults to Traefik's default entry points). */
  entryPoints?: string[];
}

export interface ShadowSpec {
  /** Mirror the canary instead of sending it a weighted share: it sees live requests, its answers are dropped. */
  enabled?: boolean;
  percent?: number;
}

export interface DriftSpec {
  enabled?: boolean;
  window?: { size?: number; seconds?: number };
  methods?: { numeric?: string; categorical?: string };
  featureThreshold?: number;
  /** Share of features that must drift for the model to count as drifted. */
  threshold?: number;
}

/** spec.logging: the inference log and the feedback endpoints (docs/ground-truth.md). */
export interface LoggingSpec {
  enabled?: boolean;
  /** s3://<bucket>/<prefix> or file:///<directory>. */
  uri?: string;
  sampleRate?: number;
  /** Go duration, e.g. `30s`. */
  flushInterval?: string;
  maxRowsPerPart?: number;
  maxBufferedRows?: number;
}

export interface RetrainSpec {
  onDrift?: boolean;
  onQualityDrop?: InferenceServiceRetrainOnQualityDrop;
  cooldown?: string;
  /** Metadata and spec of the TrainingJob to create. */
  template?: {
    metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
    spec: Record<string, unknown>;
  };
}

export interface InferenceServiceSpec {
  model: string;
  stable: VersionSelector;
  canary?: VersionSelector;
  predictor?: PredictorSpec;
  rollout?: RolloutSpec;
  shadow?: ShadowSpec;
  traffic?: TrafficSpec;
  drift?: DriftSpec;
  logging?: LoggingSpec;
  retrain?: RetrainSpec;
  batch?: BatchScoring[];
  quality?: InferenceServiceQuality;
}

export type Phase = 'Stable' | 'Progressing' | 'Promoted' | 'RolledBack' | 'Degraded';

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
  quality?: InferenceServiceAnalysisQualityStatus;
  decisions?: InferenceServiceAnalysisDecisionsStatus;
}

/** status.analysis as the CRD stores it: the latest check, flat, plus what the rollout needs to resume. */
export interface AnalysisStatus {
  /** When the current step's weight took effect; the step is analysed `interval` later. */
  stepStartedAt?: string;
  failedChecks?: number;
  lastCheck?: string;
  requests?: number;
  errorRate?: number;
  latencyP95Ms?: number;
  latencyP99Ms?: number;
  /** `Passed: ...` or `Failed: ...` with the numbers, or `Inconclusive: ...` with why no numbers came. */
  message?: string;
  quality?: InferenceServiceAnalysisQualityStatus;
  decisions?: InferenceServiceAnalysisDecisionsStatus;
}

export interface DriftStatus {
  score?: number;
  driftedFeatures?: string[];
  lastEventTime?: string;
  lastEventId?: string;
  drifted?: boolean;
  /** The model version whose window this is. */
  version?: number;
}

export interface RetrainStatus {
  trainingJob?: string;
  eventId?: string;
  time?: string;
  trigger?: 'Drift' | 'QualityDrop';
}

export interface InferenceServiceStatus {
  url?: string;
  stableVersion?: number;
  canaryVersion?: number;
  canaryStartedAt?: string;
  canaryWeight?: number;
  phase?: Phase;
  currentStep?: number;
  analysis?: AnalysisStatus;
  drift?: DriftStatus;
  lastRetrain?: RetrainStatus;
  batch?: BatchScoringStatus[];
  quality?: InferenceServiceQualityStatus;
  conditions?: Array<{ type: string; status: string; reason: string; message: string; lastTransitionTime?: string }>;
  observedGeneration?: number;
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
