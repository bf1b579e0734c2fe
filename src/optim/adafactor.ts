/**
 * Adafactor (Shazeer & Stern 2018) with SOAP's conventions: the SOAP paper's bridge, since
 * Adafactor run in the eigenbasis of Shampoo's L and R is Shampoo with the 1/2 power (the
 * row/column sums of G'² in that basis are the eigenvalues of L and R).
 *
 * The exact rule (W folded to m×n with n the last dim, m the product of the others):
 *
 *     t ← t+1
 *     M ← β1 M + (1−β1) G
 *     r ← β2 r + (1−β2)·(G²)·1ₙ      row sums,     length m
 *     c ← β2 c + (1−β2)·1ₘᵀ(G²)      column sums,  length n
 *     V̂ ← r cᵀ / (1ᵀr)              the rank-1 fit (exact when G² is rank 1); 1-D: V ← full EMA of G²
 *     W ← W − α·M/(sqrt(V̂) + eps),  α = lr·sqrt(1−β2ᵗ)/(1−β1ᵗ)   (eps not bias-corrected; V̂ is
 *                                     homogeneous of degree 1 in r, c, so the Adam correction holds)
 *     W ← W − lr·wd·W                decay after the step with the raw lr
 *
 * Unlike SOAP there is no skipped first call (there is no basis to seed). The paper's
 * relative step size, update clipping and β2 schedule are deliberately left out so that the
 * only difference from Adam is the factored second moment.
 * Defaults: lr 3e-3, betas (0.95, 0.95), eps 1e-8, weight_decay 0.01 (SOAP's).
 */
import { z } from 'zod';
import { tf } from '../tf.js';
import { betasOption, epsOption, lrOption, optimizerSchema, weightDecayOption } from './common.js';
import { numel } from './tensor-modes.js';
import { adamDirection, biasCorrectedStepSize, decayWeights, descend, ema, emaOfSquare } from './transforms.js';
import type { ParamState, UpdateContext, UpdateResult, UpdateRule } from './types.js';

type Tensor = tf.Tensor;

export const adafactorSchema = optimizerSchema('adafactor', {
  lr: lrOption(3e-3),
  betas: betasOption(0.95, 0.95),
  eps: epsOption(1e-8).describe('added to sqrt(V̂); not bias-corrected (SOAP convention)'),
  weight_decay: weightDecayOption(0.01),
});

export type AdafactorConfig = z.infer<typeof adafactorSchema>;

/** [m, n] for a ≥2-D shape (n the last dim), or null for shapes kept unfactored (scalars, vectors). */
function factoredShape(shape: readonly number[]): [number, number] | null {
  if (shape.length < 2) return null;
  const n = shape[shape.length - 1];
  return [numel(shape) / n, n];
}

/** Bytes of Adafactor state: M (4·numel) plus r and c (4·(m+n)), or a full V (4·numel) for 1-D. */
export function adafactorStateBytes(shape: readonly number[]): number {
  const f = factoredShape(shape);
  return 4 * numel(shape) + 4 * (f ? f[0] + f[1] : numel(shape));
}

/** The Adafactor update rule (see the module comment). */
export function adafactorRule(config: AdafactorConfig): UpdateRule {
  const [beta1, beta2] = config.betas;
  return {
    init(_name, param): ParamState {
      const f = factoredShape(param.shape);
      const tensors: Record<string, Tensor> = { exp_avg: tf.zerosLike(param) };
      if (f) {
        tensors.exp_avg_sq_row = tf.zeros([f[0], 1]);
        tensors.exp_avg_sq_col = tf.zeros([1, f[1]]);
      } else {
        tensors.exp_avg_sq = tf.zerosLike(param);
      }
      return { tensors, counters: { step: 0 } };
    },

    update(ctx: UpdateContext): UpdateResult {
      const { grad, param, state, lr } = ctx;
      const step = state.counters.step + 1;
      const f = factoredShape(param.shape);
      const tensors = { ...state.tensors };
      tensors.exp_avg = ema(tensors.exp_avg, grad, beta1);
      let second: Tensor;
      if (f) {
        const sq = tf.reshape(tf.square(grad), f);
        tensors.exp_avg_sq_row = ema(tensors.exp_avg_sq_row, tf.sum(sq, 1, true), beta2);
        tensors.exp_avg_sq_col = ema(tensors.exp_avg_sq_col, tf.sum(sq, 0, true), beta2);
        // r cᵀ / Σr as a broadcast product; the floor only matters when r = 0, where r cᵀ = 0 too.
        const total = tf.maximum(tf.sum(tensors.exp_avg_sq_row), 1e-30);
        second = tf.reshape(tf.div(tf.mul(tensors.exp_avg_sq_row, tensors.exp_avg_sq_col), total), param.shape);
      } else {
        tensors.exp_avg_sq = emaOfSquare(tensors.exp_avg_sq, grad, beta2);
        second = tensors.exp_avg_sq;
      }
      const stepSize = biasCorrectedStepSize(lr, beta1, beta2, step);
      const stepped = descend(param, adamDirection(tensors.exp_avg, second, config.eps), stepSize);
      // Decay after the step with the raw lr, spelled W − W·(lr·wd) like the SOAP reference.
      const next = decayWeights(stepped, lr, config.weight_decay, ctx.decay, 'subtract');
      return { param: next, state: { tensors, counters: { step } } };
    },

    stateBytes(shape) {
      return adafactorStateBytes(shape);
    },
  };
}
