// Pod status the way a kubelet reports it, computed from what the local processes are doing.

export type ContainerState =
  | { waiting: { reason: string; message?: string } }
  | { running: { startedAt: string } }
  | { terminated: Terminated };

export interface Terminated {
  exitCode: number;
  signal?: number;
  reason: string;
  message?: string;
  startedAt?: string;
  finishedAt: string;
  containerID?: string;
}

export interface ContainerRecord {
  name: string;
  image: string;
  state: ContainerState;
  lastState?: { terminated: Terminated };
  restartCount: number;
  ready: boolean;
  started: boolean;
  containerID?: string;
}

export interface PodRecord {
  hostIP: string;
  podIP?: string;
  startTime: string;
  restartPolicy: 'Always' | 'OnFailure' | 'Never';
  /** The sandbox (here: the pod's network namespace) exists and containers may run. */
  sandboxReady: boolean;
  containers: ContainerRecord[];
}

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

export function timestamp(date: Date = new Date()): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The kubelet's phase rule: terminal once every container has terminated for good, Running once any runs (or restarts). */
export function podPhase(record: PodRecord): PodPhase {
  let running = 0;
  let waitingFresh = 0;
  let succeeded = 0;
  let failed = 0;
  for (const c of record.containers) {
    if ('running' in c.state) running++;
    else if ('waiting' in c.state) {
      if (c.lastState)
        running++; // waiting to restart after a previous run counts as running
      else waitingFresh++;
    } else if (c.state.terminated.exitCode === 0) succeeded++;
    else failed++;
  }
  if (waitingFresh > 0 && running === 0) return 'Pending';
  if (running > 0) return 'Running';
  if (failed > 0) return 'Failed';
  return succeeded === record.containers.length ? 'Succeeded' : 'Pending';
}

interface Condition {
  type: string;
  status: 'True' | 'False';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  lastProbeTime?: null;
}

/** The status patch for the pod; `previous` supplies lastTransitionTime of conditions whose status did not change. */
export function podStatus(
  record: PodRecord,
  previous: readonly Condition[] | undefined,
  now: Date,
): Record<string, unknown> {
  const phase = podPhase(record);
  const terminal = phase === 'Succeeded' || phase === 'Failed';
  const unready = record.containers.filter((c) => !c.ready).map((c) => c.name);
  const ready: Omit<Condition, 'type'> = terminal
    ? { status: 'False', reason: 'PodCompleted', message: '' }
    : unready.length
      ? {
          status: 'False',
          reason: 'ContainersNotReady',
          message: `containers with unready status: [${unready.join(' ')}]`,
        }
      : { status: 'True' };
  const wanted: Condition[] = [
    { type: 'PodReadyToStartContainers', status: record.sandboxReady && !terminal ? 'True' : 'False' },
    { type: 'Initialized', status: 'True' },
    { type: 'ContainersReady', ...ready },
    { type: 'Ready', ...ready },
  ];
  const conditions = wanted.map((c) => {
    const before = previous?.find((p) => p.type === c.type);
    const lastTransitionTime =
      before && before.status === c.status && before.lastTransitionTime ? before.lastTransitionTime : timestamp(now);
    return { lastProbeTime: null, ...c, lastTransitionTime };
  });
  const status: Record<string, unknown> = {
    phase,
    conditions,
    hostIP: record.hostIP,
    hostIPs: [{ ip: record.hostIP }],
    startTime: record.startTime,
    containerStatuses: record.containers.map((c) => ({
      name: c.name,
      image: c.image,
      imageID: `local://${c.image}`,
      ...(c.containerID ? { containerID: c.containerID } : {}),
      // Explicit nulls: a patch must clear the previous state, a container is in exactly one.
      state: { waiting: null, running: null, terminated: null, ...c.state },
      lastState: c.lastState ?? {},
      ready: c.ready,
      started: c.started,
      restartCount: c.restartCount,
    })),
  };
  if (record.podIP) {
    status.podIP = record.podIP;
    status.podIPs = [{ ip: record.podIP }];
  }
  return status;
}
