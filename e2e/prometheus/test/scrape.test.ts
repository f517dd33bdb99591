// Prometheus as on a cluster: the build from its Go module finds pods through Kubernetes discovery and
// scrapes the ones the prometheus.io/* annotations select, with the project's one scrape config
// (e2e/prometheus/scrape-configs.yaml), which the kind setup loads as it is.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startLocalKubelet, type LocalKubelet } from '../../local-kubelet/kubelet.ts';
import { kinds, KubeApi } from '../../../operator/engine/index.ts';
import { quietLogger, requireKubeconfig, uniqueName, waitFor } from '../../../test/support/local.ts';
import { createNamespace, deleteNamespace } from '../../../test/support/namespaces.ts';
import { startPrometheus, type TestPrometheus } from '../../../test/support/prometheus.ts';
import { SCRAPE_CONFIGS_FILE } from '../config.ts';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const kc = requireKubeconfig();
const api = new KubeApi(kc);
const ns = uniqueName('prometheus-sd');
let kubelet: LocalKubelet;
let prometheus: TestPrometheus;

/** A pod of a Loopline image serving `metric 1` in the Prometheus text format on port 9100 at `path`. */
function exporterPod(name: string, annotations: Record<string, string>, path = '/metrics') {
  const script = `require('http').createServer((q, r) => { if (q.url !== '${path}') { r.statusCode = 404; return r.end(); } r.setHeader('content-type', 'text/plain; version=0.0.4'); r.end('loopline_sd_probe{source="' + process.env.POD + '"} 1\\n'); }).listen(9100)`;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels: { 'loopline.dev/inferenceservice': 'fraud' }, annotations },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'main',
          image: 'loopline/predictor:dev',
          command: ['node', '-e', script],
          env: [{ name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
        },
      ],
    },
  };
}

interface Target {
  labels: Record<string, string>;
  discoveredLabels: Record<string, string>;
  scrapeUrl: string;
  health: string;
  scrapePool: string;
}
const activeTargets = async () =>
  (
    (await (await fetch(`${prometheus.url}/api/v1/targets?state=active`)).json()) as {
      data: { activeTargets: Target[] };
    }
  ).data.activeTargets.filter((t) => t.scrapePool === 'loopline-predictors');

test.before(async () => {
  await createNamespace(api, ns);
  kubelet = await startLocalKubelet({ kubeconfig: kc, repoRoot, namespace: ns, logger: quietLogger() });
  prometheus = await startPrometheus({ scrapeIntervalMs: 500, discover: { namespace: ns } });
});

test.after(async () => {
  await prometheus?.stop();
  await deleteNamespace(api, ns);
  await waitFor('pods gone', async () => ((await api.list(kinds.Pod, ns)).items.length === 0 ? true : undefined)).catch(
    () => undefined,
  );
  await kubelet?.stop();
});

test('pods annotated prometheus.io/scrape are found through Kubernetes discovery and scraped at their address, port and path', async () => {
  await api.create(
    kinds.Pod,
    exporterPod(
      'annotated',
      { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9100', 'prometheus.io/path': '/custom/metrics' },
      '/custom/metrics',
    ) as never,
    'loopline-test',
  );
  await api.create(kinds.Pod, exporterPod('not-annotated', {}) as never, 'loopline-test');
  const pod = await waitFor('the annotated pod running', async () => {
    const p = await api.get(kinds.Pod, ns, 'annotated');
    return p.status?.phase === 'Running' && p.status.podIP ? p : undefined;
  });
  const [target] = await waitFor('the pod scraped', async () => {
    const targets = await activeTargets();
    return targets.length && targets.every((t) => t.health === 'up') ? targets : undefined;
  });
  assert.is((await activeTargets()).length, 1, 'only the annotated pod is a target');
  assert.is(target!.scrapeUrl, `http://${pod.status.podIP}:9100/custom/metrics`);
  assert.equal(
    [target!.labels.namespace, target!.labels.pod, target!.labels.inference_service],
    [ns, 'annotated', 'fraud'],
  );
  assert.is(
    target!.discoveredLabels.__meta_kubernetes_pod_name,
    'annotated',
    'the target came from Kubernetes pod discovery',
  );
  const query = (await (
    await fetch(
      `${prometheus.url}/api/v1/query?query=${encodeURIComponent(`loopline_sd_probe{namespace="${ns}",inference_service="fraud"}`)}`,
    )
  ).json()) as { data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
  assert.equal(
    query.data.result.map((r) => [r.metric.source, r.value[1]]),
    [['annotated', '1']],
  );
});

test('a deleted pod stops being a target', async () => {
  await api.delete(kinds.Pod, ns, 'annotated');
  await waitFor('the target gone', async () => ((await activeTargets()).length === 0 ? true : undefined));
});

test('the kind configuration loads the same scrape config file and passes promtool check config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loopline-kind-prometheus-'));
  try {
    copyFileSync(join(repoRoot, 'e2e/kind/prometheus.yml'), join(dir, 'prometheus.yml'));
    copyFileSync(SCRAPE_CONFIGS_FILE, join(dir, 'scrape-configs.yaml'));
    const check = spawnSync('promtool', ['check', 'config', join(dir, 'prometheus.yml')], { encoding: 'utf8' });
    assert.is(check.status, 0, check.stdout + check.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
