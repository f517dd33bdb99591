// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { logLines, resultSchemaErrors, runTrainer, type TrainerRun } from './run-trainer.ts';

const runs: TrainerRun[] = [];
async function run(env: Record<string, string>): Promise<TrainerRun> {
  const r = await runTrainer(env);
  runs.push(r);
  return r;
}

test.after(() => {
  for (const r of runs) rmSync(r.dir, { recursive: true, force: true });
});

test('LOOPLINE_FAIL=crash exits 1 at once without output or result', async () => {
  const r = await run({ LOOPLINE_FAIL: 'crash' });
  assert.is(r.code, 1);
  assert.is(r.resultText, undefined);
  assert.not.ok(existsSync(r.outputDir));
  assert.not.ok(
    logLines(r.stdout).some((l) => l.msg === 'epoch'),
    'no training happened',
  );
});

test('LOOPLINE_FAIL=bad-result exits 0 with a termination message that is not JSON', async () => {
  const r = await run({ LOOPLINE_FAIL: 'bad-result' });
  assert.is(r.code, 0, r.stderr + r.stdout);
  assert.ok(r.resultText && r.resultText.length > 0);
  assert.throws(() => JSON.parse(r.resultText!));
});

test('LOOPLINE_FAIL=no-digest writes an otherwise complete result that the schema rejects for the digest', async () => {
  const r = await run({ LOOPLINE_FAIL: 'no-digest' });
  assert.is(r.code, 0, r.stderr + r.stdout);
  const result = JSON.parse(r.resultText!);
  assert.ok(result.artifact.uri.endsWith('/model.onnx'));
  assert.is(result.artifact.digest, undefined);
  assert.ok(result.metrics.auc > 0.75);
  assert.match(resultSchemaErrors(result) ?? '', /must have required property 'digest'/);
});

test('LOOPLINE_FAIL=sleep:<s> delays, then trains normally; sleep and crash combine in order', async () => {
  const [slept, sleptThenCrashed] = await Promise.all([
    run({ LOOPLINE_FAIL: 'sleep:1.5' }),
    run({ LOOPLINE_FAIL: 'sleep:1,crash' }),
  ]);
  assert.is(slept.code, 0, slept.stderr + slept.stdout);
  assert.ok(slept.seconds >= 1.5, `took ${slept.seconds} s`);
  assert.is(resultSchemaErrors(JSON.parse(slept.resultText!)), undefined);
  assert.is(sleptThenCrashed.code, 1);
  assert.ok(sleptThenCrashed.seconds >= 1);
  assert.is(sleptThenCrashed.resultText, undefined);
});

test('an unknown LOOPLINE_FAIL mode is refused with exit 1 and a message naming the valid modes', async () => {
  const r = await run({ LOOPLINE_FAIL: 'explode' });
  assert.is(r.code, 1);
  assert.match(r.resultText ?? '', /unknown mode "explode" \(crash, bad-result, no-digest, sleep:<seconds>\)/);
});

test('WORLD_SIZE=3: every rank trains its shard; only rank 0 writes artifacts and a result', async () => {
  const ranks = await Promise.all([0, 1, 2].map((rank) => run({ WORLD_SIZE: '3', RANK: String(rank) })));
  ranks.forEach((r, rank) => {
    assert.is(r.code, 0, `rank ${rank}: ${r.stderr}${r.stdout}`);
    const ready = logLines(r.stdout).find((l) => l.msg === 'dataset ready');
    assert.ok(ready && [1066, 1067].includes(ready.trainRows as number), `rank ${rank} shard ${ready?.trainRows}`);
    assert.ok(logLines(r.stdout).some((l) => l.msg === 'epoch' && l.rank === rank));
  });
  assert.is(resultSchemaErrors(JSON.parse(ranks[0].resultText!)), undefined);
  for (const r of ranks.slice(1)) {
    assert.is(r.resultText, undefined);
    assert.not.ok(existsSync(r.outputDir) && readdirSync(r.outputDir).length > 0);
  }
  assert.ok(existsSync(join(ranks[0].outputDir, 'model.onnx')));
});

test('torchrun names (PET_NODE_RANK/PET_NNODES) are read when RANK/WORLD_SIZE are absent; bad ranks are refused', async () => {
  const [pet, bad] = await Promise.all([
    run({ PET_NNODES: '2', PET_NODE_RANK: '1' }),
    run({ WORLD_SIZE: '2', RANK: '2' }),
  ]);
  assert.is(pet.code, 0, pet.stderr + pet.stdout);
  assert.is(pet.resultText, undefined, 'rank 1 of 2 writes no result');
  assert.is(bad.code, 1);
  assert.match(bad.resultText ?? '', /RANK="2" must be an integer in \[0, 2\)/);
});

test.run();
