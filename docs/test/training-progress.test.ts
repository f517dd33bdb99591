// test: no cluster
/** docs/training-progress.md documents the progress contract; these tests fail when the schema moves on without it. */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import schema from '../../operator/api/training-progress.schema.json' with { type: 'json' };
import { PROGRESS_ENV, parseProgressReport } from '../../operator/api/training-progress.ts';

const doc = readFileSync(new URL('../training-progress.md', import.meta.url), 'utf8');

test('docs/training-progress.md has a row for every field of a report, and names both variables', () => {
  for (const field of Object.keys(schema.properties)) assert.match(doc, new RegExp(`^\\| \`${field}\` \\|`, 'm'), `no row for ${field}`);
  for (const name of Object.values(PROGRESS_ENV)) assert.ok(doc.includes(`| \`${name}\` |`), `no row for ${name}`);
});

test('the curl example posts a valid report to the URL with the token', () => {
  const curl = /curl [^\n]*\\\n[^\n]*\\\n\s*-d '([^']+)'/.exec(doc);
  assert.ok(curl, 'no curl example with a -d body');
  assert.equal(parseProgressReport(JSON.parse(curl[1])).ok, true, curl[1]);
  assert.ok(curl[0].includes('"$LOOPLINE_PROGRESS_URL"') && curl[0].includes('Bearer $LOOPLINE_PROGRESS_TOKEN'));
});

test.run();
