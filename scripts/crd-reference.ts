/**
 * Writes docs/reference.md, the reference of Loopline's three resources, from the CRD manifests in crds/:
 * names, printer columns, and one table per spec/status field with its type, default, requiredness,
 * description and every validation (OpenAPI bounds, enums, CEL rules with their messages).
 * The output depends on nothing but the manifests, so docs/test/reference.test.ts can regenerate it and
 * fail when a CRD changed without the reference.
 *
 *   npx tsx scripts/crd-reference.ts          # rewrite docs/reference.md
 *   npx tsx scripts/crd-reference.ts --check  # exit 1 when docs/reference.md is stale
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LOOPLINE_KINDS, loadCrd, type CustomResourceDefinition, type SchemaNode } from '../operator/api/crds.ts';

export const REFERENCE_PATH = fileURLToPath(new URL('../docs/reference.md', import.meta.url));
export const REGENERATE_COMMAND = 'npx tsx scripts/crd-reference.ts';

type Validation = NonNullable<SchemaNode['x-kubernetes-validations']>[number];

interface FieldRow {
  path: string;
  node: SchemaNode;
  required: boolean;
  /** CEL rules declared on an ancestor whose fieldPath points at this field. */
  inheritedRules: Array<{ rule: Validation; on: string }>;
}

/** The whole reference for the given CRDs, in the order given. */
export function renderReference(crds: CustomResourceDefinition[]): string {
  const out: string[] = [
    '# Loopline API reference',
    '',
    `<!-- Generated from crds/*.yaml by \`${REGENERATE_COMMAND}\`; do not edit by hand. -->`,
    '',
    'Generated from the CRD schemas in [`crds/`](../crds), the same manifests the API server validates',
    'against, so it lists exactly what `kubectl apply` accepts. `kubectl explain <kind>.spec` shows the same',
    'descriptions on a cluster. CEL rules are checked by the API server on create and update; a refused',
    "write reports the rule's message.",
    '',
    ...crds.map((crd) => `- [${crd.spec.names.kind}](#${crd.spec.names.kind.toLowerCase()})`),
  ];
  for (const crd of crds) out.push('', ...renderKind(crd));
  return `${out.join('\n')}\n`;
}

function renderKind(crd: CustomResourceDefinition): string[] {
  const { group, names, scope } = crd.spec;
  const out: string[] = [];
  for (const version of crd.spec.versions) {
    const root = version.schema.openAPIV3Schema;
    out.push(
      `## ${names.kind}`,
      '',
      text(root.description),
      '',
      '| | |',
      '|---|---|',
      `| API version | \`${group}/${version.name}\`${version.storage ? '' : ' (not the storage version)'} |`,
      `| Scope | ${scope} |`,
      `| Plural, singular | \`${names.plural}\`, \`${names.singular}\` |`,
      `| Short names | ${list(names.shortNames)} |`,
      `| Categories | ${list(names.categories)} |`,
      `| Subresources | ${Object.keys(version.subresources ?? {}).join(', ') || 'none'} |`,
      '',
    );
    const columns = version.additionalPrinterColumns ?? [];
    if (columns.length > 0) {
      out.push(
        `### Printer columns (\`kubectl get ${names.plural}\`)`,
        '',
        '| Column | Type | JSONPath | Shown | Description |',
        '|---|---|---|---|---|',
        ...columns.map(
          (c) =>
            `| ${c.name} | ${c.type} | \`${cell(c.jsonPath)}\` | ${(c.priority ?? 0) > 0 ? 'with `-o wide`' : 'always'} | ${cell(c.description ?? '')} |`,
        ),
        '',
      );
    }
    // apiVersion and kind are the same on every object; metadata only where the CRD constrains it.
    const rootRows = fieldRows(root, '', new Set(['apiVersion', 'kind', 'spec', 'status'])).filter(
      (row) => row.path !== 'metadata' || row.node.properties,
    );
    const rootRules = unplacedRules(root);
    if (rootRows.length > 0 || rootRules.length > 0) {
      out.push(
        '### Object',
        '',
        ...(rootRules.length ? [`Rules on the whole object: ${rootRules.map((r) => ruleText(r)).join('; ')}`, ''] : []),
      );
      if (rootRows.length > 0) out.push(...fieldTable(rootRows), '');
    }
    for (const section of ['spec', 'status'] as const) {
      const node = root.properties?.[section];
      if (!node) continue;
      out.push(`### ${section}`, '', text(node.description), '');
      const unplaced = unplacedRules(node);
      if (unplaced.length) out.push(`Rules on \`${section}\`: ${unplaced.map((r) => ruleText(r)).join('; ')}`, '');
      out.push(...fieldTable(fieldRows(node, section, new Set())), '');
    }
  }
  return out;
}

