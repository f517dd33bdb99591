// The feedback endpoints over real HTTP with labels on local storage (file://), read back with DuckDB: one or
// many labels answered only once their part is on disk, the last label of an id winning at read time; and a
// table of bad requests, each refused with a 4xx naming the field and leaving nothing stored.
// test: no cluster
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MAX_LABELS_PER_REQUEST } from '../src/ground-truth/labels.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import { call } from './support/http.ts';
import { Workspace, logisticModel, testConfig } from './support/model.ts';
import { filesBelow, queryParquet } from './support/parquet.ts';

const ws = new Workspace();
const model = logisticModel(ws, 'credit.onnx', [0.8, -0.5, 0.3, 1.2], -0.1);
const BODY_LIMIT = 64 * 1024;
let server: RunningServer;
let unlogged: RunningServer;
let broken: RunningServer;

const logging = (dir: string) => ({
  uri: pathToFileURL(join(ws.dir, dir)).href,
  sampleRate: 1,
  flushIntervalMs: 60_000,
  maxRowsPerPart: 10_000,
  maxBufferedRows: 50_000,
  pod: 'credit-pod',
});
const labelParts = (dir = 'gt') =>
  filesBelow(join(ws.dir, dir))
    .filter((f) => f.startsWith('labels/'))
    .map((f) => join(ws.dir, dir, f));

test.before(async () => {
  const base = { namespace: 'risk', inferenceService: 'credit-svc', bodyLimitBytes: BODY_LIMIT };
  server = await startServer(testConfig(model, { ...base, logging: logging('gt') }));
  unlogged = await startServer(testConfig(model, base));
  // Storage that refuses every write: a file where the base directory should be.
  writeFileSync(join(ws.dir, 'blocked'), 'not a directory');
  broken = await startServer(testConfig(model, { ...base, logging: logging('blocked') }));
  for (const s of [server, unlogged, broken]) assert.ok(await s.loaded);
});

test.after(async () => {
  await Promise.all([server, unlogged, broken].map((s) => s.close()));
  ws.remove();
});

test('labels for a logged prediction are on disk when the answer comes, in the documented layout and columns', async () => {
  const predicted = await call(server.url, 'POST', '/predict', { features: [1, 2, 3, 0] });
  const id = predicted.body.request_id as string;
  const answer = await call(server.url, 'POST', '/v2/models/credit/feedback', { request_id: id, label: 1 });
  assert.is(answer.status, 200, answer.text);
  assert.is(answer.body.accepted, 1);
  // Durable before the answer: the part is there the moment the client has it.
  const files = labelParts();
  assert.is(files.length, 1);
  assert.match(
    files[0],
    /\/gt\/labels\/risk\/credit-svc\/date=\d{4}-\d{2}-\d{2}\/\d{8}T\d{9}Z-credit-pod-000001-[0-9a-f]{8}\.parquet$/,
  );
  assert.is(answer.body.part, pathToFileURL(files[0]).href);
  const rows = await queryParquet(files, 'SELECT request_id, label, time FROM $parts');
  assert.is(rows.length, 1);
  assert.is(rows[0].request_id, id);
  assert.is(rows[0].label, 1);
  assert.ok(Math.abs((rows[0].time as Date).getTime() - Date.now()) < 60_000);
  const types = await queryParquet(files, 'SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM $parts)');
  assert.equal(Object.fromEntries(types.map((t) => [t.column_name, t.column_type])), {
    request_id: 'VARCHAR',
    label: 'DOUBLE',
    time: 'TIMESTAMP WITH TIME ZONE',
  });
});

test('many labels in one request on the simple API; labelling an id again changes it, the latest label winning', async () => {
  const before = labelParts().length;
  const first = await call(server.url, 'POST', '/feedback', [
    { request_id: 'a', label: 0 },
    { request_id: 'b', label: 1 },
    { request_id: 'c', label: 0.25 },
  ]);
  assert.is(first.status, 200, first.text);
  assert.is(first.body.accepted, 3);
  await new Promise((r) => setTimeout(r, 5));
  // The same feedback again is harmless; a corrected label for b overrides.
  assert.is(
    (
      await call(server.url, 'POST', '/feedback', [
        { request_id: 'a', label: 0 },
        { request_id: 'b', label: 0 },
      ])
    ).status,
    200,
  );
  // Within one request the last label of an id wins.
  const dup = await call(server.url, 'POST', '/feedback', [
    { request_id: 'd', label: 0 },
    { request_id: 'd', label: 1 },
  ]);
  assert.is(dup.body.accepted, 1);
  assert.is(labelParts().length, before + 3);
  const latest = await queryParquet(
    labelParts(),
    `
    SELECT request_id, arg_max(label, time) AS label FROM $parts WHERE request_id IN ('a', 'b', 'c', 'd') GROUP BY request_id ORDER BY request_id`,
  );
  assert.equal(latest, [
    { request_id: 'a', label: 0 },
    { request_id: 'b', label: 0 },
    { request_id: 'c', label: 0.25 },
    { request_id: 'd', label: 1 },
  ]);
});

