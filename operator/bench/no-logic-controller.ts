/**
 * A controller with no logic, for the TrainingJob benchmark (trainingjob.bench.ts). It watches the TrainingJobs
 * of one namespace and answers each new one with its first attempt's Job, the very Job the operator would create (desiredJob),
 * through the operator's HTTP client (KubeApi). It keeps no cache and no queue, and it writes no status and no Event.
 * Timed against the same jobs as the operator: one job at a time, it is the shortest path this machine allows (a watch
 * event, one create, the Job controller's pod, a watch event); for 200 at once, it shows what answering every event at once, with no queue
 * and no bound on requests in flight, gets from the same API server.
 *   node <bundle of this file> <namespace>     (prints "watching" once the watch is open)
 */
import { Watch } from '@kubernetes/client-node';
import { controllerReference, kinds, KubeApi, loadKubeConfig, resourcePath, type KubeObject } from '../engine/index.ts';
import { desiredJob } from '../trainingjob/job.ts';
import type { TrainingJob } from '../trainingjob/resource.ts';

const namespace = process.argv[2];
if (!namespace) throw new Error('usage: no-logic-controller <namespace>');
const kc = loadKubeConfig();
const api = new KubeApi(kc);
const from = (await api.list(kinds.TrainingJob, namespace)).metadata.resourceVersion;
await new Watch(kc).watch(
  resourcePath(kinds.TrainingJob, namespace),
  { resourceVersion: from },
  (type, job: KubeObject) => {
    if (type !== 'ADDED') return;
    const attempt = desiredJob(job as unknown as TrainingJob, controllerReference(job), 1);
    api
      .create(kinds.Job, attempt, 'loopline-bench-no-logic')
      .catch((err: Error) => console.error(`Job of ${job.metadata.name}: ${err.message}`));
  },
  (err) => {
    console.error(`watch ended: ${err ? (err as Error).message : 'closed'}`);
    process.exit(1);
  },
);
console.log('watching');
