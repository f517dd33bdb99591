// local-kubelet: a stand-in kubelet for the simulated (KWOK) nodes of Loopline's local cluster.
// It takes the pods of Loopline's own images (see images.ts) bound to simulated nodes, runs each
// container as a local process in the pod's own network namespace (network.ts) and reports the pod's
// lifecycle the way a kubelet does, so the operator sees on this machine what it would see on a real
// cluster. Other pods are left to KWOK.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { homedir, constants as osConstants } from 'node:os';
import { join } from 'node:path';
import {
  CoreV1Api,
  HttpMethod,
  KubeConfig,
  PatchStrategy,
  makeInformer,
  type Informer,
  type ObjectCache,
  type V1Pod,
} from '@kubernetes/client-node';
import { pino, type Logger } from 'pino';
// One kept-alive connection for every request (client-node's generated APIs open one per request,
// which a busy API server answers with dropped TLS handshakes).
import { KubeApi } from '../../operator/engine/kube.ts';
import { kinds, resourcePath } from '../../operator/engine/kinds.ts';
import { containerEnv, EnvError } from './env.ts';
import { commandLine, isLooplineImage, lookPath } from './images.ts';
import { PodNetwork, podNetworkFromEnv, type PodNetworkConfig, type PodSandbox } from './network.ts';
import { podStatus, timestamp, type ContainerRecord, type PodRecord, type Terminated } from './status.ts';

export interface LocalKubeletOptions {
  /** A KubeConfig, or the path of a kubeconfig file; default: KUBECONFIG. */
  kubeconfig?: KubeConfig | string;
  /** The repository checkout the images map to (their WORKDIR). */
  repoRoot: string;
  /** Only run pods of this namespace (tests, so parallel test files never share a pod). Default: all namespaces. */
  namespace?: string;
  /** Logs, termination-message files and address leases go below `<cacheDir>/local-kubelet`. Default: LOOPLINE_CACHE or ~/.cache/loopline. */
  cacheDir?: string;
  /** The cluster's pod bridge and subnet; default: from the environment `cluster.sh env` prints. */
  network?: PodNetworkConfig;
  logger?: Logger;
  /** First wait before restarting a container of a restartPolicy Always/OnFailure pod; doubles up to 30 s (the kubelet: 10 s to 5 min). */
  restartBackoffMs?: number;
}

export interface LocalKubelet {
  /** Where a container's output goes (`<restartCount>.log`). */
  logDir(namespace: string, pod: string, uid: string, container: string): string;
  /** Stops watching, kills every process it started and removes their network namespaces; pod status is left as it was, like a kubelet that went away. */
  stop(): Promise<void>;
}

const TERMINATION_MESSAGE_LIMIT = 4096;
const SIMULATED_NODE_ANNOTATION = 'kwok.x-k8s.io/node';
const ENV_FROM_HOST = ['PATH', 'HOME', 'LANG', 'TMPDIR', 'NODE_EXTRA_CA_CERTS'];

interface ContainerRun {
  spec: any;
  record: ContainerRecord;
  child?: ChildProcess;
  startedAt?: string;
  probeTimer?: NodeJS.Timeout;
  restartTimer?: NodeJS.Timeout;
  probeCounts: { ok: number; fail: number };
}

