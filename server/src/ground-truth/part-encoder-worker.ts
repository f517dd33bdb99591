// The encoder thread of the inference log (part-encoder.ts starts it): turns each PartJob it is sent into a
// Parquet part and sends the bytes back, in the order the jobs came.
import { parentPort } from 'node:worker_threads';
import { tableOf, type PartJob } from './log-batch.ts';
import { encodeParquet } from './parquet.ts';

const port = parentPort!;
port.on('message', ({ id, job }: { id: number; job: PartJob }) => {
  let bytes: Uint8Array;
  try {
    bytes = encodeParquet(tableOf(job));
  } catch (error) {
    port.postMessage({ id, error: (error as Error).message });
    return;
  }
  port.postMessage({ id, bytes }, [bytes.buffer as ArrayBuffer]);
});
