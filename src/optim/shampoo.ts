/**
 * Shampoo with DistributedShampoo's semantics (facebookresearch/optimizers), the SOAP paper's
 * baseline. Per parameter, with t counted from 1:
 *
 *     M ← β1 M + (1−β1) G ;  M̂ ← M/(1−β1ᵗ)
 *     L ← β2 L + (1−β2) G Gᵀ ;  R ← β2 R + (1−β2) Gᵀ G      (β2 = 1: plain sums, no correction)
 *     A ← β2g A + (1−β2g) G²                                 (Adam grafting)
 *     if t ≥ s and (t − s) mod f = 0:  L⁻ ← (L/(1−β2ᵗ) + ε I)^(−1/exponent), R⁻ likewise
 *     P_graft ← M̂ / (sqrt(A/(1−β2gᵗ)) + eps_graft)           (M̂ itself with grafting 'none')
 *     P ← P_graft if t < s, else (‖P_graft‖_F / ‖L⁻ M̂ R⁻‖_F)·L⁻ M̂ R⁻   (unscaled with 'none')
 *     W ← W·(1 − lr·wd) − lr·P
 *
 * n-D tensors get one factor per dim; dims over max_precond_dim get the identity. Parameters
 * with no preconditioned dim (1-D ones, or all dims too large) always take P_graft.
 * Defaults: lr 3e-3, betas (0.95, 0.95), epsilon 1e-12, weight_decay 0.01,
 * precondition_frequency 10, start_preconditioning_step = precondition_frequency, exponent 2.5
 * (the paper's tuned value; 2 is its theory's "1/2 power", 4 classic Shampoo),
 * max_precond_dim 10000, grafting adam, grafting_eps 1e-8, grafting_beta2 = β2.
 */
import { z } from 'zod';
import { tf } from '../tf.js';
import { betasOption, lrOption, optimizerSchema, weightDecayOption } from './common.js';
import { reassemble } from './linalg/roots.js';
import { transpose } from './linalg/matrix.js';
import { axisStatistic, hostToTensor, modeProduct, numel, type AxisMatrix } from './tensor-modes.js';
import { accumulate, accumulatorCorrection, adamDirection, biasCorrection, decayWeights, descend, ema } from './transforms.js';
import type { MatrixRequest, ParamState, UpdateContext, UpdatePlan, UpdateResult, UpdateRule } from './types.js';

type Tensor = tf.Tensor;

export const shampooSchema = optimizerSchema('shampoo', {
  lr: lrOption(3e-3),
  betas: betasOption(0.95, 0.95).describe('[β1, β2]: momentum, and the EMA rate of the statistics L, R (1 = plain sums)'),
  epsilon: z.number().min(0).default(1e-12).describe('ridge ε·I added to each bias-corrected statistic before its root'),
  weight_decay: weightDecayOption(0.01),
  precondition_frequency: z.number().int().positive().default(10).describe('recompute the inverse roots every this many steps'),
  start_preconditioning_step: z
    .number()
    .int()
    .positive()
    .optional()
    .describe('first step that uses the Shampoo direction (grafting direction before it); default precondition_frequency'),
  exponent: z
    .number()
    .positive()
    .default(2.5)
    .describe('per-factor root: L⁻ = L^(−1/exponent); 2 = "Shampoo^(1/2)", 2.5 the paper\'s tuned value, 4 classic'),
  max_precond_dim: z.number().int().min(0).default(10000).describe('a dim larger than this gets the identity instead of a factor'),
  grafting: z.enum(['adam', 'none']).default('adam').describe("step-size grafting: 'adam' (per-parameter norm of Adam's step) or 'none'"),
  grafting_eps: z.number().min(0).default(1e-8).describe("eps of the Adam grafting direction, added to its sqrt second moment"),
  grafting_beta2: z
    .number()
    .gt(0)
    .max(1)
    .optional()
    .describe('EMA rate of the grafting second moment (1 = Adagrad sums); default β2'),
});

export type ShampooConfig = z.infer<typeof shampooSchema>;

function preconditionedDims(shape: readonly number[], config: ShampooConfig): boolean[] {
  if (shape.length < 2) return shape.map(() => false);
  return shape.map((d) => d <= config.max_precond_dim);
}

/** Bytes of Shampoo state: M (+ A with Adam grafting) at 4·numel, plus L and L⁻ (2·4·d²) per factor. */
export function shampooStateBytes(shape: readonly number[], config: ShampooConfig): number {
  const n = numel(shape);
  let bytes = 4 * n * (config.grafting === 'adam' ? 2 : 1);
  preconditionedDims(shape, config).forEach((p, i) => {
    if (p) bytes += 2 * 4 * shape[i] * shape[i];
  });
  return bytes;
}

/** From this size up the root is reassembled on the device (n³ flops: ~20× faster as a matMul). */
const DEVICE_REASSEMBLY_MIN = 64;

/**
 * (stat/bc + ε·I)^(−1/p) as a float32 tensor from the host's float64 factors V and
 * f = (max(λ,0)+ε)^(−1/p). For d ≥ DEVICE_REASSEMBLY_MIN, V·diag(f)·Vᵀ is one plain float32
 * matMul of (V∘f) with the uploaded Vᵀ instead of n³ host flops (the root is stored in float32
 * either way); small factors keep the float64 reassembly, as fast there and exact to the last bit.
 */
