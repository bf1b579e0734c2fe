import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createOptimizer, tf } from '../src/index.js';
import { selectBackend } from '../src/backend/select.js';
import { loadNativeLapack } from '../src/optim/linalg/native.js';
import { soapLayout, soapSchema } from '../src/optim/soap.js';
import { loadFixture, replayFixture } from './helpers/fixtures.js';
import { placedTrajectory, type PlacedRun } from './helpers/placed-trajectory.js';
import { normalRng, randomOrthogonal } from './helpers/random.js';

for (const file of ['soap_square.json', 'soap_one_sided.json']) {
  test(`SOAP replays the reference soap.py trace ${file} within its tolerance`, () => {
    const fx = loadFixture(file);
    const err = replayFixture(fx, `soap_fx_${file.replace('.json', '')}`);
    assert.ok(err < fx.tolerance, `relative error ${err} ≥ ${fx.tolerance}`);
  });
}

test('one_sided reproduces the one-sided reference trace when both sides fit max_precond_dim', () => {
  // soap_one_sided.json preconditions only the 8-side of an 8×12 weight because 12 > max 10;
  // one_sided with the default max must choose the same (smaller) side.
  const fx = loadFixture('soap_one_sided.json');
  const err = replayFixture({ ...fx, config: { ...fx.config, max_precond_dim: 10000, one_sided: true } }, 'soap_fx_onesided_flag');
  assert.ok(err < fx.tolerance, `relative error ${err}`);
});

test('layout: merge_dims folds [2,3,6] into [6,6]; one_sided keeps the smaller side; 1-D only with precondition_1d', () => {
  const cfg = (o: Record<string, unknown>) => soapSchema.parse({ type: 'soap', ...o });
  assert.deepEqual(soapLayout([2, 3, 6], cfg({ merge_dims: true, max_precond_dim: 10 })), { workShape: [6, 6], preconditioned: [true, true] });
  assert.deepEqual(soapLayout([12, 8], cfg({ one_sided: true })).preconditioned, [false, true]);
  assert.deepEqual(soapLayout([50000, 64], cfg({})).preconditioned, [false, true]);
  assert.deepEqual(soapLayout([7], cfg({})).preconditioned, [false]);
  assert.deepEqual(soapLayout([7], cfg({ precondition_1d: true })).preconditioned, [true]);
});

test('SOAP first two steps match the hand derivation', () => {
  // W₀ = [[1,2],[3,4]], lr 0.1, β (0.9, 0.99), β_s = β2, eps 1e-3, wd 0.1, no refresh.
  // Call 1, G₁ = [[1,1],[1,1]]: L = R = 0.01·[[2,2],[2,2]], eigenvectors u = (1,1)/√2 (λ = 0.04)
  //   then w = (1,−1)/√2 (λ = 0); W unchanged, t stays 0.
  // Call 2 (t = 1), G₂ = [[3,1],[1,3]] = 4uuᵀ + 2wwᵀ, so G' = diag(4, 2) (column signs cancel
  //   on the way back). M = diag(0.4, 0.2), V = diag(0.16, 0.04);
  //   N = a₁uuᵀ + b₁wwᵀ with a₁ = 0.4/(0.4 + 1e-3), b₁ = 0.2/(0.2 + 1e-3); α₁ = 0.1·√0.01/0.1 = 0.1;
  //   W₁ = (W₀ − 0.1·N)·(1 − 0.1·0.1).
  // Call 3 (t = 2), G₃ = [[1,−1],[−1,1]] = 2wwᵀ, G' = diag(0, 2): M = diag(0.36, 0.38),
  //   V = diag(0.1584, 0.0796); a₂ = 0.36/(√0.1584 + 1e-3), b₂ = 0.38/(√0.0796 + 1e-3);
  //   α₂ = 0.1·√(1 − 0.99²)/(1 − 0.9²); W₂ = (W₁ − α₂·N₂)·0.99.
  const n = (a: number, b: number) => [(a + b) / 2, (a - b) / 2, (a - b) / 2, (a + b) / 2];
  const w0 = [1, 2, 3, 4];
  const n1 = n(0.4 / 0.401, 0.2 / 0.201);
  const w1 = w0.map((x, i) => (x - 0.1 * n1[i]) * 0.99);
  const n2 = n(0.36 / (Math.sqrt(0.1584) + 1e-3), 0.38 / (Math.sqrt(0.0796) + 1e-3));
  const a2 = (0.1 * Math.sqrt(1 - 0.99 ** 2)) / (1 - 0.9 ** 2);
  const w2 = w1.map((x, i) => (x - a2 * n2[i]) * 0.99);
  const w = tf.variable(tf.tensor2d(w0, [2, 2]), true, 'soap_hand.w');
  const opt = createOptimizer({ type: 'soap', lr: 0.1, betas: [0.9, 0.99], eps: 1e-3, weight_decay: 0.1, precondition_frequency: 100 });
  const expected = [w0, w1, w2];
  [[1, 1, 1, 1], [3, 1, 1, 3], [1, -1, -1, 1]].forEach((g, i) => {
    opt.applyGradients({ 'soap_hand.w': tf.tensor2d(g, [2, 2]) });
    const got = w.dataSync();
    expected[i].forEach((e, j) => assert.ok(Math.abs(got[j] - e) < 1e-5, `call ${i + 1}[${j}]: ${got[j]} vs ${e}`));
  });
  opt.dispose();
  w.dispose();
});

