/**
 * A pool of worker threads for the optimizers' host linear algebra, so the independent
 * decompositions of one refresh (one per parameter and side) use every core and the main
 * thread stays free for signals, progress and logging while they run.
 *
 * - Inputs are transferred to the worker and results transferred back (no copies).
 * - Jobs are dispatched largest first to whichever worker is free; results are returned in
 *   the order of the jobs. A job is a pure function (job-runner.ts), so the results do not
 *   depend on the number of workers or their timing.
 * - Each worker runs its LAPACK single-threaded: the pool is the parallelism.
 * - Aborting (`signal`) terminates the workers (a decomposition cannot be interrupted
 *   otherwise); the next `run` starts fresh ones.
 * - Idle workers do not keep the process alive.
 * - Workers start at the first `run`, or earlier with `start()`, one after another: a worker
 *   takes 0.1–0.5 s to load its modules (see `start` for why they do not start at once).
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { hostJobBuffers, hostJobFlops, runHostJob, type HostJob, type HostResult } from './job-runner.js';

export interface PoolProgress {
  done: number;
  total: number;
  /** Seconds since the batch started. */
  elapsedS: number;
  /** Estimated seconds left, from the flops done so far. */
  etaS: number;
}

export interface RunJobsOptions {
  signal?: AbortSignal;
  onProgress?(p: PoolProgress): void;
}

type Reply = { id: number; result: HostResult } | { id: number; error: string };

/**
 * How to start a worker: the compiled `pool-worker.js` beside this file, or, when running from
 * the TypeScript sources through tsx, a bootstrap that registers tsx's loader inside the worker
 * first (Node 20 does not carry a parent's module hooks into worker threads). The bootstrap uses
 * tsx's require() hook rather than its ESM loader: the ESM loader's `register()` starts a
 * module-hooks thread per worker (≈ 0.2–0.4 s each, measured), while the require hook runs in
 * the worker itself (the worker's modules import nothing that needs ESM: no top-level await).
 */
function startWorker(): Worker {
  const self = import.meta.url;
  if (!self.endsWith('.ts')) return new Worker(new URL('./pool-worker.js', self));
  const bootstrap = `const { workerData: d } = require('node:worker_threads');
require(d.tsx).register();
require(d.entry);`;
  const tsx = createRequire(self).resolve('tsx/cjs/api');
  return new Worker(bootstrap, { eval: true, workerData: { tsx, entry: fileURLToPath(new URL('./pool-worker.ts', self)) } });
}

/** Worker count: `SOAP_TRAIN_LINALG_WORKERS` if set, else one per core. */
export function defaultWorkerCount(): number {
  const env = Number(process.env.SOAP_TRAIN_LINALG_WORKERS);
  return Number.isInteger(env) && env >= 0 ? env : availableParallelism();
}

/**
 * A started worker and its readiness: the worker posts `{ ready: true }` once its modules and
 * the LAPACK binding are loaded.
 */
