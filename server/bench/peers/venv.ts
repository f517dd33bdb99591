// The peers' Python environments, for benchmarks and test fixtures only (Loopline itself needs no Python): one
// virtual environment per peer, from /usr/bin/python3, installed from the pinned requirements file beside this
// one and cached outside the repository in ~/.cache/loopline/peers-venv-<peer>-<version>-<hash of the file>,
// so a changed pin makes a new environment and an unchanged one is reused. KServe and MLServer cannot share one:
// kserve 0.21 needs starlette >= 1.3.1, and mlserver 1.7's fastapi caps it below 0.47.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type Peer = 'kserve' | 'mlserver' | 'evidently';
const PYTHON = '/usr/bin/python3';
const here = fileURLToPath(new URL('.', import.meta.url));

function run(command: string, args: string[], what: string): void {
  const result = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (result.status !== 0)
    throw new Error(`${what} failed (${command} ${args.join(' ')}): ${(result.stderr || result.stdout).slice(-2000)}`);
}

/** The version of `peer` its requirements file pins, e.g. kserve==0.21.0 → 0.21.0. */
export function pinnedVersion(peer: Peer): string {
  const text = readFileSync(join(here, `${peer}.requirements.txt`), 'utf8');
  const version = new RegExp(`^${peer}==(\\S+)$`, 'm').exec(text)?.[1];
  if (!version) throw new Error(`${peer}.requirements.txt pins no ${peer}==<version>`);
  return version;
}

/** The Python interpreter of `peer`'s environment, made first if it is missing. */
export function peerPython(peer: Peer): string {
  const requirements = join(here, `${peer}.requirements.txt`);
  const hash = createHash('sha256').update(readFileSync(requirements)).digest('hex').slice(0, 10);
  const dir = join(homedir(), '.cache/loopline', `peers-venv-${peer}-${pinnedVersion(peer)}-${hash}`);
  const python = join(dir, 'bin/python');
  if (existsSync(join(dir, '.complete'))) return python;
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: apt-get install python3 python3-venv`);
  if (spawnSync(PYTHON, ['-c', 'import ensurepip, venv'], { stdio: 'ignore' }).status !== 0) {
    console.log("installing python3-venv (Debian) for the peers' environments");
    run('apt-get', ['update', '-qq'], 'apt-get update');
    run('apt-get', ['install', '-y', '-qq', 'python3-venv'], 'apt-get install python3-venv');
  }
  // The marker is written last, so an interrupted install is never taken for a good one: it is made again.
  rmSync(dir, { recursive: true, force: true });
  console.log(`making ${dir} (pip install -r ${requirements}); once per pinned set`);
  run(PYTHON, ['-m', 'venv', dir], 'python3 -m venv');
  run(
    python,
    ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-input', '-r', requirements],
    `pip install for ${peer}`,
  );
  writeFileSync(join(dir, '.complete'), `${new Date().toISOString()}\n`);
  return python;
}
