// The chaos suite's API server scenario, short: one restart of kube-apiserver in the middle of a canary and
// a burst of TrainingJobs (npm run chaos runs it longer, with more restarts). Every invariant must hold.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chaosTable } from '../report.ts';
import { apiServerRestarts } from '../scenarios/api-server.ts';

test('kube-apiserver restarted during a canary and a TrainingJob burst: no lost or duplicated Job, version or step, no stuck key', async () => {
  const result = await apiServerRestarts({ jobs: 4, restarts: 1, downMs: 2000 });
  console.log(chaosTable([result]));
  assert.is(result.faults, 1);
  assert.ok(result.checks >= 20, `${result.checks} checks`);
  assert.equal(result.violations, []);
  assert.is(result.recoveriesMs.length, 1);
});

test.run();
