// The environment of a container as the kubelet builds it: literal values, downward-API fieldRefs,
// ConfigMap and Secret keys, envFrom, and $(VAR) references to variables defined before.

export interface EnvSources {
  pod: any;
  podIP: string;
  hostIP: string;
  /** Reads a ConfigMap's or Secret's data (Secret values decoded); undefined when it does not exist. */
  readData(kind: 'ConfigMap' | 'Secret', namespace: string, name: string): Promise<Record<string, string> | undefined>;
}

export class EnvError extends Error {}

/** Value of a downward-API field path, as the kubelet resolves it. */
export function fieldValue(pod: any, fieldPath: string, podIP: string, hostIP: string): string {
  const labelOrAnnotation = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (labelOrAnnotation) return pod.metadata?.[labelOrAnnotation[1]]?.[labelOrAnnotation[2]] ?? '';
  switch (fieldPath) {
    case 'metadata.name':
      return pod.metadata.name;
    case 'metadata.namespace':
      return pod.metadata.namespace;
    case 'metadata.uid':
      return pod.metadata.uid;
    case 'spec.nodeName':
      return pod.spec.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec.serviceAccountName ?? 'default';
    case 'status.podIP':
    case 'status.podIPs':
      return podIP;
    case 'status.hostIP':
    case 'status.hostIPs':
      return hostIP;
    default:
      throw new EnvError(`unsupported fieldRef fieldPath "${fieldPath}"`);
  }
}

/** Expands $(NAME) from `vars`; $$ escapes a dollar; unknown references stay as written (kubelet behaviour). */
export function expandReferences(text: string, vars: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match, name: string | undefined) => {
    if (match === '$$') return '$';
    return name !== undefined && name in vars ? vars[name] : match;
  });
}

export async function containerEnv(container: any, sources: EnvSources): Promise<Record<string, string>> {
  const namespace = sources.pod.metadata.namespace;
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    const ref = from.configMapRef ?? from.secretRef;
    const kind = from.configMapRef ? 'ConfigMap' : 'Secret';
    const data = await sources.readData(kind, namespace, ref.name);
    if (!data && !ref.optional) throw new EnvError(`${kind.toLowerCase()} "${ref.name}" not found`);
    for (const [k, v] of Object.entries(data ?? {})) env[`${from.prefix ?? ''}${k}`] = v;
  }
  for (const e of container.env ?? []) {
    if (e.valueFrom === undefined) {
      env[e.name] = expandReferences(e.value ?? '', env);
      continue;
    }
    const { fieldRef, configMapKeyRef, secretKeyRef } = e.valueFrom;
    if (fieldRef) {
      env[e.name] = fieldValue(sources.pod, fieldRef.fieldPath, sources.podIP, sources.hostIP);
    } else if (configMapKeyRef || secretKeyRef) {
      const ref = configMapKeyRef ?? secretKeyRef;
      const kind = configMapKeyRef ? 'ConfigMap' : 'Secret';
      const data = await sources.readData(kind, namespace, ref.name);
      const value = data?.[ref.key];
      if (value === undefined) {
        if (ref.optional) continue;
        throw new EnvError(`couldn't find key ${ref.key} in ${kind} ${namespace}/${ref.name}`);
      }
      env[e.name] = value;
    } else {
      throw new EnvError(`env ${e.name}: only value, fieldRef, configMapKeyRef and secretKeyRef are supported locally`);
    }
  }
  return env;
}
