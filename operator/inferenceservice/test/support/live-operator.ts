/**
 * What this folder's whole-loop suites run against, every part real: the operator (TrainingJob, ModelVersion and
 * InferenceService controllers and the drift and quality consumers, wired as operator/main.ts wires them) for one
 * namespace, the local kubelet running that namespace's pods, and a NATS connection for the suite's own use.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startLocalKubelet, type LocalKubelet } from '../../../../e2e/local-kubelet/kubelet.ts';
import { REPO_ROOT } from '../../../../test/support/operator-harness.ts';
import { deleteNamespace } from '../../../../test/support/namespaces.ts';
import { requireNatsUrl } from '../../../../test/support/nats.ts';
import { inProcessEngine, quietLogger, waitFor } from '../../../../test/support/local.ts';
import { kinds, type Engine, type KubeApi } from '../../../engine/index.ts';
import { STREAM_NAME } from '../../../events/stream.ts';
import { createOperator, type OperatorOptions } from '../../../main.ts';
import { inferenceServiceSettings, setUpInferenceServices, type InferenceServiceRuntime } from '../../config.ts';

export interface LiveOperator {
  nc: NatsConnection;
  kubelet: LocalKubelet;
  operator: Engine;
  runtime: InferenceServiceRuntime;
  /**
   * Stops the operator, deletes its durable consumers of the namespace and the namespace itself, waits (a while)
   * for the namespace's pods to go, then stops the kubelet and closes the connection.
   */
  stop(): Promise<void>;
}

export interface LiveOperatorOptions {
  kubeconfig: KubeConfig;
  api: KubeApi;
  namespace: string;
  /** The operator's environment as the chart sets it (PROMETHEUS_URL, S3 settings, ...); NATS_URL is added. */
  env: Record<string, string | undefined>;
  /** Engine and controller options beyond the test defaults (no leader election, no HTTP port, no resync). */
  operator?: Partial<OperatorOptions>;
}

export async function startLiveOperator(options: LiveOperatorOptions): Promise<LiveOperator> {
  const { kubeconfig, namespace } = options;
  const settings = inferenceServiceSettings({ ...options.env, NATS_URL: requireNatsUrl() });
  const nc = await connect({ servers: requireNatsUrl() });
  let kubelet: LocalKubelet | undefined;
  let operator: Engine | undefined;
  let runtime: InferenceServiceRuntime | undefined;
  try {
    kubelet = await startLocalKubelet({
      kubeconfig,
      repoRoot: REPO_ROOT,
      namespace,
      logger: quietLogger(),
      restartBackoffMs: 500,
    });
    operator = createOperator({
      ...inProcessEngine(kubeconfig, namespace),
      storage: settings.serving.storage,
      ...options.operator,
    });
    runtime = await setUpInferenceServices(operator, { ...settings, namespace });
    await operator.start();
    await runtime.startEventLoops();
  } catch (error) {
    await runtime?.stop().catch(() => undefined);
    await operator?.stop().catch(() => undefined);
    await kubelet?.stop().catch(() => undefined);
    await nc.close();
    throw error;
  }
  return live(options, nc, kubelet, operator, runtime);
}

function live(
  { api, namespace }: LiveOperatorOptions,
  nc: NatsConnection,
  kubelet: LocalKubelet,
  operator: Engine,
  runtime: InferenceServiceRuntime,
): LiveOperator {
  return {
    nc,
    kubelet,
    operator,
    runtime,
    async stop() {
      await runtime.stop();
      await operator.stop();
      const jsm = await jetstreamManager(nc);
      for (const kind of ['drift', 'quality'])
        await jsm.consumers.delete(STREAM_NAME, `loopline-operator-${kind}-${namespace}`).catch(() => undefined);
      await deleteNamespace(api, namespace);
      await waitFor(
        `the pods of ${namespace} gone`,
        async () => (await api.list(kinds.Pod, namespace)).items.length === 0,
        20_000,
      ).catch(() => undefined);
      await kubelet.stop();
      await nc.close();
    },
  };
}