test('max_precond_dim 0 is Adam with SOAP conventions (skip first call, eps outside, decay after)', () => {
  const [lr, b1, b2, eps, wd] = [0.02, 0.9, 0.95, 1e-8, 0.1];
  const shapes: Record<string, number[]> = { w: [4, 6], b: [5] };
  const rng = normalRng(5);
  const opt = createOptimizer({ type: 'soap', lr, betas: [b1, b2], eps, weight_decay: wd, max_precond_dim: 0, precondition_frequency: 2 });
  for (const [name, shape] of Object.entries(shapes)) {
    const size = shape.reduce((a, c) => a * c, 1);
    const init = Float64Array.from({ length: size }, rng);
    const v = tf.variable(tf.tensor(Float32Array.from(init), shape), true, `soap_adam.${name}`);
    const ref = { w: init, m: new Float64Array(size), v: new Float64Array(size), t: 0 };
    for (let call = 0; call < 12; call++) {
      const g = Float64Array.from({ length: size }, rng);
      const gt = tf.tensor(Float32Array.from(g), shape);
      opt.applyGradients({ [`soap_adam.${name}`]: gt });
      gt.dispose();
      if (call > 0) {
        ref.t += 1;
        const alpha = (lr * Math.sqrt(1 - b2 ** ref.t)) / (1 - b1 ** ref.t);
        for (let i = 0; i < size; i++) {
          ref.m[i] = b1 * ref.m[i] + (1 - b1) * g[i];
          ref.v[i] = b2 * ref.v[i] + (1 - b2) * g[i] * g[i];
          ref.w[i] -= (alpha * ref.m[i]) / (Math.sqrt(ref.v[i]) + eps);
          ref.w[i] -= lr * wd * ref.w[i];
        }
      }
      const got = v.dataSync();
      for (let i = 0; i < size; i++) assert.ok(Math.abs(got[i] - ref.w[i]) < 2e-6 * (1 + Math.abs(ref.w[i])), `${name} call ${call}`);
    }
    v.dispose();
  }
  opt.dispose();
});

/** Runs `steps` calls on ½‖A W B − C‖² with gradients optionally conjugated by U·(·)·Vᵀ. */
function trajectory(type: 'soap' | 'adamw', rotate: boolean): number[][] {
  const n = 4;
  const rng = normalRng(77);
  const mat = () => tf.tensor2d(Float32Array.from({ length: n * n }, rng), [n, n]);
  const [a, b, c, w0] = [mat(), mat(), mat(), mat()];
  const u = tf.tensor2d(Float32Array.from(randomOrthogonal(n, 78)), [n, n]);
  const v = tf.tensor2d(Float32Array.from(randomOrthogonal(n, 79)), [n, n]);
  const name = `soap_inv_${type}_${rotate}`;
  const w = tf.variable(rotate ? tf.matMul(tf.matMul(u, w0), v, false, true) : w0.clone(), true, name);
  const opt = createOptimizer(type === 'soap' ? { type, lr: 0.01, precondition_frequency: 1 } : { type, lr: 0.01 });
  const out: number[][] = [];
  for (let s = 0; s < 25; s++) {
    const g = tf.tidy(() => {
      const x = rotate ? tf.matMul(tf.matMul(u, w, true, false), v) : w; // the unrotated W
      // Fresh noise each call (a stochastic gradient): with G₂ = G₁ exactly, G₂ rotated into G₁'s
      // singular bases is diagonal and Adam would normalise float32 roundoff off the diagonal.
      const noise = tf.tensor2d(Float32Array.from({ length: n * n }, () => 0.5 * rng()), [n, n]);
      const grad = tf.add(tf.matMul(tf.matMul(a, tf.sub(tf.matMul(tf.matMul(a, x), b), c), true, false), b, false, true), noise);
      return rotate ? tf.matMul(tf.matMul(u, grad), v, false, true) : grad;
    });
    opt.applyGradients({ [name]: g });
    g.dispose();
    // Record the trajectory in the original coordinates.
    out.push([...tf.tidy(() => (rotate ? tf.matMul(tf.matMul(u, w, true, false), v) : w.clone())).dataSync()]);
  }
  opt.dispose();
  tf.dispose([a, b, c, w0, u, v, w]);
  return out;
}

