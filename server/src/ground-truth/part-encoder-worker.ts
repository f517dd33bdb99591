// The encoder thread of the inference log (part-encoder.ts starts it): turns each PartJob it is sent into a
// Parquet part and sends the bytes back, in the order the jobs came, with the job's own buffers (moved, not
// copied) for the serving thread to fill again.
import { parentPort } from 'node:worker_threads';
import { buffersOf, columnsOf, tableOf, type PartJob } from './log-batch.ts';
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
  port.postMessage({ id, bytes, columns: columnsOf(job) }, [bytes.buffer as ArrayBuffer, ...buffersOf(job)]);
});
