/**
 * The `loopline status` dashboard: a pure rendering of a StatusSnapshot into lines of plain text with aligned
 * columns. Colour (ANSI) only when asked for, i.e. when stdout is a terminal; widths are measured on the
 * plain text so colour never shifts a column.
 */
import type { CloudEvent } from '../events/cloudevents.ts';
import type { DriftEventData, FeatureDrift, ServedVersion, StatusSnapshot, VersionTraffic } from './snapshot.ts';

export interface RenderOptions {
  now: Date;
  color: boolean;
  /** Most drifted features listed. */
  topFeatures?: number;
}

type Tone = 'good' | 'warn' | 'bad' | 'dim' | 'title';
/** A table cell: text, and the tone it is painted in when colour is on. */
type Cell = string | { text: string; tone?: Tone };

const ANSI: Record<Tone, string> = { good: '32', warn: '33', bad: '31', dim: '2', title: '1' };

export function renderDashboard(snapshot: StatusSnapshot, options: RenderOptions): string[] {
  const paint = (text: string, tone?: Tone) =>
    options.color && tone && text ? `\x1b[${ANSI[tone]}m${text}\x1b[0m` : text;
  const cellText = (cell: Cell) => (typeof cell === 'string' ? cell : cell.text);
  const cellPaint = (cell: Cell) => (typeof cell === 'string' ? cell : paint(cell.text, cell.tone));
  /** Columns padded to the widest cell, two spaces apart; the last column is never padded. */
  const table = (rows: Cell[][], indent = ''): string[] => {
    const widths: number[] = [];
    for (const row of rows)
      row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, [...cellText(cell)].length)));
    return rows.map(
      (row) =>
        indent +
        row
          .map((cell, i) =>
            i === row.length - 1
              ? cellPaint(cell)
              : cellPaint(cell) + ' '.repeat(widths[i]! - [...cellText(cell)].length + 2),
          )
          .join('')
          .trimEnd(),
    );
  };
  const heading = (text: string, detail = '') => paint(text, 'title') + (detail ? `  ${detail}` : '');
  const ago = (time: string | undefined) => age(time, options.now);

  const { service, namespace, name } = snapshot;
  const status = service.status ?? {};
  const rollout = service.spec.rollout ?? {};
  const steps = rollout.steps ?? [5, 10, 25, 50, 100];
  const thresholds = rollout.analysis ?? {};
  const out: string[] = [];

  // Header: where the service is in its lifecycle.
  const phase = status.phase ?? 'Unknown';
  const header = [`${namespace}/${name}`, `model ${service.spec.model}`, `phase ${paint(phase, phaseTone(phase))}`];
  if (phase === 'Progressing') header.push(`step ${(status.currentStep ?? 0) + 1} of ${steps.length}`);
  if (rollout.paused) header.push(paint('paused', 'warn'));
  if (
    status.observedGeneration !== undefined &&
    service.metadata.generation !== undefined &&
    status.observedGeneration < service.metadata.generation
  ) {
    header.push(paint('(status not yet updated for the latest spec)', 'dim'));
  }
  out.push(header.join('  '));

  // Who serves: rows for the versions in traffic, label lines for the rest, all in one column grid.
  const weight = status.canaryWeight ?? 0;
  const labelled = (label: string, text: string) => `${label.padEnd(8)}${text}`;
  const roleRows: Cell[][] = [];
  if (status.stableVersion !== undefined)
    roleRows.push(['stable', `v${status.stableVersion}`, `${100 - weight}%`, selectorText(service.spec.stable)]);
  if (status.canaryVersion !== undefined) {
    const stepsText = steps
      .map((s, i) => (phase === 'Progressing' && i === (status.currentStep ?? 0) ? `[${s}]` : String(s)))
      .join(' ');
    roleRows.push([
      'canary',
      `v${status.canaryVersion}`,
      `${weight}%`,
      `${selectorText(service.spec.canary)}  steps ${stepsText} every ${rollout.interval ?? '1m'}`.trim(),
    ]);
  }
  if (status.stableVersion === undefined)
    out.push(labelled('stable', paint(`none serving yet (${selectorText(service.spec.stable)})`, 'warn')));
  out.push(...table(roleRows));
  if (status.canaryVersion === undefined)
    out.push(
      labelled(
        'canary',
        paint(
          service.spec.canary ? `none (${selectorText(service.spec.canary)} selects no other version)` : 'none',
          'dim',
        ),
      ),
    );
  if (service.spec.shadow?.enabled)
    out.push(labelled('shadow', `${service.spec.shadow.percent ?? 100}% of requests mirrored to the canary`));
  out.push(labelled('url', status.url ?? '-'));

  const conditions = status.conditions ?? [];
  if (conditions.length > 0) {
    out.push(
      '',
      ...table([
        ['CONDITION', 'STATUS', 'REASON', 'MESSAGE'].map((h) => ({ text: h, tone: 'title' as Tone })),
        ...conditions.map((c): Cell[] => [
          c.type,
          { text: c.status, tone: conditionTone(c.type, c.status) },
          c.reason,
          c.message,
        ]),
      ]),
    );
  }

  // Live traffic per version, from Prometheus.
  const { traffic } = snapshot;
  out.push('', heading('TRAFFIC', `last ${traffic.window}, Prometheus ${traffic.prometheusUrl}`));
  if (traffic.unavailable) {
    out.push(
      paint(
        `Prometheus unreachable at ${traffic.prometheusUrl} (${traffic.unavailable}): no latency, throughput or error rates`,
        'warn',
      ),
    );
  } else {
    const served = new Map(snapshot.versions.map((v) => [v.version, v.role]));
    const versions = [...new Set([...snapshot.versions.map((v) => v.version), ...traffic.byVersion.keys()])];
    const maxErrorRate = thresholds.maxErrorRate ?? 0.01;
    const rows: Cell[][] = versions.map((version) => {
      const figures = traffic.byVersion.get(version);
      const role = served.get(version);
      const share = role === 'stable' ? `${100 - weight}%` : role === 'canary' ? `${weight}%` : '-';
      return [
        `v${version}`,
        role ?? 'other',
        share,
        ...trafficCells(figures, maxErrorRate, thresholds.maxLatencyP95Ms, thresholds.maxLatencyP99Ms),
      ];
    });
    if (versions.length > 1) {
      const all = [...traffic.byVersion.values()];
      const rps = all.reduce((sum, v) => sum + (v.requestsPerSecond ?? 0), 0);
      const errors = all.reduce((sum, v) => sum + (v.requestsPerSecond ?? 0) * (v.errorRate ?? 0), 0);
      rows.push(['all', '', '', number(rps), rps > 0 ? percent(errors / rps) : '-']);
    }
    if (versions.length === 0) out.push(paint('no versions serving', 'dim'));
    else if (traffic.byVersion.size === 0)
      out.push(...table([trafficHeader(), ...rows]), paint(`no requests in the last ${traffic.window}`, 'dim'));
    else out.push(...table([trafficHeader(), ...rows]));
  }

  // The latest canary analysis, with the bounds it is held to.
  const analysis = status.analysis;
  if (analysis && (analysis.lastCheck || analysis.message)) {
    const bounds = [
      `requests ${analysis.requests ?? '-'} (min ${thresholds.minRequests ?? 20})`,
      `errors ${analysis.errorRate === undefined ? '-' : percent(analysis.errorRate)} (max ${percent(thresholds.maxErrorRate ?? 0.01)})`,
      `p95 ${ms(analysis.latencyP95Ms)}${thresholds.maxLatencyP95Ms !== undefined ? ` (max ${ms(thresholds.maxLatencyP95Ms)})` : ''}`,
      `p99 ${ms(analysis.latencyP99Ms)}${thresholds.maxLatencyP99Ms !== undefined ? ` (max ${ms(thresholds.maxLatencyP99Ms)})` : ''}`,
    ];
    const failed = analysis.failedChecks ?? 0;
    out.push(
      '',
      heading(
        'ANALYSIS',
        `last check ${analysis.lastCheck ? ago(analysis.lastCheck) : 'not yet'}, failed checks ${paint(`${failed} of ${thresholds.failureLimit ?? 2} allowed`, failed > 0 ? 'warn' : undefined)}`,
      ),
      bounds.join('  '),
    );
    if (analysis.message) out.push(paint(analysis.message, analysis.message.startsWith('Failed') ? 'bad' : undefined));
  }

  // The registry records of what is served.
  if (snapshot.versions.length > 0) {
    out.push(
      '',
      heading('MODEL VERSIONS'),
      ...table([
        ['VERSION', 'ROLE', 'STAGE', 'ALIASES', 'METRICS', 'TRAINED BY', 'AGE'].map((h) => ({
          text: h,
          tone: 'title' as Tone,
        })),
        ...snapshot.versions.map((v) => versionRow(v, ago)),
      ]),
    );
  }

  // Drift: the service's summary, and the most drifted features of the latest window.
  const drift = status.drift;
  // The latest window on NATS may be another version's (the canary's, or the stable one's before a promotion).
  const lastDrift = snapshot.nats.lastDrift;
  const stableWindow =
    lastDrift?.data.modelVersion === undefined || lastDrift.data.modelVersion === String(status.stableVersion)
      ? lastDrift
      : undefined;
  const features = topFeatures(stableWindow?.data, traffic.driftFeatures, options.topFeatures ?? 5);
  if (service.spec.drift?.enabled || drift || features.rows.length > 0) {
    const summary: string[] = [];
    if (drift?.score !== undefined)
      summary.push(`score ${number(drift.score)} (threshold ${number(service.spec.drift?.threshold ?? 0.3)})`);
    if (drift?.drifted !== undefined) summary.push(drift.drifted ? paint('DRIFTED', 'bad') : paint('no drift', 'good'));
    if (drift?.lastEventTime) summary.push(`last window ${ago(drift.lastEventTime)}`);
    if (status.lastRetrain?.trainingJob)
      summary.push(
        `retrain ${status.lastRetrain.trainingJob}${status.lastRetrain.trigger === 'QualityDrop' ? ' (quality drop)' : ''} started ${ago(status.lastRetrain.time)}`,
      );
    out.push(
      '',
      heading(
        'DRIFT',
        summary.join('  ') || (service.spec.drift?.enabled ? 'no window reported yet' : 'monitoring off'),
      ),
    );
    if (features.rows.length > 0) {
      out.push(
        ...table([
          ['FEATURE', 'METHOD', 'SCORE', 'THRESHOLD', 'DRIFTED'].map((h) => ({ text: h, tone: 'title' as Tone })),
          ...features.rows.map((f): Cell[] => [
            f.name,
            f.method ?? '-',
            number(f.score),
            f.threshold === undefined ? '-' : number(f.threshold),
            f.drifted ? { text: 'yes', tone: 'bad' } : 'no',
          ]),
        ]),
        paint(`(${features.source})`, 'dim'),
      );
    } else if (drift?.driftedFeatures?.length) {
      out.push(`drifted features: ${drift.driftedFeatures.join(', ')}`);
    }
  }

  // Quality: each version's metrics from its labelled predictions (the latest quality evaluation).
  const quality = status.quality;
  if (service.spec.logging?.enabled || quality) {
    const detail = quality?.lastEventTime
      ? `window ${quality.window?.duration ?? '-'}, evaluated ${ago(quality.lastEventTime)}, threshold ${number(quality.versions?.[0]?.threshold ?? service.spec.quality?.threshold ?? 0.5)}`
      : service.spec.quality?.enabled === false
        ? 'evaluation off'
        : 'no evaluation reported yet';
    out.push('', heading('QUALITY', detail));
    const metric = (value: number | null | undefined) => (value === null || value === undefined ? '-' : number(value));
    const role = (version: number) =>
      version === status.stableVersion ? 'stable' : version === status.canaryVersion ? 'canary' : '-';
    if (quality?.versions?.length) {
      out.push(
        ...table([
          [
            'VERSION',
            'ROLE',
            'LABELLED',
            'AUC',
            'ACCURACY',
            'PRECISION',
            'RECALL',
            'LOG LOSS',
            'BRIER',
            'CAL. ERROR',
          ].map((h) => ({ text: h, tone: 'title' as Tone })),
          ...quality.versions.map((v): Cell[] => [
            `v${v.version}`,
            role(v.version),
            `${v.count ?? 0} of ${v.predictions ?? 0}`,
            metric(v.auc),
            metric(v.accuracy),
            metric(v.precision),
            metric(v.recall),
            metric(v.logLoss),
            metric(v.brier),
            metric(v.calibrationError),
          ]),
        ]),
      );
    }
  }

  // What happened: Kubernetes Events, then the lifecycle events on NATS.
  out.push('', heading('EVENTS', `Kubernetes, newest last`));
  if (snapshot.events.length === 0) out.push(paint('none', 'dim'));
  else {
    out.push(
      ...table([
        ['AGE', 'TYPE', 'REASON', 'MESSAGE'].map((h) => ({ text: h, tone: 'title' as Tone })),
        ...snapshot.events.map((e): Cell[] => [
          ago(e.time),
          { text: e.type, tone: e.type === 'Warning' ? 'warn' : undefined },
          e.count > 1 ? `${e.reason} (x${e.count})` : e.reason,
          e.note,
        ]),
      ]),
    );
  }

  const { nats } = snapshot;
  out.push('', heading('LIFECYCLE', `NATS ${nats.subject}`));
  if (nats.unavailable) out.push(paint(`lifecycle events not shown: ${nats.unavailable}`, 'warn'));
  else if (nats.lifecycle.length === 0) out.push(paint('none', 'dim'));
  else
    out.push(
      ...table([
        ['AGE', 'EVENT', 'DETAILS'].map((h) => ({ text: h, tone: 'title' as Tone })),
        ...nats.lifecycle.map((e) => lifecycleRow(e, ago)),
      ]),
    );
  return out;
}

