/**
 * Loads the optimizer replay fixtures committed in test/fixtures/optim (traces from the
 * reference implementations; provenance in test/fixtures/optim/README.md) and replays them
 * through createOptimizer.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createOptimizer, tf } from '../../src/index.js';
import { relErr } from './matrix.js';

export interface ReplayFixture {
  name: string;
  config: { type: string } & Record<string, unknown>;
  tolerance: number;
  params: Record<string, { shape: number[]; values: number[] }>;
  steps: Array<{ grads: Record<string, number[]> }>;
  expected: { after_step: Array<Record<string, number[]>> };
}

const here = dirname(fileURLToPath(import.meta.url));
/** The committed replay fixtures, inside the checkout (nothing is read from outside it). */
export const FIXTURE_DIR = join(here, '../fixtures/optim');

export function loadFixture(file: string): ReplayFixture {
  return JSON.parse(readFileSync(join(FIXTURE_DIR, file), 'utf8')) as ReplayFixture;
}

/** Replays the fixture; returns the largest ‖ours − ref‖/‖ref‖ over steps and parameters. */
export function replayFixture(fx: ReplayFixture, prefix: string): number {
  const opt = createOptimizer(fx.config);
  const vars: Record<string, tf.Variable> = {};
  for (const [name, p] of Object.entries(fx.params)) {
    vars[name] = tf.variable(tf.tensor(p.values, p.shape, 'float32'), true, `${prefix}.${name}`);
  }
  let worst = 0;
  try {
    fx.steps.forEach((step, i) => {
      const grads: Record<string, tf.Tensor> = {};
      for (const [name, values] of Object.entries(step.grads)) {
        grads[`${prefix}.${name}`] = tf.tensor(values, fx.params[name].shape, 'float32');
      }
      opt.applyGradients(grads);
      tf.dispose(Object.values(grads));
      for (const [name, ref] of Object.entries(fx.expected.after_step[i])) {
        worst = Math.max(worst, relErr(vars[name].dataSync() as Float32Array, ref));
      }
    });
  } finally {
    opt.dispose();
    tf.dispose(Object.values(vars));
  }
  return worst;
}
