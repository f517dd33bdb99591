// test: no cluster
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { inferenceServiceSettings } from '../config.ts';
import { PREDICTOR_IMAGE } from '../desired.ts';

test('the chart environment becomes Prometheus, NATS, stream and predictor settings', () => {
  const settings = inferenceServiceSettings({
    PROMETHEUS_URL: 'http://prom:9090',
    PROMETHEUS_SCRAPE_INTERVAL: '30s',
    NATS_URL: 'nats://nats:4222',
    NATS_CREDS_FILE: '/etc/loopline/nats/nats.creds',
    NATS_STREAM: 'EVENTS',
    NATS_STREAM_MAX_AGE: '7d',
    NATS_STREAM_MAX_BYTES: '-1',
    PREDICTOR_IMAGE: 'mirror.local/loopline/predictor:0.2.0',
    PREDICTOR_CPU: '1',
    PREDICTOR_MEMORY: '1Gi',
    CLUSTER_DOMAIN: 'corp.local',
    INFERENCESERVICE_WORKERS: '8',
    STORAGE_S3_ENDPOINT: 'http://minio.storage:9000',
    STORAGE_S3_REGION: 'eu-west-1',
    STORAGE_S3_FORCE_PATH_STYLE: 'true',
    STORAGE_S3_SECRET: 'artifact-keys',
    STORAGE_S3_ACCESS_KEY_ID_KEY: 'accesskey',
  });
  assert.equal(settings, {
    workers: 8,
    prometheusUrl: 'http://prom:9090',
    scrapeIntervalMs: 30_000,
    nats: { url: 'nats://nats:4222', credsFile: '/etc/loopline/nats/nats.creds' },
    stream: { name: 'EVENTS', maxAgeMs: 7 * 86_400_000, maxBytes: -1 },
    serving: {
      predictorImage: 'mirror.local/loopline/predictor:0.2.0',
      natsUrl: 'nats://nats:4222',
      predictorResources: { cpu: '1', memory: '1Gi' },
      clusterDomain: 'corp.local',
      storage: {
        endpoint: 'http://minio.storage:9000',
        region: 'eu-west-1',
        forcePathStyle: true,
        credentials: {
          secretName: 'artifact-keys',
          accessKeyIdKey: 'accesskey',
          secretAccessKeyKey: 'AWS_SECRET_ACCESS_KEY',
        },
      },
    },
  });
});

test('with nothing set: the local Prometheus, no NATS, the loopline/predictor image the local kubelet runs', () => {
  const settings = inferenceServiceSettings({});
  assert.is(settings.nats, undefined);
  assert.is(settings.serving.natsUrl, undefined);
  assert.is(settings.serving.predictorImage, PREDICTOR_IMAGE);
  assert.match(PREDICTOR_IMAGE, /^loopline\/predictor:/);
  assert.is(settings.prometheusUrl, 'http://localhost:9090');
  assert.equal(settings.serving.storage, {}, "AWS S3 with the pods' own credential chain");
});

test('bad durations, byte counts and storage settings are refused with the variable named', () => {
  assert.throws(() => inferenceServiceSettings({ NATS_STREAM_MAX_AGE: 'a week' }), /NATS_STREAM_MAX_AGE/);
  assert.throws(() => inferenceServiceSettings({ NATS_STREAM_MAX_BYTES: '1GB' }), /NATS_STREAM_MAX_BYTES/);
  assert.throws(() => inferenceServiceSettings({ INFERENCESERVICE_WORKERS: '0' }), /INFERENCESERVICE_WORKERS/);
  assert.throws(
    () => inferenceServiceSettings({ STORAGE_S3_ENDPOINT: 'minio:9000' }),
    /STORAGE_S3_ENDPOINT: "minio:9000" is not an endpoint URL/,
  );
  assert.throws(
    () => inferenceServiceSettings({ STORAGE_S3_FORCE_PATH_STYLE: 'yes' }),
    /STORAGE_S3_FORCE_PATH_STYLE: "yes" must be true or false/,
  );
});

test.run();
