// What a training pod sends the operator's progress endpoint (docs/training-progress.md), with no imports, so
// the example trainer's image carries this file alone.

/** The environment a training pod finds the endpoint and its token in. */
export const PROGRESS_ENV = { url: 'LOOPLINE_PROGRESS_URL', token: 'LOOPLINE_PROGRESS_TOKEN' } as const;

/** What a training pod reports (training-progress.schema.json). */
export interface ProgressReport {
  epoch: number;
  totalEpochs: number;
  loss?: number;
  metrics?: Record<string, number>;
  /** Seconds training is still expected to take. */
  eta?: number;
}