export async function startLocalKubelet(options: LocalKubeletOptions): Promise<LocalKubelet> {
  const kc = options.kubeconfig instanceof KubeConfig ? options.kubeconfig : new KubeConfig();
  if (!(options.kubeconfig instanceof KubeConfig)) {
    const path = options.kubeconfig ?? process.env.KUBECONFIG;
    if (!path) throw new Error('local-kubelet needs a kubeconfig: pass one or set KUBECONFIG');
    kc.loadFromFile(path);
  }
  const core = kc.makeApiClient(CoreV1Api);
  const api = new KubeApi(kc);
  const log = options.logger ?? pino({ name: 'local-kubelet' });
  const root = join(
    options.cacheDir ?? process.env.LOOPLINE_CACHE ?? join(homedir(), '.cache', 'loopline'),
    'local-kubelet',
  );
  const restartBaseMs = options.restartBackoffMs ?? 1000;
  const network = new PodNetwork(options.network ?? podNetworkFromEnv(), join(root, 'addresses'));
  const nodes = new Map<string, Promise<{ simulated: boolean; ip: string }>>();
  const runners = new Map<string, PodRunner>();
  let stopped = false;

  const logDir = (ns: string, pod: string, uid: string, container: string) =>
    join(root, 'pods', `${ns}_${pod}_${uid}`, container);

  function nodeInfo(name: string) {
    let info = nodes.get(name);
    if (!info) {
      info = api.get(kinds.Node, undefined, name).then(
        (node) => ({
          simulated: node.metadata.annotations?.[SIMULATED_NODE_ANNOTATION] !== undefined,
          ip:
            (node.status?.addresses as Array<{ type: string; address: string }> | undefined)?.find(
              (a) => a.type === 'InternalIP',
            )?.address ?? '127.0.0.1',
        }),
        (err) => {
          nodes.delete(name);
          // Bound to a node that is gone: no kubelet of any kind runs it.
          if (err?.statusCode === 404) return { simulated: false, ip: '' };
          throw err;
        },
      );
      nodes.set(name, info);
    }
    return info;
  }

  async function readData(kind: 'ConfigMap' | 'Secret', namespace: string, name: string) {
    try {
      if (kind === 'ConfigMap')
        return ((await api.get(kinds.ConfigMap, namespace, name)).data ?? {}) as Record<string, string>;
      const data = ((await api.get(kinds.Secret, namespace, name)).data ?? {}) as Record<string, string>;
      return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
    } catch (err: any) {
      if (err?.statusCode === 404) return undefined;
      throw err;
    }
  }

  class PodRunner {
    pod: V1Pod;
    readonly uid: string;
    readonly dir: string;
    record!: PodRecord;
    sandbox?: PodSandbox;
    containers: ContainerRun[] = [];
    chain: Promise<void> = Promise.resolve();
    deleting = false;
    gone = false;
    lastWritten = '';
    conditions: any[] | undefined;
    killTimer?: NodeJS.Timeout;
    statusRetry?: NodeJS.Timeout;
    log: Logger;

    constructor(pod: V1Pod) {
      this.pod = pod;
      this.uid = pod.metadata!.uid!;
      this.dir = join(root, 'pods', `${pod.metadata!.namespace}_${pod.metadata!.name}_${this.uid}`);
      this.log = log.child({ pod: `${pod.metadata!.namespace}/${pod.metadata!.name}` });
      this.conditions = pod.status?.conditions as any[] | undefined;
    }

    enqueue(step: () => Promise<void> | void): void {
      this.chain = this.chain.then(step).catch((err) => this.log.error({ err }, 'pod step failed'));
    }

    async start(node: { ip: string }): Promise<void> {
      mkdirSync(this.dir, { recursive: true });
      const spec = this.pod.spec!;
      const lost = (this.pod.status?.containerStatuses ?? []).some((s) => s.state?.running || s.state?.terminated);
      this.record = {
        hostIP: node.ip,
        startTime: this.pod.status?.startTime ? timestamp(new Date(this.pod.status.startTime)) : timestamp(),
        restartPolicy: (spec.restartPolicy ?? 'Always') as PodRecord['restartPolicy'],
        sandboxReady: false,
        containers: [],
      };
      this.containers = spec.containers.map((c) => ({
        spec: c,
        probeCounts: { ok: 0, fail: 0 },
        record: {
          name: c.name,
          image: c.image ?? '',
          state: { waiting: { reason: 'ContainerCreating' } },
          restartCount: 0,
          ready: false,
          started: false,
        },
      }));
      this.record.containers = this.containers.map((c) => c.record);
      if (lost && this.record.restartPolicy === 'Never') {
        // This pod ran under an earlier local-kubelet whose processes are gone: report what a kubelet reports for a lost container.
        for (const c of this.containers) {
          c.record.state = {
            terminated: {
              exitCode: 137,
              reason: 'ContainerStatusUnknown',
              message: 'The container could not be located when the pod was terminated',
              finishedAt: timestamp(),
            },
          };
        }
        this.record.podIP = this.pod.status?.podIP;
        if (this.record.podIP) await network.reclaim(this.record.podIP);
        await this.writeStatus();
        return;
      }
      await this.writeStatus();
      try {
        this.sandbox = await network.attach(this.uid);
      } catch (err) {
        // As a kubelet whose CNI plugin failed: the pod stays ContainerCreating, the reason in the message.
        const message = `failed to create pod sandbox: ${err instanceof Error ? err.message : String(err)}`;
        this.log.error({ err }, message);
        for (const c of this.containers) c.record.state = { waiting: { reason: 'ContainerCreating', message } };
        await this.writeStatus();
        return;
      }
      this.record.podIP = this.sandbox.ip;
      this.record.sandboxReady = true;
      for (const c of this.containers) await this.run(c);
      await this.writeStatus();
    }

    async run(c: ContainerRun): Promise<void> {
      if (this.deleting || stopped) return;
      const argv = commandLine(c.spec);
      if (!argv.ok) {
        c.record.state = { waiting: { reason: argv.reason, message: argv.message } };
        return;
      }
      let env: Record<string, string>;
      try {
        env = await containerEnv(c.spec, {
          pod: this.pod,
          podIP: this.record.podIP!,
          hostIP: this.record.hostIP,
          readData,
        });
      } catch (err) {
        if (!(err instanceof EnvError)) throw err;
        c.record.state = { waiting: { reason: 'CreateContainerConfigError', message: err.message } };
        c.restartTimer = setTimeout(
          () =>
            this.enqueue(async () => {
              await this.run(c);
              await this.writeStatus();
            }),
          2000,
        );
        return;
      }
      const terminationPath = c.spec.terminationMessagePath ?? '/dev/termination-log';
      const localTermination = join(this.dir, `${c.spec.name}.termination-log`);
      rmSync(localTermination, { force: true });
      for (const [k, v] of Object.entries(env)) if (v === terminationPath) env[k] = localTermination;
      env.LOOPLINE_RESULT_PATH ??= localTermination;
      const hostEnv = Object.fromEntries(
        ENV_FROM_HOST.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]!]),
      );
      const fullEnv: Record<string, string> = {
        ...hostEnv,
        HOSTNAME: this.pod.spec!.hostname ?? this.pod.metadata!.name!,
        ...env,
      };
      const startedAt = timestamp();
      const executable = lookPath(argv.argv[0], options.repoRoot, fullEnv.PATH ?? '');
      if (!executable) {
        // What a container runtime reports when the entrypoint does not exist.
        const message = `exec: "${argv.argv[0]}": executable file not found in $PATH`;
        this.enqueue(() =>
          this.exited(c, { exitCode: 128, reason: 'StartError', message, startedAt, finishedAt: timestamp() }),
        );
        return;
      }

      const dir = logDir(this.pod.metadata!.namespace!, this.pod.metadata!.name!, this.uid, c.spec.name);
      mkdirSync(dir, { recursive: true });
      const out = openSync(join(dir, `${c.record.restartCount}.log`), 'a');
      // nsenter execs the command in place: the child's pid (and process group) is the container's.
      const [command, ...args] = network.inSandbox(this.sandbox!, [executable, ...argv.argv.slice(1)]);
      let child: ChildProcess;
      try {
        child = spawn(command!, args, {
          cwd: options.repoRoot,
          env: fullEnv,
          stdio: ['ignore', out, out],
          detached: true,
        });
      } finally {
        closeSync(out);
      }
      const containerID = `local://${child.pid ?? 0}`;
      c.child = child;
      c.startedAt = startedAt;
      c.record.containerID = containerID;
      c.record.state = { running: { startedAt } };
      c.record.started = true;
      c.record.ready = !c.spec.readinessProbe;
      this.log.info(
        { container: c.spec.name, pid: child.pid, argv: argv.argv, podIP: this.record.podIP },
        'container started',
      );
      child.on('error', (err) => {
        // Spawn failures surface as a container that could not start.
        if (c.child !== child) return;
        c.child = undefined;
        this.enqueue(() =>
          this.exited(c, {
            exitCode: 128,
            reason: 'StartError',
            message: err.message,
            finishedAt: timestamp(),
            containerID,
          }),
        );
      });
      child.on('exit', (code, signal) => {
        if (c.child !== child) return;
        c.child = undefined;
        const exitCode = code ?? 128 + (signal ? (osConstants.signals[signal] ?? 9) : 9);
        this.enqueue(() =>
          this.exited(c, {
            exitCode,
            reason: exitCode === 0 ? 'Completed' : 'Error',
            startedAt,
            finishedAt: timestamp(),
            containerID,
          }),
        );
      });
      if (c.spec.readinessProbe) this.probe(c);
    }

    terminationMessage(c: ContainerRun, exitCode: number): string | undefined {
      const file = join(this.dir, `${c.spec.name}.termination-log`);
      let message = existsSync(file) ? readFileSync(file).subarray(0, TERMINATION_MESSAGE_LIMIT).toString('utf8') : '';
      if (!message && exitCode !== 0 && c.spec.terminationMessagePolicy === 'FallbackToLogsOnError') {
        const logFile = join(
          logDir(this.pod.metadata!.namespace!, this.pod.metadata!.name!, this.uid, c.spec.name),
          `${c.record.restartCount}.log`,
        );
        const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-80).join('\n') : '';
        message = Buffer.from(tail).subarray(-2048).toString('utf8');
      }
      return message || undefined;
    }

    async exited(c: ContainerRun, t: Terminated): Promise<void> {
      clearInterval(c.probeTimer);
      const message = this.terminationMessage(c, t.exitCode);
      const terminated: Terminated = { ...t, ...(message ? { message } : {}) };
      c.record.ready = false;
      c.record.started = false;
      const policy = this.record.restartPolicy;
      const restart =
        !this.deleting && !stopped && (policy === 'Always' || (policy === 'OnFailure' && t.exitCode !== 0));
      this.log.info({ container: c.spec.name, exitCode: t.exitCode, reason: t.reason, restart }, 'container exited');
      if (restart) {
        c.record.lastState = { terminated };
        c.record.restartCount++;
        c.record.state = {
          waiting: { reason: 'CrashLoopBackOff', message: `back-off restarting failed container ${c.spec.name}` },
        };
        const wait = Math.min(30_000, restartBaseMs * 2 ** Math.min(c.record.restartCount - 1, 10));
        c.restartTimer = setTimeout(
          () =>
            this.enqueue(async () => {
              await this.run(c);
              await this.writeStatus();
            }),
          wait,
        );
      } else {
        c.record.state = { terminated };
      }
      if (this.containers.every((x) => 'terminated' in x.record.state)) {
        this.record.sandboxReady = false;
        await this.removeSandbox();
      }
      await this.writeStatus();
      if (this.deleting && this.containers.every((x) => !x.child)) await this.finishDeletion();
    }

    probe(c: ContainerRun): void {
      const p = c.spec.readinessProbe;
      const period = (p.periodSeconds ?? 10) * 1000;
      const check = async () => {
        if (!c.child) return;
        const ok = await probeOnce(p, this.record.podIP!, c.spec.ports ?? []);
        if (ok) {
          c.probeCounts.ok++;
          c.probeCounts.fail = 0;
        } else {
          c.probeCounts.fail++;
          c.probeCounts.ok = 0;
        }
        const ready = c.record.ready
          ? c.probeCounts.fail < (p.failureThreshold ?? 3)
          : c.probeCounts.ok >= (p.successThreshold ?? 1);
        if (ready !== c.record.ready && c.child) {
          c.record.ready = ready;
          this.enqueue(() => this.writeStatus());
        }
      };
      setTimeout(
        () => {
          if (!c.child) return;
          void check();
          c.probeTimer = setInterval(() => void check(), period);
        },
        (p.initialDelaySeconds ?? 0) * 1000,
      );
    }

    /** Graceful deletion: SIGTERM, SIGKILL after the grace period, final status, then remove the pod object. */
    terminate(graceSeconds: number): void {
      if (this.deleting) return;
      this.deleting = true;
      for (const c of this.containers) clearTimeout(c.restartTimer);
      const running = this.containers.filter((c) => c.child);
      if (running.length === 0) {
        this.enqueue(() => this.finishDeletion());
        return;
      }
      for (const c of running) signalGroup(c.child!, 'SIGTERM');
      this.killTimer = setTimeout(() => {
        for (const c of this.containers) if (c.child) signalGroup(c.child, 'SIGKILL');
      }, graceSeconds * 1000);
    }

    async finishDeletion(): Promise<void> {
      clearTimeout(this.killTimer);
      if (this.gone) return;
      for (const c of this.containers) {
        if ('waiting' in c.record.state)
          c.record.state = {
            terminated: {
              exitCode: 0,
              reason: 'ContainerStatusUnknown',
              finishedAt: timestamp(),
              message: 'The pod was deleted before the container ran',
            },
          };
      }
      this.record.sandboxReady = false;
      await this.removeSandbox();
      await this.writeStatus();
      await removePod(this.pod);
      this.gone = true;
    }

    /** Kills without ceremony: the pod object is already gone, or the local-kubelet stops. */
    kill(): void {
      this.gone = true;
      clearTimeout(this.killTimer);
      clearTimeout(this.statusRetry);
      for (const c of this.containers) {
        clearTimeout(c.restartTimer);
        clearInterval(c.probeTimer);
        if (c.child) signalGroup(c.child, 'SIGKILL');
      }
      // Whatever still runs in the namespace is killed with it.
      void this.removeSandbox();
    }

    async removeSandbox(): Promise<void> {
      await network.detach(this.uid).catch((err) => this.log.error({ err }, 'cannot remove the pod network namespace'));
    }

    async writeStatus(): Promise<void> {
      if (this.gone || stopped) return;
      const status = podStatus(this.record, this.conditions, new Date());
      const text = JSON.stringify(status);
      if (text === this.lastWritten) return;
      try {
        const pod = await api.request<V1Pod>(
          HttpMethod.PATCH,
          `${resourcePath(kinds.Pod, this.pod.metadata!.namespace!, this.pod.metadata!.name!)}/status`,
          {
            body: { status: replacingAddresses(status) },
            contentType: PatchStrategy.StrategicMergePatch,
          },
        );
        this.lastWritten = text;
        this.conditions = pod.status?.conditions as any[] | undefined;
      } catch (err: any) {
        if (err?.statusCode === 404) {
          this.kill();
          return;
        }
        // Like the kubelet's status manager: keep the latest status and try again until it lands.
        this.log.warn({ err: String(err) }, 'pod status write failed; retrying');
        clearTimeout(this.statusRetry);
        this.statusRetry = setTimeout(() => this.enqueue(() => this.writeStatus()), 1000);
      }
    }
  }

  async function onPod(pod: V1Pod): Promise<void> {
    if (stopped) return;
    const uid = pod.metadata?.uid;
    const nodeName = pod.spec?.nodeName;
    if (!uid || !nodeName || !isLooplineImage(pod.spec?.containers?.[0]?.image)) return;
    const existing = runners.get(uid);
    if (existing) {
      existing.pod = pod;
      if (pod.metadata!.deletionTimestamp)
        existing.terminate(pod.metadata!.deletionGracePeriodSeconds ?? pod.spec!.terminationGracePeriodSeconds ?? 30);
      return;
    }
    const node = await nodeInfo(nodeName);
    if (!node.simulated || runners.has(uid) || stopped) return;
    if (pod.metadata!.deletionTimestamp) {
      // Deleted before any process of it ran here (or after this local-kubelet restarted): nothing to stop.
      await removePod(pod);
      return;
    }
    const phase = pod.status?.phase;
    // Finished before this local-kubelet started: nothing to run until it is deleted.
    if (phase === 'Succeeded' || phase === 'Failed') return;
    const runner = new PodRunner(pod);
    runners.set(uid, runner);
    runner.enqueue(() => runner.start(node));
  }

  async function removePod(pod: V1Pod): Promise<void> {
    try {
      await api.request(HttpMethod.DELETE, resourcePath(kinds.Pod, pod.metadata!.namespace!, pod.metadata!.name!), {
        body: {
          apiVersion: 'v1',
          kind: 'DeleteOptions',
          gracePeriodSeconds: 0,
          preconditions: { uid: pod.metadata!.uid },
        },
      });
    } catch (err: any) {
      if (err?.statusCode !== 404 && err?.statusCode !== 409) throw err;
    }
  }

  function onPodGone(pod: V1Pod): void {
    const uid = pod.metadata?.uid;
    if (!uid) return;
    const runner = runners.get(uid);
    if (!runner) return;
    runner.kill();
    runners.delete(uid);
  }

  const path = options.namespace ? `/api/v1/namespaces/${options.namespace}/pods` : '/api/v1/pods';
  const list = () =>
    options.namespace ? core.listNamespacedPod({ namespace: options.namespace }) : core.listPodForAllNamespaces();
  const handle = (pod: V1Pod) =>
    void onPod(pod).catch((err) => log.error({ err, pod: pod.metadata?.name }, 'cannot take pod'));
  // After a failure the watch starts over with a fresh informer: client-node's keeps doubling its reconnect
  // delay (to 30 s, for good), and one whose restart failed while the API server was down never tried again.
  // Callbacks of an informer that was replaced are ignored.
  let informer: (Informer<V1Pod> & ObjectCache<V1Pod>) | undefined;
  let generation = 0;
  let restarting: NodeJS.Timeout | undefined;
  const watchPods = async (): Promise<void> => {
    const mine = ++generation;
    const current = makeInformer<V1Pod>(kc, path, list as any);
    informer = current;
    current.on('add', (pod) => mine === generation && handle(pod));
    current.on('update', (pod) => mine === generation && handle(pod));
    current.on('delete', (pod) => mine === generation && onPodGone(pod));
    // client-node's start() resolves, not rejects, when its list fails: it reports the error instead.
    let failed = false;
    current.on('error', (err) => {
      if (mine !== generation) return;
      failed = true;
      restart(err);
    });
    await current.start();
    if (failed || mine !== generation) return;
    // Pods deleted while the watch was down: a fresh informer never saw them go.
    const present = new Set(current.list().map((p) => p.metadata?.uid));
    for (const [uid, runner] of [...runners]) if (!present.has(uid)) onPodGone(runner.pod);
  };
  const restart = (err: unknown) => {
    if (stopped || restarting) return;
    log.warn({ err: String(err) }, 'pod watch failed; restarting');
    restarting = setTimeout(() => {
      restarting = undefined;
      if (stopped) return;
      void informer?.stop().catch(() => undefined);
      watchPods().catch(restart);
    }, 1000);
  };
  await watchPods();
  log.info({ namespace: options.namespace ?? '(all)', repoRoot: options.repoRoot }, 'local-kubelet running');

  return {
    logDir,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(restarting);
      await informer?.stop();
      const waits: Promise<unknown>[] = [];
      for (const runner of runners.values()) {
        for (const c of runner.containers) if (c.child) waits.push(new Promise((r) => c.child!.once('exit', r)));
        runner.kill();
      }
      runners.clear();
      await Promise.race([Promise.all(waits), new Promise((r) => setTimeout(r, 5000))]);
      await network.detachAll();
    },
  };
}

