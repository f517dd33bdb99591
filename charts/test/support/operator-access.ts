// What the operator's code touches on the API server, read from its source: the kinds it names and how.
// The chart's ClusterRole/Role must cover this (rbac.test.ts), and grant nothing for a kind it never names.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { kinds, groupOf, type ResourceKind } from '../../../operator/engine/kinds.ts';
import { ROOT } from './chart.ts';

/** `group/resource` (core group: `/pods`) → verbs. */
export type Access = Map<string, Set<string>>;

export interface Usage {
  /** Every permission the code needs, with the source lines that need it. */
  needs: Access;
  evidence: Map<string, string[]>;
  /** Every `group/resource` the code names at all. */
  touched: Set<string>;
}

/** Declarations, not uses: the table of every kind the engine knows, and the generated API types. */
const DECLARATIONS = [/^operator\/engine\/kinds\.ts$/, /^operator\/api\/types\.ts$/];
/** Kinds that appear as apiVersion/kind literals but are not stored objects. */
const NOT_RESOURCES = new Set(['DeleteOptions', 'Status', 'Scale', 'Eviction']);

/** The operator process's own code: every file operator/main.ts reaches through relative imports. */
export function operatorSources(): Array<{ file: string; text: string }> {
  const out: Array<{ file: string; text: string }> = [];
  const seen = new Set<string>();
  const visit = (path: string) => {
    if (seen.has(path)) return;
    seen.add(path);
    const source = readFileSync(path, 'utf8');
    const rel = relative(ROOT, path).replaceAll('\\', '/');
    if (!DECLARATIONS.some((r) => r.test(rel))) out.push({ file: rel, text: stripComments(source) });
    for (const m of source.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"](\.{1,2}\/[^'"]+\.ts)['"]/g)) {
      visit(resolve(dirname(path), m[1]));
    }
  };
  const entry = join(ROOT, 'operator/main.ts');
  if (!existsSync(entry)) throw new Error('operator/main.ts is missing: nothing to scan');
  visit(entry);
  return out;
}

/** Drops block and line comments (doc examples name kinds the code does not use); keeps `://` inside strings. */
function stripComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

const byKindName = new Map<string, ResourceKind>(Object.entries(kinds));

export function resourceOf(apiVersion: string, kind: string): string {
  const known = Object.values(kinds).find((k) => k.kind === kind && groupOf(k.apiVersion) === groupOf(apiVersion));
  // Every plural the operator writes is its lower-case kind + s (pods, httproutes, virtualservices, ...).
  return `${groupOf(apiVersion)}/${known?.plural ?? `${kind.toLowerCase()}s`}`;
}

