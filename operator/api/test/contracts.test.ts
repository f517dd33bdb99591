// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  driftSubject,
  driftSubjects,
  durationOr,
  lifecycleSubject,
  parseDuration,
  qualitySubject,
  rfc3339,
  rfc3339Micro,
} from '../contracts.ts';

test('durations: single and compound units, days, fractions', () => {
  assert.is(parseDuration('x', '250ms'), 250);
  assert.is(parseDuration('x', '30s'), 30_000);
  assert.is(parseDuration('x', '1h30m'), 5_400_000);
  assert.is(parseDuration('x', '168h'), 168 * 3_600_000);
  assert.is(parseDuration('x', '7d'), 7 * 86_400_000);
  assert.is(parseDuration('x', '1.5s'), 1500);
  assert.is(parseDuration('x', ' 2m '), 120_000);
});

test('a bad duration names the field and shows what a duration looks like', () => {
  for (const bad of ['', 'a week', '30', '5 m', '1h30', 'm5', '-1s', '1w']) {
    assert.throws(
      () => parseDuration('spec.rollout.interval', bad),
      /^spec\.rollout\.interval: ".*" is not a duration: use e\.g\. 500ms, 30s/,
      bad,
    );
  }
});

test('an unset optional duration takes its default; a set one is parsed', () => {
  assert.is(durationOr('f', undefined, 42), 42);
  assert.is(durationOr('f', '', 42), 42);
  assert.is(durationOr('f', '2s', 42), 2000);
  assert.throws(() => durationOr('spec.retrain.cooldown', 'soon', 42), /spec\.retrain\.cooldown/);
});

test("subjects follow DESIGN.md's event contract", () => {
  assert.is(driftSubject('ml', 'credit'), 'loopline.drift.ml.credit');
  assert.is(qualitySubject('ml', 'credit'), 'loopline.quality.ml.credit');
  assert.is(lifecycleSubject('modelversion', 'ml', 'credit-v3'), 'loopline.events.ml.modelversion.credit-v3');
  assert.is(driftSubjects(), 'loopline.drift.>');
  assert.is(driftSubjects('ml'), 'loopline.drift.ml.>');
});

test('metav1.Time has second precision, MicroTime microseconds', () => {
  const at = new Date('2026-12-02T05:37:07.123Z');
  assert.is(rfc3339(at), '2026-12-02T05:37:07Z');
  assert.is(rfc3339Micro(at), '2026-12-02T05:37:07.123000Z');
});

test.run();
