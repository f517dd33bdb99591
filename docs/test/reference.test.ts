// test: no cluster
/** docs/reference.md is generated from crds/*.yaml; these tests keep the two from drifting apart. */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LOOPLINE_KINDS, loadCrd, type CustomResourceDefinition, type SchemaNode } from '../../operator/api/crds.ts';
import { currentReference, REFERENCE_PATH, REGENERATE_COMMAND, renderReference } from '../../scripts/crd-reference.ts';

const crds = LOOPLINE_KINDS.map((kind) => loadCrd(kind));

test('docs/reference.md is what the generator makes from the CRDs in crds/', () => {
  const onDisk = readFileSync(REFERENCE_PATH, 'utf8');
  const generated = currentReference();
  if (onDisk !== generated) {
    const onDiskLines = onDisk.split('\n');
    const generatedLines = generated.split('\n');
    const line = generatedLines.findIndex((text, i) => text !== onDiskLines[i]);
    assert.unreachable(
      `docs/reference.md is stale (first difference at line ${line + 1}): run \`${REGENERATE_COMMAND}\` and commit docs/reference.md\n` +
        `  on disk:   ${onDiskLines[line]?.slice(0, 160)}\n  generated: ${generatedLines[line]?.slice(0, 160)}`,
    );
  }
});

/** Every property path under spec and status, collected independently of the generator's walk. */
function propertyPaths(node: SchemaNode, path: string, out: string[] = []): string[] {
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    out.push(`${path}.${key}`);
    const next = child.type === 'array' && child.items?.properties ? child.items : child;
    propertyPaths(next, child === next ? `${path}.${key}` : `${path}.${key}[]`, out);
  }
  if (typeof node.additionalProperties === 'object' && node.additionalProperties.properties) {
    propertyPaths(node.additionalProperties, `${path}.<key>`, out);
  }
  return out;
}

function section(reference: string, kind: string): string {
  const start = reference.indexOf(`\n## ${kind}\n`);
  assert.ok(start >= 0, `no section for ${kind}`);
  const end = reference.indexOf('\n## ', start + 1);
  return reference.slice(start, end < 0 ? undefined : end);
}

test('every spec and status field of every kind has a row, with its type', () => {
  const reference = currentReference();
  for (const crd of crds) {
    const text = section(reference, crd.spec.names.kind);
    const root = crd.spec.versions[0]!.schema.openAPIV3Schema;
    const paths = ['spec', 'status'].flatMap((name) => propertyPaths(root.properties![name]!, name));
    assert.ok(paths.length > 20, `${crd.spec.names.kind} has only ${paths.length} fields`);
    for (const path of paths) assert.match(text, `\n| \`${path}\` | `, `${crd.spec.names.kind}: no row for ${path}`);
  }
});

test('names, printer columns, enums and every CEL rule message appear in the reference', () => {
  const reference = currentReference();
  for (const crd of crds) {
    const text = section(reference, crd.spec.names.kind);
    const version = crd.spec.versions[0]!;
    assert.match(text, `\`${crd.spec.group}/${version.name}\``);
    for (const shortName of crd.spec.names.shortNames ?? []) assert.match(text, `\`${shortName}\``);
    for (const column of version.additionalPrinterColumns ?? []) assert.match(text, `| ${column.name} | ${column.type} | \`${column.jsonPath}\` |`);
    const messages: string[] = [];
    const enums: unknown[][] = [];
    const collect = (value: unknown): void => {
      if (Array.isArray(value)) return value.forEach(collect);
      if (value === null || typeof value !== 'object') return;
      const node = value as SchemaNode;
      for (const rule of node['x-kubernetes-validations'] ?? []) if (rule.message) messages.push(rule.message);
      if (node.enum) enums.push(node.enum);
      Object.values(node).forEach(collect);
    };
    collect(version.schema.openAPIV3Schema);
    assert.ok(messages.length > 0, `${crd.spec.names.kind} has no CEL messages to check`);
    const escaped = (s: string) => s.replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\|/g, '\\|');
    for (const message of messages) assert.ok(text.includes(`“${escaped(message)}”`), `${crd.spec.names.kind}: CEL message missing: ${message}`);
    for (const values of enums) assert.ok(text.includes(`one of ${values.map((v) => `\`${v}\``).join(', ')}`), `${crd.spec.names.kind}: enum ${values} missing`);
  }
});

test('a field added to a CRD shows up with its type, default, requiredness, bounds and CEL rule', () => {
  const crd = structuredClone(loadCrd('InferenceService')) as CustomResourceDefinition;
  const spec = crd.spec.versions[0]!.schema.openAPIV3Schema.properties!.spec!;
  spec.properties!.rollout!.properties!.warmup = {
    type: 'integer',
    description: 'Seconds a new canary gets <before> its first step.',
    default: 30,
    minimum: 0,
    maximum: 600,
    'x-kubernetes-validations': [{ rule: 'self % 5 == 0 || self == 1', message: 'must be a multiple of 5' }],
  };
  spec.required = [...(spec.required ?? []), 'shadowOnly'];
  spec.properties!.shadowOnly = { type: 'string', enum: ['yes', 'no'] };
  const reference = renderReference([crd]);
  assert.match(
    reference,
    '| `spec.rollout.warmup` | integer |  | `30` | Seconds a new canary gets &lt;before&gt; its first step. | 0–600; rule `self % 5 == 0 \\|\\| self == 1`: “must be a multiple of 5” |',
  );
  assert.match(reference, '| `spec.shadowOnly` | string | yes |  |  | one of `yes`, `no` |');
  assert.not.match(currentReference(), 'spec.rollout.warmup');
});

test('a rule declared on an object with a fieldPath is shown on the field it points at', () => {
  const crd = structuredClone(loadCrd('TrainingJob')) as CustomResourceDefinition;
  const spec = crd.spec.versions[0]!.schema.openAPIV3Schema.properties!.spec!;
  spec['x-kubernetes-validations'] = [{ rule: 'self.workers <= 8 || self.masterPort > 1024', fieldPath: '.masterPort', message: 'pick a higher port' }];
  const reference = renderReference([crd]);
  const row = reference.split('\n').find((line) => line.startsWith('| `spec.masterPort` |'));
  assert.ok(row, 'no row for spec.masterPort');
  assert.match(row, '“pick a higher port” (checked on `spec`)');
  assert.not.match(reference, 'Rules on `spec`');
});

test('the output is the same on every run (no dates, no map-order dependence)', () => {
  const first = renderReference(crds);
  assert.is(renderReference(structuredClone(crds)), first);
  assert.not.match(first, /\d{4}-\d{2}-\d{2}T/);
});

test.run();
