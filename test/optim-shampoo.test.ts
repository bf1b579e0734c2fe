import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createOptimizer, tf } from '../src/index.js';
import { selectBackend } from '../src/backend/select.js';
import { loadNativeLapack } from '../src/optim/linalg/native.js';
import { loadFixture, replayFixture } from './helpers/fixtures.js';
import { placedTrajectory, type PlacedRun } from './helpers/placed-trajectory.js';

test('Shampoo replays the float64 spec trace within its tolerance', () => {
  const fx = loadFixture('shampoo_basic.json');
  const err = replayFixture(fx, 'shampoo_fx');
  assert.ok(err < fx.tolerance, `relative error ${err} ≥ ${fx.tolerance}`);
});

test('Shampoo first two steps match the hand derivation', () => {
  // W₀ = [[1,2],[3,4]], lr 0.1, β (0.9, 0.99), ε 0, wd 0.1, exponent 2, s = f = 1, Adam grafting.
  // t = 1, G₁ = diag(2, 1): M̂ = G₁; L̂ = R̂ = diag(4, 1) → L⁻ = R⁻ = diag(1/2, 1);
  //   L⁻M̂R⁻ = diag(0.5, 1); P_graft = G₁/(|G₁| + 1e-8) ≈ diag(1, 1), so the graft norm is √2;
  //   P = √2/√1.25 · diag(0.5, 1); W₁ = 0.99·W₀ − 0.1·P.
  // t = 2, G₂ = [[0,1],[1,0]] (G₂G₂ᵀ = I): L = R = 0.99·0.01·diag(4,1) + 0.01·I = diag(0.0496, 0.0199),
  //   bias-corrected by 1 − 0.99² = 0.0199 → L⁻ = R⁻ = diag(l, 1), l = (0.0496/0.0199)^(−1/2);
  //   M̂ = (0.09·G₁ + 0.1·G₂)/0.19 = [[0.18, 0.1],[0.1, 0.09]]/0.19;
  //   Â = (0.0099·G₁² + 0.01·G₂²)/0.0199; P_graft = M̂/(√Â + 1e-8); Q = L⁻M̂R⁻ (Q_ij = l_i M̂_ij l_j);
  //   W₂ = 0.99·W₁ − 0.1·(‖P_graft‖/‖Q‖)·Q.
  const w0 = [1, 2, 3, 4];
  const k1 = Math.SQRT2 / Math.sqrt(1.25);
  const p1 = [0.5 * k1, 0, 0, k1];
  const w1 = w0.map((x, i) => 0.99 * x - 0.1 * p1[i]);
  const l = [(0.0496 / 0.0199) ** -0.5, 1];
  const mhat = [0.18 / 0.19, 0.1 / 0.19, 0.1 / 0.19, 0.09 / 0.19];
  const ahat = [0.0099 * 4 / 0.0199, 0.01 / 0.0199, 0.01 / 0.0199, 0.0099 / 0.0199];
  const graft = mhat.map((m, i) => m / (Math.sqrt(ahat[i]) + 1e-8));
  const q = mhat.map((m, i) => l[i >> 1] * m * l[i & 1]);
  const k2 = Math.hypot(...graft) / Math.hypot(...q);
  const w2 = w1.map((x, i) => 0.99 * x - 0.1 * k2 * q[i]);
  const w = tf.variable(tf.tensor2d(w0, [2, 2]), true, 'shampoo_hand.w');
  const opt = createOptimizer({
    type: 'shampoo', lr: 0.1, betas: [0.9, 0.99], epsilon: 0, weight_decay: 0.1, exponent: 2,
    precondition_frequency: 1, start_preconditioning_step: 1,
  });
  [[2, 0, 0, 1], [0, 1, 1, 0]].forEach((g, i) => {
    opt.applyGradients({ 'shampoo_hand.w': tf.tensor2d(g, [2, 2]) });
    const got = w.dataSync();
    [w1, w2][i].forEach((e, j) => assert.ok(Math.abs(got[j] - e) < 1e-5, `step ${i + 1}[${j}]: ${got[j]} vs ${e}`));
  });
  opt.dispose();
  w.dispose();
});

