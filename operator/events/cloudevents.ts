/** CloudEvents 1.0 in structured JSON mode: the envelope of every Loopline event on NATS. */
import { randomUUID } from 'node:crypto';

export interface CloudEvent<T = unknown> {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject?: string;
  time: string;
  datacontenttype: 'application/json';
  data: T;
}

export function cloudEvent<T>(fields: {
  type: string;
  source: string;
  subject?: string;
  data: T;
  id?: string;
  time?: Date;
}): CloudEvent<T> {
  return {
    specversion: '1.0',
    id: fields.id ?? randomUUID(),
    source: fields.source,
    type: fields.type,
    ...(fields.subject !== undefined ? { subject: fields.subject } : {}),
    time: (fields.time ?? new Date()).toISOString(),
    datacontenttype: 'application/json',
    data: fields.data,
  };
}

/** Parses and checks the required context attributes; throws a message naming what is missing. */
export function parseCloudEvent(payload: Uint8Array | string): CloudEvent {
  const text = typeof payload === 'string' ? payload : new TextDecoder().decode(payload);
  const event = JSON.parse(text) as Partial<CloudEvent>;
  if (event === null || typeof event !== 'object') throw new Error('not a CloudEvent: payload is not a JSON object');
  if (event.specversion !== '1.0')
    throw new Error(`not a CloudEvent 1.0: specversion is ${JSON.stringify(event.specversion)}`);
  for (const attribute of ['id', 'source', 'type'] as const) {
    if (typeof event[attribute] !== 'string' || event[attribute] === '')
      throw new Error(`CloudEvent lacks "${attribute}"`);
  }
  return event as CloudEvent;
}

/** The `source` of events about one object: its API path, as Kubernetes would name it. */
export function objectSource(plural: string, namespace: string, name: string): string {
  return `/apis/loopline.dev/v1alpha1/namespaces/${namespace}/${plural}/${name}`;
}
