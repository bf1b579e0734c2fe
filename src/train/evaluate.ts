/**
 * Validation loss: mean cross-entropy over `evalSteps` fixed batches (the same windows every
 * evaluation, so curves compare like with like). No gradients, everything disposed.
 */
import { tf } from '../tf.js';
import type { ModelConfig } from '../model/config.js';
import { lossTerms } from '../model/index.js';
import type { MicroBatch } from './step.js';

export function evaluate(
  params: Record<string, tf.Variable>,
  model: ModelConfig,
  opts: { steps: number; batchSize: number; seqLen: number; batch(index: number): MicroBatch },
): number {
  let total: tf.Tensor = tf.scalar(0);
  for (let i = 0; i < opts.steps; i++) {
    const b = opts.batch(i);
    const next = tf.tidy(() => {
      const x = tf.tensor2d(b.inputs, [opts.batchSize, opts.seqLen], 'int32');
      const y = tf.tensor2d(b.targets, [opts.batchSize, opts.seqLen], 'int32');
      return tf.add(total, lossTerms(params, x, y, model).ce);
    });
    total.dispose();
    total = next;
  }
  const mean = total.dataSync()[0] / opts.steps;
  total.dispose();
  return mean;
}
