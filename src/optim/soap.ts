/**
 * SOAP (Vyas et al. 2024, arXiv 2409.11321): Adam run in the eigenbasis of Shampoo's
 * preconditioner, with the reference `soap.py` (nikhilvyas/SOAP, Dec 2024) order of operations.
 *
 *     first call: L ← (1−β_s)·G Gᵀ, R ← (1−β_s)·Gᵀ G, Q_L, Q_R ← eigenvectors (largest first);
 *                 no update, no decay, t stays 0
 *     later:      G' ← Q_Lᵀ G Q_R                      (basis from before this gradient)
 *                 t ← t+1 ; M ← β1 M + (1−β1) G' ; V ← β2 V + (1−β2) G'²
 *                 N ← Q_L (M / (sqrt(V) + eps)) Q_Rᵀ   [÷ (1e-30 + rms N) if normalize_grads]
 *                 W ← W − α N, α = lr·sqrt(1−β2ᵗ)/(1−β1ᵗ) (lr without correct_bias)
 *                 W ← W − lr·wd·W                      (decay after the step, raw lr)
 *                 L ← β_s L + (1−β_s) G Gᵀ ; R likewise
 *                 every f-th t: Rayleigh sort + power step + QR per factor (soap-refresh.ts)
 *
 * Statistics and bases are float32 tensors used on device every step. The first basis comes
 * from a float64 host eigh; the periodic refresh runs in float32 on the device like the
 * reference (soap-refresh.ts), both inside ctx.time('refresh', …).
 */
import { z } from 'zod';
import { tf } from '../tf.js';
import { betasOption, epsOption, lrOption, optimizerSchema, weightDecayOption } from './common.js';
import { refreshBases, initialBasis, type Basis } from './soap-refresh.js';
import { axisStatistic, mergeDims, modeProduct, numel, type AxisMatrix } from './tensor-modes.js';
import { adamDirection, biasCorrectedStepSize, decayWeights, descend, ema, emaOfSquare } from './transforms.js';
import type { ParamState, UpdateContext, UpdateResult, UpdateRule } from './types.js';

type Tensor = tf.Tensor;

export const soapSchema = optimizerSchema('soap', {
  lr: lrOption(3e-3),
  betas: betasOption(0.95, 0.95),
  shampoo_beta: z
    .number()
    .lt(1)
    .default(-1)
    .describe('EMA rate β_s of the statistics L and R; a negative value means use β2 (the reference default −1)'),
  eps: epsOption(1e-8).describe('added to sqrt(V) in the rotated basis; not bias-corrected (reference convention)'),
  weight_decay: weightDecayOption(0.01),
  precondition_frequency: z
    .number()
    .int()
    .positive()
    .default(10)
    .describe('refresh the eigenbases every this many Adam steps (the paper: 10 at 2M-token batches, 80 at 256k)'),
  max_precond_dim: z
    .number()
    .int()
    .min(0)
    .default(10000)
    .describe('a dim larger than this keeps the identity basis and no statistic; 0 makes SOAP exactly Adam'),
  merge_dims: z
    .boolean()
    .default(false)
    .describe('fold consecutive dims while their product stays ≤ max_precond_dim before preconditioning'),
  precondition_1d: z.boolean().default(false).describe('give 1-D parameters a full n×n factor instead of plain Adam'),
  normalize_grads: z.boolean().default(false).describe('divide the rotated-back direction by its RMS (plus 1e-30)'),
  correct_bias: z.boolean().default(true).describe('Adam bias correction α = lr·sqrt(1−β2ᵗ)/(1−β1ᵗ)'),
  one_sided: z
    .boolean()
    .default(false)
    .describe("the paper's one-sided variant: rotate only the smallest preconditioned dim, identity on the others"),
});

export type SoapConfig = z.infer<typeof soapSchema>;

/** How a parameter is preconditioned: the (possibly merged) working shape and which dims get a basis. */
export interface SoapLayout {
  workShape: number[];
  preconditioned: boolean[];
}

/**
 * Which dims of a parameter get statistics and an eigenbasis (reference rules): 1-D only with
 * precondition_1d; any dim > max_precond_dim keeps the identity; merge_dims folds ≥2-D shapes
 * first; one_sided keeps only the smallest preconditioned dim (the first on ties).
 */
export function soapLayout(shape: readonly number[], config: SoapConfig): SoapLayout {
  const max = config.max_precond_dim;
  let workShape = [...shape];
  let preconditioned: boolean[];
  if (shape.length <= 1) {
    preconditioned = shape.map((d) => config.precondition_1d && d <= max);
  } else {
    if (config.merge_dims) workShape = mergeDims(shape, max);
    preconditioned = workShape.map((d) => d <= max);
  }
  if (config.one_sided) {
    let best = -1;
    preconditioned.forEach((p, i) => {
      if (p && (best < 0 || workShape[i] < workShape[best])) best = i;
    });
    preconditioned = preconditioned.map((_, i) => i === best);
  }
  return { workShape, preconditioned };
}

/** Bytes of SOAP state: M and V (4·numel each) plus, per preconditioned dim d, L, Q, Qᵀ (3·4·d²). */
export function soapStateBytes(shape: readonly number[], config: SoapConfig): number {
  const { workShape, preconditioned } = soapLayout(shape, config);
  let bytes = 2 * 4 * numel(workShape);
  workShape.forEach((d, i) => {
    if (preconditioned[i]) bytes += 3 * 4 * d * d;
  });
  return bytes;
}