/**
 * Flattens a schema into one row per field, depth first in manifest order. Arrays of objects continue as
 * `path[].field`, maps of objects as `path.<key>.field`. A CEL rule with a fieldPath is shown on the field it
 * points at (where the API server reports it) rather than on the object that declares it.
 */
function fieldRows(node: SchemaNode, prefix: string, skip: Set<string>): FieldRow[] {
  const rows: FieldRow[] = [];
  const placed = new Map<string, FieldRow['inheritedRules']>();
  const walk = (current: SchemaNode, path: string) => {
    for (const rule of current['x-kubernetes-validations'] ?? []) {
      if (!rule.fieldPath || !resolveFieldPath(current, rule.fieldPath)) continue;
      const target = [path, rule.fieldPath.replace(/^\./, '')].filter(Boolean).join('.');
      placed.set(target, [...(placed.get(target) ?? []), { rule, on: path || 'the object' }]);
    }
    for (const [key, child, childPath] of childSchemas(current, path)) {
      if (path === prefix && skip.has(key)) continue;
      rows.push({ path: childPath, node: child, required: (current.required ?? []).includes(key), inheritedRules: [] });
      walk(descend(child), isArrayOfObjects(child) ? `${childPath}[]` : childPath);
    }
  };
  walk(node, prefix);
  for (const row of rows) row.inheritedRules = placed.get(row.path) ?? [];
  return rows;
}

/** Named children of an object: its properties; a map of objects contributes `<key>`. */
function childSchemas(node: SchemaNode, path: string): Array<[string, SchemaNode, string]> {
  const join = (key: string) => (path ? `${path}.${key}` : key);
  const children: Array<[string, SchemaNode, string]> = Object.entries(node.properties ?? {}).map(([key, child]) => [
    key,
    child,
    join(key),
  ]);
  if (typeof node.additionalProperties === 'object' && node.additionalProperties.properties) {
    children.push(['<key>', node.additionalProperties, join('<key>')]);
  }
  return children;
}

/** Rules shown on the node that declares them: those without a fieldPath naming one of its fields. */
function unplacedRules(node: SchemaNode): Validation[] {
  return (node['x-kubernetes-validations'] ?? []).filter(
    (rule) => !rule.fieldPath || !resolveFieldPath(node, rule.fieldPath),
  );
}

function isArrayOfObjects(node: SchemaNode): boolean {
  return node.type === 'array' && node.items?.properties !== undefined;
}

/** Arrays of objects are walked through their items. */
function descend(node: SchemaNode): SchemaNode {
  return isArrayOfObjects(node) ? node.items! : node;
}

/** `.a.b` relative to node → the schema it names, if every step is a plain property. */
function resolveFieldPath(node: SchemaNode, fieldPath: string): SchemaNode | undefined {
  let current: SchemaNode | undefined = node;
  for (const part of fieldPath.replace(/^\./, '').split('.')) {
    if (!/^[A-Za-z0-9_]+$/.test(part)) return undefined;
    current = current?.properties?.[part];
  }
  return current;
}

function fieldTable(rows: FieldRow[]): string[] {
  return [
    '| Field | Type | Required | Default | Description | Validation |',
    '|---|---|---|---|---|---|',
    ...rows
      .map((row) =>
        [
          `\`${cell(row.path)}\``,
          cell(typeName(row.node)),
          row.required ? 'yes' : '',
          row.node.default === undefined
            ? ''
            : `\`${cell(JSON.stringify(row.node.default).replace(/^"(.*)"$/, '$1'))}\``,
          cell(text(row.node.description)),
          cell(validations(row).join('; ')),
        ].join(' | '),
      )
      .map((line) => `| ${line} |`),
  ];
}

