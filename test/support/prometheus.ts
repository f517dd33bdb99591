/**
 * A real Prometheus for tests: the one built from its Go module with Kubernetes discovery (`cluster.sh build`;
 * `cluster.sh env` puts it first on PATH). With `discover`, it finds the predictor pods of a namespace as on a
 * cluster: Kubernetes pod discovery and the prometheus.io/* annotations, with the project's one scrape config
 * (e2e/prometheus/scrape-configs.yaml). Metrics endpoints that are not pods (a test's own) are scraped from
 * a file_sd file the test can rewrite at any time, each target labelled as the Kubernetes job labels a pod
 * (namespace, inference_service).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prometheusConfig } from '../../e2e/prometheus/config.ts';
import { freePort } from './local.ts';

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

export interface TestPrometheusOptions {
  scrapeIntervalMs?: number;
  /** Scrape the predictor pods of this namespace, found through the API server of `kubeconfig` (default KUBECONFIG). */
  discover?: { namespace: string; kubeconfig?: string };
}

export async function startPrometheus(options: TestPrometheusOptions = {}): Promise<TestPrometheus> {
  const scrapeIntervalMs = options.scrapeIntervalMs ?? 1000;
  const dir = mkdtempSync(join(tmpdir(), 'loopline-prometheus-'));
  const targetsFile = join(dir, 'targets.json');
  const setTargets = (targets: ScrapeTarget[]) => {
    // Written aside and renamed: Prometheus must never read a half-written file.
    writeFileSync(
      `${targetsFile}.tmp`,
      JSON.stringify(targets.map((t) => ({ targets: [t.address], labels: t.labels }))),
    );
    renameSync(`${targetsFile}.tmp`, targetsFile);
  };
  setTargets([]);
  const kubeconfig = options.discover ? (options.discover.kubeconfig ?? process.env.KUBECONFIG) : undefined;
  if (options.discover && !kubeconfig)
    throw new Error('Prometheus discovery needs a kubeconfig: pass one or set KUBECONFIG');
  writeFileSync(
    join(dir, 'prometheus.yml'),
    prometheusConfig({
      scrapeInterval: `${scrapeIntervalMs}ms`,
      ...(kubeconfig ? { kubeconfig, namespaces: [options.discover!.namespace] } : {}),
      extraScrapeConfigs: [
        { job_name: 'endpoints', file_sd_configs: [{ files: [targetsFile], refresh_interval: '1s' }] },
      ],
    }),
  );
  const port = await freePort();
  const child = spawn(
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr = (stderr + chunk).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let spawnError: Error | undefined;
  child.once('error', (error) => (spawnError = error));
  const url = `http://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt++) {
    if (spawnError)
      throw new Error(
        `cannot start prometheus (bash e2e/cluster/cluster.sh build, then eval "$(bash e2e/cluster/cluster.sh env)"): ${spawnError.message}`,
      );
    const ready = await fetch(`${url}/-/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (attempt > 150 || child.exitCode !== null)
      throw new Error(
        `prometheus did not become ready (is it the build with Kubernetes discovery, from \`cluster.sh env\`'s PATH?): ${stderr}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    scrapeIntervalMs,
    setTargets,
    async waitForTargets(count, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const body = (await fetch(`${url}/api/v1/targets?state=active`).then((r) => r.json())) as {
          data: { activeTargets: Array<{ health: string }> };
        };
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
