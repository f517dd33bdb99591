// Pod networking for the local-kubelet, as the CNI bridge plugin does it: each pod gets a network
// namespace of its own, joined by a veth pair to the cluster's host bridge (made by e2e/cluster/cluster.sh),
// and an address from the bridge's subnet. The host reaches every pod through the bridge; a pod reaches the
// host at the bridge's address (NATS, the S3 server) and the other pods of its cluster, and nothing else:
// there is no default route, so no packet of a pod ever leaves this machine.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lookPath } from './images.ts';

export interface PodNetworkConfig {
  /** The host bridge pods are attached to (LOOPLINE_POD_BRIDGE). */
  bridge: string;
  /** The pods' subnet, a /24 of 198.19.0.0/16 (LOOPLINE_POD_SUBNET). */
  subnet: string;
  /** The host's address on the bridge (LOOPLINE_HOST_ADDRESS): what pods dial for services of the host. */
  hostAddress: string;
}

export class PodNetworkError extends Error {}

/** The pod network of the cluster `cluster.sh env` describes, or a clear error saying how to get it. */
export function podNetworkFromEnv(env: NodeJS.ProcessEnv = process.env): PodNetworkConfig {
  const { LOOPLINE_POD_BRIDGE: bridge, LOOPLINE_POD_SUBNET: subnet, LOOPLINE_HOST_ADDRESS: hostAddress } = env;
  if (!bridge || !subnet || !hostAddress) {
    throw new PodNetworkError(
      'local-kubelet needs the cluster\'s pod network (LOOPLINE_POD_BRIDGE, LOOPLINE_POD_SUBNET, LOOPLINE_HOST_ADDRESS): run through `npm test`, or `eval "$(bash e2e/cluster/cluster.sh env)"` first',
    );
  }
  return { bridge, subnet, hostAddress };
}

/** The pod addresses of a /24 subnet: every host address except the bridge's. */
export function podAddresses(config: Pick<PodNetworkConfig, 'subnet' | 'hostAddress'>): string[] {
  const match = /^(\d+\.\d+\.\d+)\.0\/24$/.exec(config.subnet);
  if (!match) throw new PodNetworkError(`pod subnet "${config.subnet}" is not a /24 (like 198.19.7.0/24)`);
  const addresses: string[] = [];
  for (let n = 1; n < 255; n++) if (`${match[1]}.${n}` !== config.hostAddress) addresses.push(`${match[1]}.${n}`);
  return addresses;
}

/**
 * Names of a pod's network namespace and host-side veth, from its address: 198.19.7.12 -> ll7-12 and llv7-12
 * (cluster.sh down removes `ll<third octet>-*` of its subnet). Interface names stay within 15 characters.
 */
export function sandboxNames(ip: string): { netns: string; veth: string } {
  const [, , c, d] = ip.split('.');
  return { netns: `ll${c}-${d}`, veth: `llv${c}-${d}` };
}

export interface PodSandbox {
  ip: string;
  netns: string;
}

export class PodNetwork {
  private readonly mine = new Map<string, PodSandbox>();
  private readonly removals = new Set<Promise<void>>();
  private readonly addresses: string[];
  private readonly prefixLength = 24;
  private readonly nsenter: string;

  constructor(
    readonly config: PodNetworkConfig,
    private readonly leaseDir: string,
  ) {
    this.addresses = podAddresses(config);
    if (!existsSync(`/sys/class/net/${config.bridge}`)) {
      throw new PodNetworkError(
        `pod bridge ${config.bridge} does not exist: start the cluster first (bash e2e/cluster/cluster.sh up)`,
      );
    }
    const nsenter = lookPath('nsenter', '/', process.env.PATH ?? '');
    if (!nsenter)
      throw new PodNetworkError(
        'nsenter (util-linux) is not on PATH: the local-kubelet starts pod processes in their network namespace with it',
      );
    this.nsenter = nsenter;
    mkdirSync(leaseDir, { recursive: true });
  }

  /** A command line that runs `argv` inside the pod's network namespace (and changes nothing else). */
  inSandbox(sandbox: PodSandbox, argv: string[]): string[] {
    return [this.nsenter, `--net=/run/netns/${sandbox.netns}`, '--', ...argv];
  }

