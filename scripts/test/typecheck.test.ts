// The whole project type-checks under strict TypeScript, so a type error anywhere
// fails the test command rather than waiting for a reader to run `npm run typecheck`.
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
// Incremental: tsc keeps what it learnt of every file (by a hash of its text) and the diagnostics of each, and
// checks again only the files that changed and those that depend on them, reporting the same errors as a full
// check. Kept outside the tree, one file per checkout.
const buildInfo = join(
  tmpdir(),
  `loopline-tsc-${createHash('sha256').update(root).digest('hex').slice(0, 12)}.tsbuildinfo`,
);

test('tsc --noEmit reports no type errors in the project', () => {
  const tsc = spawnSync(
    process.execPath,
    ['node_modules/typescript/bin/tsc', '--noEmit', '-p', '.', '--incremental', '--tsBuildInfoFile', buildInfo],
    { cwd: root, encoding: 'utf8' },
  );
  assert.is(tsc.status, 0, `type errors:\n${tsc.stdout}${tsc.stderr}`);
});

test.run();
