/**
 * Shampoo's `root_method: newton`: the device coupled-Newton inverse root (linalg/newton-root.ts)
 * against the float64 eigh root, its residual check and fallback to eigh, rational exponents
 * (2.5 = 5/2), and whole runs against the eigh path.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createOptimizer, tf } from '../src/index.js';
import { newtonInverseRoot, rationalExponent } from '../src/optim/linalg/newton-root.js';
import { LinalgPool } from '../src/optim/linalg/pool.js';
import { inverseRoot } from '../src/optim/linalg/roots.js';
import { frobenius } from './helpers/matrix.js';
import { randomMatrix, withSpectrum } from './helpers/random.js';

const pools: LinalgPool[] = [];
after(() => Promise.all(pools.map((p) => p.terminate())));

/** ‖got − ref‖_F / ‖ref‖_F. */
function relative(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  return frobenius(Float64Array.from(got, (v, i) => v - ref[i])) / frobenius(ref);
}

/** An SPD n×n matrix with eigenvalues log-spaced from 3.7 down to 3.7/cond. */
function spd(n: number, cond: number, seed: number): Float64Array {
  return withSpectrum(Array.from({ length: n }, (_, i) => 3.7 * cond ** (-i / (n - 1))), seed);
}

test('rationalExponent: integers, 2.5 = 5/2, 1.25 = 5/4, and exponents that are no small fraction', () => {
  assert.deepEqual(rationalExponent(2), { num: 2, den: 1 });
  assert.deepEqual(rationalExponent(4), { num: 4, den: 1 });
  assert.deepEqual(rationalExponent(2.5), { num: 5, den: 2 });
  assert.deepEqual(rationalExponent(1.25), { num: 5, den: 4 });
  assert.equal(rationalExponent(Math.E), null);
  assert.equal(rationalExponent(33), null);
  assert.equal(rationalExponent(0), null);
});

test('Newton inverse roots match the float64 eigh root to 1e-4 on well and badly conditioned SPD matrices (p = 2, 4, 2.5)', () => {
  const before = tf.memory().numTensors;
  for (const n of [24, 64]) {
    for (const cond of [10, 1e3, 1e4]) {
      const a = spd(n, cond, n + cond);
      const input = tf.tensor2d(Float32Array.from(a), [n, n]);
      for (const p of [2, 4, 2.5]) {
        const ref = inverseRoot(a, n, p, 1e-12);
        const r = newtonInverseRoot(input, p, { epsilon: 1e-12 });
        const err = relative(r.root.dataSync(), ref);
        const label = `n ${n}, cond ${cond}, p ${p}: rel ${err}, residual ${r.residual}, ${r.iterations} iterations`;
        assert.ok(err < 1e-4, label);
        assert.ok(r.residual < 1e-3, label);
        assert.equal(r.termination, 'converged', label);
        r.root.dispose();
      }
      input.dispose();
    }
  }
  assert.equal(tf.memory().numTensors, before, 'newtonInverseRoot leaked tensors');
});

test('Newton flags what float32 cannot resolve: a singular statistic, or too few iterations, has a residual over the tolerance', () => {
  const before = tf.memory().numTensors;
  // A rank-4 statistic G·Gᵀ of a 16×4 G with ε = 1e-12: the root's null-space part is out of float32's reach.
  const g = tf.tensor2d(Float32Array.from(randomMatrix(16, 4, 3)), [16, 4]);
  const singular = tf.matMul(g, g, false, true);
  const r1 = newtonInverseRoot(singular, 2.5, { epsilon: 1e-12 });
  assert.ok(!(r1.residual <= 1e-3), `singular: residual ${r1.residual}`);
  // A well-conditioned matrix with the iteration cut at 2 steps.
  const a = tf.tensor2d(Float32Array.from(spd(20, 1e3, 5)), [20, 20]);
  const r2 = newtonInverseRoot(a, 2, { epsilon: 0, maxIterations: 2 });
  assert.equal(r2.termination, 'max_iterations');
  assert.equal(r2.iterations, 2);
  assert.ok(r2.residual > 1e-3, `2 iterations: residual ${r2.residual}`);
  tf.dispose([g, singular, r1.root, a, r2.root]);
  assert.equal(tf.memory().numTensors, before);
});

