// The drift reference profile (operator/api/reference-profile.schema.json): fetched
// like the model artifact, digest-checked and schema-checked before use.
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import type { FeatureProfile, ReferenceProfile } from '../../../operator/api/reference-profile.ts';
import { fetchVerified } from '../runtime/artifact.ts';

export type {
  CategoricalFeatureProfile,
  FeatureProfile,
  NumericFeatureProfile,
  ReferenceProfile,
} from '../../../operator/api/reference-profile.ts';

const schema = JSON.parse(
  readFileSync(new URL('../../../operator/api/reference-profile.schema.json', import.meta.url), 'utf8'),
);
const validateProfile = new Ajv({ allErrors: true, strict: false }).compile<ReferenceProfile>(schema);

export function parseReferenceProfile(text: string, source: string): ReferenceProfile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`reference profile ${source} is not JSON: ${(error as Error).message}`);
  }
  if (!validateProfile(json)) {
    const details = validateProfile
      .errors!.slice(0, 5)
      .map((e) => `${e.instancePath || '/'} ${e.message}`)
      .join('; ');
    throw new Error(`reference profile ${source} does not match reference-profile.schema.json: ${details}`);
  }
  for (const feature of json.features) {
    if (feature.type !== 'numeric') continue;
    if (feature.binFrequencies.length !== feature.binEdges.length + 1) {
      throw new Error(
        `reference profile ${source}: feature ${feature.name} needs ${feature.binEdges.length + 1} bin frequencies, has ${feature.binFrequencies.length}`,
      );
    }
    if (feature.sample.length === 0)
      throw new Error(`reference profile ${source}: feature ${feature.name} has an empty sample`);
  }
  return json;
}

export async function loadReferenceProfile(uri: string, digest: string): Promise<ReferenceProfile> {
  const bytes = await fetchVerified(uri, digest);
  return parseReferenceProfile(new TextDecoder().decode(bytes), uri);
}

/** Value standing in for a missing cell: the reference mean, or the most frequent category. */
export function imputationValue(feature: FeatureProfile): number {
  if (feature.type === 'numeric') return feature.mean;
  let best = '';
  let bestShare = -1;
  for (const [category, share] of Object.entries(feature.frequencies)) {
    if (share > bestShare) {
      best = category;
      bestShare = share;
    }
  }
  return Number(best);
}