function startReadyWorker(): Promise<Worker> {
  const w = startWorker();
  return new Promise<Worker>((resolve, reject) => {
    const onMessage = (m: unknown) => {
      if ((m as { ready?: boolean }).ready !== true) return;
      cleanup();
      resolve(w);
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onExit = (code: number) => {
      cleanup();
      reject(new Error(`linear algebra worker exited with code ${code} while starting`));
    };
    // Referenced until ready, so that a caller awaiting the start keeps the process alive; idle
    // afterwards, it must not.
    const cleanup = () => {
      w.off('message', onMessage);
      w.off('error', onError);
      w.off('exit', onExit);
      w.unref();
    };
    w.on('message', onMessage);
    w.on('error', onError);
    w.on('exit', onExit);
  });
}

export class LinalgPool {
  private workers: Worker[] = [];
  /** The start-up in progress, if any: workers start one after another (see `ensureWorkers`). */
  private starting: Promise<void> | null = null;

  /** `workers` = 0 runs every job inline on the calling thread (blocking it). */
  constructor(readonly size: number = defaultWorkerCount()) {}

  /** Runs the jobs; resolves to their results in job order. The jobs' input buffers are transferred away. */
  async run(jobs: HostJob[], opts: RunJobsOptions = {}): Promise<HostResult[]> {
    if (jobs.length === 0) return [];
    const started = performance.now();
    const flops = jobs.map(hostJobFlops);
    const totalFlops = flops.reduce((a, b) => a + b, 0);
    let doneFlops = 0;
    let done = 0;
    const progress = (i: number) => {
      done += 1;
      doneFlops += flops[i];
      const elapsedS = (performance.now() - started) / 1000;
      opts.onProgress?.({ done, total: jobs.length, elapsedS, etaS: doneFlops > 0 ? (elapsedS * (totalFlops - doneFlops)) / doneFlops : 0 });
    };
    if (this.size === 0) {
      return jobs.map((job, i) => {
        opts.signal?.throwIfAborted();
        const result = runHostJob(job);
        progress(i);
        return result;
      });
    }
    opts.signal?.throwIfAborted();
    const order = jobs.map((_, i) => i).sort((a, b) => flops[b] - flops[a] || a - b);
    const results: HostResult[] = new Array<HostResult>(jobs.length);
    const workers = await this.ensureWorkers(Math.min(this.size, jobs.length));
    opts.signal?.throwIfAborted();
    for (const w of workers) w.ref();
    try {
      await new Promise<void>((resolve, reject) => {
        let next = 0;
        let finished = 0;
        let failed = false;
        const fail = (err: unknown) => {
          if (failed) return;
          failed = true;
          cleanup();
          reject(err);
        };
        const onAbort = () => {
          void this.terminate();
          fail(opts.signal?.reason ?? new Error('aborted'));
        };
        const feed = (w: Worker) => {
          if (next >= order.length) return;
          const id = order[next++];
          w.postMessage({ id, job: jobs[id] }, hostJobBuffers(jobs[id]));
        };
        const listeners = workers.map((w) => {
          const onMessage = (reply: Reply | { ready: true }) => {
            if ('ready' in reply) return;
            if ('error' in reply) return fail(new Error(`linear algebra worker: ${reply.error}`));
            results[reply.id] = reply.result;
            finished += 1;
            progress(reply.id);
            if (finished === jobs.length) {
              cleanup();
              resolve();
            } else feed(w);
          };
          const onError = (err: Error) => fail(err);
          const onExit = (code: number) => fail(new Error(`linear algebra worker exited with code ${code}`));
          w.on('message', onMessage);
          w.on('error', onError);
          w.on('exit', onExit);
          return { w, onMessage, onError, onExit };
        });
        const cleanup = () => {
          for (const { w, onMessage, onError, onExit } of listeners) {
            w.off('message', onMessage);
            w.off('error', onError);
            w.off('exit', onExit);
          }
          opts.signal?.removeEventListener('abort', onAbort);
        };
        opts.signal?.addEventListener('abort', onAbort, { once: true });
        for (const w of workers) feed(w);
      });
    } finally {
      for (const w of this.workers) w.unref();
    }
    return results;
  }

  /**
   * Starts every worker now instead of at the first `run`; resolves when all are ready. Idempotent;
   * idle workers do not keep the process alive.
   *
   * Await it before the caller's own OpenBLAS work: from the TypeScript sources each worker's
   * loader starts an esbuild process (a fork), and glibc runs OpenBLAS's fork handler in the
   * forking thread, which shuts OpenBLAS's thread server down. Two forks at once deadlock in that
   * handler, and one during a multi-threaded product on the main thread can drop the product's
   * work (both seen: a run hung in its first step). So workers start one after another, and the
   * trainer waits for them before its first step. (From the compiled dist/ no worker forks.)
   */
  start(): Promise<void> {
    return this.ensureWorkers(this.size).then(() => undefined);
  }

  /** The first `count` workers, started one at a time (each ready before the next forks). */
  private async ensureWorkers(count: number): Promise<Worker[]> {
    while (this.workers.length < count) {
      if (!this.starting) {
        this.starting = startReadyWorker().then(
          (w) => {
            this.workers.push(w);
            this.starting = null;
          },
          (err: unknown) => {
            this.starting = null;
            throw err;
          },
        );
      }
      await this.starting;
    }
    return this.workers.slice(0, count);
  }

  /** Stops every worker (running jobs are abandoned); resolves once they are gone. The pool can be used again. */
  async terminate(): Promise<void> {
    const workers = this.workers;
    this.workers = [];
    // A worker inside a LAPACK call stops only when the call returns (up to a minute at n = 4096):
    // unref it so a process that is exiting does not wait for it.
    for (const w of workers) w.unref();
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
