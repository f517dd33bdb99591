// A reader for the two Dockerfiles, and a stand-in for `docker build` where no Docker engine exists: it runs
// the build stage's own COPY and RUN lines in a scratch directory (with the repository's node_modules in
// place of `npm ci`) and assembles the final stage's files, so the image's entry point can be started.
import { execSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from './chart.ts';

export interface Instruction {
  op: string;
  args: string;
}

export interface Stage {
  name: string;
  from: string;
  instructions: Instruction[];
}

export function readDockerfile(file: string): { args: Record<string, string>; stages: Stage[] } {
  const text = readFileSync(join(ROOT, file), 'utf8').replace(/\\\n/g, ' ');
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [, op, rest] = /^(\w+)\s+(.*)$/.exec(line) ?? [];
    if (!op) throw new Error(`${file}: cannot read "${line}"`);
    const instruction = { op: op.toUpperCase(), args: rest.replace(/\s+/g, ' ') };
    if (instruction.op === 'FROM') {
      const [image, , name] = instruction.args.split(' ');
      stages.push({
        name: name ?? String(stages.length),
        from: image.replace(/\$\{(\w+)\}/g, (_, a) => args[a] ?? ''),
        instructions: [],
      });
    } else if (instruction.op === 'ARG' && stages.length === 0) {
      const [key, value = ''] = instruction.args.split('=');
      args[key] = value;
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return { args, stages };
}

/** Whether one .dockerignore pattern covers a path (the forms this repository uses: name, **\/name, *.ext). */
function matches(rel: string, p: string): boolean {
  if (p.startsWith('*.')) return rel.endsWith(p.slice(1));
  const name = p.replace(/^\*\*\//, '');
  return p.startsWith('**/') ? rel.split('/').includes(name) : rel === p || rel.startsWith(`${p}/`);
}

/** Paths .dockerignore keeps out of the build context. Docker's rule: the last pattern that matches decides; `!pattern` takes a path back. */
function ignored(rel: string, patterns: string[]): boolean {
  let result = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (matches(rel, p.slice(1))) result = false;
    } else if (matches(rel, p)) result = true;
  }
  return result;
}

function copyContext(sources: string[], dest: string, into: string): void {
  const patterns = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const target = resolve(into, dest);
  for (const source of sources) {
    const copy = (from: string, to: string) => {
      const rel = relative(ROOT, from);
      if (ignored(rel, patterns)) return;
      if (statSync(from).isDirectory()) {
        mkdirSync(to, { recursive: true });
        for (const name of readdirSync(from)) copy(join(from, name), join(to, name));
      } else {
        mkdirSync(dirname(to), { recursive: true });
        cpSync(from, to);
      }
    };
    const from = join(ROOT, source);
    if (!existsSync(from)) throw new Error(`COPY ${source}: not in the build context`);
    // COPY a/b c/ puts b inside c/; COPY dir ./x copies dir's contents to x.
    const to =
      dest.endsWith('/') && !statSync(from).isDirectory()
        ? join(target, source.split('/').at(-1)!)
        : sources.length > 1
          ? join(target, source.split('/').at(-1)!)
          : target;
    copy(from, to);
  }
}

/**
 * Runs `stage` of `file` in `dir` as `docker build` would, except `npm ci` (the repository's node_modules stand in).
 * Returns the stage's working directory.
 */
export function runBuildStage(stage: Stage, dir: string): string {
  let workdir = dir;
  for (const { op, args } of stage.instructions) {
    if (op === 'WORKDIR') {
      workdir = join(dir, args);
      mkdirSync(workdir, { recursive: true });
    } else if (op === 'COPY') {
      if (args.startsWith('--from')) throw new Error('COPY --from in a build stage is not supported here');
      const parts = args.split(' ');
      copyContext(parts.slice(0, -1), parts.at(-1)!, workdir);
    } else if (op === 'RUN') {
      const commands = args.split(' && ').filter((c) => !/^npm ci\b/.test(c.trim()));
      if (!existsSync(join(workdir, 'node_modules')))
        symlinkSync(join(ROOT, 'node_modules'), join(workdir, 'node_modules'));
      if (commands.length)
        execSync(commands.join(' && '), {
          cwd: workdir,
          stdio: 'pipe',
          shell: '/bin/sh',
          env: { ...process.env, PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env.PATH}` },
        });
    }
  }
  return workdir;
}

/** The final stage's files from the build stage (`COPY --from=<build> <path> <dest>`), then made read-only like the image's root filesystem. */
export function assembleRuntime(final: Stage, buildName: string, buildDir: string, dir: string): string {
  let workdir = dir;
  for (const { op, args } of final.instructions) {
    if (op === 'WORKDIR') {
      workdir = join(dir, args);
      mkdirSync(workdir, { recursive: true });
    } else if (op === 'COPY' && args.startsWith(`--from=${buildName} `)) {
      const [, source, dest] = args.split(' ');
      const from = join(buildDir, relative('/src', source));
      const to = resolve(workdir, dest);
      if (statSync(from).isDirectory()) cpSync(from, to, { recursive: true });
      else {
        mkdirSync(dirname(to), { recursive: true });
        cpSync(from, to);
      }
    }
  }
  // Production node_modules come from the deps stage (npm ci --omit=dev needs the registry); the repository's stand in.
  // An image without them (a bundle) gets none, so a missing module fails here as it would in the image.
  if (final.instructions.some((i) => i.op === 'COPY' && / \/src\/node_modules /.test(i.args)))
    symlinkSync(join(ROOT, 'node_modules'), join(workdir, 'node_modules'));
  execSync(`chmod -R a-w ${JSON.stringify(workdir)}`);
  return workdir;
}

export function makeWritable(dir: string): void {
  if (existsSync(dir)) execSync(`chmod -R u+w ${JSON.stringify(dir)}`);
  chmodSync(dir, 0o755);
}