/**
 * The status as a strategic merge patch that replaces the address lists: merged by ip with those written before,
 * a pod restarted in a new sandbox at a new address would hold two IPs of one family, which the API server refuses.
 */
function replacingAddresses(status: Record<string, unknown>): Record<string, unknown> {
  const patch = { ...status };
  for (const key of ['podIPs', 'hostIPs'] as const)
    if (Array.isArray(status[key])) patch[key] = [{ $patch: 'replace' }, ...(status[key] as unknown[])];
  return patch;
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

async function probeOnce(
  probe: any,
  podIP: string,
  ports: Array<{ name?: string; containerPort: number }>,
): Promise<boolean> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  const portOf = (p: number | string) =>
    typeof p === 'number' ? p : Number(ports.find((x) => x.name === p)?.containerPort ?? p);
  if (probe.httpGet) {
    const g = probe.httpGet;
    const url = `${(g.scheme ?? 'HTTP').toLowerCase()}://${g.host ?? podIP}:${portOf(g.port)}${g.path ?? '/'}`;
    try {
      const res = await fetch(url, {
        signal: AbortSignal.timeout(timeoutMs),
        headers: Object.fromEntries((g.httpHeaders ?? []).map((h: any) => [h.name, h.value])),
      });
      await res.arrayBuffer();
      return res.status >= 200 && res.status < 400;
    } catch {
      return false;
    }
  }
  if (probe.tcpSocket) {
    return new Promise((resolve) => {
      const socket = connect({
        host: probe.tcpSocket.host ?? podIP,
        port: portOf(probe.tcpSocket.port),
        timeout: timeoutMs,
      });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
      socket.once('timeout', () => {
        socket.destroy();
        resolve(false);
      });
    });
  }
  // exec and grpc probes are not run locally: the container counts as ready once it runs.
  return true;
}