function trafficHeader(): Cell[] {
  return ['VERSION', 'ROLE', 'WEIGHT', 'REQ/S', 'ERRORS', 'P50', 'P95', 'P99'].map((h) => ({
    text: h,
    tone: 'title' as Tone,
  }));
}

function trafficCells(
  figures: VersionTraffic | undefined,
  maxErrorRate: number,
  maxP95?: number,
  maxP99?: number,
): Cell[] {
  if (!figures) return ['-', '-', '-', '-', '-'];
  const over = (value: number | null, max: number | undefined): Tone | undefined =>
    value !== null && max !== undefined && value > max ? 'bad' : undefined;
  return [
    figures.requestsPerSecond === null ? '-' : number(figures.requestsPerSecond),
    {
      text: figures.errorRate === null ? '-' : percent(figures.errorRate),
      tone: over(figures.errorRate, maxErrorRate),
    },
    ms(figures.latencyP50Ms),
    { text: ms(figures.latencyP95Ms), tone: over(figures.latencyP95Ms, maxP95) },
    { text: ms(figures.latencyP99Ms), tone: over(figures.latencyP99Ms, maxP99) },
  ];
}

function versionRow(served: ServedVersion, ago: (time?: string) => string): Cell[] {
  const mv = served.modelVersion;
  if (!mv) return [`v${served.version}`, served.role, { text: served.missing ?? 'unknown', tone: 'bad' }];
  const metrics = Object.entries(mv.spec.metrics ?? {})
    .sort(([a], [b]) => (a === mv.spec.primaryMetric ? -1 : b === mv.spec.primaryMetric ? 1 : a.localeCompare(b)))
    .map(([metric, value]) => `${metric}=${number(value)}`)
    .join(' ');
  return [
    `v${served.version}`,
    served.role,
    mv.status?.stage ?? mv.spec.stage ?? 'None',
    (mv.status?.aliases ?? []).join(',') || '-',
    metrics || '-',
    mv.spec.lineage?.trainingJob ?? '-',
    ago(mv.metadata.creationTimestamp as unknown as string | undefined),
  ];
}