function maxRelDiff(x: number[][], y: number[][]): number {
  return Math.max(...x.map((row, i) => Math.hypot(...row.map((e, j) => e - y[i][j])) / Math.hypot(...row)));
}

test('SOAP is invariant to W → U·W·Vᵀ (orthogonal U, V) at precondition_frequency 1; Adam is not', () => {
  const soapDiff = maxRelDiff(trajectory('soap', false), trajectory('soap', true));
  const adamDiff = maxRelDiff(trajectory('adamw', false), trajectory('adamw', true));
  assert.ok(soapDiff < 1e-4, `SOAP trajectories differ by ${soapDiff}`);
  assert.ok(adamDiff > 1e-2, `Adam trajectories unexpectedly agree (${adamDiff})`);
});

test('SOAP with 1e-6 gradients (statistics ~1e-12) follows the unit-gradient trajectory', () => {
  const run = (scale: number): Float32Array[] => {
    const rng = normalRng(91);
    const name = `soap_small_${scale}`;
    const w = tf.variable(tf.tensor2d(Float32Array.from({ length: 30 }, rng), [5, 6]), true, name);
    // eps scales with the gradients, so the two runs are the same optimizer up to units.
    const opt = createOptimizer({ type: 'soap', lr: 0.01, eps: 1e-8 * scale, precondition_frequency: 2 });
    const out: Float32Array[] = [];
    for (let s = 0; s < 9; s++) {
      const g = tf.tensor2d(Float32Array.from({ length: 30 }, () => rng() * scale), [5, 6]);
      opt.applyGradients({ [name]: g });
      g.dispose();
      out.push(w.dataSync() as Float32Array);
    }
    opt.dispose();
    w.dispose();
    return out;
  };
  const big = run(1).map((a) => [...a]);
  const small = run(1e-6).map((a) => [...a]);
  assert.ok(small.every((row) => row.every(Number.isFinite)));
  assert.ok(maxRelDiff(big, small) < 1e-4, `relative difference ${maxRelDiff(big, small)}`);
});

test('SOAP on 3-D, merged and 1-D parameters: no tensor leaks across refreshes, float32 state, stateBytes exact', () => {
  for (const extra of [{ merge_dims: false }, { merge_dims: true, max_precond_dim: 8 }, { one_sided: true }]) {
    const shapes: Record<string, number[]> = { w: [6, 5], b: [5], k: [2, 3, 4] };
    const opt = createOptimizer({ type: 'soap', precondition_frequency: 2, precondition_1d: true, ...extra });
    const vars = Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, tf.variable(tf.randomNormal(s, 0, 1, 'float32', 3), true, `soap_leak.${k}`)]));
    const counts: number[] = [];
    for (let s = 0; s < 8; s++) {
      const grads = Object.fromEntries(Object.entries(shapes).map(([k, sh]) => [`soap_leak.${k}`, tf.randomNormal(sh, 0, 1, 'float32', s)]));
      opt.applyGradients(grads);
      tf.dispose(Object.values(grads));
      counts.push(tf.memory().numTensors);
    }
    assert.ok(counts.slice(1).every((c) => c === counts[1]), `numTensors drifted: ${counts}`);
    for (const [k, shape] of Object.entries(shapes)) {
      const st = opt.stateOf(`soap_leak.${k}`)!;
      assert.ok(Object.values(st.tensors).every((t) => t.dtype === 'float32'));
      const bytes = Object.values(st.tensors).reduce((a, t) => a + 4 * t.size, 0);
      assert.equal(opt.stateBytes(shape), bytes, `${k} ${JSON.stringify(extra)}`);
      assert.ok([...vars[k].dataSync()].every(Number.isFinite));
    }
    opt.dispose();
    tf.dispose(Object.values(vars));
  }
});

test('normalize_grads with correct_bias false moves W by exactly lr in RMS on the first step', () => {
  // ΔW = −lr·N/(1e-30 + rms(N)), so rms(ΔW) = lr whatever the gradient.
  const w = tf.variable(tf.randomNormal([5, 7], 0, 1, 'float32', 4), true, 'soap_norm.w');
  const w0 = w.dataSync().slice();
  const opt = createOptimizer({ type: 'soap', lr: 0.05, weight_decay: 0, normalize_grads: true, correct_bias: false });
  for (let s = 0; s < 2; s++) {
    const g = tf.randomNormal([5, 7], 0, 3, 'float32', 10 + s);
    opt.applyGradients({ 'soap_norm.w': g });
    g.dispose();
  }
  const d = Array.from(w.dataSync());
  const rms = Math.sqrt(d.reduce((a: number, x: number, i: number) => a + (x - w0[i]) ** 2, 0) / d.length);
  assert.ok(Math.abs(rms - 0.05) < 1e-6, `rms step ${rms}`);
  opt.dispose();
  w.dispose();
});

