import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createOptimizer, tf } from '../src/index.js';
import { loadFixture, replayFixture } from './helpers/fixtures.js';

test('Adafactor replays the float64 reference trace adafactor_basic.json within its tolerance', () => {
  // 2-D [12,16], 3-D [3,4,6] (folded to 12×6) and 1-D [10] parameters over 10 steps with
  // decay 'matrices'; expected values from test/fixtures/gen/adafactor_trace.py (float64 numpy).
  const fx = loadFixture('adafactor_basic.json');
  const err = replayFixture(fx, 'adafactor_fx');
  assert.ok(err <= fx.tolerance, `relative error ${err} > ${fx.tolerance}`);
});

test('Adafactor first two steps match the hand derivation', () => {
  // W₀ = [[1,2],[3,4]], lr 0.1, β (0.9, 0.99), eps 0, wd 0.1.
  // t = 1, G₁ = [[1,2],[3,4]]: M = 0.1·G₁; r = 0.01·(5, 25), c = 0.01·(10, 20), Σr = 0.3;
  //   V̂ᵢⱼ = rᵢcⱼ/Σr; α = 0.1·√0.01/0.1 = 0.1; W₁ = (W₀ − 0.1·M/√V̂)·0.99.
  // t = 2, G₂ = [[1,0],[0,1]]: M = 0.09·G₁ + 0.1·G₂; r = 0.99·r + 0.01·(1, 1),
  //   c = 0.99·c + 0.01·(1, 1); α = 0.1·√(1 − 0.99²)/(1 − 0.9²); W₂ = (W₁ − α·M/√V̂)·0.99.
  const g1 = [1, 2, 3, 4];
  const g2 = [1, 0, 0, 1];
  const step = (w: number[], m: number[], r: number[], c: number[], alpha: number) => {
    const total = r[0] + r[1];
    return w.map((x, i) => (x - (alpha * m[i]) / Math.sqrt((r[i >> 1] * c[i & 1]) / total)) * 0.99);
  };
  let r = [0.05, 0.25];
  let c = [0.1, 0.2];
  const w1 = step([1, 2, 3, 4], g1.map((g) => 0.1 * g), r, c, 0.1);
  r = r.map((x) => 0.99 * x + 0.01);
  c = c.map((x) => 0.99 * x + 0.01);
  const w2 = step(w1, g1.map((g, i) => 0.09 * g + 0.1 * g2[i]), r, c, (0.1 * Math.sqrt(1 - 0.99 ** 2)) / (1 - 0.9 ** 2));
  const w = tf.variable(tf.tensor2d([1, 2, 3, 4], [2, 2]), true, 'adafactor_hand.w');
  const opt = createOptimizer({ type: 'adafactor', lr: 0.1, betas: [0.9, 0.99], eps: 0, weight_decay: 0.1 });
  [g1, g2].forEach((g, i) => {
    opt.applyGradients({ 'adafactor_hand.w': tf.tensor2d(g, [2, 2]) });
    const got = w.dataSync();
    [w1, w2][i].forEach((e, j) => assert.ok(Math.abs(got[j] - e) < 1e-5, `step ${i + 1}[${j}]: ${got[j]} vs ${e}`));
  });
  opt.dispose();
  w.dispose();
});

test('Adafactor on a rank-1 G² equals Adam (the factored second moment is exact there)', () => {
  // G = a·bᵀ ⇒ G² = a²(b²)ᵀ is rank 1 and r cᵀ/Σr = G², so one step is lr·sign(G) like Adam.
  const w = tf.variable(tf.zeros([2, 3]), true, 'adafactor_rank1.w');
  const opt = createOptimizer({ type: 'adafactor', lr: 0.1, eps: 0, weight_decay: 0 });
  opt.applyGradients({ 'adafactor_rank1.w': tf.tensor2d([1, -2, 3, 2, -4, 6], [2, 3]) });
  const expected = [-0.1, 0.1, -0.1, -0.1, 0.1, -0.1];
  w.dataSync().forEach((x, i) => assert.ok(Math.abs(x - expected[i]) < 1e-6, `${i}: ${x}`));
  opt.dispose();
  w.dispose();
});
