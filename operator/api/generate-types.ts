// Generates operator/api/types.ts from the CRD schemas in crds/, so the TypeScript view of the API
// cannot drift from what the API server validates. Run: npx tsx operator/api/generate-types.ts
// operator/api/test/types.test.ts regenerates in memory and fails when the committed file differs.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LOOPLINE_KINDS, loadCrd, openApiSchema, type LooplineKind, type SchemaNode } from './crds.ts';

export const TYPES_PATH = fileURLToPath(new URL('./types.ts', import.meta.url));

/**
 * Names for object shapes, by schema path (`Kind.field.field[]`, `[]` for array items). Shapes that
 * recur across the API share one name; the generator checks that every path given the same name has
 * the same shape. Objects not listed are named after their path (TrainingJob.spec.resources ->
 * TrainingJobResources, InferenceService.status.drift -> InferenceServiceDriftStatus); array items
 * must be listed, because a list's name rarely makes a good name for one of its elements.
 */
const TYPE_NAMES: Record<string, string> = {
  'TrainingJob.status.conditions[]': 'Condition',
  'ModelVersion.status.conditions[]': 'Condition',
  'InferenceService.status.conditions[]': 'Condition',
  'TrainingJob.spec.env[]': 'EnvVar',
  'InferenceService.spec.predictor.env[]': 'EnvVar',
  'TrainingJob.spec.dataset': 'DatasetRef',
  'ModelVersion.spec.lineage.dataset': 'DatasetRef',
  'TrainingJob.spec.code': 'CodeRef',
  'ModelVersion.spec.lineage.code': 'CodeRef',
  'TrainingJob.spec.modelCard': 'ModelCard',
  'ModelVersion.spec.modelCard': 'ModelCard',
  'TrainingJob.spec.tolerations[]': 'Toleration',
  'TrainingJob.spec.registration.gates[]': 'RegistrationGate',
  'ModelVersion.spec.promotionGates[]': 'RegistrationGate',
  'ModelVersion.spec.signature.inputs[]': 'TensorSpec',
  'ModelVersion.spec.signature.outputs[]': 'TensorSpec',
  'ModelVersion.status.history[]': 'PromotionRecord',
  'InferenceService.spec.stable': 'VersionSelector',
  'InferenceService.spec.canary': 'VersionSelector',
  'InferenceService.spec.traffic.parentRefs[]': 'ParentReference',
  'InferenceService.spec.retrain.template': 'TrainingJobTemplate',
  'InferenceService.spec.retrain.template.metadata': 'TrainingJobTemplateMetadata',
  'InferenceService.spec.retrain.template.spec': 'TrainingJobTemplateSpec',
  'InferenceService.spec.batch[]': 'BatchScoring',
  'InferenceService.spec.batch[].version': 'VersionSelector',
  'InferenceService.spec.batch[].input': 'BatchInput',
  'InferenceService.spec.batch[].output': 'BatchOutput',
  'InferenceService.spec.batch[].output.postgres': 'PostgresTable',
  'InferenceService.spec.batch[].output.postgres.connectionSecret': 'SecretKeyRef',
  'InferenceService.spec.batch[].segments[]': 'ScoreSegment',
  'InferenceService.spec.batch[].resources': 'BatchResources',
  'InferenceService.status.batch[]': 'BatchScoringStatus',
  'InferenceService.status.batch[].lastRun': 'BatchRun',
  'InferenceService.status.quality.versions[]': 'VersionQualityStatus',
};

interface NamedShape {
  name: string;
  /** Every schema path with this shape, first seen first. */
  paths: string[];
  schema: SchemaNode;
  descriptions: Set<string>;
}

function pascal(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

function nameFor(kind: LooplineKind, segments: string[]): string {
  const path = [kind, ...segments].join('.');
  const listed = TYPE_NAMES[path];
  if (listed) return listed;
  if (path.endsWith('[]')) throw new Error(`name the element type of ${path.slice(0, -2)} in TYPE_NAMES`);
  const [root, ...rest] = segments;
  if (root === 'spec') return kind + rest.map(pascal).join('') + (rest.length ? '' : 'Spec');
  if (root === 'status') return kind + rest.map(pascal).join('') + 'Status';
  throw new Error(`no type name rule for ${path}`);
}

/** The parts of a schema a TypeScript type depends on; two paths may share a name only if these match. */
function shapeOf(node: SchemaNode): unknown {
  return {
    type: node.type,
    enum: node.enum,
    required: [...(node.required ?? [])].sort(),
    intOrString: node['x-kubernetes-int-or-string'] ?? false,
    preserve: node['x-kubernetes-preserve-unknown-fields'] ?? false,
    items: node.items && shapeOf(node.items),
    additional:
      typeof node.additionalProperties === 'object' ? shapeOf(node.additionalProperties) : node.additionalProperties,
    properties:
      node.properties &&
      Object.fromEntries(
        Object.entries(node.properties)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([k, v]) => [k, shapeOf(v)]),
      ),
  };
}

function isNamedObject(node: SchemaNode): boolean {
  return node.type === 'object' && node.properties !== undefined;
}

const DOC_WIDTH = 100;

function wrap(paragraph: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of paragraph.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > DOC_WIDTH) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

