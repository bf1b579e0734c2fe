import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createOptimizer, OPTIMIZERS, tf } from '../src/index.js';
import type { RegistryEntry } from '../src/optim/registry.js';
import { shortRunOptions } from './helpers/optimizers.js';

/**
 * Least squares ½‖X·W + b − Y‖²·scale over a [12, 6] batch with W [6, 4] and b [4]; returns the
 * loss before and after 60 steps, the numTensors after each step and the state dtypes.
 */
function runQuadratic(entry: RegistryEntry, scale: number) {
  const prefix = `reg_${entry.name}_${scale}`;
  const x = tf.randomNormal([12, 6], 0, 1, 'float32', 1);
  const y = tf.randomNormal([12, 4], 0, 1, 'float32', 2);
  const w = tf.variable(tf.randomNormal([6, 4], 0, 1, 'float32', 3), true, `${prefix}.w`);
  const b = tf.variable(tf.zeros([4]), true, `${prefix}.b`);
  const opt = createOptimizer({ type: entry.name, lr: 0.05, weight_decay: 0, ...shortRunOptions(entry) });
  const loss = () => tf.mul(tf.sum(tf.square(tf.sub(tf.add(tf.matMul(x, w), b), y))), 0.5 * scale) as tf.Scalar;
  const lossValue = () => tf.tidy(() => loss().dataSync()[0]);
  const before = lossValue();
  const counts: number[] = [];
  for (let s = 0; s < 60; s++) {
    const { grads, value } = tf.variableGrads(loss, [w, b]);
    opt.applyGradients(grads);
    tf.dispose([value, ...Object.values(grads)]);
    counts.push(tf.memory().numTensors);
  }
  const after = lossValue();
  const states = opt.stateEntries();
  const dtypes = states.flatMap(([, st]) => Object.values(st.tensors).map((t) => t.dtype));
  const bytesMatch = states.every(([name, st]) => {
    const shape = name.endsWith('.w') ? [6, 4] : [4];
    return opt.stateBytes(shape) === Object.values(st.tensors).reduce((a, t) => a + 4 * t.size, 0);
  });
  opt.dispose();
  tf.dispose([x, y, w, b]);
  return { before, after, counts, dtypes, bytesMatch };
}

for (const entry of OPTIMIZERS) {
  test(`${entry.name}: drives a least-squares problem down, leak-free, float32 state, exact stateBytes`, () => {
    const r = runQuadratic(entry, 1);
    assert.ok(r.after < 0.3 * r.before, `loss ${r.before} → ${r.after}`);
    assert.ok(r.counts.slice(1).every((c) => c === r.counts[1]), `numTensors drifted: ${r.counts.join(',')}`);
    assert.ok(r.dtypes.every((d) => d === 'float32'), `state dtypes ${r.dtypes}`);
    assert.ok(r.bytesMatch, 'stateBytes disagrees with the allocated state');
  });

  test(`${entry.name}: works with gradients of 1e-6 scale`, () => {
    const r = runQuadratic(entry, 1e-6);
    assert.ok(Number.isFinite(r.after) && r.after < 0.5 * r.before, `loss ${r.before} → ${r.after}`);
  });

  test(`${entry.name}: schema is strict, documents every option and has defaults`, () => {
    assert.throws(() => createOptimizer({ type: entry.name, not_an_option: 1 }), /not_an_option/);
    for (const [key, option] of Object.entries(entry.schema.shape)) {
      if (key === 'type') continue;
      assert.ok((option as { description?: string }).description, `${entry.name}.${key} lacks .describe()`);
    }
    assert.doesNotThrow(() => createOptimizer({ type: entry.name }).dispose());
  });
}
