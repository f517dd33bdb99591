/**
 * `npm run generate`: every file made from another, in the order they depend on each other, after a change
 * to crds/ (the one source of truth for the API). Each has a test that fails while its output is stale.
 *   1. charts/loopline/crds/ and files/   copies of crds/                 (charts/sync-crds.sh; lint.test.ts)
 *   2. operator/api/types.ts              TypeScript types of the CRDs    (operator/api/test/types.test.ts)
 *   3. docs/reference.md                  the API reference               (docs/test/reference.test.ts)
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const steps: Array<[string, string, string[]]> = [
  ['chart copies of crds/', 'bash', ['charts/sync-crds.sh']],
  ['operator/api/types.ts', process.execPath, ['--import', 'tsx', 'operator/api/generate-types.ts']],
  ['docs/reference.md', process.execPath, ['--import', 'tsx', 'scripts/crd-reference.ts']],
];
for (const [what, command, args] of steps) {
  const run = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (run.status !== 0) {
    console.error(`generate: ${what} failed (exit ${run.status})`);
    process.exit(1);
  }
  console.log(`generated ${what}`);
}
