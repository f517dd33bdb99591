/**
 * A real Prometheus (Debian's `prometheus` binary) for tests, scraping the targets the test names through a
 * file_sd file it can rewrite at any time (predictor pods come and go during a rollout). Each target carries
 * the labels a Kubernetes scrape config would add: namespace and inference_service.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../../../test/support/local.ts';

export interface ScrapeTarget {
  address: string;
  labels: Record<string, string>;
}

export interface TestPrometheus {
  url: string;
  scrapeIntervalMs: number;
  setTargets(targets: ScrapeTarget[]): void;
  /** Waits until Prometheus reports every current target as up. */
  waitForTargets(count: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startPrometheus(options: { scrapeIntervalMs?: number } = {}): Promise<TestPrometheus> {
  const scrapeIntervalMs = options.scrapeIntervalMs ?? 1000;
  const dir = mkdtempSync(join(tmpdir(), 'loopline-prometheus-'));
  const targetsFile = join(dir, 'targets.json');
  const setTargets = (targets: ScrapeTarget[]) => {
    // Written aside and renamed: Prometheus must never read a half-written file.
    writeFileSync(`${targetsFile}.tmp`, JSON.stringify(targets.map((t) => ({ targets: [t.address], labels: t.labels }))));
    renameSync(`${targetsFile}.tmp`, targetsFile);
  };
  setTargets([]);
  const seconds = `${scrapeIntervalMs}ms`;
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global:',
      `  scrape_interval: ${seconds}`,
      `  evaluation_interval: ${seconds}`,
      'scrape_configs:',
      '  - job_name: predictors',
      `    scrape_timeout: ${seconds}`,
      '    file_sd_configs:',
      `      - files: [${JSON.stringify(targetsFile)}]`,
      '        refresh_interval: 1s',
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const child = spawn(
    'prometheus',
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr = (stderr + chunk).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let spawnError: Error | undefined;
  child.once('error', (error) => (spawnError = error));
  const url = `http://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt++) {
    if (spawnError) throw new Error(`cannot start prometheus (apt-get install prometheus): ${spawnError.message}`);
    const ready = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
    if (ready) break;
    if (attempt > 150) throw new Error(`prometheus did not become ready: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    scrapeIntervalMs,
    setTargets,
    async waitForTargets(count, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const body = (await fetch(`${url}/api/v1/targets?state=active`).then((r) => r.json())) as { data: { activeTargets: Array<{ health: string }> } };
        const up = body.data.activeTargets.filter((t) => t.health === 'up').length;
        if (up >= count) return;
        if (Date.now() > deadline) throw new Error(`prometheus has ${up} of ${count} targets up`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
