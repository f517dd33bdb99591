// Runs the project's TypeScript under plain Node for the unit test runner: `node --import ./scripts/ts-hooks.mjs`.
//
// tsx's loader hooks run on a separate thread and answer every resolve and load by message, the modules of
// node_modules included: importing the Kubernetes client alone takes about three times as long through them.
// These hooks run in the loading thread (module.registerHooks) and touch only the project's .ts files: each is
// compiled by esbuild (as tsx does, with the same tsconfig options) once per content, and kept in
// ~/.cache/loopline/ts-hooks; everything else loads as Node loads it.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire, registerHooks } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('..', import.meta.url));
const tsconfigRaw = readFileSync(join(root, 'tsconfig.json'), 'utf8');
const cacheDir = join(process.env.LOOPLINE_CACHE ?? join(homedir(), '.cache/loopline'), 'ts-hooks');
let esbuild;

function compile(path, source) {
  esbuild ??= require('esbuild');
  const key = createHash('sha256')
    .update(`${esbuild.version}\0${tsconfigRaw}\0${path}\0${source}`)
    .digest('hex')
    .slice(0, 32);
  const cached = join(cacheDir, `${key}.mjs`);
  try {
    return readFileSync(cached, 'utf8');
  } catch {}
  const { code } = esbuild.transformSync(source, {
    loader: 'ts',
    format: 'esm',
    target: 'node24',
    sourcefile: path,
    sourcemap: 'inline',
    tsconfigRaw,
  });
  mkdirSync(cacheDir, { recursive: true });
  const temporary = `${cached}.${process.pid}`;
  writeFileSync(temporary, code);
  renameSync(temporary, cached);
  return code;
}

process.setSourceMapsEnabled(true);
registerHooks({
  load(url, context, nextLoad) {
    if (!url.startsWith('file:') || !url.endsWith('.ts') || url.includes('/node_modules/')) return nextLoad(url, context);
    const path = fileURLToPath(url);
    return { format: 'module', source: compile(path, readFileSync(path, 'utf8')), shortCircuit: true };
  },
});