test('Shampoo before start_preconditioning_step is Adam with momentum (the grafting direction)', () => {
  // t = 1 with start 5: P = M̂/(√Â + eps) = G/(|G| + eps) ≈ sign(G); W₁ = W₀·(1 − lr·wd) − lr·sign(G).
  const w = tf.variable(tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]), true, 'shampoo_graft.w');
  const opt = createOptimizer({ type: 'shampoo', lr: 0.1, weight_decay: 0, start_preconditioning_step: 5 });
  opt.applyGradients({ 'shampoo_graft.w': tf.tensor2d([1, -2, 3, -4, 5, -6], [2, 3]) });
  const expected = [0.9, 2.1, 2.9, 4.1, 4.9, 6.1];
  w.dataSync().forEach((x, i) => assert.ok(Math.abs(x - expected[i]) < 1e-6));
  opt.dispose();
  w.dispose();
});

test('Shampoo grafting none, β2 = 1 sums and 3-D parameters: finite, leak-free, float32 state', () => {
  const opt = createOptimizer({ type: 'shampoo', grafting: 'none', betas: [0.9, 1], precondition_frequency: 2, lr: 1e-3 });
  const shapes: Record<string, number[]> = { w: [4, 3], k: [2, 3, 4], b: [3] };
  const vars = Object.entries(shapes).map(([k, s]) => tf.variable(tf.randomNormal(s, 0, 1, 'float32', 1), true, `shampoo_nd.${k}`));
  const counts: number[] = [];
  for (let s = 0; s < 6; s++) {
    const grads = Object.fromEntries(Object.entries(shapes).map(([k, sh]) => [`shampoo_nd.${k}`, tf.randomNormal(sh, 0, 1, 'float32', s + 10)]));
    opt.applyGradients(grads);
    tf.dispose(Object.values(grads));
    counts.push(tf.memory().numTensors);
  }
  assert.ok(counts.every((c) => c === counts[0]), `numTensors drifted: ${counts}`);
  for (const v of vars) assert.ok([...v.dataSync()].every(Number.isFinite));
  for (const [, st] of opt.stateEntries()) assert.ok(Object.values(st.tensors).every((t) => t.dtype === 'float32'));
  opt.dispose();
  tf.dispose(vars);
});

/** 10 Shampoo steps (roots at 3, 6, 9). Full-rank statistics only: a null space makes the roots (λ + ε)^(−1/p) hinge on rounding. */
const shampooPlaced = (tag: string): PlacedRun => ({
  optimizer: { type: 'shampoo', lr: 0.01, precondition_frequency: 3 },
  shapes: { w: [10, 10], v: [16, 16], k: [3, 4, 5], b: [6] },
  calls: 10,
  seed: 41,
  tag,
});

test(
  'products on the host (native ?gemm) and on the device give one trajectory (cpu and wasm)',
  { skip: loadNativeLapack() ? false : 'the native BLAS is not built' },
  async () => {
    try {
      for (const backend of ['cpu', 'wasm'] as const) {
        await selectBackend(backend);
        const device = placedTrajectory(shampooPlaced(backend), 'device').flat();
        const host = placedTrajectory(shampooPlaced(backend), 'host').flat();
        let err = 0;
        let scale = 0;
        device.forEach((d, i) => {
          err = Math.max(err, Math.abs(d - host[i]));
          scale = Math.max(scale, Math.abs(d));
        });
        assert.ok(err / scale < 1e-6, `${backend}: host and device differ by ${err / scale} (relative to the largest entry)`);
        assert.ok(err > 0, `${backend}: identical bits, so one path did not run`);
      }
    } finally {
      await selectBackend('cpu');
    }
  },
);
