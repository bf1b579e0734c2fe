/**
 * The arithmetic the optimizers share, optax-style: moment EMAs, Adam's bias corrections,
 * the normalised Adam direction, the descent step and decoupled weight decay. Each optimizer
 * file composes these in its own reference's order; the functions here fix only how each piece
 * is computed, so an optimizer keeps its exact float32 operations by choosing where to call
 * them (and, for decay, which spelling).
 *
 * Every tensor function runs eagerly inside the caller's `tf.tidy` (UpdateRule.update).
 */
import { tf } from '../tf.js';

type Tensor = tf.Tensor;

/** Exponential moving average `β·prev + (1−β)·x` (optax `update_moment`). */
export function ema(prev: Tensor, x: Tensor, beta: number): Tensor {
  return tf.add(tf.mul(prev, beta), tf.mul(x, 1 - beta));
}

/** EMA of the elementwise square, `β·prev + (1−β)·x²`: Adam's second moment. */
export function emaOfSquare(prev: Tensor, x: Tensor, beta: number): Tensor {
  return ema(prev, tf.square(x), beta);
}

/**
 * `ema(prev, x, β)`, except that β = 1 means a plain running sum `prev + x` (Adagrad-style
 * accumulation; DistributedShampoo's convention for its statistics). Pair with
 * `accumulatorCorrection`.
 */
export function accumulate(prev: Tensor, x: Tensor, beta: number): Tensor {
  return beta === 1 ? tf.add(prev, x) : ema(prev, x, beta);
}

/**
 * Adam's bias correction `1 − βᵗ` at step t (counted from 1): the total weight an EMA started
 * at zero has given its inputs, so `m / (1 − βᵗ)` is a weighted mean of them.
 */
export function biasCorrection(beta: number, step: number): number {
  return 1 - beta ** step;
}

/** The correction of an `accumulate`d statistic: `1 − βᵗ`, or 1 for a running sum (β = 1). */
export function accumulatorCorrection(beta: number, step: number): number {
  return beta === 1 ? 1 : biasCorrection(beta, step);
}

/**
 * Adam's step size with both bias corrections folded in, `α = lr·sqrt(1−β2ᵗ)/(1−β1ᵗ)`: the
 * form of the SOAP reference (and Adafactor here), where eps is then added to the uncorrected
 * sqrt(v). torch's AdamW instead corrects sqrt(v) before adding eps (see `adamDirection`).
 */
export function biasCorrectedStepSize(lr: number, beta1: number, beta2: number, step: number): number {
  return (lr * Math.sqrt(biasCorrection(beta2, step))) / biasCorrection(beta1, step);
}

/**
 * The Adam direction `m / (sqrt(v) + eps)`, or with `sqrtCorrection2` = sqrt(1−β2ᵗ) given,
 * torch's `m / (sqrt(v)/sqrt(1−β2ᵗ) + eps)` (eps added after the correction). The first
 * moment's correction is left to the step size.
 */
export function adamDirection(m: Tensor, v: Tensor, eps: number, sqrtCorrection2?: number): Tensor {
  const root = sqrtCorrection2 === undefined ? tf.sqrt(v) : tf.div(tf.sqrt(v), sqrtCorrection2);
  return tf.div(m, tf.add(root, eps));
}

/** The descent step `W − α·D` for a direction D and step size α (optax `scale` + `apply_updates`). */
export function descend(param: Tensor, direction: Tensor, stepSize: number): Tensor {
  return tf.sub(param, tf.mul(direction, stepSize));
}

/**
 * How `decayWeights` computes W − lr·wd·W. The two agree up to float32 rounding but not bit for
 * bit, so each optimizer keeps the spelling its trajectories (and checkpoints) were made with.
 * - `scale`: one multiply, `W·(1 − lr·wd)` (torch.optim.AdamW's `param.mul_(1 - lr*wd)`).
 * - `subtract`: `W − W·(lr·wd)` (the SOAP reference's `p.add_(p, alpha=-lr*wd)`).
 */
export type DecaySpelling = 'scale' | 'subtract';

/**
 * Decoupled weight decay (Loshchilov & Hutter) `W ← W − lr·wd·W` with the raw, uncorrected lr
 * (optax `add_decayed_weights` then `scale(−lr)`). Returns `param` itself when `enabled` is
 * false (the `decay` filter excludes this parameter) or wd = 0. When it runs relative to the
 * gradient step is the optimizer's choice: AdamW and Shampoo decay the old weights before
 * stepping, SOAP and Adafactor the new ones after.
 */
export function decayWeights(param: Tensor, lr: number, weightDecay: number, enabled: boolean, spelling: DecaySpelling = 'scale'): Tensor {
  if (!enabled || weightDecay <= 0) return param;
  return spelling === 'scale' ? tf.mul(param, 1 - lr * weightDecay) : tf.sub(param, tf.mul(param, lr * weightDecay));
}
