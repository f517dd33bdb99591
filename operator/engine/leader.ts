import { HttpMethod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { rfc3339Micro as microTime } from '../api/contracts.ts';
import { kinds } from './kinds.ts';
import { type KubeApi, isAlreadyExists, isConflict, isNotFound } from './kube.ts';
import type { KubeObject } from './types.ts';

export interface LeaseTimings {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

type Lease = KubeObject & { spec?: LeaseSpec };

/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it: a candidate
 * takes the lease when it is free or when its record has not changed for a lease duration *by the
 * candidate's own clock* (no clock-skew assumptions); the leader renews every retry period and gives up
 * leadership as soon as it could not renew for the renew deadline, which is shorter than the lease
 * duration, so two leaders never overlap. Writes use optimistic concurrency (resourceVersion).
 */
export class LeaderElector {
  private leading = false;
  private stopped = true;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private observedRecord = '';
  private observedAt = 0;
  private lastRenew = 0;
  private lease: Lease | undefined;
  private loop: Promise<void> | undefined;
  private readonly leaderWaiters: Array<() => void> = [];

  constructor(
    private readonly api: KubeApi,
    readonly name: string,
    readonly namespace: string,
    readonly identity: string,
    private readonly timings: LeaseTimings,
    private readonly callbacks: { started(): void; stopped(): void },
    private readonly log: Logger,
  ) {
    if (timings.renewDeadlineMs >= timings.leaseDurationMs) {
      throw new Error('leader election: renewDeadline must be shorter than leaseDuration');
    }
  }

  isLeader(): boolean {
    return this.leading;
  }

  whenLeader(): Promise<void> {
    return this.leading ? Promise.resolve() : new Promise((resolve) => this.leaderWaiters.push(resolve));
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.run();
  }

  /** Stops campaigning/renewing; with `release`, hands the lease back so a successor need not wait for expiry. */
  async stop(release: boolean): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.wake?.();
    await this.loop;
    if (this.leading) this.lose('stopped');
    if (release && this.lease?.spec?.holderIdentity === this.identity) await this.release();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const attemptStart = Date.now();
      let ok = false;
      try {
        ok = await this.tryAcquireOrRenew();
      } catch (err) {
        this.log.warn({ lease: `${this.namespace}/${this.name}`, err: String(err) }, 'lease request failed');
      }
      if (this.stopped) break;
      if (ok) {
        this.lastRenew = attemptStart;
        if (!this.leading) {
          this.leading = true;
          this.log.info({ lease: `${this.namespace}/${this.name}`, identity: this.identity }, 'became leader');
          for (const resolve of this.leaderWaiters.splice(0)) resolve();
          this.callbacks.started();
        }
      } else if (
        this.leading &&
        (this.lease?.spec?.holderIdentity !== this.identity ||
          Date.now() - this.lastRenew >= this.timings.renewDeadlineMs)
      ) {
        this.lose(
          this.lease?.spec?.holderIdentity !== this.identity
            ? 'lease taken by another holder'
            : 'renew deadline exceeded',
        );
      }
      await this.sleep(this.timings.retryPeriodMs);
    }
  }

  private lose(why: string): void {
    this.leading = false;
    this.log[why === 'stopped' ? 'info' : 'warn'](
      { lease: `${this.namespace}/${this.name}`, identity: this.identity, why },
      'lost leadership',
    );
    this.callbacks.stopped();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
    });
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    const signal = AbortSignal.timeout(Math.max(this.timings.retryPeriodMs, 1000));
    let lease: Lease;
    try {
      lease = await this.api.request<Lease>(HttpMethod.GET, this.path(), { signal });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        this.lease = await this.api.create<Lease>(kinds.Lease, this.record(undefined, now), 'loopline-leader-election');
        this.observe(this.lease, now);
        return true;
      } catch (createErr) {
        if (isAlreadyExists(createErr)) return false;
        throw createErr;
      }
    }
    this.lease = lease;
    this.observe(lease, now);
    const holder = lease.spec?.holderIdentity;
    const durationMs = (lease.spec?.leaseDurationSeconds ?? this.timings.leaseDurationMs / 1000) * 1000;
    if (holder && holder !== this.identity && this.observedAt + durationMs > now.getTime()) return false;

    try {
      this.lease = await this.api.replace<Lease>(kinds.Lease, this.record(lease, now), 'loopline-leader-election');
      this.observe(this.lease, now);
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }

  private observe(lease: Lease, now: Date): void {
    const record = JSON.stringify(lease.spec ?? {});
    if (record !== this.observedRecord) {
      this.observedRecord = record;
      this.observedAt = now.getTime();
    }
  }

  private record(current: Lease | undefined, now: Date): Lease {
    const previous = current?.spec;
    const renewing = previous?.holderIdentity === this.identity;
    return {
      apiVersion: kinds.Lease.apiVersion,
      kind: kinds.Lease.kind,
      metadata: {
        name: this.name,
        namespace: this.namespace,
        ...(current?.metadata.resourceVersion ? { resourceVersion: current.metadata.resourceVersion } : {}),
      },
      spec: {
        holderIdentity: this.identity,
        leaseDurationSeconds: Math.ceil(this.timings.leaseDurationMs / 1000),
        acquireTime: renewing && previous?.acquireTime ? previous.acquireTime : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: (previous?.leaseTransitions ?? 0) + (previous && !renewing ? 1 : 0),
      },
    };
  }

  private async release(): Promise<void> {
    const lease = this.lease!;
    try {
      // client-go's release: empty holder, a 1 s duration; candidates take an empty lease at once.
      this.lease = await this.api.replace<Lease>(
        kinds.Lease,
        {
          ...lease,
          spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(new Date()) },
        } as Lease,
        'loopline-leader-election',
      );
      this.log.info({ lease: `${this.namespace}/${this.name}`, identity: this.identity }, 'released lease');
    } catch (err) {
      this.log.warn({ lease: `${this.namespace}/${this.name}`, err: String(err) }, 'could not release lease');
    }
  }

  private path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.namespace)}/leases/${encodeURIComponent(this.name)}`;
  }
}