function docComment(paragraphs: string[], indent: string): string {
  const text = paragraphs
    .filter((paragraph) => paragraph.length > 0)
    .map((paragraph) => wrap(paragraph.replace(/\*\//g, '*\\/')));
  if (text.length === 0) return '';
  const body = text.flatMap((lines, i) => (i === 0 ? lines : ['', ...lines]));
  if (body.length === 1) return `${indent}/** ${body[0]} */\n`;
  return `${indent}/**\n${body.map((line) => `${indent} *${line ? ` ${line}` : ''}`).join('\n')}\n${indent} */\n`;
}

function propertyDoc(node: SchemaNode): string[] {
  const lines = [node.description ?? ''];
  if (node.default !== undefined) lines.push(`@default ${JSON.stringify(node.default)}`);
  return lines;
}

class Generator {
  private readonly shapes = new Map<string, NamedShape>();
  private readonly order: string[] = [];

  /** The TypeScript type of a schema node, registering named object shapes on the way. */
  typeOf(kind: LooplineKind, segments: string[], node: SchemaNode): string {
    if (node.nullable) return `${this.typeOf(kind, segments, { ...node, nullable: false })} | null`;
    if (node['x-kubernetes-int-or-string']) return 'number | string';
    if (isNamedObject(node)) return this.register(kind, segments, node);
    switch (node.type) {
      case 'string':
        return node.enum ? node.enum.map((value) => `'${String(value)}'`).join(' | ') : 'string';
      case 'integer':
      case 'number':
        return 'number';
      case 'boolean':
        return 'boolean';
      case 'array': {
        if (!node.items) throw new Error(`${[kind, ...segments].join('.')}: array without items`);
        const element = this.typeOf(kind, [...segments.slice(0, -1), `${segments.at(-1)}[]`], node.items);
        return element.includes(' ') ? `Array<${element}>` : `${element}[]`;
      }
      case 'object':
        if (typeof node.additionalProperties === 'object') {
          return `Record<string, ${this.typeOf(kind, [...segments, '*'], node.additionalProperties)}>`;
        }
        return 'Record<string, unknown>';
      default:
        return 'unknown';
    }
  }

  private register(kind: LooplineKind, segments: string[], node: SchemaNode): string {
    const name = nameFor(kind, segments);
    const path = [kind, ...segments].join('.');
    const known = this.shapes.get(name);
    if (known) {
      if (JSON.stringify(shapeOf(known.schema)) !== JSON.stringify(shapeOf(node))) {
        throw new Error(`${path} and ${known.paths[0]} are both named ${name} but differ in shape`);
      }
      if (!known.paths.includes(path)) known.paths.push(path);
      known.descriptions.add(node.description ?? '');
      return name;
    }
    this.shapes.set(name, { name, paths: [path], schema: node, descriptions: new Set([node.description ?? '']) });
    this.order.push(name);
    for (const [field, child] of Object.entries(node.properties ?? {})) this.typeOf(kind, [...segments, field], child);
    return name;
  }

  declarations(): string {
    return this.order
      .map((name) => {
        const shape = this.shapes.get(name)!;
        const [kind, ...segments] = shape.paths[0].split('.') as [LooplineKind, ...string[]];
        const required = new Set(shape.schema.required ?? []);
        const fields = Object.entries(shape.schema.properties ?? {}).map(([field, child]) => {
          const type = this.typeOf(kind, [...segments, field], child);
          return `${docComment(propertyDoc(child), '  ')}  ${field}${required.has(field) ? '' : '?'}: ${type};`;
        });
        if (shape.schema['x-kubernetes-preserve-unknown-fields']) {
          fields.push('  /** Fields the API server stores without checking. */\n  [field: string]: unknown;');
        }
        // A shared shape documented differently at each use says where it is used instead.
        const doc =
          shape.descriptions.size === 1 ? [...shape.descriptions] : [`The shape of ${shape.paths.join(', ')}.`];
        return `${docComment(doc, '')}export interface ${name} {\n${fields.join('\n')}\n}\n`;
      })
      .join('\n');
  }
}

export function generateTypes(): string {
  const generator = new Generator();
  const roots: string[] = [];
  const constants: string[] = [];
  for (const kind of LOOPLINE_KINDS) {
    const crd = loadCrd(kind);
    const schema = openApiSchema(kind);
    const version = crd.spec.versions.find((v) => v.storage)!.name;
    const apiVersion = `${crd.spec.group}/${version}`;
    const spec = schema.properties?.spec;
    const status = schema.properties?.status;
    if (!spec || !status) throw new Error(`${kind}: the schema needs spec and status`);
    const specType = generator.typeOf(kind, ['spec'], spec);
    const statusType = generator.typeOf(kind, ['status'], status);
    roots.push(
      `${docComment([schema.description ?? ''], '')}export interface ${kind} {\n` +
        `  apiVersion: '${apiVersion}';\n  kind: '${kind}';\n  metadata: V1ObjectMeta;\n` +
        `  spec: ${specType};\n  status?: ${statusType};\n}\n`,
    );
    const names = crd.spec.names;
    constants.push(
      `  ${kind}: { apiVersion: '${apiVersion}', kind: '${kind}', plural: '${names.plural}', ` +
        `singular: '${names.singular}', shortNames: [${(names.shortNames ?? []).map((n) => `'${n}'`).join(', ')}] },`,
    );
  }
  return [
    '// Generated by operator/api/generate-types.ts from crds/*.yaml. Do not edit by hand:',
    '// change the CRD, then run `npx tsx operator/api/generate-types.ts`.',
    "import type { V1ObjectMeta } from '@kubernetes/client-node';",
    '',
    '/** REST names of the Loopline kinds, as the CRDs declare them. */',
    'export const looplineResources = {',
    ...constants,
    '} as const;',
    '',
    roots.join('\n'),
    generator.declarations(),
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(TYPES_PATH, generateTypes());
  console.log(`wrote ${TYPES_PATH}`);
}