  /** Leases an address for `owner` and makes its network namespace; a namespace left by a local-kubelet that died is cleared first. */
  async attach(owner: string): Promise<PodSandbox> {
    const held = this.mine.get(owner);
    if (held) return held;
    const ip = this.lease(owner);
    const sandbox = { ip, netns: sandboxNames(ip).netns };
    this.mine.set(owner, sandbox);
    try {
      await removeSandbox(ip);
      const { netns, veth } = sandboxNames(ip);
      await ipBatch(
        [],
        [
          `netns add ${netns}`,
          `link add ${veth} type veth peer name eth0 netns ${netns}`,
          `link set ${veth} master ${this.config.bridge} up`,
        ],
      );
      await ipBatch(
        ['-n', netns],
        [`addr add ${ip}/${this.prefixLength} dev eth0`, 'link set eth0 up', 'link set lo up'],
      );
      // Addresses are reused as soon as a pod is gone: the host may still hold the old pod's MAC for this address
      // and send the new pod's traffic nowhere until the entry goes stale (as long as half a minute). The CNI bridge
      // plugin announces a new address with a gratuitous ARP; forgetting the old entry here has the same effect.
      await run('ip', ['neigh', 'flush', 'to', ip]);
    } catch (err) {
      await this.detach(owner);
      throw err;
    }
    return sandbox;
  }

  /** Removes the owner's namespace (killing what still runs in it) and gives its address back. Idempotent. */
  async detach(owner: string): Promise<void> {
    const sandbox = this.mine.get(owner);
    if (!sandbox) return;
    this.mine.delete(owner);
    const removal = removeSandbox(sandbox.ip).finally(() => {
      rmSync(join(this.leaseDir, sandbox.ip), { force: true });
      this.removals.delete(removal);
    });
    this.removals.add(removal);
    await removal;
  }

  /** Clears the namespace of an address whose lease holder is gone (a pod that ran under a local-kubelet that died). */
  async reclaim(ip: string): Promise<void> {
    if (!this.addresses.includes(ip)) return;
    const file = join(this.leaseDir, ip);
    if (existsSync(file) && processAlive(Number(readFileSync(file, 'utf8').split(' ')[0]))) return;
    await removeSandbox(ip);
    rmSync(file, { force: true });
  }

  /** Every sandbox this local-kubelet holds, removed (and the removals already under way finished). */
  async detachAll(): Promise<void> {
    await Promise.allSettled([...[...this.mine.keys()].map((owner) => this.detach(owner)), ...this.removals]);
  }

  /** One file per address, so several local-kubelets of one cluster never hand out the same one. */
  private lease(owner: string): string {
    for (const ip of this.addresses) if (this.tryLease(ip, owner)) return ip;
    throw new PodNetworkError(`no free pod address left in ${this.config.subnet} (leases in ${this.leaseDir})`);
  }

  private tryLease(ip: string, owner: string): boolean {
    const file = join(this.leaseDir, ip);
    try {
      writeFileSync(file, `${process.pid} ${owner}\n`, { flag: 'wx' });
      return true;
    } catch (err: any) {
      if (err?.code !== 'EEXIST') throw err;
    }
    const [pid] = readFileSync(file, 'utf8').split(' ');
    if (Number(pid) === process.pid || processAlive(Number(pid))) return false;
    rmSync(file, { force: true });
    try {
      writeFileSync(file, `${process.pid} ${owner}\n`, { flag: 'wx' });
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * Kills whatever runs in the address's namespace, deletes its veth pair and then the namespace. The pair is deleted
 * by name: a namespace whose killed processes have not yet exited lives on after `ip netns del`, and its veth with it.
 */
async function removeSandbox(ip: string): Promise<void> {
  const { netns, veth } = sandboxNames(ip);
  if (existsSync(`/sys/class/net/${veth}`)) await run('ip', ['link', 'del', veth]).catch(() => undefined);
  if (!existsSync(`/run/netns/${netns}`)) return;
  const pids = (await run('ip', ['netns', 'pids', netns])).split('\n').filter(Boolean).map(Number);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  await run('ip', ['netns', 'del', netns]);
}

function ipBatch(options: string[], commands: string[]): Promise<string> {
  return run('ip', [...options, '-batch', '-'], `${commands.join('\n')}\n`);
}

function run(command: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (c) => (out += c));
    child.stderr!.on('data', (c) => (err += c));
    child.once('error', (e) => reject(new PodNetworkError(`${command} ${args.join(' ')}: ${e.message}`)));
    child.once('close', (code) =>
      code === 0
        ? resolve(out)
        : reject(new PodNetworkError(`${command} ${args.join(' ')} exited ${code}: ${err.trim()}`)),
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err: any) {
    return err?.code === 'EPERM';
  }
}
