/**
 * Model fetch benchmark: `npx tsx server/bench/model-fetch.bench.ts` with the local cluster's S3 settings in
 * the environment (`npm run bench -- model-fetch` brings the cluster up). A 200 MB artifact on the local S3
 * server (versitygw) is fetched and sha256-verified by the predictor's own fetchVerified, each round in a
 * fresh process (fetch-artifact.ts, which loads what the predictor loads to fetch), measuring wall time and
 * peak resident memory (getrusage's maxrss) against the process's resident memory before the fetch. Beside it, in the same run: the same object downloaded and
 * dropped (the S3 and network floor), and sha256 over 200 MB already in memory (the hashing floor).
 * Writes bench/results/model-fetch.json and bench/results/model-fetch.md.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Upload } from '@aws-sdk/lib-storage';
import { parseS3Uri } from '../../operator/api/object-storage.ts';
import { requireS3 } from '../../test/support/s3.ts';
import { machineFacts } from '../../test/support/machine.ts';
import { median } from '../../test/support/figures.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const SIZE_MB = Number(process.env.BENCH_ARTIFACT_MB ?? 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const MB = 1 << 20;

interface Round {
  ms: number;
  /** Resident memory of the process just before the fetch, with its modules loaded. */
  rssBeforeMb: number;
  peakRssMb: number;
}

function measure(mode: string, uri: string, digest: string): Round {
  const run = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'server/bench/fetch-artifact.ts', mode, uri, digest, String(SIZE_MB)],
    {
      cwd: root,
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    },
  );
  if (run.status !== 0) throw new Error(`${mode} round failed (exit ${run.status}):\n${run.stderr}`);
  return JSON.parse(run.stdout) as Round;
}

/** Uploads SIZE_MB of random bytes in 8 MB parts, hashing them on the way; returns the URI and digest. */
async function uploadArtifact(): Promise<{ uri: string; digest: string; seconds: number }> {
  const s3 = requireS3('bench-model-fetch');
  const uri = s3.uri('model.onnx');
  const { bucket, key } = parseS3Uri(uri);
  const hash = createHash('sha256');
  const body = Readable.from(
    (function* () {
      for (let i = 0; i < SIZE_MB; i++) {
        const chunk = randomBytes(MB);
        hash.update(chunk);
        yield chunk;
      }
    })(),
  );
  const started = performance.now();
  await new Upload({
    client: s3.client,
    params: { Bucket: bucket, Key: key, Body: body },
    partSize: 8 * MB,
    queueSize: 2,
  }).done();
  return { uri, digest: `sha256:${hash.digest('hex')}`, seconds: (performance.now() - started) / 1000 };
}

async function main(): Promise<void> {
  const started = Date.now();
  const loadBefore = loadavg();
  const artifact = await uploadArtifact();
  console.log(`uploaded ${SIZE_MB} MB to ${artifact.uri} in ${artifact.seconds.toFixed(1)} s`);
  const rounds: Record<'verify' | 'drain' | 'hash', Round[]> = { verify: [], drain: [], hash: [] };
  // Interleaved, so a change in the machine's load hits every kind of round alike.
  for (let i = 0; i < ROUNDS; i++) {
    for (const mode of ['verify', 'drain', 'hash'] as const) {
      rounds[mode].push(measure(mode, artifact.uri, artifact.digest));
      console.log(`${mode} round ${i + 1}: ${JSON.stringify(rounds[mode].at(-1))}`);
    }
  }
  const summary = Object.fromEntries(
    Object.entries(rounds).map(([mode, rs]) => [
      mode,
      {
        msMedian: median(rs.map((r) => r.ms)),
        msMax: Math.max(...rs.map((r) => r.ms)),
        peakRssMbMax: Math.max(...rs.map((r) => r.peakRssMb)),
        peakOverBeforeMbMax: Math.max(...rs.map((r) => r.peakRssMb - r.rssBeforeMb)),
        rssBeforeMbMedian: median(rs.map((r) => r.rssBeforeMb)),
      },
    ]),
  ) as Record<
    keyof typeof rounds,
    { msMedian: number; msMax: number; peakRssMbMax: number; peakOverBeforeMbMax: number; rssBeforeMbMedian: number }
  >;
  const verify = summary.verify;
  // One copy of the artifact plus the stream's chunks not yet collected (the download-only rounds have those
  // too); two copies would be 2 x SIZE_MB.
  const memoryTarget = SIZE_MB * 1.5;
  const results = {
    generatedAt: new Date().toISOString(),
    machine: machineFacts(loadBefore),
    note: 'The S3 server (versitygw, posix backend on the local disk) and the fetching process share the 2-core machine with the local control plane and other work.',
    artifactMb: SIZE_MB,
    uploadSeconds: artifact.seconds,
    rounds,
    summary,
    targets: {
      peakOverBeforeMb: {
        value: verify.peakOverBeforeMbMax,
        target: `<= ${memoryTarget} MB over the process before the fetch (one copy of ${SIZE_MB} MB and stream buffers, not two copies)`,
        met: verify.peakOverBeforeMbMax <= memoryTarget,
      },
    },
    durationSeconds: (Date.now() - started) / 1000,
  };
  const f0 = (n: number) => Math.round(n).toLocaleString('en-US');
  const f2 = (n: number) => n.toFixed(2);
  const row = (label: string, s: typeof verify) =>
    `| ${label} | ${f0(s.msMedian)} (${f0(s.msMax)}) | ${f0(SIZE_MB / (s.msMedian / 1000))} | ${f0(s.rssBeforeMbMedian)} | ${f0(s.peakRssMbMax)} | ${f0(s.peakOverBeforeMbMax)} |`;
  const md = `## Model fetch (\`server/bench/model-fetch.bench.ts\`)

${results.note} Load average before/after: ${loadBefore.map(f2).join(', ')} / ${loadavg().map(f2).join(', ')}.
A ${SIZE_MB} MB artifact uploaded in 8 MB parts (${artifact.seconds.toFixed(1)} s), then ${ROUNDS} interleaved rounds of each kind, each in a fresh Node process.

| round | ms, median (max) | MB/s | RSS before, MB | peak RSS, MB (max) | peak over before, MB (max) |
|---|---|---|---|---|---|
${row("fetch + sha256 verify (the predictor's fetchVerified from s3://)", summary.verify)}
${row('download only, chunks dropped (S3 floor)', summary.drain)}
${row('sha256 of the bytes already in memory (hash floor)', summary.hash)}

| target | measured | met |
|---|---|---|
| memory to fetch and verify ${results.targets.peakOverBeforeMb.target} | ${f0(verify.peakOverBeforeMbMax)} MB | ${results.targets.peakOverBeforeMb.met ? 'yes' : 'no'} |

Beyond the one copy, a fetch holds ${f0(verify.peakOverBeforeMbMax - SIZE_MB)} MB at its peak; a download that keeps nothing holds ${f0(summary.drain.peakOverBeforeMbMax)} MB: socket chunks not yet collected.
`;
  const out = join(root, 'bench/results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'model-fetch.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(out, 'model-fetch.md'), md);
  console.log(`\n${md}`);
  console.log(
    `bench took ${results.durationSeconds.toFixed(0)} s; wrote bench/results/model-fetch.json and model-fetch.md`,
  );
}

await main();
