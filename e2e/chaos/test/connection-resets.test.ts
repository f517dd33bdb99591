// The chaos suite's connection-reset scenario, short: the operator's API server connections reset two seconds
// after they open, for 12 s, quiet first and then under a burst of TrainingJobs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chaosTable } from '../report.ts';
import { connectionResets } from '../scenarios/connection-resets.ts';

test('API server connections reset every two seconds: reconciles go on, no write while nothing changes, no duplicate', async () => {
  const result = await connectionResets({ durationMs: 12_000, resetAfterMs: 2000, jobs: 2 });
  console.log(chaosTable([result]));
  assert.ok(result.faults >= 2, `${result.faults} connections cut`);
  assert.equal(result.violations, []);
});

test.run();
