// local-kubelet: a stand-in kubelet for the simulated (KWOK) nodes of Loopline's local cluster.
//
// What each Loopline image means on this machine. The image is a checkout of this repository
// with WORKDIR at its root, and the ENTRYPOINT below; there is no CMD. As with a container runtime:
//   - no `command` in the pod: ENTRYPOINT followed by the pod's `args`;
//   - a `command`: it replaces the ENTRYPOINT (looked up on PATH, run from the repository root),
//     followed by the pod's `args`.
// `node` is the image's Node: the one this kubelet runs on (the project's pinned Node 24), never
// whichever `node` comes first on PATH.
// Images outside this table are not ours to run: KWOK plays the kubelet for them.
import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

export interface LocalImage {
  /** Repository part of the image reference, without tag or digest. */
  repository: string;
  entrypoint: string[];
}

export const IMAGE_PREFIX = 'loopline/';

export const LOCAL_IMAGES: readonly LocalImage[] = [
  { repository: 'loopline/example-trainer', entrypoint: ['node', '--import', 'tsx', 'examples/trainer/src/main.ts'] },
  { repository: 'loopline/predictor', entrypoint: ['node', '--import', 'tsx', 'server/src/main.ts'] },
  // The operator image; its pods here are the quality evaluator's (`evaluate ...`, the CronJobs the operator owns).
  { repository: 'loopline/operator', entrypoint: ['node', '--import', 'tsx', 'operator/main.ts'] },
];

/** `loopline/predictor:0.1.0@sha256:...` -> `loopline/predictor`. */
export function imageRepository(image: string): string {
  const noDigest = image.split('@')[0];
  const lastSlash = noDigest.lastIndexOf('/');
  const colon = noDigest.indexOf(':', lastSlash + 1);
  return colon < 0 ? noDigest : noDigest.slice(0, colon);
}

export function isLooplineImage(image: string | undefined): boolean {
  return !!image && image.startsWith(IMAGE_PREFIX);
}

export type CommandLine = { ok: true; argv: string[] } | { ok: false; reason: string; message: string };

/** The argv a container runs locally, or the kubelet-style waiting reason why it cannot. */
export function commandLine(container: { image?: string; command?: string[]; args?: string[] }): CommandLine {
  const repository = imageRepository(container.image ?? '');
  const known = LOCAL_IMAGES.find((i) => i.repository === repository);
  if (!known) {
    return {
      ok: false,
      reason: 'ErrImagePull',
      message: `local-kubelet has no local command for image "${container.image}"; it runs ${LOCAL_IMAGES.map((i) => i.repository).join(', ')}`,
    };
  }
  const [program, ...rest] = container.command?.length ? container.command : known.entrypoint;
  return { ok: true, argv: [program === 'node' ? process.execPath : program, ...rest, ...(container.args ?? [])] };
}

/** The executable a command names, as a container runtime resolves it: a path (relative to the WORKDIR), or a name looked up on PATH. */
export function lookPath(command: string, workdir: string, path: string): string | undefined {
  const executable = (file: string) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (command.includes('/')) {
    const file = isAbsolute(command) ? command : join(workdir, command);
    return executable(file) ? file : undefined;
  }
  return path
    .split(delimiter)
    .filter(Boolean)
    .map((dir) => join(dir, command))
    .find(executable);
}
