/**
 * (e) NATS unreachable from the operator (its proxy disabled) while predictors keep publishing drift events:
 * JetStream keeps them, and when the operator's connection returns its durable consumer receives each one
 * once, in order, and status.drift ends at the last one.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { kinds } from '../../../operator/engine/index.ts';
import { STREAM_NAME } from '../../../operator/events/stream.ts';
import { driftCloudEvent, driftSubject } from '../../../server/src/events/drift-event.ts';
import { sleep, waitFor } from '../../../test/support/local.ts';
import { SIMULATED_PREDICTOR_IMAGE } from '../canary.ts';
import { PROXY, startChaos } from '../harness.ts';
import { ScenarioRecord, type ScenarioResult } from '../report.ts';
import { checkQueuesDrain } from './common.ts';

export interface NatsOutageOptions {
  outageMs: number;
  /** Drift events published while the operator cannot reach NATS. */
  events: number;
}

export async function natsOutage(options: NatsOutageOptions): Promise<ScenarioResult> {
  const record = new ScenarioRecord(
    'NATS unreachable from the operator',
    `operator → NATS cut for ${options.outageMs / 1000} s while ${options.events} drift events are published`,
  );
  // No canary runs here, so the analysis never asks Prometheus: no Prometheus is started.
  const h = await startChaos('chaos-nats', {
    nats: true,
    inferenceServices: { prometheusUrl: 'http://127.0.0.1:1', scrapeIntervalMs: 1000 },
  });
  const nc = await connect({ servers: process.env.NATS_URL!, name: 'chaos-predictor' });
  try {
    const js = jetstream(nc);
    const model = 'watched-model';
    await h.api.create(
      kinds.ModelVersion,
      {
        apiVersion: 'loopline.dev/v1alpha1',
        kind: 'ModelVersion',
        metadata: { name: `${model}-v1`, namespace: h.namespace },
        spec: {
          model,
          version: 1,
          aliases: ['production'],
          artifact: {
            uri: `file:///models/${model}/v1/model.onnx`,
            digest: `sha256:1${'0'.repeat(63)}`,
            format: 'onnx',
          },
        },
      } as never,
      'loopline-chaos',
    );
    await h.api.create(
      kinds.InferenceService,
      {
        apiVersion: 'loopline.dev/v1alpha1',
        kind: 'InferenceService',
        metadata: { name: 'watched', namespace: h.namespace },
        spec: {
          model,
          stable: { alias: 'production' },
          predictor: { image: SIMULATED_PREDICTOR_IMAGE },
          drift: { enabled: true, threshold: 0.5 },
        },
      } as never,
      'loopline-chaos',
    );
    await waitFor(
      'the InferenceService serving v1',
      async () =>
        (await h.api.get(kinds.InferenceService, h.namespace, 'watched')).status?.stableVersion === 1
          ? true
          : undefined,
      60_000,
    );

    let window = 0;
    const publish = async () => {
      window++;
      const end = new Date();
      const event = driftCloudEvent(
        {
          model,
          modelVersion: '1',
          window: {
            start: new Date(end.getTime() - 1000).toISOString(),
            end: end.toISOString(),
            rows: 100,
            closedBy: 'count',
          },
          schemaViolations: 0,
          drifted: false,
          judged: true,
          score: window / 1000,
          driftShare: 0,
          driftedFeatures: [],
          features: [],
        },
        h.namespace,
        'watched',
      );
      await js.publish(driftSubject(h.namespace, 'watched'), JSON.stringify(event), { msgID: event.id });
      return event.id;
    };
    const recorded = async (id: string) =>
      (await h.api.get(kinds.InferenceService, h.namespace, 'watched')).status?.drift?.lastEventId === id
        ? true
        : undefined;
    const first = await publish();
    await waitFor('the first drift event in status', () => recorded(first), 30_000);

    await h.toxiproxy.setEnabled(PROXY.nats, false);
    record.injected();
    let last = first;
    for (let i = 0; i < options.events; i++) {
      await sleep(options.outageMs / (options.events + 1));
      last = await publish();
    }
    await sleep(options.outageMs / (options.events + 1));
    record.check((await recorded(last)) === undefined, 'while cut off, the operator records nothing (the fault holds)');
    await h.toxiproxy.setEnabled(PROXY.nats, true);
    const back = Date.now();
    const caughtUp = await waitFor('the last drift event in status', () => recorded(last), 120_000, 100).then(
      () => true,
      () => false,
    );
    record.check(
      caughtUp,
      `the drift events published meanwhile are handled once NATS is back: status.drift.lastEventId is the last one`,
    );
    if (caughtUp) record.recovered(Date.now() - back);

    const jsm = await jetstreamManager(nc);
    await sleep(500);
    const info = await jsm.consumers.info(STREAM_NAME, `loopline-chaos-drift-${h.namespace}`);
    record.check(
      info.num_pending === 0 && info.num_ack_pending === 0,
      `every drift event delivered and acknowledged: ${info.num_pending} pending, ${info.num_ack_pending} unacknowledged`,
    );
    record.check(
      info.num_redelivered === 0 && info.delivered.consumer_seq === options.events + 1,
      `each drift event delivered once: ${info.delivered.consumer_seq} deliveries of ${options.events + 1} events, ${info.num_redelivered} redelivered`,
    );
    await checkQueuesDrain(h, record);
  } finally {
    await nc.close();
    await h.stop();
  }
  return record.result();
}
