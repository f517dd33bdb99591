// The CloudEvents 1.0 (structured JSON) envelope of a drift report, published on
// loopline.drift.<namespace>.<inferenceservice> and consumed by the operator.
import { randomUUID } from 'node:crypto';
import { DRIFT_EVENT_TYPE, driftSubject } from '../../../operator/api/contracts.ts';
import type { DriftReport } from '../drift/monitor.ts';

export { DRIFT_EVENT_TYPE };

export interface DriftEventData extends DriftReport {
  namespace: string;
  inferenceService: string;
}

export interface DriftCloudEvent {
  specversion: '1.0';
  /** Unique per window; JetStream deduplicates on it and consumers may too. */
  id: string;
  source: string;
  type: typeof DRIFT_EVENT_TYPE;
  subject: string;
  time: string;
  datacontenttype: 'application/json';
  data: DriftEventData;
}

export { driftSubject };

export function driftCloudEvent(report: DriftReport, namespace: string, inferenceService: string): DriftCloudEvent {
  return {
    specversion: '1.0',
    id: randomUUID(),
    source: `/apis/loopline.dev/v1alpha1/namespaces/${namespace}/inferenceservices/${inferenceService}`,
    type: DRIFT_EVENT_TYPE,
    subject: `${report.model}/${report.modelVersion}`,
    time: report.window.end,
    datacontenttype: 'application/json',
    data: { namespace, inferenceService, ...report },
  };
}
