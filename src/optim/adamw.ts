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
import type { z } from 'zod';
import { tf } from '../tf.js';
import { betasOption, epsOption, lrOption, optimizerSchema, weightDecayOption } from './common.js';
import { numel } from './tensor-modes.js';
import { adamDirection, biasCorrection, decayWeights, descend, ema, emaOfSquare } from './transforms.js';
import type { ParamState, UpdateContext, UpdateResult, UpdateRule } from './types.js';

export const adamwSchema = optimizerSchema('adamw', {
  lr: lrOption(1e-3),
  betas: betasOption(0.9, 0.999),
  eps: epsOption(1e-8),
  weight_decay: weightDecayOption(0.01),
});

export type AdamWConfig = z.infer<typeof adamwSchema>;

/** The AdamW update rule (see the module comment). */
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
      const decayed = decayWeights(param, lr, config.weight_decay, decay);
      const expAvg = ema(state.tensors.exp_avg, grad, beta1);
      const expAvgSq = emaOfSquare(state.tensors.exp_avg_sq, grad, beta2);
      const direction = adamDirection(expAvg, expAvgSq, config.eps, Math.sqrt(biasCorrection(beta2, step)));
      const next = descend(decayed, direction, lr / biasCorrection(beta1, step));
      return { param: next, state: { tensors: { exp_avg: expAvg, exp_avg_sq: expAvgSq }, counters: { step } } };
    },
    stateBytes(shape) {
      return 2 * 4 * numel(shape);
    },
  };
}
