// No module imports itself through others: a cycle makes load order matter (a value read before its module
// has run is undefined) and ties parts together that should stand alone. Types-only imports count too, since
// they tie the parts together just the same.
// test: no cluster
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import ts from 'typescript';

const root = fileURLToPath(new URL('../..', import.meta.url));
const SKIP = new Set(['node_modules', '.git', 'dist', 'bench', 'test']);

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return SKIP.has(name) ? [] : sources(path);
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Each source file's relative imports (static, dynamic and re-exports), resolved to files. */
function importGraph(files: string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    graph.set(
      file,
      importedFiles
        .map((f) => f.fileName)
        .filter((name) => name.startsWith('.'))
        .map((name) => resolve(dirname(file), name)),
    );
  }
  return graph;
}

function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue;
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return found;
}

test('the finder sees a cycle through a re-export and a dynamic import', () => {
  const graph = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a']],
    ['d', ['a']],
  ]);
  assert.equal(cycles(graph), [['a', 'b', 'c', 'a']]);
  const { importedFiles } = ts.preProcessFile(
    "export * from './x.ts';\nconst m = await import('./y.ts');\nimport type { T } from './z.ts';",
    true,
    true,
  );
  assert.equal(
    importedFiles.map((f) => f.fileName),
    ['./x.ts', './y.ts', './z.ts'],
  );
});

test("no import cycles among the operator's, the server's, the trainer's and the e2e sources", () => {
  const files = ['operator', 'server', 'examples', 'e2e', 'scripts', 'test'].flatMap((dir) => sources(join(root, dir)));
  assert.ok(files.length > 100, `found ${files.length} source files`);
  const found = cycles(importGraph(files)).map((cycle) => cycle.map((file) => relative(root, file)).join(' -> '));
  assert.equal(found, [], `import cycles:\n${found.join('\n')}`);
});

test.run();