function lifecycleRow(event: CloudEvent, ago: (time?: string) => string): Cell[] {
  const reason = event.type.split('.').pop() ?? event.type;
  const data = (event.data ?? {}) as Record<string, unknown>;
  const detail = typeof data.message === 'string' ? data.message : JSON.stringify(data);
  return [ago(event.time), reason, detail];
}

/** The drift event's features when NATS has one (exact, with thresholds), else the predictors' gauges. */
function topFeatures(
  event: DriftEventData | undefined,
  gauges: FeatureDrift[],
  count: number,
): { rows: FeatureDrift[]; source: string } {
  const fromEvent = event?.features?.map((f) => ({
    name: f.name,
    method: f.method,
    score: f.score,
    threshold: f.threshold,
    drifted: f.drifted,
  }));
  const rows = fromEvent ?? gauges;
  // Drifted first, then by how far over its threshold (or its score, without one).
  const severity = (f: FeatureDrift) => (f.threshold ? f.score / f.threshold : f.score);
  const sorted = [...rows].sort(
    (a, b) => Number(b.drifted) - Number(a.drifted) || severity(b) - severity(a) || a.name.localeCompare(b.name),
  );
  const source = fromEvent
    ? `latest drift window${event?.modelVersion ? ` of v${event.modelVersion}` : ''}, from NATS`
    : 'drift_score gauges, from Prometheus';
  return { rows: sorted.slice(0, count), source };
}

