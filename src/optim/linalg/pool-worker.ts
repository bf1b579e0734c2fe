/**
 * Worker thread body for {@link LinalgPool}: runs host linear-algebra jobs and transfers the
 * result arrays back (LAPACK single-threaded, as everywhere in job-runner.ts). It imports only
 * job-runner.ts, which loads no TensorFlow.js (see there): a worker is ready in ≈ 0.1–0.3 s.
 */
import { parentPort } from 'node:worker_threads';
import { prepareJobRunner, runHostJob, type HostJob } from './job-runner.js';

/**
 * Test hook, never set by users: hold every job this many milliseconds, so a test can stop a run
 * deterministically in the middle of a step's host work.
 */
const testDelayMs = Number(process.env.SOAP_TRAIN_TEST_JOB_DELAY_MS ?? 0);

const port = parentPort;
if (!port) throw new Error('pool-worker.ts runs only as a worker thread');
// Now, not at the first job: a pool started ahead of its work (LinalgPool.start) loads the
// binding while the main thread is still busy with the step's forward and backward pass.
prepareJobRunner();
port.postMessage({ ready: true });
port.on('message', ({ id, job }: { id: number; job: HostJob }) => {
  try {
    if (testDelayMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, testDelayMs);
    const result = runHostJob(job);
    port.postMessage({ id, result }, [...new Set(Object.values(result).map((a) => a.buffer as ArrayBuffer))]);
  } catch (err) {
    port.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
});
