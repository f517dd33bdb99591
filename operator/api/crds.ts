// The CRD manifests in crds/ are the one source of truth for Loopline's API; this module reads them
// so types, validators and tests derive from the same bytes the API server gets.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { load } from 'js-yaml';

export const LOOPLINE_KINDS = ['TrainingJob', 'ModelVersion', 'InferenceService'] as const;
export type LooplineKind = (typeof LOOPLINE_KINDS)[number];

/** The subset of OpenAPI v3 (as Kubernetes structural schemas use it) that the CRDs are written in. */
export interface SchemaNode {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: SchemaNode | boolean;
  items?: SchemaNode;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  format?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  anyOf?: SchemaNode[];
  nullable?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-validations'?: Array<{
    rule: string;
    message?: string;
    messageExpression?: string;
    fieldPath?: string;
    reason?: string;
  }>;
}

export interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface CustomResourceDefinition {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string; labels?: Record<string, string> };
  spec: {
    group: string;
    scope: 'Namespaced' | 'Cluster';
    names: {
      kind: string;
      listKind: string;
      plural: string;
      singular: string;
      shortNames?: string[];
      categories?: string[];
    };
    versions: Array<{
      name: string;
      served: boolean;
      storage: boolean;
      subresources?: { status?: Record<string, never> };
      additionalPrinterColumns?: PrinterColumn[];
      schema: { openAPIV3Schema: SchemaNode };
    }>;
  };
}

const CRD_FILES: Record<LooplineKind, string> = {
  TrainingJob: 'trainingjobs.yaml',
  ModelVersion: 'modelversions.yaml',
  InferenceService: 'inferenceservices.yaml',
};

export const CRD_DIR = fileURLToPath(new URL('../../crds/', import.meta.url));

export function crdPath(kind: LooplineKind): string {
  return CRD_DIR + CRD_FILES[kind];
}

const cache = new Map<LooplineKind, CustomResourceDefinition>();

export function loadCrd(kind: LooplineKind): CustomResourceDefinition {
  let crd = cache.get(kind);
  if (!crd) {
    crd = load(readFileSync(crdPath(kind), 'utf8')) as CustomResourceDefinition;
    if (crd?.spec?.names?.kind !== kind) throw new Error(`${crdPath(kind)} does not define kind ${kind}`);
    cache.set(kind, crd);
  }
  return crd;
}

/** The storage version of a kind (each CRD serves exactly one version today). */
export function crdVersion(kind: LooplineKind): CustomResourceDefinition['spec']['versions'][number] {
  const version = loadCrd(kind).spec.versions.find((v) => v.storage);
  if (!version) throw new Error(`${crdPath(kind)} has no storage version`);
  return version;
}

export function openApiSchema(kind: LooplineKind): SchemaNode {
  return crdVersion(kind).schema.openAPIV3Schema;
}
