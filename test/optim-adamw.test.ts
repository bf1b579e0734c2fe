import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createOptimizer, tf } from '../src/index.js';
import { loadFixture, replayFixture } from './helpers/fixtures.js';

test('AdamW replays torch.optim.AdamW within the fixture tolerance', () => {
  const fx = loadFixture('adamw_basic.json');
  const err = replayFixture(fx, 'adamw_fixture');
  assert.ok(err < fx.tolerance, `relative error ${err} ≥ ${fx.tolerance}`);
});

test('AdamW first two steps match the hand-derived values', () => {
  // w = 1, g₁ = 0.5, g₂ = −1, lr 0.1, β (0.9, 0.99), eps 0, wd 0.1.
  // Step 1: w ← 1·(1 − 0.01) = 0.99; m̂ = g, v̂ = g², so the step is lr·sign(g) = 0.1 → 0.89.
  // Step 2: w ← 0.89·0.99 = 0.8811; m = 0.9·0.05 + 0.1·(−1) = −0.055, m̂ = −0.055/0.19;
  //         v = 0.99·0.0025 + 0.01·1 = 0.012475, v̂ = 0.012475/0.0199;
  //         w ← 0.8811 + 0.1·(0.055/0.19)/sqrt(0.012475/0.0199).
  const expected2 = 0.8811 + (0.1 * (0.055 / 0.19)) / Math.sqrt(0.012475 / 0.0199);
  const w = tf.variable(tf.scalar(1), true, 'adamw_hand.w');
  const opt = createOptimizer({ type: 'adamw', lr: 0.1, betas: [0.9, 0.99], eps: 0, weight_decay: 0.1 });
  opt.applyGradients({ 'adamw_hand.w': tf.scalar(0.5) });
  assert.ok(Math.abs(w.dataSync()[0] - 0.89) < 1e-6);
  opt.applyGradients({ 'adamw_hand.w': tf.scalar(-1) });
  assert.ok(Math.abs(w.dataSync()[0] - expected2) < 1e-6, `${w.dataSync()[0]} vs ${expected2}`);
  opt.dispose();
  w.dispose();
});

test('AdamW with decay: matrices leaves 1-D parameters undecayed', () => {
  const b = tf.variable(tf.ones([3]), true, 'adamw_decay.b');
  const opt = createOptimizer({ type: 'adamw', lr: 0.1, weight_decay: 0.5, decay: 'matrices' });
  opt.applyGradients({ 'adamw_decay.b': tf.zeros([3]) });
  assert.deepEqual([...b.dataSync()], [1, 1, 1]);
  opt.dispose();
  b.dispose();
});

test('createOptimizer rejects unknown keys and unknown types', () => {
  assert.throws(() => createOptimizer({ type: 'adamw', lr: 1e-3, momentum: 0.9 }), /momentum/);
  assert.throws(() => createOptimizer({ type: 'sgdx' }), /unknown optimizer type 'sgdx'/);
  assert.throws(() => createOptimizer({ type: 'adamw', lr: -1 }), /optimizer\.lr/);
});
