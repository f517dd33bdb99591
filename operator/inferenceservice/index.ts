/**
 * Wiring of the InferenceService controller and the drift side of the closed loop into an operator process.
 * `registerInferenceServices` before `engine.start()`, `startDriftLoop` after it.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { isNotFound, kinds, type Engine, type KubeObject } from '../engine/index.ts';
import {
  consumeInferenceServiceEvents,
  MalformedEventError,
  type EventConsumer,
  type EventHandler,
} from '../events/consumer.ts';
import { consumeDriftEvents, type DriftConsumer, type DriftHandler } from '../events/drift-consumer.ts';
import { LifecyclePublisher } from '../events/publisher.ts';
import { ensureStream, type StreamOptions } from '../events/stream.ts';
import {
  inferenceServiceController,
  ROUTE_KINDS,
  servedKinds,
  type InferenceServiceControllerOptions,
} from './controller.ts';
import { driftObservation, nextDriftStatus } from './drift.ts';
import { registerInferenceServiceMetrics } from './metrics.ts';
import { nextQualityStatus } from './quality.ts';
import type { InferenceService } from './resource.ts';

export interface InferenceServiceWiring
  extends Omit<InferenceServiceControllerOptions, 'routeKinds' | 'watchGateways' | 'publisher'> {
  /** Lifecycle events go here when given. */
  nats?: NatsConnection;
  /** The stream for loopline.> created when missing. */
  stream?: StreamOptions;
}

export async function registerInferenceServices(engine: Engine, options: InferenceServiceWiring): Promise<void> {
  const routeKinds = await servedKinds(engine.api, ROUTE_KINDS);
  const watchGateways = (await servedKinds(engine.api, [kinds.Gateway])).length > 0;
  engine.log.info({ routeKinds: routeKinds.map((k) => k.kind), watchGateways }, 'traffic providers available');
  const { nats, stream, ...controllerOptions } = options;
  if (nats) await ensureStream(nats, stream);
  engine.register(
    inferenceServiceController({
      ...controllerOptions,
      routeKinds,
      watchGateways,
      ...(nats ? { publisher: new LifecyclePublisher(nats) } : {}),
    }),
  );
  registerInferenceServiceMetrics(engine);
}

/** The event's InferenceService as the API server has it now, or undefined when it is gone. */
async function freshInferenceService(
  engine: Pick<Engine, 'api'>,
  target: { namespace: string; inferenceService: string },
): Promise<(KubeObject & InferenceService) | undefined> {
  return (await engine.api.get(kinds.InferenceService, target.namespace, target.inferenceService).catch((error) => {
    if (isNotFound(error)) return undefined;
    throw error;
  })) as (KubeObject & InferenceService) | undefined;
}

/** Records each drift event in the InferenceService's status.drift; the reconcile decides about retraining. */
export function driftEventHandler(engine: Pick<Engine, 'api' | 'writer'>): DriftHandler {
  return async (event, target) => {
    // A fresh read, not the cache: comparing with a lagging copy could re-record an event we just replaced.
    const isvc = await freshInferenceService(engine, target);
    if (!isvc) return;
    const next = nextDriftStatus(isvc, isvc.status?.drift, driftObservation(event));
    if (next) await engine.writer.patchStatus(isvc, { drift: next });
  };
}

/**
 * Records each quality event in status.quality (per version) and a Kubernetes Event for a first measurement or a
 * notable change; an event whose data breaks the contract is dropped, not retried.
 */
export function qualityEventHandler(engine: Pick<Engine, 'api' | 'writer'>): EventHandler {
  return async (event, target) => {
    const isvc = await freshInferenceService(engine, target);
    if (!isvc) return;
    let update;
    try {
      update = nextQualityStatus(isvc.status?.quality, event);
    } catch (error) {
      throw new MalformedEventError((error as Error).message);
    }
    if (!update) return;
    // A merge patch: an evaluation without a snapshot must remove the previous one, or a retrain could take it as its.
    await engine.writer.patchStatus(isvc, {
      quality: { ...update.quality, snapshot: update.quality.snapshot ?? null },
    });
    for (const notice of update.notices) await engine.writer.event(isvc, notice.type, notice.reason, notice.message);
  };
}

/** Consumes quality events once this replica leads (only the leader writes). */
export async function startQualityLoop(
  engine: Engine,
  nats: NatsConnection,
  options: { durable?: string; filterSubject?: string; stream?: StreamOptions } = {},
): Promise<EventConsumer> {
  const { stream, ...consumer } = options;
  await ensureStream(nats, stream);
  await engine.whenLeader();
  return await consumeInferenceServiceEvents('quality', nats, qualityEventHandler(engine), {
    ...consumer,
    ...(stream?.name ? { stream: stream.name } : {}),
    log: engine.log.child({ component: 'quality-consumer' }),
  });
}

/** Consumes drift events once this replica leads (only the leader writes). */
export async function startDriftLoop(
  engine: Engine,
  nats: NatsConnection,
  options: { durable?: string; filterSubject?: string; stream?: StreamOptions } = {},
): Promise<DriftConsumer> {
  const { stream, ...consumer } = options;
  await ensureStream(nats, stream);
  await engine.whenLeader();
  return await consumeDriftEvents(nats, driftEventHandler(engine), {
    ...consumer,
    ...(stream?.name ? { stream: stream.name } : {}),
    log: engine.log.child({ component: 'drift-consumer' }),
  });
}

export { inferenceServiceController, ROUTE_KINDS, servedKinds } from './controller.ts';
