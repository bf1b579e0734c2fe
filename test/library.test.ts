import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { createOptimizer, tf } from '../src/index.js';
import { REPO } from './helpers/tiny-run.js';

test('createOptimizer(...).minimize drives a least-squares problem to its solution', () => {
  // min ‖A·x − b‖² with A = diag(1, 10): solution x = (3, −0.2). Every optimizer converges here.
  const a = tf.tensor2d([[1, 0], [0, 10]]);
  const b = tf.tensor2d([[3], [-2]]);
  const x = tf.variable(tf.zeros([2, 1]), true, 'library.x');
  const opt = createOptimizer({ type: 'soap', lr: 0.05, weight_decay: 0, precondition_frequency: 1 });
  for (let i = 0; i < 400; i++) opt.minimize(() => tf.sum(tf.square(tf.sub(tf.matMul(a, x), b))));
  const [x0, x1] = x.dataSync();
  assert.ok(Math.abs(x0 - 3) < 0.05 && Math.abs(x1 + 0.2) < 0.05, `x = (${x0}, ${x1})`);
  opt.dispose();
  tf.dispose([a, b, x]);
});

test("the published entry point: import { createOptimizer, tf } from 'soap-train'", { skip: !existsSync(`${REPO}/dist/src/index.js`) && 'not built' }, () => {
  const script = `
    const { createOptimizer, tf } = await import('soap-train');
    const w = tf.variable(tf.ones([2, 2]), true, 'w');
    const opt = createOptimizer({ type: 'adamw', lr: 0.1, weight_decay: 0 });
    opt.applyGradients({ w: tf.ones([2, 2]) });
    console.log(JSON.stringify([...w.dataSync()].map((v) => +v.toFixed(6))));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  // Adam's first step is lr·sign(g): 1 − 0.1.
  assert.deepEqual(JSON.parse(r.stdout), [0.9, 0.9, 0.9, 0.9]);
});
