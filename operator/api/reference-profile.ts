// Types of the drift reference profile (reference-profile.schema.json beside this file): the
// trainer writes it next to the artifact, the predictor reads it. One definition for both sides.

export interface NumericFeatureProfile {
  name: string;
  type: 'numeric';
  missingRate: number;
  binEdges: number[];
  binFrequencies: number[];
  quantiles: Record<string, number>;
  mean: number;
  std: number;
  sample: number[];
}

export interface CategoricalFeatureProfile {
  name: string;
  type: 'categorical';
  missingRate: number;
  frequencies: Record<string, number>;
}

export type FeatureProfile = NumericFeatureProfile | CategoricalFeatureProfile;

export interface ReferenceProfile {
  rows: number;
  features: FeatureProfile[];
}
