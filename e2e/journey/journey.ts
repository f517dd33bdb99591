/**
 * The user journey of the examples, step by step, as a user drives it: kubectl, HTTP, NATS. Each step
 * waits for what a user would wait for and returns what they would see (command output, responses,
 * status), so the suite can assert on it and the demo can print it.
 *
 *   train (examples/trainingjob.yaml) → ModelVersion v1 → promote it → serve it
 *   (examples/inferenceservice.yaml) → predictions → train again → v2 canaried, analysed, promoted →
 *   drifted traffic → retraining → v3 canaried, analysed, promoted
 *
 * The examples are applied as they are; the journey then patches only the rollout clock (interval, and
 * minRequests scaled with it) and the predictor replica count, so the whole loop takes minutes instead of
 * an hour. The drift window stays the example's (1000 rows): the predictors judge windows closed early
 * (by time or at shutdown) whatever their row count, and a window of a few dozen rows looks drifted by
 * chance. What the patch changes is printed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { KubeConfig } from '@kubernetes/client-node';
import * as yaml from 'js-yaml';
import { Fatal, getJson, kubectl, run, waitFor, type CommandResult } from './commands.ts';
import type { EventLog } from './events.ts';
import { CREDIT_RISK_FEATURES, generateCreditRisk, riskLogit, toCsv } from '../../examples/trainer/src/dataset.ts';
import { seededRandom } from '../../examples/trainer/src/random.ts';
import { parseS3Uri, s3ClientFromEnv } from '../../operator/api/object-storage.ts';
import { applications, postJson, serviceEndpoints, Traffic, type PredictResponse } from './traffic.ts';
import { GatewayClient, type GatewayAnswer } from '../../test/support/gateway.ts';

export interface Reporter {
  /** A new step begins. */
  step(title: string): void;
  /** A command as typed and what it printed. */
  command(result: CommandResult): void;
  /** A line of progress while waiting. */
  progress(line: string): void;
}

export const quietReporter: Reporter = { step() {}, command() {}, progress() {} };

export interface JourneyTimings {
  /** spec.rollout.interval of the InferenceService (the example: 1m). */
  rolloutInterval: string;
  /** spec.rollout.analysis.minRequests, scaled with the interval (the example: 50 per minute). */
  minRequests: number;
  /** Predictor pods per version (the example: 2). */
  replicas: number;
  /** Requests per second the journey's clients send. */
  trafficRate: number;
  /** How far the drifted population moves (as the example trainer's generator moves it). */
  driftShift: number;
}

export const JOURNEY_TIMINGS: JourneyTimings = {
  rolloutInterval: '10s',
  minRequests: 10,
  replicas: 1,
  trafficRate: 40,
  driftShift: 1.5,
};

export const MODEL = 'credit-risk';
export const ISVC = 'credit-risk';
export const FIRST_JOB = 'credit-risk-train';
export const SECOND_JOB = 'credit-risk-train-2';

export interface RolloutObservation {
  /** Canary weights the HTTPRoute carried, in order (0 excluded). */
  routeWeights: number[];
  /** status.analysis.message of every check seen. */
  analyses: string[];
  /** Requests per served version the clients got answers from during the rollout. */
  answeredBy: Record<string, number>;
  isvc: any;
}

export class Journey {
  readonly traffic: Traffic;
  /** Requests to the Gateway with the Host examples/inferenceservice.yaml routes. */
  readonly gateway: GatewayClient;
  private readonly kc: KubeConfig;

  constructor(
    readonly root: string,
    readonly namespace: string,
    readonly events: EventLog,
    readonly report: Reporter = quietReporter,
    readonly timings: JourneyTimings = JOURNEY_TIMINGS,
  ) {
    this.kc = new KubeConfig();
    this.kc.loadFromDefault();
    const example = yaml.load(readFileSync(join(root, 'examples/inferenceservice.yaml'), 'utf8')) as any;
    this.gateway = new GatewayClient(example.spec.traffic.hostnames[0]);
    this.traffic = new Traffic(this.gateway, timings.trafficRate);
  }

  private async kubectl(args: string[], input?: string): Promise<CommandResult> {
    const result = await kubectl(args, input !== undefined ? { input } : {});
    this.report.command(result);
    return result;
  }

