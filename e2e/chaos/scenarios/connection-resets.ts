/**
 * (c) The operator's connections to the API server cut every few seconds for a while: Toxiproxy's reset_peer on
 * its proxy resets each connection that long after it first carries data, and every that long the proxy is
 * also disabled for 200 ms, which closes the idle ones too (a quiet watch carries no data). Reconciles must carry on;
 * writes must stay what the work needs: none for objects that do not change, and for a burst of TrainingJobs
 * about what the same burst costs without the fault.
 */
import { sleep } from '../../../test/support/local.ts';
import { PROXY, startChaos } from '../harness.ts';
import { ScenarioRecord, type ScenarioResult } from '../report.ts';
import { checkTrainingJobs, createTrainingJobs, reconcileProbe, waitForTrainingJobs } from '../workload.ts';
import { checkQueuesDrain, watchRestarts } from './common.ts';

export interface ConnectionResetOptions {
  /** How long connections keep being reset. */
  durationMs: number;
  /** Each connection is reset this long after it first carries data. */
  resetAfterMs: number;
  /** TrainingJobs of the burst (once without the fault, once under it). */
  jobs: number;
}

const ignoring = { excludeKinds: ['Event', 'Lease'] };

export async function connectionResets(options: ConnectionResetOptions): Promise<ScenarioResult> {
  const record = new ScenarioRecord(
    'API server connections reset',
    `operator ↔ kube-apiserver connections reset ${options.resetAfterMs / 1000} s after they open, for ${options.durationMs / 1000} s (Toxiproxy reset_peer), quiet first, then a burst of ${options.jobs} TrainingJobs`,
  );
  const h = await startChaos('chaos-resets');
  try {
    // Without the fault: what the burst costs, and the settled objects the quiet half leaves alone.
    const clean = Array.from({ length: options.jobs }, (_, i) => `clean-${i + 1}`);
    let before = h.operator.writes.total(ignoring);
    await createTrainingJobs(h, 'clean', clean);
    // The same probe as after the fault, so both counts include its writes.
    await reconcileProbe(h, Date.now());
    await waitForTrainingJobs(h, clean, 90_000);
    await h.operator.waitIdle();
    await sleep(1000);
    const cleanWrites = h.operator.writes.total(ignoring) - before;

    const relists = watchRestarts(h);
    await h.toxiproxy.addToxic(PROXY.apiServer, {
      name: 'resets',
      type: 'reset_peer',
      attributes: { timeout: options.resetAfterMs },
    });
    const faultStart = Date.now();
    let cutting = true;
    let cuts = 0;
    const cutter = (async () => {
      while (cutting) {
        await sleep(options.resetAfterMs);
        if (!cutting) break;
        await h.toxiproxy.setEnabled(PROXY.apiServer, false);
        await sleep(200);
        await h.toxiproxy.setEnabled(PROXY.apiServer, true);
        cuts++;
      }
    })();
    // The quiet half: nothing changes, so nothing may be written however often the watches are cut.
    before = h.operator.writes.total(ignoring);
    await sleep(options.durationMs / 2);
    const quietWrites = h.operator.writes.total(ignoring) - before;
    record.check(
      quietWrites === 0,
      `no writes while nothing changes, however often the watches are cut: ${quietWrites} writes (${JSON.stringify(h.operator.writes.snapshot())})`,
    );

    const burst = Array.from({ length: options.jobs }, (_, i) => `reset-${i + 1}`);
    before = h.operator.writes.total(ignoring);
    await createTrainingJobs(h, 'reset', burst);
    await sleep(Math.max(0, faultStart + options.durationMs - Date.now()));
    cutting = false;
    await cutter;
    await h.toxiproxy.removeToxic(PROXY.apiServer, 'resets');
    const faultEnd = Date.now();
    const cutWatches = relists.ended();
    record.injected(cuts);
    record.recovered(await reconcileProbe(h, faultEnd));
    await checkTrainingJobs(h, record, 'reset', burst);
    await checkTrainingJobs(h, record, 'clean', clean);
    await h.operator.waitIdle();
    await sleep(1000);
    const faultWrites = h.operator.writes.total(ignoring) - before;
    // A write the reset cut off after the API server took it is retried: allow one retry per job and step.
    record.check(
      faultWrites <= cleanWrites * 2,
      `writes for the burst under resets stay within twice the clean burst's: ${faultWrites} vs ${cleanWrites}`,
    );
    record.note(
      `writes per TrainingJob: ${(cleanWrites / options.jobs).toFixed(1)} clean, ${(faultWrites / options.jobs).toFixed(1)} under resets; ${cuts} times all connections closed, and the operator's watches and lists failed ${cutWatches} times`,
    );
    await checkQueuesDrain(h, record);
  } finally {
    await h.stop();
  }
  return record.result();
}
