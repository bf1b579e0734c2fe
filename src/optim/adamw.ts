/**
 * AdamW with `torch.optim.AdamW` semantics (Loshchilov & Hutter's decoupled weight decay):
 *
 *     t ← t+1
 *     W ← W·(1 − lr·wd)                            decay first, on the old weights
 *     m ← β1·m + (1−β1)·G ;  v ← β2·v + (1−β2)·G²
 *     W ← W − lr/(1−β1ᵗ) · m / (sqrt(v)/sqrt(1−β2ᵗ) + eps)
 *
 * Defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0.01.
 */
import { z } from 'zod';
import { tf } from '../tf.js';
import { betasOption, decayOption, epsOption, lrOption, weightDecayOption } from './common.js';
import type { ParamState, UpdateContext, UpdateResult, UpdateRule } from './types.js';

export const adamwSchema = z
  .object({
    type: z.literal('adamw'),
    lr: lrOption(1e-3),
    betas: betasOption(0.9, 0.999),
    eps: epsOption(1e-8),
    weight_decay: weightDecayOption(0.01),
    decay: decayOption,
  })
  .strict();

export type AdamWConfig = z.infer<typeof adamwSchema>;

/** The Adam moment update and bias-corrected direction, shared with SOAP's 1-D path. */
export function adamwRule(config: AdamWConfig): UpdateRule {
  const [beta1, beta2] = config.betas;
  return {
    init(_name, param): ParamState {
      return {
        tensors: { exp_avg: tf.zerosLike(param), exp_avg_sq: tf.zerosLike(param) },
        counters: { step: 0 },
      };
    },
    update({ grad, param, state, lr, decay }: UpdateContext): UpdateResult {
      const step = state.counters.step + 1;
      const expAvg = tf.add(tf.mul(state.tensors.exp_avg, beta1), tf.mul(grad, 1 - beta1));
      const expAvgSq = tf.add(tf.mul(state.tensors.exp_avg_sq, beta2), tf.mul(tf.square(grad), 1 - beta2));
      const biasCorrection1 = 1 - beta1 ** step;
      const biasCorrection2Sqrt = Math.sqrt(1 - beta2 ** step);
      const decayed = decay && config.weight_decay > 0 ? tf.mul(param, 1 - lr * config.weight_decay) : param;
      const denom = tf.add(tf.div(tf.sqrt(expAvgSq), biasCorrection2Sqrt), config.eps);
      const next = tf.sub(decayed, tf.mul(tf.div(expAvg, denom), lr / biasCorrection1));
      return { param: next, state: { tensors: { exp_avg: expAvg, exp_avg_sq: expAvgSq }, counters: { step } } };
    },
    stateBytes(shape) {
      return 2 * 4 * shape.reduce((a, b) => a * b, 1);
    },
  };
}