/** The SOAP update rule; 1-D (and unpreconditioned) parameters run Adam with SOAP's conventions. */
export function soapRule(config: SoapConfig): UpdateRule {
  const [beta1, beta2] = config.betas;
  const shampooBeta = config.shampoo_beta >= 0 ? config.shampoo_beta : beta2;
  return {
    init(_name, param): ParamState {
      const { workShape, preconditioned } = soapLayout(param.shape, config);
      const tensors: Record<string, Tensor> = {
        exp_avg: tf.zeros(workShape),
        exp_avg_sq: tf.zeros(workShape),
      };
      preconditioned.forEach((p, i) => {
        if (p) tensors[`GG_${i}`] = tf.zeros([workShape[i], workShape[i]]);
      });
      return { tensors, counters: { step: 0, initialized: 0 } };
    },

    update(ctx: UpdateContext): UpdateResult {
      const { grad, param, state, lr } = ctx;
      const { workShape, preconditioned } = soapLayout(param.shape, config);
      const g = tf.reshape(grad, workShape);
      const tensors = { ...state.tensors };
      const updateStatistics = (): void => {
        const stats = scaledStatistics(g, preconditioned, 1 - shampooBeta);
        stats.forEach((stat, i) => {
          if (!stat) return;
          // β_s·GG + stat: the EMA with its (1−β_s) already inside `stat` (see scaledStatistics).
          tensors[`GG_${i}`] = state.counters.initialized === 0 ? stat : tf.add(tf.mul(tensors[`GG_${i}`], shampooBeta), stat);
        });
      };

      if (state.counters.initialized === 0) {
        // The first gradient only seeds the statistics and bases: no step, no decay, t stays 0.
        updateStatistics();
        ctx.time('refresh', () => {
          preconditioned.forEach((p, i) => {
            if (p) Object.assign(tensors, basisTensors(i, initialBasis(tensors[`GG_${i}`], workShape[i])));
          });
        });
        return { param, state: { tensors, counters: { step: 0, initialized: 1 } } };
      }

      const toRotated = axisMatrices(tensors, preconditioned, true);
      const fromRotated = axisMatrices(tensors, preconditioned, false);
      const rotated = modeProduct(g, toRotated);
      const step = state.counters.step + 1;
      const expAvg = ema(tensors.exp_avg, rotated, beta1);
      let expAvgSq = emaOfSquare(tensors.exp_avg_sq, rotated, beta2);
      let direction = modeProduct(adamDirection(expAvg, expAvgSq, config.eps), fromRotated);
      if (config.normalize_grads) {
        direction = tf.div(direction, tf.add(tf.sqrt(tf.mean(tf.square(direction))), 1e-30));
      }
      const stepSize = config.correct_bias ? biasCorrectedStepSize(lr, beta1, beta2, step) : lr;
      const stepped = descend(param, tf.reshape(direction, param.shape), stepSize);
      // Decay after the step with the raw lr, as the reference; its W − lr·wd·W is spelled as one
      // multiply by (1 − lr·wd) here (equal up to float32 rounding, one op fewer).
      const next = decayWeights(stepped, lr, config.weight_decay, ctx.decay);

      updateStatistics();
      let expAvgNext: Tensor = expAvg;
      if (step % config.precondition_frequency === 0 && preconditioned.some((p) => p)) {
        ctx.time('refresh', () => {
          const refreshed = refreshBases(tensors, preconditioned, workShape, expAvgSq);
          expAvgSq = refreshed.expAvgSq;
          // M lives in the rotated basis: carry it over, M ← M ×ᵢ (Q_newᵀ Q_old) on each axis.
          expAvgNext = modeProduct(expAvg, refreshed.transitions);
          refreshed.bases.forEach((b, i) => {
            if (b) Object.assign(tensors, basisTensors(i, b));
          });
        });
      }
      tensors.exp_avg = expAvgNext;
      tensors.exp_avg_sq = expAvgSq;
      return { param: next, state: { tensors, counters: { step, initialized: 1 } } };
    },

    stateBytes(shape) {
      return soapStateBytes(shape, config);
    },
  };
}

/**
 * Each preconditioned axis's statistic already multiplied by `weight` = 1 − β_s (null elsewhere).
 * For a matrix, G is scaled once by √weight and transposed once, and both L = G̃·G̃ᵀ and
 * R = G̃ᵀ·G̃ are plain matMuls on that pair; this saves the scalar multiply of each n×n
 * statistic and a second transpose (small tensors make op count, not flops, the cost).
 */
function scaledStatistics(g: Tensor, preconditioned: boolean[], weight: number): Array<Tensor | null> {
  if (g.rank === 2) {
    const gs = tf.mul(g, Math.sqrt(weight)) as tf.Tensor2D;
    const gsT = tf.transpose(gs);
    return [preconditioned[0] ? tf.matMul(gs, gsT) : null, preconditioned[1] ? tf.matMul(gsT, gs) : null];
  }
  return preconditioned.map((p, i) => (p ? tf.mul(axisStatistic(g, i), weight) : null));
}

/** The state entries of one axis's basis: Q_i and its transpose QT_i. */
function basisTensors(axis: number, basis: Basis): Record<string, Tensor> {
  return { [`Q_${axis}`]: basis.q, [`QT_${axis}`]: basis.qT };
}

/** Per-axis matrices for modeProduct: Qᵀ (into the eigenbasis) or Q (back out), null on identity axes. */
function axisMatrices(tensors: Record<string, Tensor>, preconditioned: boolean[], intoBasis: boolean): Array<AxisMatrix | null> {
  return preconditioned.map((p, i) => {
    if (!p) return null;
    const q = tensors[`Q_${i}`];
    const qT = tensors[`QT_${i}`];
    return intoBasis ? { m: qT, mT: q } : { m: q, mT: qT };
  });
}
