/**
 * What makes the first step of a run cheap:
 * - a pool worker's module graph contains no TensorFlow.js (loading it cost each worker 0.4–1 s,
 *   which the first step of every SOAP/Shampoo run waited for), and a pool started ahead of its
 *   work (`LinalgPool.start`) returns the same bits as running the jobs inline;
 * - `reserveWasmHeap` grows the wasm heap once, so that the step's allocations then fit without
 *   growing it, and leaves what tensors compute unchanged.
 */
import '@tensorflow/tfjs-backend-wasm';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { reserveWasmHeap } from '../src/backend/wasm-heap.js';
import { loadNativeLapack } from '../src/optim/linalg/native.js';
import { runHostJob, type HostJob, type HostResult } from '../src/optim/linalg/job-runner.js';
import { tf } from '../src/tf.js';
import { LinalgPool } from '../src/optim/linalg/pool.js';
import { randomMatrix, randomSymmetric } from './helpers/random.js';

const linalg = (file: string) => fileURLToPath(new URL(`../src/optim/linalg/${file}`, import.meta.url));

/**
 * The files a fresh worker thread has loaded after requiring `entry` through tsx's require hook,
 * as the pool's own bootstrap does (pool.ts `startWorker`).
 */
function modulesLoadedBy(entry: string): Promise<string[]> {
  const bootstrap = `const { workerData: d, parentPort } = require('node:worker_threads');
require(d.tsx).register();
require(d.entry);
parentPort.postMessage(Object.keys(require('node:module')._cache));`;
  const tsx = createRequire(import.meta.url).resolve('tsx/cjs/api');
  const worker = new Worker(bootstrap, { eval: true, workerData: { tsx, entry } });
  return new Promise<string[]>((resolve, reject) => {
    // The pool worker announces { ready: true } first; the module list is the array after it.
    worker.on('message', (m: unknown) => {
      if (!Array.isArray(m)) return;
      resolve(m as string[]);
      void worker.terminate();
    });
    worker.once('error', reject);
  }).finally(() => void worker.terminate());
}

const isTfjs = (file: string) => /[\\/]node_modules[\\/]@tensorflow[\\/]/.test(file);

test('a pool worker loads the job runner and no TensorFlow.js', async () => {
  const files = await modulesLoadedBy(linalg('pool-worker.ts'));
  assert.ok(files.includes(linalg('job-runner.ts')), 'the worker loaded the job runner');
  assert.ok(files.includes(linalg('native.ts')), 'and the LAPACK loader');
  assert.deepEqual(files.filter(isTfjs), [], 'no @tensorflow module in the worker');
  // The check can see tfjs when it is there: host-jobs.ts (the optimizers' side) imports it.
  const withTf = await modulesLoadedBy(linalg('host-jobs.ts'));
  assert.ok(withTf.some(isTfjs), 'host-jobs.ts does load @tensorflow/tfjs');
});

const pools: LinalgPool[] = [];
after(() => Promise.all(pools.map((p) => p.terminate())));

/** Fresh jobs each call (a pool transfers their buffers away). */
function jobs(): HostJob[] {
  return [
    { op: 'eigh', n: 64, a: randomSymmetric(64, 11) },
    { op: 'qr', n: 48, a: Float32Array.from(randomMatrix(48, 48, 12)) },
    { op: 'gram_eigh', rows: 24, cols: 90, g: randomMatrix(24, 90, 13), left: true, right: true },
  ];
}

function assertSameBits(got: HostResult[], want: HostResult[]): void {
  assert.equal(got.length, want.length);
  got.forEach((r, i) => {
    assert.deepEqual(Object.keys(r).sort(), Object.keys(want[i]).sort(), `job ${i} outputs`);
    for (const key of Object.keys(r)) assert.deepEqual(r[key], want[i][key], `job ${i} ${key}`);
  });
}

test('a pool started ahead of its work returns the inline results, bit for bit', async () => {
  const inline = jobs().map(runHostJob);
  // The eigenvectors are a real decomposition: A·v = λ·v for the first pair (independent check).
  const a = randomSymmetric(64, 11);
  const { values, vectors } = inline[0];
  for (let i = 0; i < 64; i++) {
    let av = 0;
    for (let k = 0; k < 64; k++) av += a[i * 64 + k] * vectors[k * 64];
    assert.ok(Math.abs(av - values[0] * vectors[i * 64]) < 1e-9 * Math.abs(values[0]), `A·v = λ·v, row ${i}`);
  }
  const pool = new LinalgPool(2);
  pools.push(pool);
  const first = pool.start();
  const again = pool.start(); // idempotent: the same two workers, started one after the other
  await Promise.all([first, again]);
  assertSameBits(await pool.run(jobs()), inline);
  assertSameBits(await pool.run(jobs()), inline);
});

/** The wasm heap's size in bytes (the backend's Emscripten module, as wasm-heap.ts reads it). */
function wasmHeapBytes(): number {
  return (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;
}

test('reserveWasmHeap grows the wasm heap once; later allocations fit in it; values are unchanged', async () => {
  await tf.setBackend('cpu');
  assert.equal(reserveWasmHeap(2 ** 30), null, 'nothing to do on another backend');
  await tf.setBackend('wasm');
  const a = tf.tensor2d(Float32Array.from({ length: 64 * 64 }, (_, i) => ((i * 37) % 101) / 101 - 0.5), [64, 64]);
  const before = tf.matMul(a, a).dataSync().slice();

  const start = wasmHeapBytes();
  const want = start + 96 * 2 ** 20;
  const grown = reserveWasmHeap(want);
  assert.ok(grown, 'a reservation was made');
  assert.equal(grown.before, start);
  assert.ok(grown.after >= want && grown.after === wasmHeapBytes(), `heap ${grown.after} ≥ ${want}`);
  assert.equal(reserveWasmHeap(want), null, 'already large enough: nothing to do');
  // With the native binding on Linux, the heap's 2 MiB-aligned interior is advised to use huge
  // pages (the kernel may still decline them: THP "never" makes the advice a no-op, not an error).
  if (loadNativeLapack() && process.platform === 'linux') {
    assert.ok(grown.hugePages > grown.after - 4 * 2 ** 20 && grown.hugePages <= grown.after, `advised ${grown.hugePages} of ${grown.after} bytes`);
    assert.equal(grown.hugePages % (2 * 2 ** 20), 0);
  } else assert.equal(grown.hugePages, 0);

  // 64 MiB of tensors now come out of the reserved block: the heap does not grow again.
  const big = [tf.zeros([4 * 2 ** 20]), tf.ones([4 * 2 ** 20]), tf.fill([4 * 2 ** 20], 2), tf.fill([4 * 2 ** 20], 3)];
  assert.equal(wasmHeapBytes(), grown.after, 'the allocations fit in the reserved heap');
  assert.deepEqual(
    big.map((t) => t.dataSync()[12345]),
    [0, 1, 2, 3],
  );
  assert.deepEqual(tf.matMul(a, a).dataSync(), before, 'the same product, bit for bit');
  tf.dispose([a, ...big]);
});