/** Runs Shampoo over fixed random gradients; returns parameter values and state after the last step, and the optimizer's counters. */
function runFixed(config: Record<string, unknown>, tag: string, steps = 6) {
  const shapes: Record<string, number[]> = { w: [6, 10], k: [2, 3, 4], b: [5] };
  const vars = Object.entries(shapes).map(([k, s]) => tf.variable(tf.tensor(Float32Array.from(randomMatrix(1, s.reduce((x, y) => x * y), 7)), s), true, `${tag}.${k}`));
  const opt = createOptimizer({ type: 'shampoo', lr: 0.05, ...config });
  const phases: Array<Record<string, number>> = [];
  for (let s = 0; s < steps; s++) {
    const grads = Object.fromEntries(
      Object.entries(shapes).map(([k, sh]) => [`${tag}.${k}`, tf.tensor(Float32Array.from(randomMatrix(1, sh.reduce((x, y) => x * y), 50 + s)), sh)]),
    );
    opt.applyGradients(grads);
    tf.dispose(Object.values(grads));
    phases.push({ ...opt.lastPhaseTimes });
  }
  const params = vars.map((v) => Array.from(v.dataSync()));
  const state = Object.fromEntries(
    opt.stateEntries().map(([name, st]) => [name.slice(tag.length), { counters: { ...st.counters }, tensors: Object.fromEntries(Object.entries(st.tensors).map(([k, t]) => [k, Array.from(t.dataSync())])) }]),
  );
  opt.dispose();
  tf.dispose(vars);
  return { params, state, phases };
}

test('root_method newton: a factor whose Newton root misses newton_tolerance falls back to eigh, bit for bit, and is counted', () => {
  const common = { precondition_frequency: 2, start_preconditioning_step: 2 };
  const eigh = runFixed(common, 'nw_fb_eigh');
  const capped = runFixed({ ...common, root_method: 'newton', newton_max_iterations: 2 }, 'nw_fb_newton');
  assert.deepEqual(capped.params, eigh.params);
  for (const [name, st] of Object.entries(eigh.state)) assert.deepEqual(capped.state[name].tensors, st.tensors, name);
  // Refreshes at steps 2, 4, 6; w has 2 factors, k 3, b none: every one fell back.
  assert.deepEqual(capped.state['.w'].counters, { step: 6, newton_fallbacks: 6 });
  assert.deepEqual(capped.state['.k'].counters, { step: 6, newton_fallbacks: 9 });
  assert.deepEqual(capped.state['.b'].counters, { step: 6, newton_fallbacks: 0 });
  // Default options keep today's counters.
  assert.deepEqual(eigh.state['.w'].counters, { step: 6 });
});

