/**
 * The chaos suite's set-up on the local cluster: a namespace of its own, Loopline's CRDs and admission policy,
 * the local-kubelet for that namespace's pods, one Toxiproxy server, and the operator (in this process, so its
 * caches, queues and write counters can be read) whose every connection to the API server, NATS, Prometheus
 * and the S3 server goes through a Toxiproxy proxy of its own. Predictor and trainer pods reach NATS and S3
 * through proxies listening on the pod bridge's host address, where pods can reach them.
 */
import { rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { startLocalKubelet, type LocalKubelet } from '../local-kubelet/kubelet.ts';
import type { StorageSettings } from '../../operator/api/storage-env.ts';
import { type KubeApi, kinds, type Engine } from '../../operator/engine/index.ts';
import { connectNats } from '../../operator/events/connect.ts';
import { LifecyclePublisher } from '../../operator/events/publisher.ts';
import { registerInferenceServices, startDriftLoop } from '../../operator/inferenceservice/index.ts';
import type { DriftConsumer } from '../../operator/events/drift-consumer.ts';
import { createOperator } from '../../operator/main.ts';
import { sleep } from '../../test/support/local.ts';
import { REPO_ROOT, prepareNamespace } from '../../test/support/operator-harness.ts';
import { startToxiproxy, type ToxiproxyServer } from './toxiproxy.ts';

export { REPO_ROOT };

/** The proxies, by the connection they stand in. */
export const PROXY = {
  apiServer: 'operator-apiserver',
  nats: 'operator-nats',
  prometheus: 'operator-prometheus',
  s3: 'operator-s3',
  podNats: 'pods-nats',
  podS3: 'pods-s3',
} as const;

export interface ChaosOptions {
  /** Register the InferenceService controller (needs `prometheusUrl`, the real Prometheus the analysis asks). */
  inferenceServices?: {
    prometheusUrl: string;
    scrapeIntervalMs: number /** The analysis's queries through PROXY.prometheus. */;
    prometheusProxy?: boolean;
  };
  /** The operator's NATS connection (lifecycle events, drift consumer) through a proxy. */
  nats?: boolean;
  /** Pods' object storage through a proxy on the host address (trainer uploads, predictor model fetches). */
  podS3?: boolean;
  /** Pods' NATS through a proxy on the host address. */
  podNats?: boolean;
  /** TrainingJob retry backoff (ms). */
  retryBaseMs?: number;
  /** false: no operator in this process (the soak runs operator/main.ts as a process of its own, to SIGKILL it). */
  operatorInProcess?: boolean;
}

export interface ChaosHarness {
  kc: KubeConfig;
  /** Straight to the API server: what the test reads and writes with, never through a fault. */
  api: KubeApi;
  namespace: string;
  outputDir: string;
  toxiproxy: ToxiproxyServer;
  /** The operator's kubeconfig: the API server through PROXY.apiServer. */
  operatorKubeconfig: KubeConfig;
  /** Object storage settings pods get (through PROXY.podS3 when asked for). */
  storage?: StorageSettings;
  operator: Engine;
  /** Operator log lines (JSON) since start, for counting what it says (e.g. watches that expired). */
  logLines: string[];
  /** Starts the operator again after `stopOperator` (a new engine, as a restarted process would be). */
  startOperator(): Promise<Engine>;
  stopOperator(options?: { crash?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

/** A kubeconfig like `kc` whose current cluster's server is `https://<listen>` (the same certificate: same IP). */
export function kubeconfigThrough(kc: KubeConfig, listen: string): KubeConfig {
  const copy = new KubeConfig();
  copy.loadFromString(kc.exportConfig());
  const current = copy.getCurrentCluster()!;
  const server = new URL(current.server);
  const [host, port] = [listen.slice(0, listen.lastIndexOf(':')), listen.slice(listen.lastIndexOf(':') + 1)];
  if (host !== server.hostname)
    throw new Error(
      `proxy ${listen} is not on the API server's host ${server.hostname}: its certificate would not match`,
    );
  server.port = port;
  copy.loadFromOptions({
    clusters: copy.clusters.map((c) =>
      c.name === current.name ? { ...c, server: server.toString().replace(/\/$/, '') } : c,
    ),
    users: copy.users,
    contexts: copy.contexts,
    currentContext: copy.currentContext,
  });
  return copy;
}

/** host:port of a URL (its default port when it names none). */
function hostPort(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || (u.protocol === 'https:' ? 443 : u.protocol === 'nats:' ? 4222 : 80)}`;
}

/** `url` with its host and port replaced by `listen`. */
export function urlThrough(url: string, listen: string): string {
  const u = new URL(url);
  const at = listen.lastIndexOf(':');
  u.hostname = listen.slice(0, at);
  u.port = listen.slice(at + 1);
  return u.toString().replace(/\/$/, '');
}

export async function startChaos(prefix: string, options: ChaosOptions = {}): Promise<ChaosHarness> {
  const { kc, api, namespace, outputDir } = await prepareNamespace(prefix, 'loopline-chaos');
  const toxiproxy = await startToxiproxy();

  const apiServer = new URL(kc.getCurrentCluster()!.server);
  const apiProxy = await toxiproxy.createProxy(
    PROXY.apiServer,
    `${apiServer.hostname}:0`,
    hostPort(apiServer.toString()),
  );
  const operatorKubeconfig = kubeconfigThrough(kc, apiProxy.listen);

  const hostAddress = process.env.LOOPLINE_HOST_ADDRESS;
  const natsUrl = process.env.NATS_URL;
  if ((options.nats || options.podNats) && !natsUrl)
    throw new Error('NATS_URL is not set: run through `npm test` or `npm run chaos`');
  const operatorNatsUrl = options.nats
    ? urlThrough(natsUrl!, (await toxiproxy.createProxy(PROXY.nats, '127.0.0.1:0', hostPort(natsUrl!))).listen)
    : natsUrl;
  const podNatsUrl = options.podNats
    ? urlThrough(natsUrl!, (await toxiproxy.createProxy(PROXY.podNats, `${hostAddress}:0`, hostPort(natsUrl!))).listen)
    : natsUrl;

  const isvc = options.inferenceServices;
  const prometheusUrl = isvc?.prometheusProxy
    ? urlThrough(
        isvc.prometheusUrl,
        (await toxiproxy.createProxy(PROXY.prometheus, '127.0.0.1:0', hostPort(isvc.prometheusUrl))).listen,
      )
    : isvc?.prometheusUrl;

  let storage: StorageSettings | undefined;
  const s3Endpoint = process.env.AWS_ENDPOINT_URL_S3;
  if (s3Endpoint) {
    const endpoint = options.podS3
      ? urlThrough(
          s3Endpoint,
          (await toxiproxy.createProxy(PROXY.podS3, `${hostAddress}:0`, hostPort(s3Endpoint))).listen,
        )
      : s3Endpoint;
    storage = {
      endpoint,
      region: process.env.AWS_REGION ?? 'us-east-1',
      forcePathStyle: true,
      credentials: {
        secretName: 'loopline-s3',
        accessKeyIdKey: 'AWS_ACCESS_KEY_ID',
        secretAccessKeyKey: 'AWS_SECRET_ACCESS_KEY',
      },
    };
    await api.create(
      kinds.Secret,
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'loopline-s3', namespace },
        stringData: {
          AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? '',
          AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? '',
        },
      } as never,
      'loopline-chaos',
    );
  }

  const kubelet: LocalKubelet = await startLocalKubelet({
    kubeconfig: kc,
    repoRoot: REPO_ROOT,
    namespace,
    logger: pino({ level: 'warn' }),
  });
  const logLines: string[] = [];
  const logStream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) logLines.push(line);
      if (logLines.length > 50_000) logLines.splice(0, 10_000);
      if (process.env.LOG_LEVEL === 'debug') process.stderr.write(chunk);
      done();
    },
  });
  const logger = pino({ level: 'info' }, logStream);

  let nc: NatsConnection | undefined;
  let consumer: DriftConsumer | undefined;
  const harness: ChaosHarness = {
    kc,
    api,
    namespace,
    outputDir,
    toxiproxy,
    operatorKubeconfig,
    ...(storage ? { storage } : {}),
    logLines,
    operator: undefined as unknown as Engine,
    async startOperator() {
      if (options.nats) nc ??= await connectNats({ url: operatorNatsUrl! }, 'loopline-operator');
      const engine = createOperator({
        kubeconfig: operatorKubeconfig,
        namespace,
        leaderElection: false,
        httpPort: false,
        logger,
        lifecycle: { retryBaseMs: options.retryBaseMs ?? 300 },
        ...(nc ? { publisher: new LifecyclePublisher(nc) } : {}),
        ...(storage ? { storage } : {}),
      });
      if (options.inferenceServices) {
        await registerInferenceServices(engine, {
          prometheusUrl: prometheusUrl!,
          scrapeIntervalMs: options.inferenceServices.scrapeIntervalMs,
          serving: { ...(storage ? { storage } : {}), ...(podNatsUrl ? { natsUrl: podNatsUrl } : {}) },
          ...(nc ? { nats: nc } : {}),
        });
      }
      await engine.start();
      if (nc && options.inferenceServices)
        consumer = await startDriftLoop(engine, nc, {
          filterSubject: `loopline.drift.${namespace}.>`,
          durable: `loopline-chaos-drift-${namespace}`,
        });
      harness.operator = engine;
      return engine;
    },
    async stopOperator({ crash = false } = {}) {
      await consumer?.stop();
      consumer = undefined;
      await harness.operator?.stop(crash ? { releaseLease: false } : {});
    },
    async stop() {
      await harness.stopOperator().catch(() => undefined);
      await nc?.close().catch(() => undefined);
      await api.delete(kinds.Namespace, undefined, namespace).catch(() => undefined);
      // The local-kubelet carries out the pod deletions of the namespace before it stops.
      for (
        let i = 0;
        i < 100 &&
        (await api.list(kinds.Pod, namespace).then(
          (l) => l.items.length,
          () => 0,
        )) > 0;
        i++
      )
        await sleep(200);
      await kubelet.stop();
      await toxiproxy.stop();
      rmSync(outputDir, { recursive: true, force: true });
    },
  };
  if (options.operatorInProcess !== false) await harness.startOperator();
  return harness;
}
