// The project brings its own Node (the `node` devDependency, pinned): every test, the demo and the
// processes they spawn run on it, whatever `node` the machine has, and installing needs no npm config
// that npm is dropping.
// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

test("the tests run on the Node pinned in devDependencies (24 LTS), not the machine's", () => {
  assert.match(pkg.devDependencies.node, /^24\.\d+\.\d+$/, 'devDependencies.node is an exact 24.x version');
  assert.is(process.version, `v${pkg.devDependencies.node}`);
  assert.is(pkg.engines.node, '>=24');
});

test("node from the project's bin folder is the pinned Node (what npm scripts and demo.sh run)", () => {
  const run = spawnSync(join(root, 'node_modules/.bin/node'), ['--version'], { encoding: 'utf8' });
  assert.is(run.stdout.trim(), `v${pkg.devDependencies.node}`);
});

test("install scripts: the pinned Node's is allowed, onnxruntime-node's CUDA download is denied", () => {
  assert.is(pkg.allowScripts.node, true);
  assert.is(pkg.allowScripts['onnxruntime-node'], false);
  assert.not.match(
    readFileSync(join(root, '.npmrc'), 'utf8'),
    /onnxruntime-node-install/,
    'a key npm warns it will stop reading',
  );
});

test.run();
