// Encoding inference-log parts on a thread of their own, so the serving thread only appends rows: a sealed
// batch's buffers move to the worker (no copy) and come back with its Parquet bytes. One worker per process,
// started with the first part; jobs are encoded one at a time in the order given. If the worker fails or
// exits, the parts it held are rejected (their rows count as dropped) and the next part starts a new one.
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { buffersOf, type Columns, type PartJob } from './log-batch.ts';

// The worker is the sibling file of this one: .js as compiled into the image, .ts when run from source (the
// tests), where the thread needs the tsx loader of its own.
const SOURCE = extname(fileURLToPath(import.meta.url)) === '.ts';
const WORKER_URL = new URL(`./part-encoder-worker${SOURCE ? '.ts' : '.js'}`, import.meta.url);

/** An encoded part, and the job's arrays to write the rows of a later batch into. */
export interface Encoded {
  bytes: Uint8Array;
  columns: Columns;
}

type Answer = ({ id: number; error?: undefined } & Encoded) | { id: number; error: string };

export class PartEncoder {
  private worker: Worker | undefined;
  private readonly waiting = new Map<
    number,
    { worker: Worker; resolve: (encoded: Encoded) => void; reject: (e: Error) => void }
  >();
  private next = 0;

  /** Parts sent and not yet answered. */
  get pending(): number {
    return this.waiting.size;
  }

  /** The part's bytes; `job`'s buffers are moved to the worker and unusable here after the call. */
  encode(job: PartJob): Promise<Encoded> {
    const worker = this.worker ?? this.start();
    const id = ++this.next;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { worker, resolve, reject });
      // Held open while it has work, so a shutdown waiting for the last parts is not cut short.
      worker.ref();
      worker.postMessage({ id, job }, buffersOf(job));
    });
  }

  /** Stop the worker; parts still in it are rejected. */
  async close(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.worker = undefined;
    await worker.terminate();
    this.failAll(worker, new Error('the encoder was stopped'));
  }

  private start(): Worker {
    const worker = SOURCE
      ? new Worker(
          `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(WORKER_URL.href)}); });`,
          { eval: true },
        )
      : new Worker(WORKER_URL);
    worker.unref();
    worker.on('message', (answer: Answer) => {
      const waiter = this.waiting.get(answer.id);
      if (!waiter) return;
      this.waiting.delete(answer.id);
      if (![...this.waiting.values()].some((w) => w.worker === worker)) worker.unref();
      if (answer.error !== undefined) waiter.reject(new Error(answer.error));
      else waiter.resolve({ bytes: answer.bytes, columns: answer.columns });
    });
    const gone = (error: Error) => {
      if (this.worker === worker) this.worker = undefined;
      this.failAll(worker, error);
    };
    worker.on('error', (error) => gone(error));
    worker.on('exit', (code) => gone(new Error(`the encoder thread exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  /** Reject the parts `worker` held. */
  private failAll(worker: Worker, error: Error): void {
    for (const [id, waiter] of this.waiting) {
      if (waiter.worker !== worker) continue;
      this.waiting.delete(id);
      waiter.reject(error);
    }
  }
}