function selectorText(selector: { version?: number; alias?: string } | undefined): string {
  if (!selector) return '';
  return selector.alias !== undefined ? `alias ${selector.alias}` : `version ${selector.version}`;
}

function phaseTone(phase: string): Tone | undefined {
  return { Stable: 'good', Promoted: 'good', Progressing: 'warn', RolledBack: 'bad', Degraded: 'bad' }[phase] as
    | Tone
    | undefined;
}

function conditionTone(type: string, status: string): Tone | undefined {
  // Most conditions are good when True; Drifted and Degraded are the other way round.
  const goodWhenTrue = !/^(Drifted|Degraded)$/.test(type);
  if (status === 'Unknown') return 'warn';
  return (status === 'True') === goodWhenTrue ? 'good' : 'bad';
}

/** 0.431 → `0.431`, 31.24 → `31.2`, 1234.5 → `1235`: three significant figures at most. */
export function number(value: number): string {
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 100) return String(Math.round(value));
  return String(Number(value.toPrecision(3)));
}

export function percent(share: number): string {
  return `${(share * 100).toFixed(2)}%`;
}

export function ms(value: number | null | undefined): string {
  if (value === null || value === undefined) return '-';
  if (value >= 10_000) return `${number(value / 1000)} s`;
  return `${number(value)} ms`;
}

/** Age in the style of kubectl: 45s, 3m, 5h, 2d. */
export function age(time: string | undefined, now: Date): string {
  const at = time ? Date.parse(time) : NaN;
  if (Number.isNaN(at)) return '-';
  const seconds = Math.max(0, Math.round((now.getTime() - at) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}