function inverseRootTensor(vectors: Float64Array, scaled: Float64Array, d: number): Tensor {
  if (d < DEVICE_REASSEMBLY_MIN) return hostToTensor(reassemble(vectors, scaled, d), [d, d]);
  const weighted = new Float32Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) weighted[i * d + j] = vectors[i * d + j] * scaled[j];
  return tf.matMul(tf.tensor2d(weighted, [d, d]), hostToTensor(transpose(vectors, d, d), [d, d]) as tf.Tensor2D);
}

/** The Shampoo update rule (see the module comment for the exact math). */
export function shampooRule(config: ShampooConfig): UpdateRule {
  const [beta1, beta2] = config.betas;
  const graftBeta2 = config.grafting_beta2 ?? beta2;
  const start = config.start_preconditioning_step ?? config.precondition_frequency;
  const freq = config.precondition_frequency;
  return {
    init(_name, param): ParamState {
      const tensors: Record<string, Tensor> = { exp_avg: tf.zerosLike(param) };
      if (config.grafting === 'adam') tensors.graft_exp_avg_sq = tf.zerosLike(param);
      preconditionedDims(param.shape, config).forEach((p, i) => {
        if (!p) return;
        const d = param.shape[i];
        tensors[`GG_${i}`] = tf.zeros([d, d]);
        // Never read before the first root computation (t = s); identity keeps the state well-formed.
        tensors[`root_${i}`] = tf.eye(d);
      });
      return { tensors, counters: { step: 0 } };
    },

    plan(ctx: UpdateContext): UpdatePlan | null {
      const precond = preconditionedDims(ctx.param.shape, config);
      const step = ctx.state.counters.step + 1;
      if (!precond.some((p) => p) || step < start || (step - start) % freq !== 0) return null;
      // The statistics after this gradient, whose roots this step uses.
      const stats = nextStatistics(ctx.grad, ctx.state, precond, beta2);
      const carry: Record<string, Tensor> = {};
      const requests: Record<string, MatrixRequest> = {};
      const divide = accumulatorCorrection(beta2, step);
      stats.forEach((stat, i) => {
        if (!stat) return;
        carry[`GG_${i}`] = stat;
        requests[`root_${i}`] = { op: 'inverse_root', input: stat, divide, root: config.exponent, epsilon: config.epsilon };
      });
      return { requests, carry };
    },

    update(ctx: UpdateContext): UpdateResult {
      const { grad, param, state, lr, planned } = ctx;
      const precond = preconditionedDims(param.shape, config);
      const anyPrecond = precond.some((p) => p);
      const tensors = { ...state.tensors };
      const step = state.counters.step + 1;
      tensors.exp_avg = ema(tensors.exp_avg, grad, beta1);
      const momentum = tf.div(tensors.exp_avg, biasCorrection(beta1, step));
      const stats = planned ? precond.map((_, i) => planned.carry[`GG_${i}`] ?? null) : nextStatistics(grad, state, precond, beta2);
      stats.forEach((stat, i) => {
        if (stat) tensors[`GG_${i}`] = stat;
      });
      let graft = momentum;
      if (config.grafting === 'adam') {
        tensors.graft_exp_avg_sq = accumulate(tensors.graft_exp_avg_sq, tf.square(grad), graftBeta2);
        // The second moment is corrected before its root: sqrt(A/(1−β2gᵗ)) + eps.
        const corrected = tf.div(tensors.graft_exp_avg_sq, accumulatorCorrection(graftBeta2, step));
        graft = adamDirection(momentum, corrected, config.grafting_eps);
      }
      if (planned) {
        ctx.time('refresh', () => {
          precond.forEach((p, i) => {
            if (!p) return;
            const { vectors, scaled } = planned.results[`root_${i}`];
            tensors[`root_${i}`] = inverseRootTensor(vectors as Float64Array, scaled as Float64Array, param.shape[i]);
          });
        });
      }
      let direction = graft;
      if (anyPrecond && step >= start) {
        // A root is symmetric: on a matrix's last axis M·A₁ᵀ = M·A₁, so take A₁ = mᵀ (a plain matMul).
        const lastOfMatrix = (i: number) => param.rank === 2 && i === 1;
        const roots: Array<AxisMatrix | null> = precond.map((p, i) => (p ? { m: tensors[`root_${i}`], transposed: lastOfMatrix(i) } : null));
        const pre = modeProduct(momentum, roots);
        direction =
          config.grafting === 'adam'
            ? tf.mul(pre, tf.div(tf.norm(graft), tf.maximum(tf.norm(pre), 1e-30)))
            : pre;
      }
      const decayed = decayWeights(param, lr, config.weight_decay, ctx.decay);
      const next = descend(decayed, direction, lr);
      return { param: next, state: { tensors, counters: { step } } };
    },

    stateBytes(shape) {
      return shampooStateBytes(shape, config);
    },
  };
}

/** L ← β2·L + (1−β2)·stat(G) per preconditioned axis (β2 = 1: a plain sum), null elsewhere. */
function nextStatistics(grad: Tensor, state: ParamState, precond: boolean[], beta2: number): Array<Tensor | null> {
  return precond.map((p, i) => (p ? accumulate(state.tensors[`GG_${i}`], axisStatistic(grad, i), beta2) : null));
}
