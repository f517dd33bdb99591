// The chaos suite's NATS scenario, short: the operator cut off from NATS for 8 s while drift events are
// published (npm run chaos: 60 s).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chaosTable } from '../report.ts';
import { natsOutage } from '../scenarios/nats.ts';

test('NATS unreachable from the operator: drift events published meanwhile are each handled once when it returns', async () => {
  const result = await natsOutage({ outageMs: 8000, events: 4 });
  console.log(chaosTable([result]));
  assert.is(result.faults, 1);
  assert.equal(result.violations, []);
  assert.is(result.recoveriesMs.length, 1);
});

test.run();
