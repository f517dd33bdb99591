/** The one JetStream stream that keeps every Loopline event (`loopline.>`), created by the operator. */
import {
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamInfo,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';

export const STREAM_NAME = 'LOOPLINE';
export const STREAM_SUBJECTS = ['loopline.>'];

export interface StreamOptions {
  name?: string;
  /** How long events are kept; a consumer down for longer misses them. */
  maxAgeMs?: number;
  /** Upper bound of the stream's storage; -1 (default) is unlimited. */
  maxBytes?: number;
  /** Window in which a repeated `Nats-Msg-Id` (the CloudEvent id) is dropped by the server. */
  duplicateWindowMs?: number;
}

const nanos = (ms: number) => ms * 1_000_000;

/** Creates the stream, or leaves an existing one alone (another operator replica or the server may have made it). */
export async function ensureStream(nc: NatsConnection, options: StreamOptions = {}): Promise<StreamInfo> {
  const jsm: JetStreamManager = await jetstreamManager(nc);
  const name = options.name ?? STREAM_NAME;
  try {
    return await jsm.streams.info(name);
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  try {
    return await jsm.streams.add({
      name,
      subjects: STREAM_SUBJECTS,
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_age: nanos(options.maxAgeMs ?? 7 * 24 * 3_600_000),
      max_bytes: options.maxBytes ?? -1,
      duplicate_window: nanos(options.duplicateWindowMs ?? 10 * 60_000),
    });
  } catch (error) {
    // Lost a race with another creator: theirs is as good as ours.
    if (/already in use|already exists/i.test(String((error as Error).message))) return await jsm.streams.info(name);
    throw error;
  }
}

function isNotFound(error: unknown): boolean {
  return /not found/i.test(String((error as Error)?.message));
}