test('root_method newton: stochastic least squares goes down like eigh (trajectories within 1e-3), no fallback, leak-free, timed', () => {
  function run(extra: Record<string, unknown>, tag: string) {
    const w = tf.variable(tf.tensor2d(Float32Array.from(randomMatrix(16, 8, 3)), [16, 8]), true, `nw_ls_${tag}.w`);
    const target = tf.tensor2d(Float32Array.from(randomMatrix(16, 8, 4)), [16, 8]);
    const opt = createOptimizer({ type: 'shampoo', lr: 0.02, precondition_frequency: 3, weight_decay: 0, ...extra });
    const trajectory: Float32Array[] = [];
    const losses: number[] = [];
    const counts: number[] = [];
    const newtonMs: number[] = [];
    for (let s = 0; s < 40; s++) {
      const x = tf.tensor2d(Float32Array.from(randomMatrix(64, 16, 100 + s)), [64, 16]);
      const { grads, value } = tf.variableGrads(() => tf.mean(tf.square(tf.matMul(x, tf.sub(w, target)))) as tf.Scalar, [w]);
      losses.push(value.dataSync()[0]);
      opt.applyGradients(grads);
      tf.dispose([x, value, ...Object.values(grads)]);
      trajectory.push(w.dataSync().slice() as Float32Array);
      counts.push(tf.memory().numTensors);
      newtonMs.push(opt.lastPhaseTimes.newton ?? 0);
    }
    const st = opt.stateOf(w.name)!;
    const stateBytes = Object.values(st.tensors).reduce((a, t) => a + 4 * t.size, 0);
    const result = { trajectory, losses, counts, newtonMs, counters: { ...st.counters }, stateBytes, predicted: opt.stateBytes([16, 8]) };
    opt.dispose();
    tf.dispose([w, target]);
    return result;
  }
  const eigh = run({}, 'eigh');
  const newton = run({ root_method: 'newton' }, 'newton');
  const worst = Math.max(...eigh.trajectory.map((t, i) => relative(newton.trajectory[i], t)));
  assert.ok(worst < 1e-3, `trajectories differ by ${worst}`);
  assert.ok(newton.losses.at(-1)! < 0.5 * newton.losses[0], `loss ${newton.losses[0]} → ${newton.losses.at(-1)}`);
  assert.ok(Math.abs(newton.losses.at(-1)! - eigh.losses.at(-1)!) < 1e-3 * eigh.losses.at(-1)!);
  assert.deepEqual(newton.counters, { step: 40, newton_fallbacks: 0 });
  assert.ok(newton.counts.slice(1).every((c) => c === newton.counts[1]), `numTensors drifted: ${newton.counts}`);
  assert.equal(newton.stateBytes, newton.predicted);
  // Refreshes (steps 3, 6, …) time the Newton iteration; other steps and the eigh run do not.
  newton.newtonMs.forEach((ms, i) => assert.equal(ms > 0, (i + 1) % 3 === 0, `step ${i + 1}: newton ${ms} ms`));
  assert.ok(eigh.newtonMs.every((ms) => ms === 0));
});

test('root_method newton with an exponent that is no small fraction warns once and computes every root by eigh', () => {
  const lines: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  let newton;
  try {
    newton = runFixed({ exponent: 2.7182818, precondition_frequency: 2, root_method: 'newton' }, 'nw_irr_newton');
    runFixed({ exponent: 2.7182818, root_method: 'newton' }, 'nw_irr_again', 1);
  } finally {
    process.stderr.write = write;
  }
  const eigh = runFixed({ exponent: 2.7182818, precondition_frequency: 2 }, 'nw_irr_eigh');
  assert.deepEqual(newton.params, eigh.params);
  assert.equal(lines.filter((l) => /root_method newton.*2\.7182818.*eigh/.test(l)).length, 1, lines.join(''));
  assert.equal(newton.state['.w'].counters.newton_fallbacks, 0);
});

test('root_method newton through the worker pool equals the synchronous step (Newton roots and eigh fallbacks mixed)', async () => {
  // Refreshing from step 1: the 10×10 factor of a 6×10 gradient is rank 6 (falls back), the 6×6 one is not.
  const config = { type: 'shampoo', lr: 0.05, precondition_frequency: 1, start_preconditioning_step: 1, root_method: 'newton' };
  const pool = new LinalgPool(2);
  pools.push(pool);
  const results: Array<{ values: number[]; counters: Record<string, number> }> = [];
  for (const mode of ['sync', 'pool'] as const) {
    const opt = createOptimizer(config);
    const w = tf.variable(tf.tensor2d(Float32Array.from(randomMatrix(6, 10, 9)), [6, 10]), true, `nw_pool_${mode}.w`);
    for (let step = 0; step < 4; step++) {
      const grads = { [w.name]: tf.tensor2d(Float32Array.from(randomMatrix(6, 10, 300 + step)), [6, 10]) };
      if (mode === 'sync') opt.applyGradients(grads);
      else await opt.applyGradientsAsync(grads, { pool });
      tf.dispose(Object.values(grads));
    }
    results.push({ values: Array.from(w.dataSync()), counters: { ...opt.stateOf(w.name)!.counters } });
    opt.dispose();
    w.dispose();
  }
  assert.deepEqual(results[1], results[0]);
  const { newton_fallbacks: fallbacks } = results[0].counters;
  assert.ok(fallbacks >= 1 && fallbacks < 8, `expected a mix of Newton roots and fallbacks, got ${fallbacks} fallbacks of 8 roots`);
});
