/**
 * The configuration of a Prometheus that runs outside the cluster it scrapes (the local cluster's, a
 * test's): the predictor job of scrape-configs.yaml, the one every Prometheus of the project uses, with
 * Kubernetes pod discovery through a kubeconfig instead of the in-cluster ServiceAccount, optionally
 * limited to some namespaces, and any further jobs a caller adds (file_sd targets of a test).
 *
 *   npx tsx e2e/prometheus/config.ts --kubeconfig FILE --interval 1s [--namespace NS ...]   (prints it)
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as yaml from 'js-yaml';

export const SCRAPE_CONFIGS_FILE = new URL('./scrape-configs.yaml', import.meta.url);

export interface PrometheusConfigOptions {
  /** Scrape and evaluation interval, and scrape timeout (Prometheus duration: 500ms, 1s). */
  scrapeInterval: string;
  /** Discover predictor pods through this kubeconfig; without it, no predictor job. */
  kubeconfig?: string;
  /** Only pods of these namespaces (a test's own); default all. */
  namespaces?: string[];
  /** Further scrape jobs, as written in a Prometheus config. */
  extraScrapeConfigs?: object[];
}

interface ScrapeConfig {
  job_name: string;
  kubernetes_sd_configs?: Array<Record<string, unknown>>;
  [key: string]: unknown;
}

/** The shared predictor scrape jobs, with the discovery pointed at `kubeconfig`. */
export function predictorScrapeConfigs(kubeconfig: string, namespaces?: string[]): ScrapeConfig[] {
  const shared = yaml.load(readFileSync(SCRAPE_CONFIGS_FILE, 'utf8')) as { scrape_configs: ScrapeConfig[] };
  return shared.scrape_configs.map((job) => ({
    ...job,
    kubernetes_sd_configs: job.kubernetes_sd_configs?.map((sd) => ({
      ...sd,
      kubeconfig_file: kubeconfig,
      ...(namespaces?.length ? { namespaces: { names: namespaces } } : {}),
    })),
  }));
}

export function prometheusConfig(options: PrometheusConfigOptions): string {
  const interval = options.scrapeInterval;
  return yaml.dump({
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    scrape_configs: [
      ...(options.kubeconfig ? predictorScrapeConfigs(options.kubeconfig, options.namespaces) : []),
      ...(options.extraScrapeConfigs ?? []),
    ],
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      kubeconfig: { type: 'string' },
      interval: { type: 'string', default: '1s' },
      namespace: { type: 'string', multiple: true },
    },
  });
  if (!values.kubeconfig) {
    console.error('usage: config.ts --kubeconfig FILE [--interval 1s] [--namespace NS ...]');
    process.exit(2);
  }
  process.stdout.write(
    prometheusConfig({
      kubeconfig: values.kubeconfig,
      scrapeInterval: values.interval!,
      ...(values.namespace ? { namespaces: values.namespace } : {}),
    }),
  );
}
