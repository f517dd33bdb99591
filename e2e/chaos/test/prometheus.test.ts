// The chaos suite's Prometheus scenario, short: slow at step 0, unreachable at step 1, hanging at step 2 of a
// canary. Regression tests of two fixes: an analysis Prometheus did not answer no longer counts as a failed
// check (it rolled the canary back), and a hanging Prometheus no longer holds the reconcile forever (the query
// timeout was dropped whenever the reconcile passed its own abort signal).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chaosTable } from '../report.ts';
import { prometheusOutage } from '../scenarios/prometheus.ts';

test('Prometheus down or hanging at an analysis: the step holds, Inconclusive in status, and the rollout ends promoted', async () => {
  const result = await prometheusOutage({ latencyMs: 500, outageMs: 8000, stallMs: 16_000 });
  console.log(chaosTable([result]));
  assert.is(result.faults, 3);
  assert.equal(result.violations, []);
  assert.is(result.recoveriesMs.length, 2);
});

test.run();
