// The chaos suite's soak, short: 40 s of churn of all three kinds with the operator SIGKILLed every 8-16 s and
// clients posting through the Gateway (npm run chaos runs it for CHAOS_SOAK_MINUTES, default 10).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chaosTable } from '../report.ts';
import { soak } from '../scenarios/soak.ts';

test('churn while the operator is SIGKILLed at random: one holder per alias, gap-free versions, no backwards weight, no orphan, no failed request', async () => {
  const result = await soak({ durationMs: 30_000, killEveryMs: [8000, 16_000] });
  console.log(chaosTable([result]));
  assert.ok(result.faults >= 2, `${result.faults} kills`);
  assert.equal(result.violations, []);
});

test.run();
