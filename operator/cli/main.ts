/**
 * `npx loopline promote|rollback|pause|resume|status <inferenceservice> [-n namespace]`: manual control of a
 * rollout through the InferenceService's spec.rollout fields, so every change is an ordinary, audited API write.
 */
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeApi, kinds } from '../engine/index.ts';

const USAGE = 'usage: loopline promote|rollback|pause|resume|status <inferenceservice> [-n namespace]';

const SPEC_CHANGES: Record<string, Record<string, boolean>> = {
  promote: { promoteNow: true, abort: false, paused: false },
  rollback: { abort: true, promoteNow: false },
  pause: { paused: true },
  resume: { paused: false },
};

export async function run(argv: string[], out: (line: string) => void = console.log): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { namespace: { type: 'string', short: 'n' } } });
  const [command, name] = positionals;
  if (!command || !name || !(command in SPEC_CHANGES || command === 'status')) {
    out(USAGE);
    return 2;
  }
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const namespace = values.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  const api = new KubeApi(kc);
  if (command !== 'status') {
    await api.mergePatch(kinds.InferenceService, namespace, name, { spec: { rollout: SPEC_CHANGES[command] } }, 'loopline-cli');
    out(`inferenceservice ${namespace}/${name}: ${command} requested`);
    return 0;
  }
  const isvc = await api.get(kinds.InferenceService, namespace, name);
  const s = isvc.status ?? {};
  const a = s.analysis ?? {};
  const lines = [
    `${namespace}/${name}  model ${isvc.spec.model}  phase ${s.phase ?? 'Unknown'}`,
    `stable  v${s.stableVersion ?? '?'}  ${100 - (s.canaryWeight ?? 0)}%`,
    s.canaryVersion !== undefined ? `canary  v${s.canaryVersion}  ${s.canaryWeight ?? 0}%  step ${s.currentStep ?? 0}${isvc.spec.rollout?.paused ? '  (paused)' : ''}` : 'canary  none',
    a.lastCheck ? `analysis ${a.lastCheck}: ${a.message ?? ''} (failed checks ${a.failedChecks ?? 0})` : 'analysis none yet',
    s.drift ? `drift   score ${s.drift.score} drifted=${s.drift.drifted} features ${(s.drift.driftedFeatures ?? []).join(',') || '-'} at ${s.drift.lastEventTime}` : 'drift   no events',
    s.lastRetrain ? `retrain ${s.lastRetrain.trainingJob} at ${s.lastRetrain.time} (event ${s.lastRetrain.eventId})` : 'retrain none',
    `url     ${s.url ?? '-'}`,
    ...(s.conditions ?? []).map((c: { type: string; status: string; reason: string; message: string }) => `${c.type}=${c.status} ${c.reason}: ${c.message}`),
  ];
  for (const line of lines) out(line);
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  run(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: Error) => {
      console.error(`loopline: ${error.message}`);
      process.exit(1);
    },
  );
}
