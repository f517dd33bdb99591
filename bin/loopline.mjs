#!/usr/bin/env node
// Entry of `npx loopline`: runs the TypeScript CLI through tsx (the project runs TypeScript directly).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const cli = fileURLToPath(new URL('../operator/cli/main.ts', import.meta.url));
const result = spawnSync(process.execPath, ['--import', require.resolve('tsx'), cli, ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(result.status ?? 1);