const json = { 'content-type': 'application/json' };
type Case = [
  what: string,
  target: RunningServer | (() => RunningServer),
  path: string,
  body: string,
  headers: Record<string, string>,
  status: number,
  mentions: RegExp,
];
const big = JSON.stringify(
  Array.from({ length: 2000 }, (_, i) => ({ request_id: `request-${i}-${'x'.repeat(20)}`, label: 1 })),
);
const cases: Case[] = [
  [
    'a label without request_id',
    () => server,
    '/feedback',
    JSON.stringify({ label: 1 }),
    json,
    400,
    /body\.request_id: is required/,
  ],
  [
    'a label without label',
    () => server,
    '/feedback',
    JSON.stringify({ request_id: 'x' }),
    json,
    400,
    /body\.label: is required/,
  ],
  [
    'a numeric request_id',
    () => server,
    '/feedback',
    JSON.stringify({ request_id: 17, label: 1 }),
    json,
    400,
    /body\.request_id: must be a string, got 17/,
  ],
  [
    'an empty request_id',
    () => server,
    '/feedback',
    JSON.stringify({ request_id: '', label: 1 }),
    json,
    400,
    /body\.request_id: must be a request id/,
  ],
  [
    'a label that is a string',
    () => server,
    '/feedback',
    JSON.stringify({ request_id: 'x', label: 'yes' }),
    json,
    400,
    /body\.label: must be a number, got "yes"/,
  ],
  [
    'a label "NaN"',
    () => server,
    '/feedback',
    '{"request_id": "x", "label": "NaN"}',
    json,
    400,
    /body\.label: must be a number/,
  ],
  ['a bare NaN (not JSON)', () => server, '/feedback', '{"request_id": "x", "label": NaN}', json, 400, /body: .*JSON/i],
  [
    'an infinite label',
    () => server,
    '/feedback',
    '{"request_id": "x", "label": 1e999}',
    json,
    400,
    /body\.label: must be a finite number/,
  ],
  [
    'a null label',
    () => server,
    '/feedback',
    JSON.stringify({ request_id: 'x', label: null }),
    json,
    400,
    /body\.label: must be a number, got null/,
  ],
  ['an empty array', () => server, '/feedback', '[]', json, 400, /body: is an empty array/],
  [
    'a bad item in an array',
    () => server,
    '/feedback',
    JSON.stringify([{ request_id: 'x', label: 1 }, { request_id: 'y' }]),
    json,
    400,
    /body\[1\]\.label: is required/,
  ],
  [
    'an item that is not an object',
    () => server,
    '/feedback',
    JSON.stringify([{ request_id: 'x', label: 1 }, 5]),
    json,
    400,
    /body\[1\]: must be an object/,
  ],
  [
    'too many items',
    () => server,
    '/feedback',
    JSON.stringify(Array.from({ length: MAX_LABELS_PER_REQUEST + 1 }, () => ({ request_id: 'r', label: 1 }))),
    json,
    400,
    new RegExp(
      `(body: has ${MAX_LABELS_PER_REQUEST + 1} labels; send at most ${MAX_LABELS_PER_REQUEST}|larger than the limit)`,
    ),
  ],
  [
    'an unknown field',
    () => server,
    '/feedback',
    JSON.stringify({ request_id: 'x', label: 1, weight: 2 }),
    json,
    400,
    /body\.weight: is not a known field/,
  ],
  ['a string body', () => server, '/feedback', '"label me"', json, 400, /body: must be an object/],
  [
    'a text/plain body',
    () => server,
    '/feedback',
    JSON.stringify({ request_id: 'x', label: 1 }),
    { 'content-type': 'text/plain' },
    415,
    /content-type: send labels as application\/json/,
  ],
  ['an XML body', () => server, '/feedback', '<label/>', { 'content-type': 'application/xml' }, 415, /content-type/],
  [
    'a body over the limit',
    () => server,
    '/feedback',
    big,
    json,
    400,
    new RegExp(`body: larger than the limit of ${BODY_LIMIT} bytes`),
  ],
  [
    'a model not served here',
    () => server,
    '/v2/models/fraud/feedback',
    JSON.stringify({ request_id: 'x', label: 1 }),
    json,
    404,
    /model "fraud" is not served here/,
  ],
  [
    'logging off',
    () => unlogged,
    '/feedback',
    JSON.stringify({ request_id: 'x', label: 1 }),
    json,
    409,
    /spec\.logging\.enabled and spec\.logging\.uri/,
  ],
  [
    'logging off, V2 path',
    () => unlogged,
    '/v2/models/credit/feedback',
    JSON.stringify({ request_id: 'x', label: 1 }),
    json,
    409,
    /inference log, which is off for InferenceService risk\/credit-svc/,
  ],
  [
    'storage refusing the write',
    () => broken,
    '/feedback',
    JSON.stringify({ request_id: 'x', label: 1 }),
    json,
    503,
    /labels not stored, send them again: writing file:.*blocked\/labels\/.* failed/,
  ],
];

test(`the bad-input table has at least 10 cases (${cases.length})`, () => {
  assert.ok(cases.length >= 10);
  assert.ok(big.length > BODY_LIMIT);
});

for (const [what, target, path, body, headers, status, mentions] of cases) {
  test(`feedback with ${what} is answered ${status}, naming the problem, and stores nothing`, async () => {
    const s = typeof target === 'function' ? target() : target;
    const before = labelParts().length;
    const answer = await call(s.url, 'POST', path, body, headers);
    assert.is(answer.status, status, `${what}: ${answer.status} ${answer.text}`);
    assert.match(answer.body?.error ?? '', mentions, `${what}: ${answer.text}`);
    assert.is(labelParts().length, before, `${what}: a part was written`);
    assert.is(labelParts('blocked').length, 0);
  });
}

test('the server still answers after the bad requests, and counts only stored labels', async () => {
  assert.is((await call(server.url, 'POST', '/feedback', { request_id: 'after', label: 1 })).status, 200);
  const exposition = await server.metrics.registry.metrics();
  assert.match(exposition, /feedback_labels_total 8\b/);
});

test.run();
