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
 * Statistics and bases (Q only; rotations into the basis are transposed products) are float32
 * tensors. Their products run where tensor-modes.ts's `productPlacement` says: on a CPU backend
 * with the native BLAS, ?gemm on host copies (~5× XNNPACK's speed on wasm), else tf.matMul; the
 * elementwise Adam arithmetic stays on the device. The decompositions of the first step and of
 * each refresh (float64 eigh, float32 QR) are requested by `plan` and computed for all
 * parameters together, in the worker pool (soap-refresh.ts, linalg/host-jobs.ts).
 */
import { z } from 'zod';
import { tf } from '../tf.js';
import { betasOption, epsOption, lrOption, optimizerSchema, weightDecayOption } from './common.js';
import { changeOfBasis, firstBasis, firstBasisRequests, permuteSecondMoment, planRefresh, refreshedBasis } from './soap-refresh.js';
import { axisStatistic, gramPair, mergeDims, modeProduct, numel } from './tensor-modes.js';
import { adamDirection, biasCorrectedStepSize, decayWeights, descend, ema, emaOfSquare } from './transforms.js';
import type { MatrixRequest, ParamState, UpdateContext, UpdatePlan, UpdateResult, UpdateRule } from './types.js';

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

/** Bytes of SOAP state: M and V (4·numel each) plus, per preconditioned dim d, L and Q (2·4·d²). */
export function soapStateBytes(shape: readonly number[], config: SoapConfig): number {
  const { workShape, preconditioned } = soapLayout(shape, config);
  let bytes = 2 * 4 * numel(workShape);
  workShape.forEach((d, i) => {
    if (preconditioned[i]) bytes += 2 * 4 * d * d;
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

    plan(ctx: UpdateContext): UpdatePlan | null {
      const { workShape, preconditioned } = soapLayout(ctx.param.shape, config);
      if (!preconditioned.some((p) => p)) return null;
      const first = ctx.state.counters.initialized === 0;
      if (!first && (ctx.state.counters.step + 1) % config.precondition_frequency !== 0) return null;
      const g = tf.reshape(ctx.grad, workShape);
      // The statistics after this gradient: what both the first basis and a refresh decompose.
      const stats = nextStatistics(g, ctx.state, preconditioned, shampooBeta, first);
      return ctx.time('refresh', () => {
        const carry: Record<string, Tensor> = {};
        stats.forEach((stat, i) => {
          if (stat) carry[`GG_${i}`] = stat;
        });
        if (first) return { requests: firstBasisRequests(g, stats), carry };
        const requests: Record<string, MatrixRequest> = {};
        stats.forEach((stat, i) => {
          if (!stat) return;
          const r = planRefresh(stat, ctx.state.tensors[`Q_${i}`]);
          carry[`order_${i}`] = r.order;
          if (r.qNew) carry[`Q_${i}`] = r.qNew;
          if (r.request) requests[`qr_${i}`] = r.request;
        });
        return { requests, carry };
      });
    },

    update(ctx: UpdateContext): UpdateResult {
      const { grad, param, state, lr, planned } = ctx;
      const { workShape, preconditioned } = soapLayout(param.shape, config);
      const g = tf.reshape(grad, workShape);
      const tensors = withoutStoredTransposes(state.tensors);
      const statistics = (): void => {
        const stats = planned ? preconditioned.map((_, i) => planned.carry[`GG_${i}`] ?? null) : nextStatistics(g, state, preconditioned, shampooBeta, false);
        stats.forEach((stat, i) => {
          if (stat) tensors[`GG_${i}`] = stat;
        });
      };

      if (state.counters.initialized === 0) {
        // The first gradient only seeds the statistics and bases: no step, no decay, t stays 0.
        if (preconditioned.some((p) => p)) {
          if (!planned) throw new Error('soap: the first step needs its planned eigenbases (run it through RuleOptimizer)');
          statistics();
          preconditioned.forEach((p, i) => {
            if (p) tensors[`Q_${i}`] = firstBasis(planned, i, workShape[i]);
          });
        }
        return { param, state: { tensors, counters: { step: 0, initialized: 1 } } };
      }

      const bases = preconditioned.map((p, i) => (p ? tensors[`Q_${i}`] : null));
      const rotated = modeProduct(g, bases.map((q) => q && { m: q, transposed: true }));
      const step = state.counters.step + 1;
      const expAvg = ema(tensors.exp_avg, rotated, beta1);
      let expAvgSq = emaOfSquare(tensors.exp_avg_sq, rotated, beta2);
      let direction = modeProduct(adamDirection(expAvg, expAvgSq, config.eps), bases.map((q) => q && { m: q }));
      if (config.normalize_grads) {
        direction = tf.div(direction, tf.add(tf.sqrt(tf.mean(tf.square(direction))), 1e-30));
      }
      const stepSize = config.correct_bias ? biasCorrectedStepSize(lr, beta1, beta2, step) : lr;
      const stepped = descend(param, tf.reshape(direction, param.shape), stepSize);
      // Decay after the step with the raw lr, as the reference; its W − lr·wd·W is spelled as one
      // multiply by (1 − lr·wd) here (equal up to float32 rounding, one op fewer).
      const next = decayWeights(stepped, lr, config.weight_decay, ctx.decay);

      statistics();
      let expAvgNext: Tensor = expAvg;
      if (planned && step % config.precondition_frequency === 0) {
        ctx.time('refresh', () => {
          const fresh = bases.map((q, i) => q && refreshedBasis(planned, i, workShape[i]));
          expAvgSq = permuteSecondMoment(expAvgSq, planned, preconditioned);
          // M lives in the rotated basis: carry it over (Q_newᵀ·Q_old·M·Q_oldᵀ·Q_new for a matrix).
          expAvgNext = changeOfBasis(expAvg, bases, fresh);
          fresh.forEach((q, i) => {
            if (q) tensors[`Q_${i}`] = q;
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
 * The statistics after this gradient, per preconditioned axis (null elsewhere): the EMA
 * β_s·GG + (1−β_s)·stat(G), or (1−β_s)·stat(G) for the first gradient. For a matrix, G is scaled
 * once by √(1−β_s) and both L = G̃·G̃ᵀ and R = G̃ᵀ·G̃ are products of that G̃ (`gramPair`); this
 * saves the scalar multiply of each n×n statistic.
 */
function nextStatistics(g: Tensor, state: ParamState, preconditioned: boolean[], shampooBeta: number, first: boolean): Array<Tensor | null> {
  const weight = 1 - shampooBeta;
  const stats: Array<Tensor | null> =
    g.rank === 2
      ? gramPair(g as tf.Tensor2D, Math.sqrt(weight), preconditioned[0], preconditioned[1])
      : preconditioned.map((p, i) => (p ? tf.mul(axisStatistic(g, i), weight) : null));
  return stats.map((stat, i) => (stat === null || first ? stat : tf.add(tf.mul(state.tensors[`GG_${i}`], shampooBeta), stat)));
}

/**
 * The state without the `QT_<i>` transposes that checkpoints of format 1 stored beside each
 * basis (the rotations now use transposed matMuls); the runner frees the dropped tensors.
 */
function withoutStoredTransposes(tensors: Record<string, Tensor>): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(tensors).filter(([key]) => !key.startsWith('QT_')));
}
