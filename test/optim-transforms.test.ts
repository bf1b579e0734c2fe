/**
 * The shared optimizer arithmetic (src/optim/transforms.ts) on hand-worked values. The
 * optimizers' own tests and replay traces pin down how they compose it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tf } from '../src/tf.js';
import {
  accumulate,
  accumulatorCorrection,
  adamDirection,
  biasCorrectedStepSize,
  biasCorrection,
  decayWeights,
  descend,
  ema,
  emaOfSquare,
} from '../src/optim/transforms.js';

const values = (t: tf.Tensor) => [...t.dataSync()];
const close = (got: number[], want: number[], tol = 1e-6) =>
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) <= tol * (1 + Math.abs(want[i])), `[${i}] ${g} vs ${want[i]}`));

test('ema, emaOfSquare and accumulate: β·m + (1−β)·x, with β = 1 a running sum for accumulate', () => {
  tf.tidy(() => {
    const m = tf.tensor1d([1, -2]);
    const x = tf.tensor1d([3, 4]);
    close(values(ema(m, x, 0.9)), [0.9 + 0.3, -1.8 + 0.4]);
    close(values(emaOfSquare(m, x, 0.9)), [0.9 + 0.9, -1.8 + 1.6]);
    close(values(accumulate(m, x, 0.9)), values(ema(m, x, 0.9)), 0);
    close(values(accumulate(m, x, 1)), [4, 2], 0);
  });
});

test('bias corrections: 1 − βᵗ, 1 for a running sum, and α = lr·sqrt(1−β2ᵗ)/(1−β1ᵗ)', () => {
  assert.equal(biasCorrection(0.9, 1), 1 - 0.9);
  assert.equal(biasCorrection(0.9, 2), 1 - 0.81);
  assert.equal(accumulatorCorrection(1, 5), 1);
  assert.equal(accumulatorCorrection(0.99, 2), biasCorrection(0.99, 2));
  // t = 1 with β1 = 0.9, β2 = 0.99: α = lr·√0.01/0.1 = lr.
  assert.ok(Math.abs(biasCorrectedStepSize(0.1, 0.9, 0.99, 1) - 0.1) < 1e-15);
});

test('adamDirection: m/(sqrt(v) + eps), or torch-style m/(sqrt(v)/c + eps) with eps after the correction', () => {
  tf.tidy(() => {
    const m = tf.tensor1d([0.5, -1]);
    const v = tf.tensor1d([0.25, 4]);
    close(values(adamDirection(m, v, 0.5)), [0.5 / 1, -1 / 2.5]);
    close(values(adamDirection(m, v, 0.5, 0.5)), [0.5 / 1.5, -1 / 4.5]);
  });
});

test('descend and decayWeights: W − α·D; decay W·(1 − lr·wd) or W − W·(lr·wd), off when disabled or wd = 0', () => {
  tf.tidy(() => {
    const w = tf.tensor1d([2, -4]);
    close(values(descend(w, tf.tensor1d([1, 1]), 0.5)), [1.5, -4.5], 0);
    close(values(decayWeights(w, 0.1, 0.5, true)), [1.9, -3.8]);
    close(values(decayWeights(w, 0.1, 0.5, true, 'subtract')), [1.9, -3.8]);
    assert.equal(decayWeights(w, 0.1, 0.5, false), w);
    assert.equal(decayWeights(w, 0.1, 0, true), w);
  });
});
