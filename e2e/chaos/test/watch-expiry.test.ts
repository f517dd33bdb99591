// The chaos suite's watch-expiry scenario, short: one round of the operator cut off while work is made, etcd
// compacted and the API server restarted, so each of its watches is answered 410 Gone when it comes back.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chaosTable } from '../report.ts';
import { watchExpiry } from '../scenarios/watch-expiry.ts';

test('every watch answered 410 Gone: the informers re-list, see the deletion, and do the work made meanwhile once', async () => {
  const result = await watchExpiry({ rounds: 1, jobs: 2 });
  console.log(chaosTable([result]));
  assert.is(result.faults, 1);
  assert.ok(result.checks >= 10, `${result.checks} checks`);
  assert.equal(result.violations, []);
});

test.run();
