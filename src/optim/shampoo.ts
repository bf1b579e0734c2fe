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
 * max_precond_dim 10000, grafting adam, grafting_eps 1e-8, grafting_beta2 = β2,
 * root_method eigh, block_size 0 (off).
 *
 * Roots (`root_method`): 'eigh' computes each root on the host from a float64 eigendecomposition
 * (an `inverse_root` request). 'newton' computes it in `plan` on the device by the coupled Newton
 * iteration in float32 matMuls (linalg/newton-root.ts; a rational exponent r/s such as 2.5 = 5/2
 * as (Â^(−1/r))^s), then checks the residual ‖X_r^r·(L̂+εI) − I‖_max: above newton_tolerance that
 * factor falls back to the eigh request for this refresh, counted in the `newton_fallbacks`
 * counter. An exponent that is no small fraction uses eigh throughout (one warning).
 *
 * Blocking (`block_size` = b > 0, DistributedShampoo's blocking of large dims): a ≥2-D parameter
 * with a dim over b is cut along every dim into pieces of b (the last one shorter), and each
 * block of the grid (row-major, dim 0 outermost, as DistributedShampoo's multi_dim_split) is
 * preconditioned as its own parameter: its own L, R and roots (state `GG_<block>_<axis>`,
 * `root_<block>_<axis>`), max_precond_dim applied to the block's dims, and its own grafting norm
 * ‖P_graft,block‖_F/‖L⁻ M̂ R⁻‖_F, as in DistributedShampoo, whose grafting scales each block of
 * its blocked list (`_precondition_and_grafting`). M and A are elementwise, so they stay per
 * parameter: the step of a block equals an unblocked Shampoo's step on that block alone.
 * Parameters with no dim over b keep the unblocked layout (`GG_<axis>`, `root_<axis>`).
 */
import { z } from 'zod';
import { tf } from '../tf.js';
import { betasOption, lrOption, optimizerSchema, weightDecayOption } from './common.js';
import { newtonInverseRoot, rationalExponent } from './linalg/newton-root.js';
import { reassemble } from './linalg/roots.js';
import { transpose } from './linalg/matrix.js';
import { axisStatistic, gramPair, hostToTensor, modeProduct, numel, type AxisMatrix } from './tensor-modes.js';
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
  root_method: z
    .enum(['eigh', 'newton'])
    .default('eigh')
    .describe(
      "how the inverse roots are computed: 'eigh' (float64 eigendecomposition on the host) or 'newton' (DistributedShampoo's " +
        'coupled Newton iteration, float32 matMuls on the device; a factor whose residual exceeds newton_tolerance falls back to eigh)',
    ),
  newton_tolerance: z
    .number()
    .positive()
    .default(1e-3)
    .describe(
      "root_method newton: largest accepted residual max|X^r·(L̂+εI) − I| of a Newton root X = (L̂+εI)^(−1/r) (r = exponent, or its " +
        "numerator: 2.5 = 5/2 is the 5th root squared); above it that factor's root is recomputed by eigh",
    ),
  newton_max_iterations: z
    .number()
    .int()
    .positive()
    .default(100)
    .describe('root_method newton: iteration cap of the coupled Newton iteration (DistributedShampoo: 100)'),
  max_precond_dim: z
    .number()
    .int()
    .min(0)
    .default(10000)
    .describe('a dim (of a block, with block_size) larger than this gets the identity instead of a factor'),
  block_size: z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe(
      "DistributedShampoo's blocking: a ≥2-D parameter with a dim over this is split into blocks of at most block_size per dim, " +
        'each with its own factors, roots and grafting norm; 0 = off',
    ),
  grafting: z.enum(['adam', 'none']).default('adam').describe("step-size grafting: 'adam' (norm of Adam's step per parameter, per block with block_size) or 'none'"),
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

/**
 * One block of a parameter: its corner and shape in the parameter, which of its dims carry a
 * factor, and its state-key prefix (`''` for the unblocked layout, `'<index>_'` for a block).
 */
export interface ShampooBlock {
  key: string;
  begin: number[];
  size: number[];
  precond: boolean[];
}

/** Whether a parameter of this shape uses the blocked layout: block_size on, ≥2-D, some dim over it. */
function isBlocked(shape: readonly number[], config: ShampooConfig): boolean {
  return config.block_size > 0 && shape.length >= 2 && shape.some((d) => d > config.block_size);
}

/**
 * The blocks of a parameter: the whole parameter (key '') when it is not blocked, else the grid
 * of pieces of at most block_size along every dim, numbered row-major with dim 0 outermost.
 */
export function shampooBlocks(shape: readonly number[], config: ShampooConfig): ShampooBlock[] {
  if (!isBlocked(shape, config)) {
    return [{ key: '', begin: shape.map(() => 0), size: [...shape], precond: preconditionedDims(shape, config) }];
  }
  const b = config.block_size;
  const pieces = shape.map((d) => Array.from({ length: Math.ceil(d / b) }, (_, k) => [k * b, Math.min(b, d - k * b)]));
  let grid: Array<Array<[number, number]>> = [[]];
  for (const dim of pieces) grid = grid.flatMap((prefix) => dim.map((piece) => [...prefix, piece as [number, number]]));
  return grid.map((corner, index) => {
    const size = corner.map(([, len]) => len);
    return { key: `${index}_`, begin: corner.map(([start]) => start), size, precond: preconditionedDims(size, config) };
  });
}

/** The number of blocks along each dim (for reassembly). */
function blockCounts(shape: readonly number[], config: ShampooConfig): number[] {
  return isBlocked(shape, config) ? shape.map((d) => Math.ceil(d / config.block_size)) : shape.map(() => 1);
}

/**
 * Bytes of Shampoo state: M (+ A with Adam grafting) at 4·numel, plus L and L⁻ (2·4·d²) per
 * factor of every block (the whole parameter when unblocked).
 */
export function shampooStateBytes(shape: readonly number[], config: ShampooConfig): number {
  const n = numel(shape);
  let bytes = 4 * n * (config.grafting === 'adam' ? 2 : 1);
  for (const block of shampooBlocks(shape, config)) {
    block.precond.forEach((p, i) => {
      if (p) bytes += 2 * 4 * block.size[i] * block.size[i];
    });
  }
  return bytes;
}

/** A block's piece of a parameter-shaped tensor (the tensor itself for the unblocked layout). */
function blockOf(x: Tensor, block: ShampooBlock): Tensor {
  return block.key === '' ? x : tf.slice(x, block.begin, block.size);
}

/** Reassembles blocks (row-major over the grid, `counts` per dim) into one tensor: DistributedShampoo's multi_dim_cat. */
function assemble(pieces: Tensor[], counts: number[]): Tensor {
  let merged = pieces;
  for (let dim = counts.length - 1; dim >= 0; dim--) {
    const k = counts[dim];
    if (k === 1) continue;
    const next: Tensor[] = [];
    for (let i = 0; i < merged.length; i += k) next.push(tf.concat(merged.slice(i, i + k), dim));
    merged = next;
  }
  return merged[0];
}

const warned = new Set<number>();

/** One stderr line per exponent and process: Newton does not apply to this exponent. */
function warnNoNewton(exponent: number): void {
  if (warned.has(exponent)) return;
  warned.add(exponent);
  process.stderr.write(
    `soap-train: warning: shampoo root_method newton needs an exponent r/s with r ≤ 32, s ≤ 8; ${exponent} is not one, so its roots use eigh\n`,
  );
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
  const newton = config.root_method === 'newton';
  const newtonApplies = newton && rationalExponent(config.exponent) !== null;
  if (newton && !newtonApplies) warnNoNewton(config.exponent);
  return {
    init(_name, param): ParamState {
      const tensors: Record<string, Tensor> = { exp_avg: tf.zerosLike(param) };
      if (config.grafting === 'adam') tensors.graft_exp_avg_sq = tf.zerosLike(param);
      for (const block of shampooBlocks(param.shape, config)) {
        block.precond.forEach((p, i) => {
          if (!p) return;
          const d = block.size[i];
          tensors[`GG_${block.key}${i}`] = tf.zeros([d, d]);
          // Never read before the first root computation (t = s); identity keeps the state well-formed.
          tensors[`root_${block.key}${i}`] = tf.eye(d);
        });
      }
      return { tensors, counters: newton ? { step: 0, newton_fallbacks: 0 } : { step: 0 } };
    },

    plan(ctx: UpdateContext): UpdatePlan | null {
      const blocks = shampooBlocks(ctx.param.shape, config);
      const step = ctx.state.counters.step + 1;
      if (!blocks.some((b) => b.precond.some((p) => p)) || step < start || (step - start) % freq !== 0) return null;
      const carry: Record<string, Tensor> = {};
      const requests: Record<string, MatrixRequest> = {};
      const divide = accumulatorCorrection(beta2, step);
      for (const block of blocks) {
        // The statistics after this gradient, whose roots this step uses.
        const stats = nextStatistics(blockOf(ctx.grad, block), ctx.state, block, beta2);
        stats.forEach((stat, i) => {
          if (!stat) return;
          const k = `${block.key}${i}`;
          carry[`GG_${k}`] = stat;
          if (newtonApplies) {
            const r = ctx.time('refresh', () =>
              ctx.time('newton', () =>
                newtonInverseRoot(tf.div(stat, divide), config.exponent, {
                  epsilon: config.epsilon,
                  maxIterations: config.newton_max_iterations,
                }),
              ),
            );
            if (r.residual <= config.newton_tolerance) {
              carry[`root_${k}`] = r.root;
              return;
            }
            // Not accurate enough in float32 (or not converged): this factor's root comes from eigh.
            r.root.dispose();
          }
          requests[`root_${k}`] = { op: 'inverse_root', input: stat, divide, root: config.exponent, epsilon: config.epsilon };
        });
      }
      return { requests, carry };
    },

    update(ctx: UpdateContext): UpdateResult {
      const { grad, param, state, lr, planned } = ctx;
      const blocks = shampooBlocks(param.shape, config);
      const anyPrecond = blocks.some((b) => b.precond.some((p) => p));
      const tensors = { ...state.tensors };
      const step = state.counters.step + 1;
      let fallbacks = state.counters.newton_fallbacks ?? 0;
      tensors.exp_avg = ema(tensors.exp_avg, grad, beta1);
      const momentum = tf.div(tensors.exp_avg, biasCorrection(beta1, step));
      for (const block of blocks) {
        const stats = planned
          ? block.precond.map((_, i) => planned.carry[`GG_${block.key}${i}`] ?? null)
          : nextStatistics(blockOf(grad, block), state, block, beta2);
        stats.forEach((stat, i) => {
          if (stat) tensors[`GG_${block.key}${i}`] = stat;
        });
      }
      let graft = momentum;
      if (config.grafting === 'adam') {
        tensors.graft_exp_avg_sq = accumulate(tensors.graft_exp_avg_sq, tf.square(grad), graftBeta2);
        // The second moment is corrected before its root: sqrt(A/(1−β2gᵗ)) + eps.
        const corrected = tf.div(tensors.graft_exp_avg_sq, accumulatorCorrection(graftBeta2, step));
        graft = adamDirection(momentum, corrected, config.grafting_eps);
      }
      if (planned) {
        ctx.time('refresh', () => {
          for (const block of blocks) {
            block.precond.forEach((p, i) => {
              if (!p) return;
              const k = `${block.key}${i}`;
              const computed = planned.carry[`root_${k}`];
              if (computed) {
                tensors[`root_${k}`] = computed;
                return;
              }
              const result = planned.results[`root_${k}`];
              const d = block.size[i];
              // With LAPACK the worker has already reassembled the root (host-jobs.ts).
              tensors[`root_${k}`] =
                'root' in result ? tf.tensor(result.root, [d, d], 'float32') : inverseRootTensor(result.vectors as Float64Array, result.scaled as Float64Array, d);
              if (newtonApplies) fallbacks++;
            });
          }
        });
      }
      let direction = graft;
      if (anyPrecond && step >= start) {
        const pieces = blocks.map((block) => blockDirection(blockOf(momentum, block), blockOf(graft, block), block, tensors));
        direction = pieces.length === 1 ? pieces[0] : assemble(pieces, blockCounts(param.shape, config));
      }
      const decayed = decayWeights(param, lr, config.weight_decay, ctx.decay);
      const next = descend(decayed, direction, lr);
      return { param: next, state: { tensors, counters: newton ? { step, newton_fallbacks: fallbacks } : { step } } };
    },

    stateBytes(shape) {
      return shampooStateBytes(shape, config);
    },
  };

  /** One block's direction: (‖P_graft‖/‖L⁻ M̂ R⁻‖)·L⁻ M̂ R⁻ (unscaled with grafting none), P_graft without factors. */
  function blockDirection(momentum: Tensor, graft: Tensor, block: ShampooBlock, tensors: Record<string, Tensor>): Tensor {
    if (!block.precond.some((p) => p)) return graft;
    // A root is symmetric: on a matrix's last axis M·A₁ᵀ = M·A₁, so take A₁ = mᵀ (a plain matMul).
    const lastOfMatrix = (i: number) => momentum.rank === 2 && i === 1;
    const roots: Array<AxisMatrix | null> = block.precond.map((p, i) =>
      p ? { m: tensors[`root_${block.key}${i}`], transposed: lastOfMatrix(i) } : null,
    );
    const pre = modeProduct(momentum, roots);
    return config.grafting === 'adam' ? tf.mul(pre, tf.div(tf.norm(graft), tf.maximum(tf.norm(pre), 1e-30))) : pre;
  }
}

/**
 * L ← β2·L + (1−β2)·stat(G) per preconditioned axis of a block (β2 = 1: a plain sum), null
 * elsewhere. For a matrix both statistics come from G scaled once by √(1−β2) (`gramPair`), which
 * saves the multiply of each n×n statistic by 1−β2 (equal up to float32 rounding).
 */
function nextStatistics(grad: Tensor, state: ParamState, block: ShampooBlock, beta2: number): Array<Tensor | null> {
  const prev = (i: number) => state.tensors[`GG_${block.key}${i}`];
  if (grad.rank === 2 && beta2 < 1) {
    const stats = gramPair(grad as tf.Tensor2D, Math.sqrt(1 - beta2), block.precond[0], block.precond[1]);
    return stats.map((stat, i) => stat && tf.add(tf.mul(prev(i), beta2), stat));
  }
  return block.precond.map((p, i) => (p ? accumulate(prev(i), axisStatistic(grad, i), beta2) : null));
}
