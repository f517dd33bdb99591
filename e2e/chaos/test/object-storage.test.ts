// The chaos suite's object-storage scenario, short: S3 unreachable from pods while a trainer uploads and while
// a predictor starts. Regression test of the predictor's load retry: it used to stay unready until restarted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chaosTable } from '../report.ts';
import { objectStorageOutage } from '../scenarios/object-storage.ts';

test('S3 down for a trainer upload and a predictor start: failed or unready with the reason, retried, recovered unaided', async () => {
  const result = await objectStorageOutage({ predictorOutageMs: 4000 });
  console.log(chaosTable([result]));
  assert.is(result.faults, 2);
  assert.equal(result.violations, []);
  assert.is(result.recoveriesMs.length, 2);
});

test.run();
