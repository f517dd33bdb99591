/**
 * The InferenceService scale benchmark with no operator: what the local cluster's control plane alone needs to
 * converge N InferenceServices (default 1000). The benchmark creates each InferenceService as a user would, then
 * applies the objects the operator would own for it (desiredObjects: the Deployment, two Services, the PDB, the
 * HTTPRoute) itself, 16 services at a time with each one's objects together, as the operator's 16 workers do.
 * No status is written and no controller logic runs. Timed to every Deployment available, it is the floor under
 * inferenceservice.bench.ts on this machine: the time the API server, controller-manager, scheduler, etcd and KWOK
 * take for those objects.
 *   npm run bench -- inferenceservice-objects      (BENCH_ISVCS=200 for a quicker run)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { kindId, kinds, KubeApi, type KubeObject } from '../engine/index.ts';
import { kindRegistry } from '../engine/writer.ts';
import { inferenceServiceSettings } from '../inferenceservice/config.ts';
import { PodDisruptionBudget, servedModel } from '../inferenceservice/controller.ts';
import { desiredObjects } from '../inferenceservice/desired.ts';
import type { ModelVersionObject } from '../inferenceservice/registry.ts';
import type { InferenceService } from '../inferenceservice/resource.ts';
import { installCrds } from '../api/install.ts';
import { requireKubeconfig, sleep, uniqueName } from '../../test/support/local.ts';
import { registerVersion } from '../../test/support/model-versions.ts';
import { createNamespace } from '../../test/support/namespaces.ts';
import {
  addCapacity,
  benchInferenceService,
  controlPlaneCpu,
  cpuSpent,
  forEachInferenceService,
  SIMULATED_IMAGE,
} from './support/scale.ts';

/** Resource kinds by apiVersion/kind, as the engine resolves what a controller applies. */
const known = kindRegistry([...Object.values(kinds), PodDisruptionBudget]);

const count = Number(process.env.BENCH_ISVCS ?? 1000);
const kc = requireKubeconfig();
const api = new KubeApi(kc);
const namespace = uniqueName('bench-objects');
const loadBefore = loadavg()
  .map((l) => l.toFixed(2))
  .join(', ');
await installCrds(kc);
await createNamespace(api, namespace);
const capacity = await addCapacity(api, namespace, count);
const version = await registerVersion(api, namespace, 'bench-model', 1, ['production']);
const serving = { stable: servedModel(version as unknown as ModelVersionObject), canaryWeight: 0 };
const config = inferenceServiceSettings({
  PREDICTOR_IMAGE: SIMULATED_IMAGE,
  PROMETHEUS_URL: 'http://127.0.0.1:9',
}).serving;

try {
  const cpuBefore = controlPlaneCpu();
  const t0 = Date.now();
  await forEachInferenceService(count, async (name) => {
    const isvc = await api.create(
      kinds.InferenceService,
      benchInferenceService(namespace, name) as never,
      'loopline-bench',
    );
    const objects = desiredObjects(isvc as unknown as InferenceService, serving, config);
    await Promise.all(objects.map((object) => api.apply(known.get(kindId(object))!, object, 'loopline-bench')));
  });
  const writtenMs = Date.now() - t0;
  let readyMs: number | undefined;
  let available = 0;
  while (readyMs === undefined && Date.now() < t0 + 600_000) {
    await sleep(2000);
    const deployments = (await api.list(kinds.Deployment, namespace)).items as KubeObject[];
    available = deployments.filter((d) => (d.status?.availableReplicas ?? 0) > 0).length;
    console.log(`  ${((Date.now() - t0) / 1000).toFixed(0)} s: ${available}/${count} Deployments available`);
    if (available === count) readyMs = Date.now() - t0;
  }
  const controlPlane = cpuSpent(controlPlaneCpu(), cpuBefore);
  const result = {
    generated: new Date().toISOString(),
    inferenceServices: count,
    machine: `${cpus().length} cores, load ${loadBefore} before / ${loadavg()
      .map((l) => l.toFixed(2))
      .join(', ')} after`,
    objectsWrittenMs: writtenMs,
    allAvailableMs: readyMs ?? null,
    availableAtEnd: available,
    controlPlaneCpuSeconds: controlPlane,
  };
  const dir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}inferenceservice-objects.json`, `${JSON.stringify(result, null, 2)}\n`);
  const s = (ms: number | null) => (ms === null ? 'not reached' : `${(ms / 1000).toFixed(1)} s`);
  const md = `## The same ${count} InferenceServices with no operator (\`operator/bench/inferenceservice-objects.bench.ts\`)

The floor under the InferenceService benchmark: each InferenceService is created, and the objects the operator would own
for it (Deployment, two Services, PDB, HTTPRoute, from desiredObjects) are applied by the benchmark itself, 16 services
at a time. No status is written and no controller logic runs. Machine: ${result.machine}.

| measure | value |
|---|---|
| InferenceServices created and their objects applied | ${s(writtenMs)} |
| every Deployment available | ${s(result.allAvailableMs)} (${available}/${count}) |
| CPU the control plane spent | ${controlPlane.total} s (${Object.entries(controlPlane.byComponent)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}) |
`;
  writeFileSync(`${dir}inferenceservice-objects.md`, md);
  console.log(md);
} finally {
  await capacity.remove();
}
