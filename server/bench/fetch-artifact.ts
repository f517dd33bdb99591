// One round of the model fetch benchmark (model-fetch.bench.ts), in a process that loads no more than the
// predictor does to fetch: `npx tsx server/bench/fetch-artifact.ts verify|drain|hash <uri> <digest> <MB>`.
// Prints {ms, rssBeforeMb, peakRssMb} as JSON.
import { createHash, randomBytes } from 'node:crypto';
import { getObjectStream, s3ClientFromEnv } from '../../operator/api/object-storage.ts';
import { fetchVerified } from '../src/runtime/artifact.ts';

const [mode, uri, digest, mb] = process.argv.slice(2);
let ms: number;
let rssBeforeMb = process.memoryUsage().rss / (1 << 20);
if (mode === 'verify') {
  const started = performance.now();
  await fetchVerified(uri!, digest!);
  ms = performance.now() - started;
} else if (mode === 'drain') {
  const started = performance.now();
  for await (const _chunk of (await getObjectStream(s3ClientFromEnv(process.env), uri!)).body);
  ms = performance.now() - started;
} else {
  // The hashing floor times sha256 only; the bytes it hashes count in its RSS, as in a verify.
  const bytes = randomBytes(Number(mb) << 20);
  rssBeforeMb = process.memoryUsage().rss / (1 << 20) - Number(mb);
  const started = performance.now();
  createHash('sha256').update(bytes).digest('hex');
  ms = performance.now() - started;
}
process.stdout.write(JSON.stringify({ ms, rssBeforeMb, peakRssMb: process.resourceUsage().maxRSS / 1024 }));
