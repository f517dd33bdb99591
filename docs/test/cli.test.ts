// test: no cluster
/** docs/cli.md quotes the CLI's usage text and its PromQL; these tests fail when the code moves on without it. */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { USAGE } from '../../operator/cli/main.ts';
import { trafficQueries } from '../../operator/cli/snapshot.ts';

const doc = readFileSync(new URL('../cli.md', import.meta.url), 'utf8');

test('docs/cli.md shows the usage text the CLI prints', () => {
  assert.ok(doc.includes('```\n' + USAGE + '\n```'), 'the first code block of docs/cli.md must be USAGE from operator/cli/main.ts, verbatim');
});

test('docs/cli.md lists every PromQL query the dashboard runs, verbatim', () => {
  for (const [figure, query] of Object.entries(trafficQueries('risk', 'fraud', 'fraud-detector', '1m'))) {
    assert.ok(doc.includes(`\n${query}\n`), `docs/cli.md lacks the ${figure} query:\n${query}`);
  }
});

test.run();