  private ns(...args: string[]): string[] {
    return [...args, '-n', this.namespace];
  }

  /** The namespace, and its LocalQueue "training" (the examples' spec.queueName) on the ClusterQueue cluster.sh made. */
  async createNamespace(): Promise<void> {
    const exists = await getJson(['namespace', this.namespace]);
    if (!exists) await this.kubectl(['create', 'namespace', this.namespace]);
    const queue = {
      apiVersion: 'kueue.x-k8s.io/v1beta2',
      kind: 'LocalQueue',
      metadata: { name: 'training', namespace: this.namespace },
      spec: { clusterQueue: 'training' },
    };
    await this.kubectl(['apply', '-f', '-'], yaml.dump(queue));
  }

  private readonly exampleJob = () =>
    yaml.load(readFileSync(join(this.root, 'examples/trainingjob.yaml'), 'utf8')) as any;

  /** The s3:// prefix the example's spec.dataset.uri names (its data lands there one CSV object per snapshot). */
  datasetUri(): string {
    return this.exampleJob().spec.dataset.uri;
  }

  /** Puts `csv` at `uri` with the user's S3 settings (AWS_* from `cluster.sh env`, as any S3 client reads them). */
  private async putObject(uri: string, csv: string): Promise<void> {
    const { bucket, key } = parseS3Uri(uri);
    await s3ClientFromEnv(process.env).send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: csv, ContentType: 'text/csv' }),
    );
  }

  private readonly originalCsv = () => toCsv(generateCreditRisk({ rows: 4000, seed: 42, shift: 0 }));

  /**
   * The data set the example trains on, where its spec.dataset.uri says: the snapshot it names, drawn from
   * the example trainer's credit-risk population (deterministic, so writing it again changes nothing).
   */
  async prepareDataset(): Promise<string> {
    const uri = `${this.datasetUri()}${this.exampleJob().spec.dataset.snapshot}.csv`;
    await this.putObject(uri, this.originalCsv());
    return uri;
  }

  /** `kubectl apply -f examples/trainingjob.yaml`. */
  async applyTrainingJob(): Promise<CommandResult> {
    this.report.step('train: kubectl apply -f examples/trainingjob.yaml');
    return await this.kubectl(this.ns('apply', '-f', join(this.root, 'examples/trainingjob.yaml')));
  }

  /** A second experiment: the example job under another name, more epochs and another seed. */
  async applySecondTrainingJob(): Promise<CommandResult> {
    this.report.step(`train again: ${SECOND_JOB} (the example with epochs=300, seed=7)`);
    const job = yaml.load(readFileSync(join(this.root, 'examples/trainingjob.yaml'), 'utf8')) as any;
    job.metadata.name = SECOND_JOB;
    job.spec.hyperparameters = { ...job.spec.hyperparameters, epochs: '300', seed: '7' };
    return await this.kubectl(this.ns('apply', '-f', '-'), yaml.dump(job));
  }

  /**
   * Waits until the TrainingJob succeeded and registered a version; `kubectl get trainingjobs` then. A job with
   * spec.queueName (every one the journey makes) must have trained through Kueue: admitted from a Workload.
   */
  async waitForTraining(name: string, timeoutMs = 240_000): Promise<{ job: any; table: CommandResult }> {
    let last: any;
    const job = await waitFor(
      `TrainingJob ${name} to succeed and register a ModelVersion`,
      async () => {
        last = await getJson(this.ns('trainingjob', name));
        if (last?.status?.phase === 'Failed') throw new Fatal(`TrainingJob ${name} failed: ${last.status.message}`);
        return last?.status?.phase === 'Succeeded' && last.status.modelVersion ? last : undefined;
      },
      {
        timeoutMs,
        describe: () =>
          last
            ? `trainingjob/${name}: ${last.status?.phase ?? 'Pending'} (attempts ${last.status?.attempts ?? 0}) ${last.status?.message ?? ''}`
            : undefined,
        progress: (line) => this.report.progress(line),
      },
    );
    const queue = job.status.queue;
    if (job.spec?.queueName && !(queue?.state === 'Admitted' && queue.workload && queue.clusterQueue))
      throw new Fatal(
        `TrainingJob ${name} has spec.queueName ${job.spec.queueName} but did not train through Kueue: status.queue is ${JSON.stringify(queue)}`,
      );
    if (queue)
      this.report.progress(
        `trainingjob/${name}: admitted by Kueue (Workload ${queue.workload}, ClusterQueue ${queue.clusterQueue})`,
      );
    const table = await this.kubectl(this.ns('get', 'trainingjobs'));
    return { job, table };
  }

  /** `kubectl get modelversions`, once `name` is there with its metric. */
  async modelVersions(name: string): Promise<{ table: CommandResult; items: any[] }> {
    await waitFor(
      `ModelVersion ${name} with its primary metric`,
      async () => (await getJson(this.ns('modelversion', name)))?.status?.primaryMetric,
      { timeoutMs: 30_000 },
    );
    const table = await this.kubectl(this.ns('get', 'modelversions'));
    const items = (await getJson<{ items: any[] }>(this.ns('modelversions')))!.items;
    return { table, items };
  }

  /** Production stage and the production alias, as a user asks for them; waits until the registry agrees. */
  async promote(name: string): Promise<{ patch: CommandResult; mv: any; table: CommandResult }> {
    this.report.step(`promote ${name}: kubectl patch modelversion ${name} (stage Production, alias production)`);
    const patch = await this.kubectl(
      this.ns(
        'patch',
        'modelversion',
        name,
        '--type=merge',
        '-p',
        JSON.stringify({ spec: { stage: 'Production', aliases: ['production'] } }),
      ),
    );
    const mv = await waitFor(
      `ModelVersion ${name} in Production with alias production`,
      async () => {
        const mv = await getJson(this.ns('modelversion', name));
        return mv?.status?.stage === 'Production' && mv.status.aliases?.includes('production') ? mv : undefined;
      },
      { timeoutMs: 30_000 },
    );
    const table = await this.kubectl(this.ns('get', 'modelversions'));
    return { patch, mv, table };
  }

  /** `kubectl apply -f examples/inferenceservice.yaml`, then the journey's timings. */
  async applyInferenceService(): Promise<{ apply: CommandResult; patch: CommandResult }> {
    this.report.step('serve: kubectl apply -f examples/inferenceservice.yaml (then shorter clocks for the journey)');
    const apply = await this.kubectl(this.ns('apply', '-f', join(this.root, 'examples/inferenceservice.yaml')));
    const t = this.timings;
    const overrides = {
      spec: {
        predictor: { replicas: t.replicas },
        rollout: { interval: t.rolloutInterval, analysis: { minRequests: t.minRequests } },
      },
    };
    const patch = await this.kubectl(
      this.ns('patch', 'inferenceservice', ISVC, '--type=merge', '-p', JSON.stringify(overrides)),
    );
    return { apply, patch };
  }

  /** Waits until the InferenceService is Ready on `version`; `kubectl get inferenceservices` and its pods. */
  async waitForServing(
    version: number,
    timeoutMs = 120_000,
  ): Promise<{ isvc: any; table: CommandResult; pods: CommandResult; endpoints: string[] }> {
    let last: any;
    const isvc = await waitFor(
      `InferenceService ${ISVC} Ready on v${version}`,
      async () => {
        last = await getJson(this.ns('inferenceservice', ISVC));
        const ready = last?.status?.conditions?.find((c: any) => c.type === 'Ready');
        return ready?.status === 'True' && last.status.stableVersion === version ? last : undefined;
      },
      {
        timeoutMs,
        describe: () => {
          const ready = last?.status?.conditions?.find((c: any) => c.type === 'Ready');
          return ready
            ? `inferenceservice/${ISVC}: Ready=${ready.status} ${ready.reason}: ${ready.message}`
            : undefined;
        },
        progress: (line) => this.report.progress(line),
      },
    );
    // The journey's patch changed the pod template: wait for the new pods, as `kubectl rollout status` does.
    await this.kubectl(this.ns('rollout', 'status', `deployment/${ISVC}-v${version}`, '--timeout=120s'));
    const endpoints = await waitFor(
      `a ready endpoint of Service ${ISVC}`,
      async () => {
        const found = await serviceEndpoints(this.kc, this.namespace, ISVC);
        return found.length ? found : undefined;
      },
      { timeoutMs: 30_000 },
    );
    const table = await this.kubectl(this.ns('get', 'inferenceservices'));
    const pods = await this.kubectl(
      this.ns('get', 'pods', '-o', 'wide', '-l', `loopline.dev/inferenceservice=${ISVC}`),
    );
    return { isvc, table, pods, endpoints };
  }

  /** One application scored by every ready endpoint of the Service, and one through the Gateway. */
  async predict(): Promise<{ direct: PredictResponse[]; routed: GatewayAnswer; application: Record<string, number> }> {
    this.report.step(
      `predict: POST /predict to the ${ISVC} Service's endpoints and through the Gateway with Host ${this.gateway.host}`,
    );
    const application = applications(1, 0, 7)[0]!;
    const endpoints = await serviceEndpoints(this.kc, this.namespace, ISVC);
    const direct: PredictResponse[] = [];
    for (const endpoint of endpoints) {
      const response = await postJson(endpoint, '/predict', { features: application }, ISVC);
      this.report.progress(
        `curl -s -XPOST http://${endpoint}/predict -d '${JSON.stringify({ features: application })}'\n    → ${response.status} ${JSON.stringify(response.body)}`,
      );
      direct.push(response);
    }
    // The Gateway follows the pod's EndpointSlice a moment after the Service's endpoints are ready (503 until then).
    const routed = await waitFor(
      'an answer through the Gateway',
      async () => {
        const answer = await this.gateway.post('/predict', { features: application });
        return answer.status === 503 ? undefined : answer;
      },
      { timeoutMs: 20_000 },
    );
    this.report.progress(
      `curl -s -XPOST ${process.env.GATEWAY_URL}/predict -H 'host: ${this.gateway.host}' -d '${JSON.stringify({ features: application })}'\n    → ${routed.status} ${JSON.stringify(routed.body)}`,
    );
    return { direct, routed, application };
  }

  startTraffic(): void {
    this.traffic.start();
  }

  /**
   * Follows a canary of `version` until it is promoted: the HTTPRoute's weights, each analysis, and
   * which versions answered the clients meanwhile.
   */
  async watchRollout(version: number, timeoutMs = 240_000): Promise<RolloutObservation> {
    this.report.step(`canary: v${version} rolled out by the operator, analysed against Prometheus`);
    const routeWeights: number[] = [];
    const analyses: string[] = [];
    const before = { ...this.traffic.stats.byVersion };
    let last: any;
    const isvc = await waitFor(
      `v${version} promoted`,
      async () => {
        last = await getJson(this.ns('inferenceservice', ISVC));
        const route = await getJson(this.ns('httproute', ISVC));
        const canaryRef = route?.spec?.rules?.[0]?.backendRefs?.find((r: any) => r.name === `${ISVC}-v${version}`);
        const weight = canaryRef && route.spec.rules[0].backendRefs.length > 1 ? canaryRef.weight : 0;
        if (weight > 0 && routeWeights[routeWeights.length - 1] !== weight) routeWeights.push(weight);
        const message = last?.status?.analysis?.message;
        if (
          message &&
          last.status.canaryVersion === version &&
          analyses[analyses.length - 1] !== `${last.status.analysis.lastCheck} ${message}`
        ) {
          analyses.push(`${last.status.analysis.lastCheck} ${message}`);
        }
        if (last?.status?.phase === 'RolledBack' && last.status.canaryVersion === version) {
          throw new Fatal(`v${version} was rolled back: ${message}`);
        }
        return last?.status?.phase === 'Promoted' && last.status.stableVersion === version ? last : undefined;
      },
      {
        timeoutMs,
        intervalMs: 250,
        describe: () => {
          const s = last?.status;
          if (!s) return undefined;
          return (
            `${s.phase} stable v${s.stableVersion} canary ${s.canaryVersion !== undefined ? `v${s.canaryVersion} at ${s.canaryWeight}%` : 'none'}` +
            `${s.analysis?.message ? ` | last analysis ${s.analysis.message}` : ''}`
          );
        },
        progress: (line) => this.report.progress(line),
      },
    );
    const answeredBy: Record<string, number> = {};
    for (const [v, n] of Object.entries(this.traffic.stats.byVersion)) answeredBy[v] = n - (before[v] ?? 0);
    this.report.progress(
      `clients answered during the rollout: ${Object.entries(answeredBy)
        .map(([v, n]) => `v${v} ${n}`)
        .join(', ')}; failed so far: ${this.traffic.stats.failed}`,
    );
    await this.kubectl(this.ns('get', 'inferenceservices'));
    return { routeWeights, analyses, answeredBy, isvc };
  }

  /** Where the journey lands recent data for retraining: a data set of its own, so the example's stays as shipped. */
  recentDatasetUri(): string {
    return `${this.datasetUri().replace(/\/+$/, '')}-${this.namespace}/`;
  }

  /**
   * Clients start sending applications from a moved population; recent data (the moved population) lands
   * next to the original snapshot in a data set the retraining template is pointed at. Waits for the drift
   * the predictors report.
   */
  async injectDrift(timeoutMs = 120_000): Promise<{ isvc: any; driftEvents: number; recentData: string }> {
    this.report.step(
      `drift: client traffic moves (shift ${this.timings.driftShift}); the predictors compare it with the training profile`,
    );
    const prefix = this.recentDatasetUri();
    await this.putObject(`${prefix}original.csv`, this.originalCsv());
    const recentData = `${prefix}recent.csv`;
    await this.putObject(
      recentData,
      toCsv(generateCreditRisk({ rows: 4000, seed: 43, shift: this.timings.driftShift })),
    );
    this.report.progress(`recent data landed under ${prefix}; retraining pointed at it`);
    await this.kubectl(
      this.ns(
        'patch',
        'inferenceservice',
        ISVC,
        '--type=merge',
        '-p',
        JSON.stringify({ spec: { retrain: { template: { spec: { dataset: { uri: prefix } } } } } }),
      ),
    );
    const since = this.events.events.length;
    this.traffic.setShift(this.timings.driftShift);
    let last: any;
    const isvc = await waitFor(
      'status.drift.drifted',
      async () => {
        last = await getJson(this.ns('inferenceservice', ISVC));
        return last?.status?.drift?.drifted === true ? last : undefined;
      },
      {
        timeoutMs,
        describe: () =>
          last?.status?.drift
            ? `drift score ${last.status.drift.score} drifted=${last.status.drift.drifted} [${(last.status.drift.driftedFeatures ?? []).join(', ')}]`
            : undefined,
        progress: (line) => this.report.progress(line),
      },
    );
    return {
      isvc,
      driftEvents: this.events.events.slice(since).filter((e) => e.subject.startsWith('loopline.drift.')).length,
      recentData,
    };
  }

  /** The TrainingJob the operator started because of the drift. */
  async retrainingJob(timeoutMs = 60_000): Promise<{ name: string; job: any; table: CommandResult }> {
    this.report.step('retrain: the operator starts a TrainingJob from spec.retrain.template');
    const name = await waitFor(
      'status.lastRetrain',
      async () =>
        (await getJson(this.ns('inferenceservice', ISVC)))?.status?.lastRetrain?.trainingJob as string | undefined,
      { timeoutMs },
    );
    const job = await getJson(this.ns('trainingjob', name));
    const table = await this.kubectl(this.ns('get', 'trainingjobs'));
    return { name, job, table };
  }

  /**
   * Where the predictors log their predictions and the clients' labels land (spec.logging.uri): a base of this
   * InferenceService's own (by its uid), so an earlier run's logs and labels in the same bucket never join in.
   */
  async groundTruthUri(): Promise<string> {
    const isvc = await getJson(this.ns('inferenceservice', ISVC));
    return `s3://${process.env.LOOPLINE_S3_BUCKET ?? 'loopline'}/ground-truth/${this.namespace}-${String(isvc.metadata.uid).slice(0, 8)}`;
  }

  /** One quality evaluation now, as `kubectl create job --from=cronjob/...` runs it between schedules. */
  private evaluations = 0;
  async evaluateNow(): Promise<string> {
    const job = `${ISVC}-quality-now-${++this.evaluations}`;
    await kubectl(this.ns('create', 'job', `--from=cronjob/${ISVC}-quality`, job));
    return job;
  }

  /**
   * Live quality with retraining on a drop: the predictors log to S3, the evaluator runs every minute, and a live
   * AUC 0.1 below the serving version's training AUC (on at least 300 labels) starts a retrain on production rows.
   */
  async enableQualityRetrain(version: number): Promise<CommandResult> {
    this.report.step(
      'quality: log predictions to S3, evaluate them every minute, retrain when live AUC falls 0.1 below the training AUC',
    );
    const patch = await this.kubectl(
      this.ns(
        'patch',
        'inferenceservice',
        ISVC,
        '--type=merge',
        '-p',
        JSON.stringify({
          spec: {
            logging: { enabled: true, uri: await this.groundTruthUri(), flushInterval: '5s' },
            quality: { schedule: '* * * * *', window: '10m' },
            // Drift retraining off: what retrains in this part is the quality monitor alone. A short cooldown, as
            // the drift retrain that made the serving version was a minute ago.
            retrain: {
              onDrift: false,
              cooldown: '2m',
              onQualityDrop: { metric: 'auc', maxDropFromTraining: 0.1, minLabels: 300 },
              template: { metadata: { labels: { 'loopline.dev/trigger': 'quality' } } },
            },
          },
        }),
      ),
    );
    await this.waitForServing(version);
    return patch;
  }

  /**
   * A concept shift: the clients keep sending the same population, but outcomes now follow another rule (the
   * example generator's riskLogit concept 1), and the clients send each outcome to POST /feedback. No input moves,
   * so drift sees nothing; the evaluator's live AUC drops. Waits for the retrain that starts.
   */
  async injectConceptShift(timeoutMs = 420_000): Promise<{ name: string; isvc: any; job: any }> {
    this.report.step(
      'concept shift: the same applications, another outcome rule; clients send outcomes to POST /feedback',
    );
    const uniform = seededRandom(2027);
    this.traffic.sendLabels((features) => {
      const row = CREDIT_RISK_FEATURES.map((f) => features[f.name]!);
      return uniform() < 1 / (1 + Math.exp(-riskLogit(row, 1))) ? 1 : 0;
    });
    const since = Date.now();
    let lastKick = 0;
    let last: any;
    const isvc = await waitFor(
      'a retrain on the quality drop',
      async () => {
        if (Date.now() - lastKick > 20_000) {
          lastKick = Date.now();
          await this.evaluateNow();
        }
        last = await getJson(this.ns('inferenceservice', ISVC));
        const retrain = last?.status?.lastRetrain;
        return retrain?.trigger === 'QualityDrop' && Date.parse(retrain.time) >= since - 1000 ? last : undefined;
      },
      {
        timeoutMs,
        intervalMs: 2000,
        describe: () => {
          const stable = last?.status?.quality?.versions?.find((v: any) => v.version === last.status.stableVersion);
          const labels = `${this.traffic.stats.labelled} labels sent`;
          return stable
            ? `v${stable.version} live AUC ${stable.auc?.toFixed?.(3) ?? 'n/a'} over ${stable.count} labels; ${labels}`
            : labels;
        },
        progress: (line) => this.report.progress(line),
      },
    );
    const stable = isvc.status.quality.versions.find((v: any) => v.version === isvc.status.stableVersion);
    this.report.progress(
      `v${stable.version}: live AUC ${stable.auc.toFixed(3)} over ${stable.count} labels; snapshot ${isvc.status.quality.snapshot.uri} (${isvc.status.quality.snapshot.rows} rows, sha256 ${isvc.status.quality.snapshot.sha256.slice(0, 16)}…)`,
    );
    const name = isvc.status.lastRetrain.trainingJob as string;
    const job = await getJson(this.ns('trainingjob', name));
    this.report.progress(`TrainingJob ${name}: dataset ${JSON.stringify(job?.spec?.dataset)}`);
    await this.kubectl(this.ns('get', 'trainingjobs'));
    return { name, isvc, job };
  }

  /**
   * Live AUC of `versions` on the shifted population, measured by one evaluation now over the quality window
   * (which holds the old version's answers before and during the rollout, and the new one's since).
   */
  async liveQuality(versions: number[], timeoutMs = 120_000): Promise<Record<number, { auc: number; count: number }>> {
    this.report.step(`live quality after the rollout: v${versions.join(' and v')} on the shifted population`);
    // Let the predictors flush their logs (flushInterval 5s) and the clients their labels.
    await new Promise((resolve) => setTimeout(resolve, 8000));
    const before = (await getJson(this.ns('inferenceservice', ISVC)))?.status?.quality?.lastEventId;
    await this.evaluateNow();
    const isvc = await waitFor(
      'a new evaluation in status.quality',
      async () => {
        const object = await getJson(this.ns('inferenceservice', ISVC));
        return object?.status?.quality?.lastEventId && object.status.quality.lastEventId !== before
          ? object
          : undefined;
      },
      { timeoutMs, progress: (line) => this.report.progress(line) },
    );
    const out: Record<number, { auc: number; count: number }> = {};
    for (const version of versions) {
      const entry = isvc.status.quality.versions.find((v: any) => v.version === version);
      if (entry) out[version] = { auc: entry.auc, count: entry.count };
      this.report.progress(
        entry
          ? `v${version}: live AUC ${entry.auc?.toFixed(3) ?? 'n/a'} over ${entry.count} labelled of ${entry.predictions} logged predictions`
          : `v${version}: no logged predictions in the window`,
      );
    }
    return out;
  }

  /**
   * The example's nightly batch scoring, run now as `kubectl create job --from=cronjob/...` runs it: the CRM's
   * Secret, the customers the example's spec.batch input names, one run, and the table it wrote.
   */
  async batchScoring(timeoutMs = 120_000): Promise<{ run: any; segments: CommandResult }> {
    const example = yaml.load(readFileSync(join(this.root, 'examples/inferenceservice.yaml'), 'utf8')) as any;
    const entry = example.spec.batch[0];
    const url = process.env.LOOPLINE_POSTGRES_URL;
    if (!url) throw new Fatal('LOOPLINE_POSTGRES_URL is not set: eval "$(bash e2e/cluster/cluster.sh env)"');
    this.report.step(
      `batch: Secret ${entry.output.postgres.connectionSecret.name} with the CRM's connection string, customers at ${entry.input.uri}`,
    );
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: entry.output.postgres.connectionSecret.name, namespace: this.namespace },
      stringData: { url },
    };
    await this.kubectl(['apply', '-f', '-'], JSON.stringify(secret));
    const customers = generateCreditRisk({ rows: 5000, seed: 2026, shift: 0 }).x;
    const header = ['customer_id', ...CREDIT_RISK_FEATURES.map((f) => f.name)].join(',');
    await this.putObject(
      entry.input.uri,
      [
        header,
        ...customers.map((row, i) =>
          [`CUST-${String(i + 1).padStart(5, '0')}`, ...row.map((v) => (Number.isNaN(v) ? '' : v))].join(','),
        ),
      ].join('\n'),
    );
    const cronJob = `${ISVC}-batch-${entry.name}`;
    const job = `${cronJob}-demo`;
    this.report.step(`batch: kubectl create job --from=cronjob/${cronJob} ${job} (a run between schedules)`);
    await this.kubectl(this.ns('delete', 'job', job, '--ignore-not-found', '--wait'));
    await this.kubectl(this.ns('create', 'job', `--from=cronjob/${cronJob}`, job));
    const batchRun = await waitFor(
      `run ${job} recorded in status.batch`,
      async () => {
        const isvc = await getJson(this.ns('inferenceservice', ISVC));
        const lastRun = isvc?.status?.batch?.find((b: any) => b.name === entry.name)?.lastRun;
        return lastRun?.job === job ? lastRun : undefined;
      },
      { timeoutMs, progress: (line) => this.report.progress(line) },
    );
    this.report.progress(batchRun.message);
    // The password through the environment, not argv.
    const db = new URL(url);
    const password = decodeURIComponent(db.password);
    db.password = '';
    const sql = `SELECT segment, count(*), round(avg(score)::numeric, 3) AS avg_score, min(model_version) AS version FROM ${entry.output.postgres.table} GROUP BY segment ORDER BY avg_score`;
    const segments = await run('psql', [db.href, '-X', '-c', sql], { env: { PGPASSWORD: password } });
    this.report.command(segments);
    return { run: batchRun, segments };
  }

  async stop(): Promise<void> {
    await this.traffic.stop();
    this.gateway.close();
  }
}
