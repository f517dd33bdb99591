/**
 * What an operator of the platform sets up before users arrive, done the way the README tells them:
 * Prometheus, `helm install` of the chart (the Gateway is the cluster's: Traefik, from cluster.sh). Then, because this machine has no image
 * registry, the chart's operator Deployment is played by a local process that authenticates with the
 * chart's own ServiceAccount token (so the chart's RBAC is all it has), and the local-kubelet runs the
 * `loopline/*` pods on the simulated nodes.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, homedir } from 'node:os';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { getJson, helm, kubectl, must, run, type CommandResult } from './commands.ts';
import { startBackground, tail, type Background } from './processes.ts';
import { freePort } from '../../test/support/local.ts';
import { requireS3 } from '../../test/support/s3.ts';

export { freePort };

export interface PlatformOptions {
  /** Repository checkout (the chart, examples, the images' code). */
  root: string;
  /** Logs, pid files, the ServiceAccount kubeconfig. */
  stateDir: string;
  release: string;
  releaseNamespace: string;
  natsUrl: string;
  prometheusPort: number;
  /** Scrape interval of Prometheus; the operator is told it (analysis windows span at least two scrapes). */
  scrapeInterval: string;
  /** Only run pods of this namespace in the local-kubelet (tests); default all. */
  kubeletNamespace?: string;
  /** Processes outlive this one (the demo). */
  detached?: boolean;
  progress?: (line: string) => void;
}

export const cacheDir = () => process.env.LOOPLINE_CACHE ?? join(homedir(), '.cache', 'loopline');

/**
 * The Gateway the example routes through: loopline-system/loopline-gateway, which the local cluster's Traefik
 * programs (e2e/cluster/cluster.sh installs the Gateway API CRDs, the GatewayClass and the Gateway with it).
 */
export async function gateway(): Promise<CommandResult> {
  await kubectl([
    'wait',
    '--for=condition=Programmed',
    'gateway/loopline-gateway',
    '-n',
    'loopline-system',
    '--timeout=60s',
  ]);
  return await kubectl(['get', 'gateway', 'loopline-gateway', '-n', 'loopline-system']);
}

export async function startPrometheus(options: PlatformOptions): Promise<string> {
  const result = await must('bash', [join(options.root, 'e2e/prometheus/prometheus.sh'), 'up'], {
    env: {
      PROMETHEUS_PORT: String(options.prometheusPort),
      PROMETHEUS_SCRAPE_INTERVAL: options.scrapeInterval,
      PROMETHEUS_STATE: join(options.stateDir, 'prometheus'),
    },
    timeoutMs: 300_000,
  });
  return result.stdout.trim();
}

export async function stopPrometheus(options: Pick<PlatformOptions, 'root' | 'stateDir'>): Promise<void> {
  await run('bash', [join(options.root, 'e2e/prometheus/prometheus.sh'), 'down'], {
    env: { PROMETHEUS_STATE: join(options.stateDir, 'prometheus') },
  });
}

/** The Secret with the S3 keys that the chart's objectStorage.credentials.secretName names, in every user namespace. */
export const STORAGE_SECRET = 'loopline-s3';

/** `helm upgrade --install`: the chart with NATS, Prometheus and object storage pointed at the local ones. */
export async function installChart(options: PlatformOptions): Promise<CommandResult> {
  const storage = requireS3().operatorEnv(STORAGE_SECRET);
  return await helm(
    [
      'upgrade',
      '--install',
      options.release,
      join(options.root, 'charts/loopline'),
      '--namespace',
      options.releaseNamespace,
      '--create-namespace',
      '--set',
      `nats.url=${options.natsUrl}`,
      '--set',
      `prometheus.url=http://127.0.0.1:${options.prometheusPort}`,
      '--set',
      `objectStorage.endpoint=${storage.STORAGE_S3_ENDPOINT}`,
      '--set',
      `objectStorage.region=${storage.STORAGE_S3_REGION}`,
      '--set',
      `objectStorage.forcePathStyle=${storage.STORAGE_S3_FORCE_PATH_STYLE}`,
      '--set',
      `objectStorage.credentials.secretName=${storage.STORAGE_S3_SECRET}`,
      '--set-json',
      `operator.extraEnv=${JSON.stringify([{ name: 'PROMETHEUS_SCRAPE_INTERVAL', value: options.scrapeInterval }])}`,
    ],
    { timeoutMs: 180_000 },
  );
}

/** What a platform admin does for each team namespace: the S3 keys in the Secret the chart names (values on stdin only). */
export async function provideStorageSecret(namespace: string): Promise<CommandResult> {
  return await kubectl(['apply', '-f', '-'], { input: JSON.stringify(requireS3().secret(STORAGE_SECRET, namespace)) });
}

interface OperatorDeployment {
  serviceAccount: string;
  args: string[];
  env: Record<string, string>;
}

/** The operator container of the chart's Deployment as installed: its ServiceAccount, args and environment. */
export async function operatorDeployment(options: PlatformOptions): Promise<OperatorDeployment> {
  const deployments = await getJson<{ items: any[] }>([
    'deployments',
    '-n',
    options.releaseNamespace,
    '-l',
    `app.kubernetes.io/instance=${options.release},app.kubernetes.io/component=operator`,
  ]);
  const deployment = deployments?.items[0];
  if (!deployment)
    throw new Error(`helm release ${options.release} has no operator Deployment in ${options.releaseNamespace}`);
  const pod = deployment.spec.template.spec;
  const container = pod.containers.find((c: any) => c.name === 'operator');
  const podName = `${deployment.metadata.name}-local-${hostname()}`;
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = podName;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = options.releaseNamespace;
    else throw new Error(`operator env ${e.name}: only values and metadata fieldRefs can be reproduced locally`);
  }
  return { serviceAccount: pod.serviceAccountName, args: container.args ?? [], env };
}

