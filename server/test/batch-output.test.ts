// Batch scoring's PostgreSQL output on a real server (Debian's PostgreSQL, started by test/support/postgres.ts):
// a run replaces the table's rows in one transaction, readers see the previous rows until it commits, and a run
// that fails mid-COPY or is aborted leaves the previous rows in place.
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyText, postgresSink, type ScoredRows } from '../src/batch/output.ts';
import { startPostgres, type TestPostgres } from '../../test/support/postgres.ts';

let db: TestPostgres;

test.before(async () => {
  db = await startPostgres();
});

test.after(async () => {
  await db?.stop();
});

function scored(ids: unknown[], score = 0.5, segment: string | null = 'mid'): ScoredRows {
  return {
    carried: [ids],
    rowIndex: ids.map((_, i) => i),
    scores: ids.map(() => score),
    segments: ids.map(() => segment),
    count: ids.length,
  };
}

const rowsOf = (table: string) =>
  db.query<{ customer_id: string; score: number; segment: string | null; model_version: number }>(
    `SELECT customer_id::text, score, segment, model_version FROM ${table} ORDER BY customer_id`,
  );

test('COPY text escapes backslash, tab, newline and carriage return, and writes null as \\N', () => {
  assert.is(copyText('a\tb\nc\\d\re'), 'a\\tb\\nc\\\\d\\re');
  assert.is(copyText(null), '\\N');
  assert.is(copyText(undefined), '\\N');
  assert.is(copyText(12n), '12');
  assert.is(copyText(new Date('2026-01-02T03:04:05Z')), '2026-01-02T03:04:05.000Z');
});

test('a run creates the missing table and commits its rows with version and time scored', async () => {
  const table = 'scores_created';
  const at = new Date('2026-12-01T02:00:00Z');
  const sink = await postgresSink(db.url, table, ['customer_id'], { version: 3, scoredAt: at });
  await sink.write(scored(['c1', 'c2'], 0.25, 'low'));
  await sink.write(scored(['c3'], 0.75, null));
  await sink.commit();
  const rows = await db.query<{
    customer_id: string;
    score: number;
    segment: string | null;
    model_version: number;
    scored_at: Date;
  }>(`SELECT * FROM ${table} ORDER BY customer_id`);
  assert.equal(
    rows.map((r) => [r.customer_id, r.score, r.segment, r.model_version]),
    [
      ['c1', 0.25, 'low', 3],
      ['c2', 0.25, 'low', 3],
      ['c3', 0.75, null, 3],
    ],
  );
  assert.is(rows[0].scored_at.toISOString(), at.toISOString());
});

test('a run replaces the previous rows, which readers keep seeing until it commits', async () => {
  const table = 'scores_replaced';
  const first = await postgresSink(db.url, table, ['customer_id'], { version: 1, scoredAt: new Date() });
  await first.write(scored(['a', 'b', 'c'], 0.1, 'old'));
  await first.commit();
  const second = await postgresSink(db.url, table, ['customer_id'], { version: 2, scoredAt: new Date() });
  await second.write(scored(['d'], 0.9, 'new'));
  assert.equal(
    (await rowsOf(table)).map((r) => r.segment),
    ['old', 'old', 'old'],
    'uncommitted: the previous rows are what others read',
  );
  await second.commit();
  assert.equal(
    (await rowsOf(table)).map((r) => [r.customer_id, r.segment, r.model_version]),
    [['d', 'new', 2]],
  );
});

test('a database error mid-COPY fails the run and leaves the previous rows', async () => {
  const table = 'scores_typed';
  await db.query(
    `CREATE TABLE ${table} (customer_id bigint PRIMARY KEY, score double precision, segment text, model_version integer, scored_at timestamptz)`,
  );
  const first = await postgresSink(db.url, table, ['customer_id'], { version: 1, scoredAt: new Date() });
  await first.write(scored([1, 2], 0.2, 'kept'));
  await first.commit();

  const failing = await postgresSink(db.url, table, ['customer_id'], { version: 2, scoredAt: new Date() });
  let error: Error | undefined;
  try {
    // Enough rows that the server has started taking them before it meets the one its bigint column refuses.
    for (let chunk = 0; chunk < 20; chunk++)
      await failing.write(
        scored(
          Array.from({ length: 1000 }, (_, i) => 10 + chunk * 1000 + i),
          0.9,
          'lost',
        ),
      );
    await failing.write(scored(['not-a-number']));
    await failing.commit();
  } catch (e) {
    error = e as Error;
    await failing.abort();
  }
  assert.ok(error, 'the run failed');
  assert.match(
    error!.message,
    /PostgreSQL COPY of table scores_typed failed: invalid input syntax for type bigint: "not-a-number"/,
  );
  assert.match(error!.message, /SQLSTATE 22P02/);
  assert.not.match(error!.message, new URL(db.url).password, 'the connection string is not in the error');
  assert.equal(
    (await rowsOf(table)).map((r) => [r.customer_id, r.segment, r.model_version]),
    [
      ['1', 'kept', 1],
      ['2', 'kept', 1],
    ],
  );
});

test('an aborted run (a failure outside the database) rolls back its delete', async () => {
  const table = 'scores_aborted';
  const first = await postgresSink(db.url, table, ['customer_id'], { version: 1, scoredAt: new Date() });
  await first.write(scored(['x'], 0.3, 'kept'));
  await first.commit();
  const aborted = await postgresSink(db.url, table, ['customer_id'], { version: 2, scoredAt: new Date() });
  await aborted.write(scored(['y'], 0.8, 'lost'));
  await aborted.abort();
  assert.equal(
    (await rowsOf(table)).map((r) => [r.customer_id, r.segment]),
    [['x', 'kept']],
  );
  const sessions = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'loopline-batch'`,
  );
  assert.is(sessions[0].n, 0, 'the run closed its connection');
});

test("a connection that fails names the table and the server's answer, not the password", async () => {
  const url = new URL(db.url);
  url.password = 'wrong-password';
  try {
    await postgresSink(url.href, 'scores_never', ['customer_id'], { version: 1, scoredAt: new Date() });
    assert.unreachable('connected with a wrong password');
  } catch (error) {
    assert.match(
      (error as Error).message,
      /PostgreSQL connection for table scores_never failed: password authentication failed for user "loopline"/,
    );
    assert.not.match((error as Error).message, 'wrong-password');
  }
});

test.run();
