// Load generator for protocols.bench.ts, run as its own process: `connections` requests in flight against
// one infer endpoint for `seconds` (after one untimed second of the same load), every response time kept.
// REST through autocannon (JSON, or the binary tensor data extension); gRPC through grpc-js clients, one
// channel (HTTP/2 connection) per in-flight loop up to 8, so a multi-worker server gets several connections.
// The grpc-js client is warmed by call count, not only by time: a fresh client process spent 600-800 us of CPU
// per call until V8 had optimized grpc-js and protobufjs (a few thousand calls), 160-250 us after, while the
// server spends 120-140 us per call on gRPC and REST alike; on two shared cores the client, not the server,
// bounds the gRPC figures, so its CPU per call is reported. With `ghz` set (a path: ghz.ts builds it), gRPC load
// comes from ghz instead, a native client (Go): one untimed second, then the timed run, its CPU per call from `time`.
//   node --import tsx server/bench/protocol-load.ts '<json options>'
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { inferenceService } from '../src/protocol/grpc-service.ts';
import autocannon from 'autocannon';

import type { GhzReport } from './ghz.ts';
import { grpcRequest, restRequest, type Kind } from './protocol-requests.ts';

export type { Kind };
export interface LoadOptions {
  kind: Kind;
  url: string;
  grpcPort: number;
  connections: number;
  seconds: number;
  rows: number;
  features: number;
  /** The ghz binary: gRPC load from ghz rather than grpc-js. */
  ghz?: string;
}
export interface LoadResult {
  requestsPerSecond: number;
  rowsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  failures: number;
  clientCpuUsPerRequest?: number;
}

const options = JSON.parse(process.argv[2]) as LoadOptions;
const { kind, rows, features } = options;
const latencies: number[] = [];
let failures = 0;
let requests = 0;
/** CPU the load generator spent per timed request (gRPC only: autocannon's warm-up is not separable). */
let clientCpuUsPerRequest: number | undefined;
const WARMUP_CALLS = 3000;

function summarize(seconds: number): LoadResult {
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return {
    requestsPerSecond: requests / seconds,
    rowsPerSecond: (requests * rows) / seconds,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    requests,
    failures,
    ...(clientCpuUsPerRequest !== undefined ? { clientCpuUsPerRequest } : {}),
  };
}

if (kind === 'rest-json' || kind === 'rest-binary') {
  const { body, headers } = restRequest(kind, rows, features);
  const instance = autocannon({
    url: `${options.url}/v2/models/credit/infer`,
    connections: options.connections,
    duration: options.seconds,
    method: 'POST',
    headers,
    body,
    warmup: { connections: options.connections, duration: 1 },
  });
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    if (statusCode === 200) latencies.push(responseTime);
  });
  const result = await instance;
  requests = result.requests.total;
  failures = result.non2xx + result.errors;
  process.stdout.write(JSON.stringify(summarize(options.seconds)));
} else if (options.ghz) {
  const proto = fileURLToPath(new URL('../src/protocol/grpc_predict_v2.proto', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'loopline-ghz-'));
  const request = grpcRequest(kind, rows, features) as { raw_input_contents?: Buffer[] };
  // protojson: bytes fields as base64.
  const data = request.raw_input_contents
    ? { ...request, raw_input_contents: request.raw_input_contents.map((b) => b.toString('base64')) }
    : request;
  writeFileSync(join(dir, 'request.json'), JSON.stringify(data));
  const ghz = (seconds: number) =>
    new Promise<{ report: GhzReport; cpuUs: number }>((resolve, reject) => {
      const args = [
        ...['--insecure', '--proto', proto, '--call', 'inference.GRPCInferenceService.ModelInfer'],
        ...['--data-file', join(dir, 'request.json'), '--format', 'json'],
        ...['-c', String(options.connections), '--connections', String(Math.min(options.connections, 8))],
        ...['-z', `${seconds}s`, '--duration-stop', 'ignore', `127.0.0.1:${options.grpcPort}`],
      ];
      // Calls still in flight when the duration ends are left out (--duration-stop ignore), not counted as failed.
      // bash's `time` reports the child's user and system CPU seconds on stderr's last line.
      const child = spawn('bash', ['-c', 'TIMEFORMAT="%U %S"; time "$0" "$@"', options.ghz!, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      child.once('exit', (code) => {
        const [user, system] = err.trim().split('\n').at(-1)!.split(' ').map(Number);
        if (code !== 0 || !out) return reject(new Error(`ghz exited ${code}: ${err}`));
        resolve({ report: JSON.parse(out), cpuUs: (user + system) * 1e6 });
      });
    });
  await ghz(1);
  const { report, cpuUs } = await ghz(options.seconds);
  rmSync(dir, { recursive: true, force: true });
  const at = (percentage: number) =>
    (report.latencyDistribution?.find((d) => d.percentage === percentage)?.latency ?? NaN) / 1e6;
  const errors = Object.values(report.errorDistribution ?? {}).reduce((n, k) => n + k, 0);
  const ok = report.statusCodeDistribution?.OK ?? report.count - errors;
  const seconds = report.total / 1e9;
  const result: LoadResult = {
    requestsPerSecond: ok / seconds,
    rowsPerSecond: (ok * rows) / seconds,
    p50Ms: at(50),
    p99Ms: at(99),
    requests: ok,
    failures: report.count - ok,
    clientCpuUsPerRequest: cpuUs / Math.max(1, report.count),
  };
  process.stdout.write(JSON.stringify(result));
} else {
  const Service = inferenceService();
  // A local subchannel pool: otherwise grpc-js shares one connection among channels to the same target.
  const channels = Array.from(
    { length: Math.min(options.connections, 8) },
    () =>
      new Service(`127.0.0.1:${options.grpcPort}`, grpc.credentials.createInsecure(), {
        'grpc.use_local_subchannel_pool': 1,
      }),
  );
  const request = grpcRequest(kind, rows, features);
  const infer = (client: grpc.Client) =>
    new Promise<void>((resolve, reject) => {
      (client as any).ModelInfer(request, (error: Error | null) => (error ? reject(error) : resolve()));
    });
  /** Calls in every loop until `until` (timed: counted), or, untimed, until `done()` says the warm-up is over. */
  let warmupCalls = 0;
  const run = async (until: number, timed: boolean, done: () => boolean = () => false) => {
    await Promise.all(
      Array.from({ length: options.connections }, async (_, k) => {
        const client = channels[k % channels.length];
        while (performance.now() < until && !done()) {
          const start = performance.now();
          try {
            await infer(client);
            if (timed && performance.now() <= until) {
              requests++;
              latencies.push(performance.now() - start);
            }
          } catch {
            if (timed) failures++;
          }
          if (!timed) warmupCalls++;
        }
      }),
    );
  };
  // Untimed: at least 1 s and WARMUP_CALLS calls, at most 8 s.
  const warmupStart = performance.now();
  await run(warmupStart + 8000, false, () => warmupCalls >= WARMUP_CALLS && performance.now() - warmupStart >= 1000);
  const cpuBefore = process.cpuUsage();
  await run(performance.now() + options.seconds * 1000, true);
  const cpu = process.cpuUsage(cpuBefore);
  clientCpuUsPerRequest = (cpu.user + cpu.system) / Math.max(1, requests);
  for (const c of channels) c.close();
  process.stdout.write(JSON.stringify(summarize(options.seconds)));
}
