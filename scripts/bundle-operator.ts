/**
 * The operator as one ES module: an entry (operator/main.ts) and everything it imports, bundled and
 * tree-shaken by esbuild. This is what Dockerfile.operator ships and what the benchmarks measure.
 * Tree-shaking is the point: importing @kubernetes/client-node whole evaluates every generated API
 * class and model (~45 MB resident); the operator uses only its KubeConfig, Watch and request types.
 *   npx tsx scripts/bundle-operator.ts [entry] [outfile]     (default: operator/main.ts -> dist/operator/main.js)
 */
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { load } from 'js-yaml';

export async function bundleOperator(entry: string, outfile: string): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    legalComments: 'none',
    logLevel: 'warning',
    // Only a benchmark bundling itself reaches this file (and so esbuild); the operator never does. DuckDB (the
    // quality evaluator's engine) loads a native library: it stays a package beside the bundle.
    external: ['esbuild', '@duckdb/*'],
    // CommonJS packages inside an ES module bundle still call require() for Node's built-ins.
    banner: {
      js: "import { createRequire as loopline_createRequire } from 'node:module'; const require = loopline_createRequire(import.meta.url);",
    },
  });
}

/**
 * The node flags the bundle runs with in the chart (values.yaml operator.nodeOptions, passed as NODE_OPTIONS),
 * or `override` when one is given (a benchmark's BENCH_OPERATOR_NODE_OPTIONS).
 */
export function chartNodeOptions(override?: string): string[] {
  const values = load(readFileSync(new URL('../charts/loopline/values.yaml', import.meta.url), 'utf8')) as {
    operator: { nodeOptions?: string };
  };
  return (override ?? values.operator.nodeOptions ?? '').split(/\s+/).filter(Boolean);
}

// Run as a script (not when bundled into something that imports bundleOperator, where import.meta.url is the bundle).
if (
  process.argv[1] &&
  fileURLToPath(import.meta.url) === process.argv[1] &&
  process.argv[1].endsWith('bundle-operator.ts')
) {
  const [entry = 'operator/main.ts', outfile = 'dist/operator/main.js'] = process.argv.slice(2);
  await bundleOperator(entry, outfile);
  console.log(`${entry} -> ${outfile}`);
}
