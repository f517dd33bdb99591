// The whole project type-checks under strict TypeScript, so a type error anywhere
// fails the test command rather than waiting for a reader to run `npm run typecheck`.
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

test('tsc --noEmit reports no type errors in the project', () => {
  const tsc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit', '-p', '.'], {
    cwd: root,
    encoding: 'utf8',
  });
  assert.is(tsc.status, 0, `type errors:\n${tsc.stdout}${tsc.stderr}`);
});

test.run();
