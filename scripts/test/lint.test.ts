// Biome's linter (biome.json: its recommended rules, plus unused imports and variables, `import type` and
// `const` as errors) and its formatter (2 spaces, 120 columns, single quotes) pass over every source, so
// `npm test` fails on a finding rather than a reviewer.
// test: no cluster
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = fileURLToPath(new URL('../..', import.meta.url));
const biome = (args: string[]) => spawnSync('node_modules/.bin/biome', args, { cwd: root, encoding: 'utf8' });

test('biome lint reports no errors', () => {
  const lint = biome(['lint', '--diagnostic-level=error', '--max-diagnostics=50', '--colors=off']);
  assert.is(lint.status, 0, `lint errors (npx biome lint --write fixes the safe ones):\n${lint.stdout}${lint.stderr}`);
});

test('biome format finds every source already formatted', () => {
  const format = biome(['format', '--max-diagnostics=20', '--colors=off']);
  assert.is(
    format.status,
    0,
    `unformatted sources (npx biome format --write . fixes them):\n${format.stdout}${format.stderr}`,
  );
});

test.run();
