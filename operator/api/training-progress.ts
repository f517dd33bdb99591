// The training progress contract between the operator and training pods: the two variables a pod gets, the
// body it POSTs (training-progress.schema.json) and what a report becomes in TrainingJob status.progress.
// A pod of attempt N of TrainingJob ns/name gets
//   LOOPLINE_PROGRESS_URL    <operator's progress base URL>/v1/namespaces/<ns>/trainingjobs/<name>/progress
//   LOOPLINE_PROGRESS_TOKEN  a random token of that attempt, from a Secret the TrainingJob owns (secretKeyRef)
// and POSTs the schema's JSON with `Authorization: Bearer <token>`. See docs/training-progress.md.
import { Ajv, type ErrorObject } from 'ajv';
import { rfc3339 } from './contracts.ts';
import type { TrainingJobProgressStatus } from './types.ts';
import schema from './training-progress.schema.json' with { type: 'json' };

import type { ProgressReport } from './progress-report.ts';

export { PROGRESS_ENV, type ProgressReport } from './progress-report.ts';

/** The path a job's pods POST to, below the operator's progress base URL. */
export function progressPath(namespace: string, name: string): string {
  return `/v1/namespaces/${encodeURIComponent(namespace)}/trainingjobs/${encodeURIComponent(name)}/progress`;
}

/** `{ namespace, name }` of a progress path, or undefined when the path is not one. */
export function parseProgressPath(path: string): { namespace: string; name: string } | undefined {
  const m = /^\/v1\/namespaces\/([^/]+)\/trainingjobs\/([^/]+)\/progress$/.exec(path);
  if (!m) return undefined;
  try {
    return { namespace: decodeURIComponent(m[1]), name: decodeURIComponent(m[2]) };
  } catch {
    return undefined;
  }
}

const validate = new Ajv({ allErrors: true, strict: false }).compile<ProgressReport>(schema);

/** Names the field and what is wrong with it, in words a trainer's author can act on. */
function describe(error: ErrorObject): string {
  const field = error.instancePath.replace(/^\//, '').replaceAll('/', '.') || 'body';
  if (error.keyword === 'additionalProperties') {
    const extra = (error.params as { additionalProperty: string }).additionalProperty;
    return `${field === 'body' ? '' : `${field}.`}${extra} is not a field of a progress report (fields: epoch, totalEpochs, loss, metrics, eta)`;
  }
  if (error.keyword === 'required')
    return `${(error.params as { missingProperty: string }).missingProperty} is required`;
  if (error.keyword === 'propertyNames')
    return `metrics: "${(error.params as { propertyName: string }).propertyName}" is not a metric name (letters, digits, _ . : / -; at most 63)`;
  return `${field} ${error.message}`;
}

/** A report from a request body, or what is wrong with it (every problem, each naming its field). */
export function parseProgressReport(
  body: unknown,
): { ok: true; report: ProgressReport } | { ok: false; errors: string[] } {
  if (!validate(body)) {
    // A bad metric name comes twice: as the name's own pattern error and as the propertyNames error that names it.
    const errors = (validate.errors ?? []).filter((e) => e.propertyName === undefined);
    return { ok: false, errors: [...new Set(errors.map(describe))] };
  }
  if (body.epoch > body.totalEpochs)
    return { ok: false, errors: [`epoch ${body.epoch} is more than totalEpochs ${body.totalEpochs}`] };
  return { ok: true, report: body };
}

/** status.progress for a report of `attempt` received at `receivedAt`. */
export function progressStatus(report: ProgressReport, attempt: number, receivedAt: Date): TrainingJobProgressStatus {
  const status: TrainingJobProgressStatus = {
    attempt,
    epoch: report.epoch,
    totalEpochs: report.totalEpochs,
    epochs: `${report.epoch}/${report.totalEpochs}`,
    updatedAt: rfc3339(receivedAt),
  };
  if (report.loss !== undefined) status.loss = report.loss;
  if (report.metrics !== undefined) status.metrics = report.metrics;
  if (report.eta !== undefined) status.eta = rfc3339(new Date(receivedAt.getTime() + report.eta * 1000));
  return status;
}
