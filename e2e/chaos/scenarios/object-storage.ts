/**
 * (f) The S3 server unreachable from pods (Toxiproxy between them and versitygw, on the pod bridge's host
 * address) while a trainer uploads its model and while a predictor starts: the attempt fails, or the predictor
 * stays unready, with the reason; the operator retries the attempt with backoff and the predictor retries its
 * fetch with backoff; once S3 is back both recover with nobody restarting anything.
 */
import { LABELS } from '../../../operator/api/contracts.ts';
import { kinds, type KubeObject } from '../../../operator/engine/index.ts';
import { sleep, uniqueName, waitFor } from '../../../test/support/local.ts';
import { PROXY, startChaos } from '../harness.ts';
import { ScenarioRecord, type ScenarioResult } from '../report.ts';
import { checkVersionNumbers, trainingJob } from '../workload.ts';
import { checkQueuesDrain } from './common.ts';

export interface ObjectStorageOutageOptions {
  /** How long S3 stays unreachable once the predictor has started without it. */
  predictorOutageMs: number;
}

type Event = KubeObject & { regarding?: { name: string }; reason?: string; note?: string };

export async function objectStorageOutage(options: ObjectStorageOutageOptions): Promise<ScenarioResult> {
  const record = new ScenarioRecord(
    'S3 unreachable from pods',
    `pods → S3 cut while a trainer uploads (until its attempt fails) and while a predictor starts (${options.predictorOutageMs / 1000} s)`,
  );
  const bucket = process.env.LOOPLINE_S3_BUCKET;
  if (!bucket) throw new Error('LOOPLINE_S3_BUCKET is not set: run through `npm test` or `npm run chaos`');
  // No canary runs here, so the analysis never asks Prometheus: no Prometheus is started.
  const h = await startChaos('chaos-s3', {
    podS3: true,
    retryBaseMs: 500,
    inferenceServices: { prometheusUrl: 'http://127.0.0.1:1', scrapeIntervalMs: 1000 },
  });
  try {
    // The trainer: S3 down when it uploads, so its attempt fails; back before the retry.
    await h.toxiproxy.setEnabled(PROXY.podS3, false);
    record.injected();
    const output = `s3://${bucket}/${uniqueName('chaos')}/`;
    await h.api.create(
      kinds.TrainingJob,
      trainingJob(h, 'upload', 'stored', { output: { uri: output }, backoffLimit: 4 }),
      'loopline-chaos',
    );
    const failed = await waitFor(
      'the first attempt to fail',
      async () => {
        const events = (await h.api.list(kinds.Event, h.namespace)).items as Event[];
        return events.find((e) => e.regarding?.name === 'upload' && e.reason === 'AttemptFailed');
      },
      90_000,
      250,
    );
    record.check(
      /s3|S3|ECONNREFUSED|connect/.test(failed.note ?? ''),
      `the failed attempt says why (object storage): ${failed.note}`,
    );
    await h.toxiproxy.setEnabled(PROXY.podS3, true);
    const storageBack = Date.now();
    const job = await waitFor(
      'the TrainingJob to finish',
      async () => {
        const current = await h.api.get(kinds.TrainingJob, h.namespace, 'upload');
        return ['Succeeded', 'Failed'].includes(current.status?.phase) ? current : undefined;
      },
      120_000,
      250,
    );
    record.recovered(Date.now() - storageBack);
    record.check(
      job.status.phase === 'Succeeded',
      `the TrainingJob succeeds on a later attempt once S3 is back: ${job.status.phase} ${job.status.message ?? ''}`,
    );
    record.check(job.status.attempts >= 2, `the upload was retried by a new attempt: attempts ${job.status.attempts}`);
    const versions = (await h.api.list(kinds.ModelVersion, h.namespace)).items.filter((v) => v.spec.model === 'stored');
    record.check(
      versions.length === 1 && String(versions[0]?.spec.artifact.uri).startsWith(output),
      `one ModelVersion, its artifact in S3: ${versions.map((v) => v.spec.artifact.uri).join(', ')}`,
    );
    checkVersionNumbers(record, 'stored', versions);

    // The predictor: S3 down while it starts; it must say why it is not ready and load once S3 is back.
    await h.toxiproxy.setEnabled(PROXY.podS3, false);
    record.injected();
    await h.api.create(
      kinds.InferenceService,
      {
        apiVersion: 'loopline.dev/v1alpha1',
        kind: 'InferenceService',
        metadata: { name: 'served', namespace: h.namespace },
        spec: { model: 'stored', stable: { version: 1 } },
      } as never,
      'loopline-chaos',
    );
    const pod = await waitFor(
      'a predictor pod running',
      async () => {
        const pods = (await h.api.list(kinds.Pod, h.namespace, { labelSelector: `${LABELS.inferenceService}=served` }))
          .items;
        return pods.find((p) => p.status?.phase === 'Running' && p.status?.podIP);
      },
      90_000,
      250,
    );
    const health = await waitFor(
      'the predictor to report its failed load',
      async () => {
        const answer = await fetch(`http://${pod.status.podIP}:8080/health`, {
          signal: AbortSignal.timeout(2000),
        }).then(
          async (r) => ({ status: r.status, body: (await r.json()) as { error?: string } }),
          () => undefined,
        );
        return answer?.body.error ? answer : undefined;
      },
      60_000,
      250,
    );
    record.check(
      health.status === 503 && String(health.body.error).includes('s3://'),
      `the predictor is unready and names the artifact it cannot fetch: ${health.status} ${health.body.error}`,
    );
    await sleep(options.predictorOutageMs);
    const isvc = await h.api.get(kinds.InferenceService, h.namespace, 'served');
    const ready = isvc.status?.conditions?.find((c: { type: string }) => c.type === 'Ready');
    record.check(
      ready?.status === 'False',
      `while S3 is down the InferenceService is not Ready: ${JSON.stringify(ready)}`,
    );
    await h.toxiproxy.setEnabled(PROXY.podS3, true);
    const back = Date.now();
    const recovered = await waitFor(
      'the InferenceService Ready',
      async () => {
        const current = await h.api.get(kinds.InferenceService, h.namespace, 'served');
        return current.status?.conditions?.some(
          (c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True',
        )
          ? true
          : undefined;
      },
      90_000,
      250,
    ).then(
      () => true,
      () => false,
    );
    record.check(recovered, 'the predictor loads its model once S3 is back, and the InferenceService turns Ready');
    if (recovered) record.recovered(Date.now() - back);
    const after = await h.api.get(kinds.Pod, h.namespace, pod.metadata.name).catch(() => undefined);
    const restarts = after?.status?.containerStatuses?.[0]?.restartCount ?? 0;
    record.check(
      after !== undefined && restarts === 0,
      `the same predictor pod recovered, not restarted: ${after ? `${restarts} restarts` : 'the pod is gone'}`,
    );
    await checkQueuesDrain(h, record);
  } finally {
    await h.stop();
  }
  return record.result();
}
