/**
 * The real Gateway API and Istio CRDs, so the API server validates the routes we write. Their YAML ships in
 * their Go modules: `go mod download` fetches the modules through the Go module proxy into the module cache,
 * and the two CRDs we need are copied to $LOOPLINE_CACHE/crds.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import * as yaml from 'js-yaml';

export const GATEWAY_API_MODULE = 'sigs.k8s.io/gateway-api@v1.4.1';
export const ISTIO_API_MODULE = 'istio.io/api@v1.31.1';

function moduleDir(module: string): string {
  const out = execFileSync('go', ['mod', 'download', '-json', module], { encoding: 'utf8', env: { ...process.env, GOFLAGS: '-mod=mod' } });
  const info = JSON.parse(out) as { Dir?: string; Error?: string };
  if (!info.Dir) throw new Error(`go mod download ${module} failed: ${info.Error ?? out}`);
  return info.Dir;
}

/** Paths of the HTTPRoute and VirtualService CRD files, fetched once and cached. */
export function trafficCrdFiles(): { httpRoute: string; virtualService: string } {
  const dir = join(process.env.LOOPLINE_CACHE ?? join(homedir(), '.cache', 'loopline'), 'crds');
  const httpRoute = join(dir, `gateway-api-${GATEWAY_API_MODULE.split('@')[1]}-httproutes.yaml`);
  const virtualService = join(dir, `istio-api-${ISTIO_API_MODULE.split('@')[1]}-virtualservices.yaml`);
  if (existsSync(httpRoute) && existsSync(virtualService)) return { httpRoute, virtualService };
  mkdirSync(dir, { recursive: true });
  const gateway = moduleDir(GATEWAY_API_MODULE);
  writeFileSync(httpRoute, readFileSync(join(gateway, 'config/crd/standard/gateway.networking.k8s.io_httproutes.yaml')));
  const istio = moduleDir(ISTIO_API_MODULE);
  const all = yaml.loadAll(readFileSync(join(istio, 'kubernetes/customresourcedefinitions.gen.yaml'), 'utf8')) as Array<{ metadata?: { name?: string } }>;
  const vs = all.find((doc) => doc?.metadata?.name === 'virtualservices.networking.istio.io');
  if (!vs) throw new Error(`${ISTIO_API_MODULE} has no virtualservices.networking.istio.io CRD`);
  writeFileSync(virtualService, yaml.dump(vs));
  return { httpRoute, virtualService };
}
