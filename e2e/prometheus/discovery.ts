/**
 * Kubernetes pod discovery for Debian's Prometheus (built without kubernetes_sd): watches pods and keeps a
 * file_sd targets file listing every running pod annotated `prometheus.io/scrape: "true"` that has an address of
 * the local pod network, labelled as the usual kubernetes_sd relabelling would: namespace, pod, inference_service.
 *
 *   npx tsx e2e/prometheus/discovery.ts --out targets.json [--namespace NS]     (KUBECONFIG says which cluster)
 */
import { renameSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { CoreV1Api, KubeConfig, makeInformer, type V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';

export interface FileSdGroup {
  targets: string[];
  labels: Record<string, string>;
}

/** The local clusters' pod network (e2e/cluster/cluster.sh): nothing outside this machine is ever a target. */
const POD_NETWORK = /^198\.19\.\d+\.\d+$/;

/** The scrape target of a pod, or undefined when it is not to be scraped. */
export function podTarget(pod: V1Pod): FileSdGroup | undefined {
  const annotations = pod.metadata?.annotations ?? {};
  const ip = pod.status?.podIP;
  const port = annotations['prometheus.io/port'];
  if (annotations['prometheus.io/scrape'] !== 'true' || pod.status?.phase !== 'Running' || !ip || !port) return undefined;
  if (!POD_NETWORK.test(ip) || pod.metadata?.deletionTimestamp) return undefined;
  const labels: Record<string, string> = { namespace: pod.metadata!.namespace!, pod: pod.metadata!.name! };
  const isvc = pod.metadata?.labels?.['loopline.dev/inferenceservice'];
  if (isvc) labels.inference_service = isvc;
  if (annotations['prometheus.io/path']) labels.__metrics_path__ = annotations['prometheus.io/path'];
  return { targets: [`${ip}:${port}`], labels };
}

export interface Discovery {
  stop(): Promise<void>;
}

export async function startDiscovery(options: { kubeconfig: KubeConfig; out: string; namespace?: string }): Promise<Discovery> {
  const log = pino({ name: 'prometheus-discovery', level: process.env.LOG_LEVEL ?? 'info' });
  const core = options.kubeconfig.makeApiClient(CoreV1Api);
  const pods = new Map<string, V1Pod>();
  let written = '';
  const write = () => {
    const groups = [...pods.values()].map(podTarget).filter((g): g is FileSdGroup => g !== undefined);
    groups.sort((a, b) => a.targets[0]!.localeCompare(b.targets[0]!));
    const text = JSON.stringify(groups, null, 1);
    if (text === written) return;
    // Written aside and renamed: Prometheus never reads a half-written file.
    writeFileSync(`${options.out}.tmp`, text);
    renameSync(`${options.out}.tmp`, options.out);
    written = text;
    log.info({ targets: groups.map((g) => `${g.labels.namespace}/${g.labels.pod} ${g.targets[0]}`) }, 'targets written');
  };
  write();
  const path = options.namespace ? `/api/v1/namespaces/${options.namespace}/pods` : '/api/v1/pods';
  const list = () => (options.namespace ? core.listNamespacedPod({ namespace: options.namespace }) : core.listPodForAllNamespaces());
  const informer = makeInformer(options.kubeconfig, path, list as never);
  let stopped = false;
  const key = (pod: V1Pod) => `${pod.metadata?.namespace}/${pod.metadata?.name}`;
  informer.on('add', (pod: V1Pod) => { pods.set(key(pod), pod); write(); });
  informer.on('update', (pod: V1Pod) => { pods.set(key(pod), pod); write(); });
  informer.on('delete', (pod: V1Pod) => { pods.delete(key(pod)); write(); });
  informer.on('error', (err: unknown) => {
    if (stopped) return;
    log.warn({ err: String(err) }, 'pod watch failed; restarting');
    setTimeout(() => { if (!stopped) void informer.start().catch(() => undefined); }, 1000);
  });
  await informer.start();
  return {
    async stop() {
      stopped = true;
      await informer.stop();
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { out: { type: 'string' }, namespace: { type: 'string' } } });
  if (!values.out) {
    console.error('usage: discovery.ts --out targets.json [--namespace NS]');
    process.exit(2);
  }
  const kubeconfig = new KubeConfig();
  kubeconfig.loadFromDefault();
  const discovery = await startDiscovery({ kubeconfig, out: values.out, ...(values.namespace ? { namespace: values.namespace } : {}) });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void discovery.stop().then(() => process.exit(0)));
}
