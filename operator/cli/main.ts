/**
 * `npx loopline`: see an InferenceService at a glance (`status`) and steer its rollout by hand
 * (`promote`, `rollback`, `pause`, `resume`). Steering writes the InferenceService's spec.rollout fields, so
 * every change is an ordinary, audited API write that the operator acts on.
 */
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeApi, kinds } from '../engine/index.ts';
import { STREAM_NAME } from '../events/stream.ts';
import { renderDashboard } from './dashboard.ts';
import { gatherStatus, type GatherOptions } from './snapshot.ts';

export const USAGE = `usage: loopline <command> <inferenceservice> [-n namespace]

commands:
  status     the service at a glance: versions and weights, latency, throughput, errors,
             model metrics, drift, recent Kubernetes Events and NATS lifecycle events
  promote    promote the canary now, skipping the remaining steps
  rollback   send all traffic back to stable and abort the canary
  pause      hold the current canary step
  resume     continue a paused rollout
  evaluate   join logged predictions with labels and publish their quality (loopline evaluate --help)

status options:
  -w, --watch            redraw every --interval seconds until interrupted
  --interval <seconds>   refresh period with --watch (default 2)
  --window <duration>    range for rates and latency quantiles, e.g. 30s, 5m (default 1m)
  --prometheus <url>     Prometheus query URL (default $PROMETHEUS_URL or http://127.0.0.1:9090)
  --events <n>           how many recent events to show (default 8)

environment: KUBECONFIG, PROMETHEUS_URL, NATS_URL, NATS_CREDS_FILE, NATS_STREAM (default LOOPLINE)`;

const SPEC_CHANGES: Record<string, Record<string, boolean>> = {
  promote: { promoteNow: true, abort: false, paused: false },
  rollback: { abort: true, promoteNow: false },
  pause: { paused: true },
  resume: { paused: false },
};

export interface RunOptions {
  /** stdout is a terminal: colour, and --watch redraws in place instead of appending frames. */
  terminal?: { color: boolean; redraw: boolean };
  env?: Record<string, string | undefined>;
  /** Ends --watch. */
  signal?: AbortSignal;
}

export async function run(
  argv: string[],
  out: (line: string) => void = console.log,
  options: RunOptions = {},
): Promise<number> {
  // The evaluator (what the quality CronJobs run) has options of its own; loaded only when asked for (DuckDB).
  if (argv[0] === 'evaluate')
    return await (await import('../quality/evaluate.ts')).runEvaluate(argv.slice(1), out, options.env ?? process.env);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        namespace: { type: 'string', short: 'n' },
        watch: { type: 'boolean', short: 'w' },
        interval: { type: 'string' },
        window: { type: 'string' },
        prometheus: { type: 'string' },
        events: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    out(`loopline: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, name] = positionals;
  if (values.help) {
    out(USAGE);
    return 0;
  }
  if (!command || !name || positionals.length > 2 || !(command in SPEC_CHANGES || command === 'status')) {
    out(USAGE);
    return 2;
  }
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const namespace = values.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  const api = new KubeApi(kc);
  if (command !== 'status') {
    await api.mergePatch(
      kinds.InferenceService,
      namespace,
      name,
      { spec: { rollout: SPEC_CHANGES[command] } },
      'loopline-cli',
    );
    out(`inferenceservice ${namespace}/${name}: ${command} requested`);
    return 0;
  }

  const env = options.env ?? process.env;
  const interval = Number(values.interval ?? 2);
  const events = Number(values.events ?? 8);
  const window = values.window ?? '1m';
  const problems = [
    !(interval > 0) && `--interval must be a positive number of seconds, not ${values.interval}`,
    !(Number.isInteger(events) && events >= 0) && `--events must be a whole number, not ${values.events}`,
    !/^\d+(ms|s|m|h|d)$/.test(window) && `--window must be a Prometheus duration such as 30s or 5m, not ${window}`,
  ].filter(Boolean);
  if (problems.length > 0) {
    out(`loopline: ${problems.join('; ')}`);
    return 2;
  }
  const gather: GatherOptions = {
    prometheusUrl: values.prometheus ?? (env.PROMETHEUS_URL || 'http://127.0.0.1:9090'),
    window,
    eventCount: events,
    ...(env.NATS_URL
      ? {
          nats: {
            url: env.NATS_URL,
            stream: env.NATS_STREAM || STREAM_NAME,
            ...(env.NATS_CREDS_FILE ? { credsFile: env.NATS_CREDS_FILE } : {}),
          },
        }
      : {}),
  };
  const terminal = options.terminal ?? { color: false, redraw: false };
  const frame = async () =>
    renderDashboard(await gatherStatus(api, namespace, name, gather), { now: new Date(), color: terminal.color });

  if (!values.watch) {
    for (const line of await frame()) out(line);
    return 0;
  }
  // Watching: a failed refresh (the API server restarting, the service deleted) is shown, not fatal.
  while (!options.signal?.aborted) {
    let lines: string[];
    try {
      lines = await frame();
    } catch (error) {
      lines = [`loopline: ${(error as Error).message}`];
    }
    const stamp = `every ${interval}s, ${new Date().toISOString()}`;
    if (terminal.redraw) out(`\x1b[H\x1b[2J${stamp}\n${lines.join('\n')}`);
    else for (const line of [`--- ${stamp}`, ...lines, '']) out(line);
    await sleep(interval * 1000, options.signal);
  }
  return 0;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const stopWatching = new AbortController();
  process.once('SIGINT', () => stopWatching.abort());
  const tty = process.stdout.isTTY === true;
  run(process.argv.slice(2), console.log, {
    terminal: { color: tty && !process.env.NO_COLOR, redraw: tty },
    signal: stopWatching.signal,
  }).then(
    (code) => process.exit(code),
    (error: Error) => {
      console.error(`loopline: ${error.message}`);
      process.exit(1);
    },
  );
}