export function operatorUsage(): Usage {
  const needs: Access = new Map();
  const evidence = new Map<string, string[]>();
  const touched = new Set<string>();
  const need = (resource: string, verbs: string[], where: string) => {
    const set = needs.get(resource) ?? new Set<string>();
    for (const v of verbs) set.add(v);
    needs.set(resource, set);
    evidence.set(resource, [...(evidence.get(resource) ?? []), `${where}: ${verbs.join(',')}`]);
  };
  const kindRef = (name: string) => {
    const kind = byKindName.get(name);
    if (!kind) throw new Error(`kinds.${name} is not in operator/engine/kinds.ts`);
    return resourceOf(kind.apiVersion, kind.kind);
  };

  const sources = operatorSources();
  const everything = sources.map((s) => s.text).join('\n');
  /**
   * Whether the objects `builder` returns are only ever created, never applied, and the create never reads an
   * existing one back (`ctx.create(builder(...), { readExisting: false })`): then creating them is all the code needs.
   */
  const createdOnly = (builder: string | undefined): boolean => {
    if (!builder) return false;
    const calls = [...everything.matchAll(new RegExp(`(\\.\\w+\\(\\s*)?\\b${builder}\\([^\\n]*`, 'g'))].filter(
      (m) => !/function\s+$/.test(everything.slice(Math.max(0, m.index! - 9), m.index!)),
    );
    return (
      calls.length > 0 &&
      calls.every((m) => /^\.create\(/.test(m[1] ?? '') && /\{\s*readExisting:\s*false\s*\}/.test(m[0]))
    );
  };

  for (const { file, text } of sources) {
    // Kinds a file defines as constants (`const PodDisruptionBudget: ResourceKind = { apiVersion: 'policy/v1', kind: ... }`).
    const constants = new Map<string, string>();
    for (const m of text.matchAll(
      /const\s+(\w+)(?:\s*:\s*\w+)?\s*=\s*\{\s*apiVersion:\s*['"]([^'"]+)['"],\s*kind:\s*['"](\w+)['"]/g,
    )) {
      constants.set(m[1], resourceOf(m[2], m[3]));
    }
    // Arrays of kinds a file names (`const ownedKinds = [kinds.Deployment, PodDisruptionBudget, ...]`).
    const arrays = new Map<string, string>();
    for (const m of text.matchAll(/const\s+(\w+)\s*=\s*(\[[^\]]*\])/g)) arrays.set(m[1], m[2]);
    const kindsIn = (expression: string): string[] => {
      const list = arrays.get(expression.trim()) ?? expression;
      const found = [...list.matchAll(/(?<![\w/.])kinds\.([A-Z]\w*)/g)].map((k) => kindRef(k[1]));
      for (const id of list.matchAll(/(?<![\w.])([A-Z]\w*)\b/g))
        if (constants.has(id[1])) found.push(constants.get(id[1])!);
      return found;
    };

    for (const m of text.matchAll(/(?<![\w/.])kinds\.([A-Z]\w*)/g)) touched.add(kindRef(m[1]));
    for (const resource of constants.values()) touched.add(resource);
    // Objects the operator builds are written with server-side apply or create (create + patch; get when not cached).
    for (const m of text.matchAll(/apiVersion:\s*['"]([^'"]+)['"],?\s*kind:\s*['"](\w+)['"]/g)) {
      if (NOT_RESOURCES.has(m[2]) || /scaleTargetRef:\s*\{\s*$/.test(text.slice(Math.max(0, m.index! - 40), m.index!)))
        continue;
      const resource = resourceOf(m[1], m[2]);
      touched.add(resource);
      const builder = [...text.slice(0, m.index!).matchAll(/function\s+(\w+)\s*\(/g)].pop()?.[1];
      need(resource, createdOnly(builder) ? ['create'] : ['create', 'patch', 'get'], file);
    }
    // Informers list and watch every kind a controller is for, owns, watches or reads.
    const owned: string[] = [];
    for (const m of text.matchAll(/\b(for|owns|reads|watches)\s*:\s*(\[[^\]]*\]|kinds\.\w+|\w+)/g)) {
      const resources =
        m[1] === 'watches' ? [...m[2].matchAll(/kind:\s*kinds\.(\w+)/g)].map((k) => kindRef(k[1])) : kindsIn(m[2]);
      for (const resource of resources) need(resource, ['list', 'watch'], `${file} (${m[1]})`);
      if (m[1] === 'owns') owned.push(...resources);
      // A Loopline primary's status is written through the status subresource.
      if (m[1] === 'for')
        for (const r of resources)
          if (r.startsWith('loopline.dev/')) need(`${r}/status`, ['patch'], `${file} (status of its primary)`);
    }
    for (const m of text.matchAll(/\.delete\(\s*([\w.]+)/g)) {
      // `ctx.delete(kind, ...)` over a variable kind: the controller prunes what it owns.
      const targets = m[1].startsWith('kinds.')
        ? [kindRef(m[1].slice(6))]
        : /^(ctx|writer|engine\.writer)$/.test(
              text
                .slice(Math.max(0, m.index! - 14), m.index!)
                .split(/[\s(]/)
                .pop() ?? '',
            )
          ? owned
          : [];
      for (const r of targets) need(r, ['delete'], file);
    }
    const calls: Array<[RegExp, string]> = [
      [/\.create(?:<[^>]*>)?\(\s*kinds\.(\w+)/g, 'create'],
      [/\.replace(?:<[^>]*>)?\(\s*kinds\.(\w+)/g, 'update'],
      [/\.mergePatch(?:<[^>]*>)?\(\s*kinds\.(\w+)/g, 'patch'],
      [/\.apply(?:<[^>]*>)?\(\s*kinds\.(\w+)/g, 'patch'],
    ];
    for (const [pattern, verb] of calls) for (const m of text.matchAll(pattern)) need(kindRef(m[1]), [verb], file);
    // cache.get/list read the informer; api.get/list go to the API server.
    for (const m of text.matchAll(/(\w+)\s*\.\s*(get|list)(?:<[^>]*>)?\(\s*kinds\.(\w+)/g)) {
      if (m[1] !== 'cache') need(kindRef(m[3]), [m[2]], file);
    }
    // The lease is read by path (`/apis/coordination.k8s.io/v1/.../leases/<name>`).
    if (/HttpMethod\.GET[^;]*this\.path\(\)/.test(text) && /\/leases\//.test(text))
      need('coordination.k8s.io/leases', ['get'], file);
  }
  return { needs, evidence, touched };
}
