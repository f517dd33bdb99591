// CLI: npx tsx e2e/local-kubelet/main.ts [--namespace NS] [--repo-root DIR] [--cache-dir DIR]
// Runs the local-kubelet against KUBECONFIG until SIGINT/SIGTERM. See kubelet.ts and images.ts.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startLocalKubelet } from './kubelet.ts';

const { values } = parseArgs({
  options: {
    namespace: { type: 'string' },
    'repo-root': { type: 'string', default: resolve(fileURLToPath(new URL('../..', import.meta.url))) },
    'cache-dir': { type: 'string' },
    kubeconfig: { type: 'string' },
  },
});

const kubelet = await startLocalKubelet({
  kubeconfig: values.kubeconfig,
  repoRoot: values['repo-root']!,
  namespace: values.namespace,
  cacheDir: values['cache-dir'],
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void kubelet.stop().then(() => process.exit(0)));
}
