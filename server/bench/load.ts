// Load generator for serve.bench.ts, run as its own process: autocannon against one URL,
// with every response time kept (autocannon's own histogram has 1 ms resolution).
// Each run starts with one untimed second of the same load (autocannon's warmup): a fresh
// autocannon process times its first requests in code V8 has not compiled yet, and a server
// that sat idle while another was measured has had compiled code dropped. Before this, the
// first paired round of our server was the slowest of every run (server CPU per request up to
// 1.7 times the median of the others).
//   node --import tsx server/bench/load.ts <url> <connections> <seconds> <body-json | @bodies.json> [host]
// With a host, every request carries it as its Host header (a gateway routes on it). With @file, the file
// holds a JSON array of bodies that the requests go through in turn (varied rows instead of one).
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';

const [url, connections, seconds, given, host] = process.argv.slice(2);
const bodies: string[] | undefined = given.startsWith('@')
  ? JSON.parse(readFileSync(given.slice(1), 'utf8'))
  : undefined;
const body = bodies ? undefined : given;
const latencies: number[] = [];
const instance = autocannon({
  url,
  connections: Number(connections),
  duration: Number(seconds),
  method: 'POST',
  headers: { 'content-type': 'application/json', ...(host ? { host } : {}) },
  body,
  ...(bodies ? { requests: bodies.map((b) => ({ method: 'POST' as const, body: b })) } : {}),
  warmup: { connections: Number(connections), duration: 1 },
});
instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
  if (statusCode === 200) latencies.push(responseTime);
});
const result = await instance;
latencies.sort((a, b) => a - b);
const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
process.stdout.write(
  JSON.stringify({
    requestsPerSecond: result.requests.total / Number(seconds),
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    requests: result.requests.total,
    // Answered in the untimed warm-up second: the server did their work too, which counts for CPU per request.
    warmupRequests: result.warmup?.requests.total ?? 0,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  }),
);
