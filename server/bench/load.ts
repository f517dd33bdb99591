// Load generator for serve.bench.ts, run as its own process: autocannon against one URL,
// with every response time kept (autocannon's own histogram has 1 ms resolution).
//   node --import tsx server/bench/load.ts <url> <connections> <seconds> <body-json>
import autocannon from 'autocannon';

const [url, connections, seconds, body] = process.argv.slice(2);
const latencies: number[] = [];
const instance = autocannon({
  url,
  connections: Number(connections),
  duration: Number(seconds),
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body,
});
instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
  if (statusCode === 200) latencies.push(responseTime);
});
const result = await instance;
latencies.sort((a, b) => a - b);
const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
process.stdout.write(JSON.stringify({
  requestsPerSecond: result.requests.total / Number(seconds),
  p50Ms: at(0.5),
  p99Ms: at(0.99),
  requests: result.requests.total,
  non2xx: result.non2xx,
  errors: result.errors,
  timeouts: result.timeouts,
}));
