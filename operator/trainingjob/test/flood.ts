// A flood of progress reports from a worker thread, so the client has a core of its own and does not share the
// event loop with the operator replicas the test runs in-process: `flood(...)` in the test, the loop below in the worker.
import { Agent, request } from 'node:http';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

export interface FloodOptions {
  url: string;
  token: string;
  reports: number;
  /** Reports a second at most. */
  rate: number;
  /** Requests in flight at most. */
  concurrency: number;
}

export interface FloodResult {
  sent: number;
  elapsedMs: number;
  /** Answers by HTTP status. */
  statuses: Record<number, number>;
}

/** Report n has epoch n of 1,000,000 and metrics { step: n }. */
export function flood(options: FloodOptions): Promise<FloodResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: options, execArgv: ['--import', 'tsx'] });
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}

async function run(options: FloodOptions): Promise<FloodResult> {
  const url = new URL(options.url);
  // node:http with keep-alive: fetch costs several times the CPU per request.
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency });
  const statuses: Record<number, number> = {};
  const send = (body: string) =>
    new Promise<void>((resolve, reject) => {
      const req = request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            authorization: `Bearer ${options.token}`,
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) =>
          res.resume().on('end', () => {
            statuses[res.statusCode!] = (statuses[res.statusCode!] ?? 0) + 1;
            resolve();
          }),
      );
      req.on('error', reject);
      req.end(body);
    });
  const inFlight = new Set<Promise<void>>();
  const started = performance.now();
  let sent = 0;
  while (sent < options.reports) {
    const due = Math.min(options.reports, Math.floor(((performance.now() - started) * options.rate) / 1000));
    while (sent < due && inFlight.size < options.concurrency) {
      const epoch = ++sent;
      const report: Promise<void> = send(
        JSON.stringify({ epoch, totalEpochs: 1_000_000, loss: 1 / epoch, metrics: { step: epoch } }),
      ).finally(() => inFlight.delete(report));
      inFlight.add(report);
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(inFlight);
  agent.destroy();
  return { sent, elapsedMs: performance.now() - started, statuses };
}

if (!isMainThread && workerData?.url) parentPort!.postMessage(await run(workerData as FloodOptions));
