/**
 * (b) Every watch answered 410 Gone: the operator is cut off from the API server (its proxy disabled) while
 * TrainingJobs and ModelVersions are created and a ModelVersion deleted; etcd is compacted to its current
 * revision and the API server restarted (its watch cache is the other place old revisions live), so when the
 * operator comes back each of its watches resumes from a revision that no longer exists. Its informers must
 * re-list, see the deletion as a deletion, and carry out the work made meanwhile exactly once.
 */
import { kinds } from '../../../operator/engine/index.ts';
import { sleep, waitFor } from '../../../test/support/local.ts';
import { compactEtcd, restartApiServer } from '../control-plane.ts';
import { PROXY, startChaos } from '../harness.ts';
import { ScenarioRecord, type ScenarioResult } from '../report.ts';
import {
  checkSettledAliasHolders,
  checkTrainingJobs,
  createTrainingJobs,
  reconcileProbe,
  waitForTrainingJobs,
} from '../workload.ts';
import { checkQueuesDrain, watchRestarts } from './common.ts';

export interface WatchExpiryOptions {
  /** Rounds of cut off → changes → compaction → back. */
  rounds: number;
  /** TrainingJobs created while the operator is cut off, each round. */
  jobs: number;
}

function modelVersion(namespace: string, model: string, version: number, aliases: string[]) {
  return {
    apiVersion: 'loopline.dev/v1alpha1',
    kind: 'ModelVersion',
    metadata: { name: `${model}-v${version}`, namespace },
    spec: {
      model,
      version,
      aliases,
      artifact: {
        uri: `file:///models/${model}/v${version}/model.onnx`,
        digest: `sha256:${(version.toString(16) + '0'.repeat(64)).slice(0, 64)}`,
        format: 'onnx',
      },
    },
  };
}

export async function watchExpiry(options: WatchExpiryOptions): Promise<ScenarioResult> {
  const record = new ScenarioRecord(
    'watches expired (410 Gone)',
    `operator cut off, changes made, etcd compacted to its current revision and the API server killed and started again, operator back; ${options.rounds}×, ${options.jobs} TrainingJobs each`,
  );
  const h = await startChaos('chaos-compaction');
  try {
    const names: string[] = [];
    for (let round = 1; round <= options.rounds; round++) {
      // A version that exists when the operator is cut off and is deleted while it is away.
      const doomed = `doomed-${round}`;
      await h.api.create(
        kinds.ModelVersion,
        modelVersion(h.namespace, doomed, 1, ['production']) as never,
        'loopline-chaos',
      );
      await waitFor(
        `the operator to see ${doomed}-v1`,
        async () => (h.operator.cache.get(kinds.ModelVersion, h.namespace, `${doomed}-v1`) ? true : undefined),
        30_000,
      );
      await h.operator.waitIdle();
      const relists = watchRestarts(h);

      await h.toxiproxy.setEnabled(PROXY.apiServer, false);
      const jobs = Array.from({ length: options.jobs }, (_, i) => `away-${round}-${i + 1}`);
      names.push(...jobs);
      await createTrainingJobs(h, 'away', jobs);
      // Two versions of one model both asking for the production alias: the registry must give it to one.
      await h.api.create(
        kinds.ModelVersion,
        modelVersion(h.namespace, `contested-${round}`, 1, ['production']) as never,
        'loopline-chaos',
      );
      await h.api.create(
        kinds.ModelVersion,
        modelVersion(h.namespace, `contested-${round}`, 2, ['production']) as never,
        'loopline-chaos',
      );
      await h.api.delete(kinds.ModelVersion, h.namespace, `${doomed}-v1`);
      const revision = await compactEtcd();
      // Killed: how it stops is not what this round tests, and SIGTERM's graceful shutdown takes seconds.
      await restartApiServer({ signal: 'SIGKILL' });
      record.injected();
      const back = Date.now();
      await h.toxiproxy.setEnabled(PROXY.apiServer, true);
      const probed = await reconcileProbe(h, back);
      await waitForTrainingJobs(h, jobs, 90_000);
      // Recovered when every watch has been re-listed (each informer retries on its own backoff).
      const relisted = relists.lastExpiredAt();
      record.recovered(Math.max(probed, relisted ? relisted - back : 0));
      record.note(
        `round ${round}: etcd compacted at revision ${revision}; ${relists.expired()} watches answered 410 Gone (${[...relists.expiredKinds()].sort().join(', ')}); the first reconcile ${(probed / 1000).toFixed(1)} s after the operator was back, the last re-list ${relisted ? ((relisted - back) / 1000).toFixed(1) : '–'} s`,
      );

      const expired = relists.expiredKinds();
      const missing = ['TrainingJob', 'ModelVersion', 'Job'].filter((kind) => !expired.has(kind));
      record.check(
        missing.length === 0,
        `round ${round}: the watches of TrainingJob, ModelVersion and Job were answered 410 Gone and re-listed: not ${missing.join(', ')}`,
      );
      record.check(
        h.operator.cache.get(kinds.ModelVersion, h.namespace, `${doomed}-v1`) === undefined,
        `round ${round}: ${doomed}-v1, deleted while the operator was away, is gone from its cache after the re-list`,
      );
      await checkSettledAliasHolders(h, record, `contested-${round}`);
      await sleep(500);
    }
    await checkTrainingJobs(h, record, 'away', names);
    await checkQueuesDrain(h, record);
  } finally {
    await h.stop();
  }
  return record.result();
}
