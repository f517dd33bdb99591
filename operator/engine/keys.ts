import type { KubeObject, OwnerReference, Request } from './types.ts';

/** Queue key of an object: `namespace/name`, or `name` when cluster-scoped. */
export function objectKey(object: { metadata?: { namespace?: string; name?: string } }): string {
  const ns = object.metadata?.namespace;
  const name = object.metadata?.name ?? '';
  return ns ? `${ns}/${name}` : name;
}

export function keyOf(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

export function parseKey(key: string): Request {
  const slash = key.indexOf('/');
  return slash < 0
    ? { namespace: '', name: key, key }
    : { namespace: key.slice(0, slash), name: key.slice(slash + 1), key };
}

/** The controller owner reference that makes `owner` garbage-collect the object carrying it. */
export function controllerReference(owner: KubeObject): OwnerReference {
  if (!owner.metadata.uid) throw new Error(`owner ${objectKey(owner)} has no uid; read it from the API server first`);
  return {
    apiVersion: owner.apiVersion!,
    kind: owner.kind!,
    name: owner.metadata.name,
    uid: owner.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** The controller owner reference of `object`, if any. */
export function controllerOf(object: KubeObject): OwnerReference | undefined {
  return (object.metadata.ownerReferences as OwnerReference[] | undefined)?.find((r) => r.controller === true);
}