test('first bases through the low-rank path (TypeScript linear algebra): each Q diagonalises its statistic, largest first', () => {
  // Without LAPACK a 12×60 gradient's 60² statistic (rank ≤ 12) comes from the 12² side's eigh
  // plus an orthonormal completion (linalg/low-rank.ts); the basis must still be an eigenbasis.
  const saved = process.env.SOAP_TRAIN_NATIVE;
  process.env.SOAP_TRAIN_NATIVE = '0';
  try {
    const opt = createOptimizer({ type: 'soap', lr: 0.01 });
    const rng = normalRng(21);
    const w = tf.variable(tf.zeros([12, 60]), true, 'lowrank.w');
    const g = tf.tensor2d(Float32Array.from({ length: 720 }, rng), [12, 60]);
    opt.applyGradients({ [w.name]: g });
    const state = opt.stateOf(w.name)!;
    for (const axis of [0, 1]) {
      const q = state.tensors[`Q_${axis}`] as tf.Tensor2D;
      const stat = state.tensors[`GG_${axis}`] as tf.Tensor2D;
      const n = q.shape[0];
      const d = tf.tidy(() => tf.matMul(tf.matMul(q, stat, true, false), q) as tf.Tensor2D).arraySync();
      const qtq = tf.tidy(() => tf.matMul(q, q, true, false) as tf.Tensor2D).arraySync();
      const scale = Math.abs(d[0][0]);
      let offDiagonal = 0;
      let orthogonality = 0;
      for (let i = 0; i < n; i++) {
        if (i > 0) assert.ok(d[i][i] <= d[i - 1][i - 1] + 1e-5 * scale, `axis ${axis}: eigenvalues descend at ${i}`);
        for (let j = 0; j < n; j++) {
          if (i !== j) offDiagonal = Math.max(offDiagonal, Math.abs(d[i][j]) / scale);
          orthogonality = Math.max(orthogonality, Math.abs(qtq[i][j] - (i === j ? 1 : 0)));
        }
      }
      assert.ok(offDiagonal < 1e-5, `axis ${axis}: QᵀPQ off-diagonal ${offDiagonal}`);
      assert.ok(orthogonality < 1e-5, `axis ${axis}: QᵀQ − I ${orthogonality}`);
      // Rank ≤ 12: the 60-side's eigenvalues past the 12th are zero.
      if (axis === 1) assert.ok(Math.abs(d[12][12]) < 1e-5 * scale, `null space eigenvalue ${d[12][12]}`);
    }
    opt.dispose();
    tf.dispose([w, g]);
  } finally {
    if (saved === undefined) delete process.env.SOAP_TRAIN_NATIVE;
    else process.env.SOAP_TRAIN_NATIVE = saved;
  }
});

/**
 * 11 SOAP calls (refresh every 3, so three refreshes). Every first statistic has full rank
 * (square and 3-D weights, no 1-D factor): a null space would let each placement's rounding pick
 * its own eigenbasis for it, a legitimate divergence (test/fixtures/optim/README.md).
 */
const soapPlaced = (tag: string): PlacedRun => ({
  optimizer: { type: 'soap', lr: 0.01, precondition_frequency: 3 },
  shapes: { w: [12, 12], v: [20, 20], k: [3, 4, 5], b: [7] },
  calls: 11,
  seed: 31,
  tag,
});

test(
  'products on the host (native ?gemm, heap views on wasm) and on the device give one trajectory, refreshes included',
  { skip: loadNativeLapack() ? false : 'the native BLAS is not built' },
  async () => {
    try {
      for (const backend of ['cpu', 'wasm'] as const) {
        await selectBackend(backend);
        const device = placedTrajectory(soapPlaced(backend), 'device');
        const host = placedTrajectory(soapPlaced(backend), 'host');
        // Float32 rounding of differently ordered sums, carried through three refreshes: ~8e-8
        // measured on both backends; a wrong transpose or order would be O(1).
        const diff = maxRelDiff(device, host);
        assert.ok(diff < 1e-6, `${backend}: host and device trajectories differ by ${diff}`);
        assert.ok(diff > 0, `${backend}: the two placements gave identical bits, so one path did not run`);
      }
    } finally {
      await selectBackend('cpu');
    }
  },
);
