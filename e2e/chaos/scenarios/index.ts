// Every chaos scenario, in the order `npm run chaos` runs them, at the length it runs them (npm test runs
// the same functions shorter: e2e/chaos/test/).
import type { ScenarioResult } from '../report.ts';
import { apiServerRestarts } from './api-server.ts';
import { connectionResets } from './connection-resets.ts';
import { natsOutage } from './nats.ts';
import { objectStorageOutage } from './object-storage.ts';
import { predictorReplacement } from './predictor-replacement.ts';
import { prometheusOutage } from './prometheus.ts';
import { soak } from './soak.ts';
import { watchExpiry } from './watch-expiry.ts';

export interface Scenario {
  name: string;
  full(): Promise<ScenarioResult>;
}

export const scenarios: Scenario[] = [
  { name: 'api-server-restart', full: () => apiServerRestarts({ jobs: 12, restarts: 3, downMs: 5000 }) },
  { name: 'watch-expiry', full: () => watchExpiry({ rounds: 3, jobs: 4 }) },
  { name: 'connection-resets', full: () => connectionResets({ durationMs: 60_000, resetAfterMs: 3000, jobs: 8 }) },
  { name: 'prometheus-outage', full: () => prometheusOutage({ latencyMs: 2000, outageMs: 30_000, stallMs: 25_000 }) },
  { name: 'nats-outage', full: () => natsOutage({ outageMs: 60_000, events: 12 }) },
  { name: 'object-storage-outage', full: () => objectStorageOutage({ predictorOutageMs: 30_000 }) },
  { name: 'predictor-replacement', full: () => predictorReplacement({ deletions: 10 }) },
  {
    name: 'soak',
    full: () =>
      soak({ durationMs: Number(process.env.CHAOS_SOAK_MINUTES ?? 10) * 60_000, killEveryMs: [15_000, 45_000] }),
  },
];
