// test: no cluster
// The trainer's progress reports against a real HTTP server standing where the operator's endpoint would be:
// every tenth of the epochs with the pod's token, and training that never waits on or fails because of it.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { logLines, resultSchemaErrors, runTrainer, type TrainerRun } from './run-trainer.ts';

const TOKEN = 'tok_3f9a1c8e5b7d2f4a6c0e9b1d3f5a7c9e2b4d6f8a0c1';
interface Received {
  at: number;
  authorization?: string;
  body: Record<string, unknown>;
  status: number;
}

/** An endpoint that answers each request with what `answer` says, recording what arrived. */
async function endpoint(answer: (n: number) => { status: number; headers?: Record<string, string> } | 'hang') {
  const received: Received[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    req.on('data', (c) => (text += c));
    req.on('end', () => {
      const reply = answer(received.length);
      received.push({
        at: performance.now(),
        authorization: req.headers.authorization,
        body: JSON.parse(text),
        status: reply === 'hang' ? 0 : reply.status,
      });
      if (reply !== 'hang')
        res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/namespaces/ml/trainingjobs/credit/progress`;
  return {
    url,
    received,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

const runs: TrainerRun[] = [];
async function train(env: Record<string, string>): Promise<TrainerRun> {
  const r = await runTrainer({ LOOPLINE_PROGRESS_TOKEN: TOKEN, ...env });
  runs.push(r);
  return r;
}
test.after(() => {
  for (const r of runs) rmSync(r.dir, { recursive: true, force: true });
});

function assertTrained(r: TrainerRun): void {
  assert.is(r.code, 0, r.stderr + r.stdout);
  assert.is(resultSchemaErrors(JSON.parse(r.resultText!)), undefined);
  assert.not.ok(r.stdout.includes(TOKEN) || r.stderr.includes(TOKEN), 'the token is not logged');
}

test('with the env set, rank 0 posts every tenth of its epochs with its token, loss falling, the last before it exits', async () => {
  const server = await endpoint(() => ({ status: 202 }));
  try {
    const r = await train({
      LOOPLINE_PROGRESS_URL: server.url,
      // A report waiting to go out is replaced by a newer one: each has five epochs of 20 ms to arrive before
      // the next, time enough on a loaded machine (at 2 ms, a 10 ms round trip under load lost one).
      LOOPLINE_EPOCH_DELAY_MS: '20',
      LOOPLINE_HYPERPARAMETERS: JSON.stringify({ epochs: '50' }),
    });
    assertTrained(r);
    assert.equal(
      server.received.map((x) => x.body.epoch),
      [5, 10, 15, 20, 25, 30, 35, 40, 45, 50],
    );
    assert.ok(server.received.every((x) => x.authorization === `Bearer ${TOKEN}` && x.body.totalEpochs === 50));
    const losses = server.received.map((x) => x.body.loss as number);
    assert.ok(losses.at(-1)! < losses[0], `loss ${losses[0]} → ${losses.at(-1)}`);
    const etas = server.received.map((x) => x.body.eta as number);
    assert.ok(etas.every((e) => e >= 0) && etas.at(-1) === 0, JSON.stringify(etas));
    const epochLines = logLines(r.stdout)
      .filter((l) => l.msg === 'epoch')
      .map((l) => l.epoch);
    assert.equal(epochLines, [5, 10, 15, 20, 25, 30, 35, 40, 45, 50], 'the same epochs are logged');
  } finally {
    server.close();
  }
});

test('a rank other than 0 reports nothing', async () => {
  const server = await endpoint(() => ({ status: 202 }));
  try {
    const r = await train({ LOOPLINE_PROGRESS_URL: server.url, RANK: '1', WORLD_SIZE: '2' });
    assert.is(r.code, 0, r.stderr);
    assert.is(server.received.length, 0);
  } finally {
    server.close();
  }
});

test('an endpoint that refuses connections or never answers does not fail or stall training', async () => {
  const refusing = await train({
    LOOPLINE_PROGRESS_URL: 'http://127.0.0.1:1/v1/namespaces/ml/trainingjobs/credit/progress',
  });
  assertTrained(refusing);
  const warnings = logLines(refusing.stdout).filter(
    (l) => l.msg === 'progress endpoint unreachable; training goes on without reporting',
  );
  assert.is(warnings.length, 1, 'said once');

  const server = await endpoint(() => 'hang');
  try {
    const hanging = await train({ LOOPLINE_PROGRESS_URL: server.url });
    assertTrained(hanging);
    assert.ok(hanging.seconds < 30, `took ${hanging.seconds} s`);
    assert.ok(
      logLines(hanging.stdout).some(
        (l) => l.msg === 'progress endpoint unreachable; training goes on without reporting',
      ),
    );
  } finally {
    server.close();
  }
});

test('a 503 (a replica that is not the leader) is tried again after its Retry-After, with the newest report', async () => {
  const server = await endpoint((n) => (n === 0 ? { status: 503, headers: { 'retry-after': '1' } } : { status: 202 }));
  try {
    const r = await train({
      LOOPLINE_PROGRESS_URL: server.url,
      LOOPLINE_EPOCH_DELAY_MS: '1',
      LOOPLINE_HYPERPARAMETERS: JSON.stringify({ epochs: '20' }),
    });
    assertTrained(r);
    const [refused, ...rest] = server.received;
    assert.is(refused.status, 503);
    assert.ok(rest.length >= 1, 'tried again');
    assert.ok(rest[0].at - refused.at >= 950, `tried again ${Math.round(rest[0].at - refused.at)} ms later`);
    assert.is(rest.at(-1)!.body.epoch, 20, 'the last report arrives');
  } finally {
    server.close();
  }
});

test('a refused token (403) stops reporting; training goes on', async () => {
  const server = await endpoint(() => ({ status: 403 }));
  try {
    const r = await train({
      LOOPLINE_PROGRESS_URL: server.url,
      LOOPLINE_EPOCH_DELAY_MS: '2',
      LOOPLINE_HYPERPARAMETERS: JSON.stringify({ epochs: '30' }),
    });
    assertTrained(r);
    assert.is(server.received.length, 1);
    assert.ok(
      logLines(r.stdout).some((l) => l.msg === "progress endpoint refused this pod's token; no more progress reports"),
    );
  } finally {
    server.close();
  }
});

test('LOOPLINE_EPOCH_DELAY_MS must be a number of milliseconds', async () => {
  const r = await runTrainer({ LOOPLINE_EPOCH_DELAY_MS: 'soon' });
  runs.push(r);
  assert.is(r.code, 1);
  assert.match(r.resultText!, /LOOPLINE_EPOCH_DELAY_MS="soon" must be a number of milliseconds from 0 to 60000/);
});

test.run();
