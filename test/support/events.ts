/** Kubernetes Events (events.k8s.io/v1) the operator recorded, as a suite on the real API server reads them. */
import { kinds, type KubeApi, type KubeObject } from '../../operator/engine/index.ts';

export interface RecordedEvent {
  reason: string;
  note: string;
  type: string;
}

/** The Events regarding the object `name` in `namespace`, in the API server's order. */
export async function eventsAbout(api: KubeApi, namespace: string, name: string): Promise<RecordedEvent[]> {
  const list = await api.list<KubeObject & RecordedEvent & { regarding?: { name?: string } }>(kinds.Event, namespace);
  return list.items
    .filter((e) => e.regarding?.name === name)
    .map((e) => ({ reason: e.reason, note: e.note, type: e.type }));
}

/** The notes of the Events of `reason` regarding `name`. */
export async function eventNotes(api: KubeApi, namespace: string, name: string, reason: string): Promise<string[]> {
  return (await eventsAbout(api, namespace, name)).filter((e) => e.reason === reason).map((e) => e.note);
}