/**
 * A kubeconfig that authenticates as the chart's ServiceAccount with a token from the TokenRequest API
 * (`kubectl create token`): everything the operator does goes through the chart's RBAC.
 */
export async function serviceAccountKubeconfig(
  options: PlatformOptions,
  serviceAccount: string,
  duration: string,
): Promise<string> {
  const token = (
    await kubectl(['create', 'token', serviceAccount, '-n', options.releaseNamespace, `--duration=${duration}`])
  ).stdout.trim();
  const admin = yaml.load(readFileSync(process.env.KUBECONFIG!, 'utf8')) as any;
  const context = admin.contexts.find((c: any) => c.name === admin['current-context']).context;
  const cluster = admin.clusters.find((c: any) => c.name === context.cluster).cluster;
  const user = `system:serviceaccount:${options.releaseNamespace}:${serviceAccount}`;
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'loopline', cluster }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: user, context: { cluster: 'loopline', user, namespace: options.releaseNamespace } }],
    'current-context': user,
  };
  mkdirSync(options.stateDir, { recursive: true });
  const file = join(options.stateDir, 'operator.kubeconfig');
  writeFileSync(file, yaml.dump(config), { mode: 0o600 });
  return file;
}

export interface RunningOperator {
  process: Background;
  kubeconfig: string;
  serviceAccount: string;
  metricsUrl: string;
}

/**
 * Scales the chart's Deployment to zero (its image cannot be pulled here) and runs the same container
 * locally: the Deployment's args and environment, `operator/main.ts` as the image's entrypoint, the
 * ServiceAccount's token as its identity. Only the metrics and progress addresses differ (pods own their
 * ports; a local process shares the host's): metrics on loopback, the training progress endpoint on the host's
 * bridge address, which is where training pods reach the host (and where they are told to post).
 */
export async function startOperator(options: PlatformOptions, tokenDuration = '24h'): Promise<RunningOperator> {
  const deployment = await operatorDeployment(options);
  const selector = `app.kubernetes.io/instance=${options.release},app.kubernetes.io/component=operator`;
  await kubectl(['scale', 'deployment', '-n', options.releaseNamespace, '-l', selector, '--replicas=0']);
  // Pods it made before the scale-down can never run (nothing here runs that image), so no kubelet would ever
  // confirm their deletion: remove them outright, or they would hold the namespace at uninstall.
  await kubectl([
    'delete',
    'pods',
    '-n',
    options.releaseNamespace,
    '-l',
    selector,
    '--force',
    '--grace-period=0',
    '--ignore-not-found',
  ]);
  const kubeconfig = await serviceAccountKubeconfig(options, deployment.serviceAccount, tokenDuration);
  const port = await freePort();
  const args = deployment.args
    .filter((a) => !a.startsWith('--http-port') && !a.startsWith('--http-host'))
    .concat(`--http-port=${port}`, '--http-host=127.0.0.1');
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...deployment.env,
    KUBECONFIG: kubeconfig,
  };
  const hostAddress = process.env.LOOPLINE_HOST_ADDRESS;
  if (env.PROGRESS_URL && hostAddress) {
    const progressPort = await freePort();
    Object.assign(env, {
      PROGRESS_URL: `http://${hostAddress}:${progressPort}`,
      PROGRESS_PORT: String(progressPort),
      PROGRESS_HOST: hostAddress,
    });
  } else {
    // No pod network to serve it on: no progress endpoint (and no fixed port two local operators could fight over).
    delete env.PROGRESS_URL;
  }
  const started = await startBackground(
    'operator',
    [process.execPath, '--import', 'tsx', 'operator/main.ts', ...args],
    {
      dir: options.stateDir,
      env,
      cwd: options.root,
      detached: options.detached ?? false,
    },
  );
  const metricsUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ready = await fetch(`${metricsUrl}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    const code = await Promise.race([
      started.exited,
      new Promise<'running'>((r) => setTimeout(() => r('running'), 250)),
    ]);
    if (code !== 'running') throw new Error(`the operator exited (${code}):\n${tail(started.log)}`);
    if (Date.now() > deadline) throw new Error(`the operator did not become ready in 60 s:\n${tail(started.log)}`);
  }
  return { process: started, kubeconfig, serviceAccount: deployment.serviceAccount, metricsUrl };
}

/** The stand-in kubelet for the simulated nodes: it plays the node, so it uses the admin kubeconfig. */
export async function startKubelet(options: PlatformOptions): Promise<Background> {
  const args = [
    '--import',
    'tsx',
    'e2e/local-kubelet/main.ts',
    ...(options.kubeletNamespace ? ['--namespace', options.kubeletNamespace] : []),
  ];
  const started = await startBackground('local-kubelet', [process.execPath, ...args], {
    dir: options.stateDir,
    env: { ...process.env },
    cwd: options.root,
    detached: options.detached ?? false,
  });
  const deadline = Date.now() + 60_000;
  while (!tail(started.log, 50).includes('local-kubelet running')) {
    const code = await Promise.race([
      started.exited,
      new Promise<'running'>((r) => setTimeout(() => r('running'), 250)),
    ]);
    if (code !== 'running') throw new Error(`the local-kubelet exited (${code}):\n${tail(started.log)}`);
    if (Date.now() > deadline) throw new Error(`the local-kubelet did not start in 60 s:\n${tail(started.log)}`);
  }
  return started;
}
