// Predictor pods deleted one at a time, a canary rolled back at 50% and one promoted, with clients posting through
// the Gateway (Traefik): no request fails (npm run chaos runs the same scenario with more deletions).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chaosTable } from '../report.ts';
import { predictorReplacement } from '../scenarios/predictor-replacement.ts';

test('predictor pods stopped gracefully under traffic (deleted, rolled back, promoted away): no client request fails at the Gateway', async () => {
  const result = await predictorReplacement({ deletions: 4 });
  console.log(chaosTable([result]));
  assert.ok(result.faults >= 6, `${result.faults} faults`);
  assert.equal(result.violations, []);
});

test.run();