function typeName(node: SchemaNode): string {
  if (node['x-kubernetes-int-or-string']) return 'integer or string';
  if (node.type === 'array') return node.items ? `[]${typeName(node.items)}` : '[]';
  if (node.type === 'object' && typeof node.additionalProperties === 'object')
    return `map[string]${typeName(node.additionalProperties)}`;
  if (!node.type) return node['x-kubernetes-preserve-unknown-fields'] ? 'any' : 'object';
  return node.format ? `${node.type} (${node.format})` : node.type;
}

function validations(row: FieldRow): string[] {
  const node = row.node;
  const parts = bounds(node);
  if (node.type === 'array' && node.items) {
    const items = isArrayOfObjects(node) ? [] : bounds(node.items);
    for (const rule of node.items['x-kubernetes-validations'] ?? []) if (!rule.fieldPath) items.push(ruleText(rule));
    if (items.length) parts.push(`each item: ${items.join(', ')}`);
  }
  if (
    node.type === 'object' &&
    typeof node.additionalProperties === 'object' &&
    !node.additionalProperties.properties
  ) {
    const values = bounds(node.additionalProperties);
    if (values.length) parts.push(`each value: ${values.join(', ')}`);
  }
  const listType = node['x-kubernetes-list-type'];
  if (listType === 'set') parts.push('items unique (set)');
  if (listType === 'map')
    parts.push(`list keyed by ${(node['x-kubernetes-list-map-keys'] ?? []).map((k) => `\`${k}\``).join(', ')}`);
  if (node['x-kubernetes-preserve-unknown-fields']) parts.push('unknown fields kept');
  for (const rule of unplacedRules(node)) parts.push(ruleText(rule));
  for (const { rule, on } of row.inheritedRules) parts.push(`${ruleText(rule)} (checked on \`${on}\`)`);
  return parts;
}

/** OpenAPI bounds in words. */
function bounds(node: SchemaNode): string[] {
  const parts: string[] = [];
  if (node.enum) parts.push(`one of ${node.enum.map((v) => `\`${v}\``).join(', ')}`);
  const range = (min: number | undefined, max: number | undefined, unit: string) => {
    if (min !== undefined && max !== undefined) parts.push(`${min}–${max}${unit}`);
    else if (min !== undefined) parts.push(`≥ ${min}${unit}`);
    else if (max !== undefined) parts.push(`≤ ${max}${unit}`);
  };
  range(node.minimum, node.maximum, '');
  range(node.minLength, node.maxLength, ' characters');
  range(node.minItems, node.maxItems, ' items');
  if (node.maxProperties !== undefined) parts.push(`≤ ${node.maxProperties} entries`);
  if (node.pattern) parts.push(`pattern \`${node.pattern}\``);
  return parts;
}

function ruleText(rule: Validation): string {
  const message =
    rule.message ?? (rule.messageExpression ? `message from \`${oneLine(rule.messageExpression)}\`` : 'failed rule');
  return `rule \`${oneLine(rule.rule)}\`: ${rule.message ? `“${prose(message)}”` : message}`;
}

function list(values: string[] | undefined): string {
  return values?.length ? values.map((v) => `\`${v}\``).join(', ') : 'none';
}

function oneLine(value: string): string {
  return value.replace(/\s+/g, ' ').trim();
}

/** Schema prose as Markdown text: `<model>-v<version>` must not be taken for an HTML tag. */
function text(value: string | undefined): string {
  return prose(oneLine(value ?? ''));
}

function prose(value: string): string {
  return value.replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Markdown table cells cannot hold a pipe or a line break, even inside code spans. */
function cell(value: string): string {
  return oneLine(value).replace(/\|/g, '\\|');
}

export function currentReference(): string {
  return renderReference(LOOPLINE_KINDS.map((kind) => loadCrd(kind)));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const generated = currentReference();
  if (process.argv.includes('--check')) {
    const onDisk = readFileSync(REFERENCE_PATH, 'utf8');
    if (onDisk !== generated) {
      console.error(`docs/reference.md is stale: run ${REGENERATE_COMMAND}`);
      process.exit(1);
    }
  } else {
    writeFileSync(REFERENCE_PATH, generated);
    console.log(`wrote ${REFERENCE_PATH}`);
  }
}
