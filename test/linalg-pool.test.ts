/**
 * The worker pool for the optimizers' host linear algebra: results are the same bits inline, on
 * one worker or on two (a step does not depend on the machine's core count), an abort rejects
 * and the pool recovers, and an optimizer step through the pool equals the synchronous one.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createOptimizer, tf } from '../src/index.js';
import { runHostJob, type HostJob, type HostResult } from '../src/optim/linalg/host-jobs.js';
import { LinalgPool } from '../src/optim/linalg/pool.js';
import { randomMatrix, randomSymmetric } from './helpers/random.js';

const pools: LinalgPool[] = [];
after(() => Promise.all(pools.map((p) => p.terminate())));
const pool = (size: number) => {
  const p = new LinalgPool(size);
  pools.push(p);
  return p;
};

/** Fresh jobs each call: running a job through a pool transfers its buffers away. */
function jobs(): HostJob[] {
  const gram = randomMatrix(40, 150, 7);
  return [
    { op: 'eigh', n: 50, a: randomSymmetric(50, 1) },
    { op: 'eigh', n: 120, a: randomSymmetric(120, 2) },
    { op: 'qr', n: 80, a: Float32Array.from(randomMatrix(80, 80, 3)) },
    { op: 'inverse_root', n: 60, a: psd(60, 4), root: 2.5, epsilon: 1e-12 },
    { op: 'gram_eigh', rows: 40, cols: 150, g: gram, left: true, right: true },
  ];
}

function psd(n: number, seed: number): Float64Array {
  const x = randomMatrix(n, n, seed);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) a[i * n + j] += x[i * n + k] * x[j * n + k];
  return a;
}

function assertSameBits(a: HostResult[], b: HostResult[], label: string): void {
  assert.equal(a.length, b.length);
  a.forEach((r, i) => {
    assert.deepEqual(Object.keys(r).sort(), Object.keys(b[i]).sort(), `${label}: job ${i} outputs`);
    for (const key of Object.keys(r)) assert.deepEqual(r[key], b[i][key], `${label}: job ${i} ${key}`);
  });
}

test('the pool returns, in job order, the same bits as running each job inline, on 1 or 2 workers', async () => {
  const inline = jobs().map(runHostJob);
  assertSameBits(await pool(0).run(jobs()), inline, 'pool(0)');
  assertSameBits(await pool(1).run(jobs()), inline, 'pool(1)');
  const two = pool(2);
  const progress: number[] = [];
  assertSameBits(await two.run(jobs(), { onProgress: (p) => progress.push(p.done) }), inline, 'pool(2)');
  assert.deepEqual(progress, [1, 2, 3, 4, 5], 'one progress report per finished job');
  // And again on the same (warm) workers.
  assertSameBits(await two.run(jobs()), inline, 'pool(2), second batch');
  // The results are real decompositions: eigh's values are descending and its vectors orthonormal.
  const { values, vectors } = inline[0];
  for (let j = 1; j < 50; j++) assert.ok(values[j - 1] >= values[j]);
  let worst = 0;
  for (let i = 0; i < 50; i++) {
    for (let j = 0; j < 50; j++) {
      let dot = 0;
      for (let k = 0; k < 50; k++) dot += vectors[k * 50 + i] * vectors[k * 50 + j];
      worst = Math.max(worst, Math.abs(dot - (i === j ? 1 : 0)));
    }
  }
  assert.ok(worst < 1e-12, `VᵀV = I to ${worst}`);
});

test('aborting a batch rejects with the reason, and the pool works again afterwards', async () => {
  const p = pool(2);
  const stop = new AbortController();
  await assert.rejects(
    p.run(jobs(), { signal: stop.signal, onProgress: (pr) => pr.done === 1 && stop.abort(new Error('preempted')) }),
    /preempted/,
  );
  assertSameBits(await p.run(jobs()), jobs().map(runHostJob), 'after abort');
  await assert.rejects(p.run(jobs(), { signal: AbortSignal.abort(new Error('already')) }), /already/);
});

test('SOAP and Shampoo steps through the pool equal the synchronous applyGradients, bit for bit', async () => {
  for (const config of [
    { type: 'soap', lr: 0.05, precondition_frequency: 2 },
    { type: 'shampoo', lr: 0.05, precondition_frequency: 2 },
  ]) {
    const results: Float32Array[][] = [];
    for (const mode of ['sync', 'pool'] as const) {
      const opt = createOptimizer(config);
      const w = tf.variable(tf.tensor(Float32Array.from(randomMatrix(12, 30, 9)), [12, 30], 'float32'), true, `pool-${config.type}-${mode}.w`);
      const k = tf.variable(tf.tensor(Float32Array.from(randomMatrix(6, 4 * 5, 10)), [6, 4, 5], 'float32'), true, `pool-${config.type}-${mode}.k`);
      for (let step = 0; step < 5; step++) {
        const grads = {
          [w.name]: tf.tensor(Float32Array.from(randomMatrix(12, 30, 100 + step)), [12, 30], 'float32'),
          [k.name]: tf.tensor(Float32Array.from(randomMatrix(6, 20, 200 + step)), [6, 4, 5], 'float32'),
        };
        if (mode === 'sync') opt.applyGradients(grads);
        else await opt.applyGradientsAsync(grads, { pool: pools[0] ?? pool(2) });
        tf.dispose(Object.values(grads));
      }
      results.push([w.dataSync() as Float32Array, k.dataSync() as Float32Array]);
      opt.dispose();
      tf.dispose([w, k]);
    }
    assert.deepEqual(results[1], results[0], `${config.type}: pool vs sync`);
  }
});
