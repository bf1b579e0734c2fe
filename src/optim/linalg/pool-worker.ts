/**
 * Worker thread body for {@link LinalgPool}: runs host linear-algebra jobs and transfers the
 * result arrays back (LAPACK single-threaded, as everywhere in host-jobs.ts).
 */
import { parentPort } from 'node:worker_threads';
import { runHostJob, type HostJob } from './host-jobs.js';

const port = parentPort;
if (!port) throw new Error('pool-worker.ts runs only as a worker thread');
port.on('message', ({ id, job }: { id: number; job: HostJob }) => {
  try {
    const result = runHostJob(job);
    port.postMessage({ id, result }, [...new Set(Object.values(result).map((a) => a.buffer as ArrayBuffer))]);
  } catch (err) {
    port.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
});
