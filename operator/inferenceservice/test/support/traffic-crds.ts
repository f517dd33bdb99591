/**
 * The real Istio VirtualService CRD, so the API server validates the VirtualServices we write (the Gateway API
 * and Traefik CRDs are the local cluster's own: e2e/cluster/cluster.sh installs them with Traefik). Its YAML
 * ships in the Istio API Go module: `go mod download` fetches it through the Go module proxy into the module
 * cache, and the CRD is copied to $LOOPLINE_CACHE/crds.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import * as yaml from 'js-yaml';

export const ISTIO_API_MODULE = 'istio.io/api@v1.31.1';

function moduleDir(module: string): string {
  const out = execFileSync('go', ['mod', 'download', '-json', module], {
    encoding: 'utf8',
    env: { ...process.env, GOFLAGS: '-mod=mod' },
  });
  const info = JSON.parse(out) as { Dir?: string; Error?: string };
  if (!info.Dir) throw new Error(`go mod download ${module} failed: ${info.Error ?? out}`);
  return info.Dir;
}

/** Path of the VirtualService CRD file, fetched once and cached. */
export function virtualServiceCrdFile(): string {
  const dir = join(process.env.LOOPLINE_CACHE ?? join(homedir(), '.cache', 'loopline'), 'crds');
  const virtualService = join(dir, `istio-api-${ISTIO_API_MODULE.split('@')[1]}-virtualservices.yaml`);
  if (existsSync(virtualService)) return virtualService;
  mkdirSync(dir, { recursive: true });
  const istio = moduleDir(ISTIO_API_MODULE);
  const all = yaml.loadAll(
    readFileSync(join(istio, 'kubernetes/customresourcedefinitions.gen.yaml'), 'utf8'),
  ) as Array<{ metadata?: { name?: string } }>;
  const vs = all.find((doc) => doc?.metadata?.name === 'virtualservices.networking.istio.io');
  if (!vs) throw new Error(`${ISTIO_API_MODULE} has no virtualservices.networking.istio.io CRD`);
  writeFileSync(virtualService, yaml.dump(vs));
  return virtualService;
}
