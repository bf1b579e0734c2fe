/**
 * The optimizer interface, in optax's shape but per parameter: an update rule is a pair of
 * functions `init(param) → state` and `update(grad, state, param) → (new param, new state)`.
 * `RuleOptimizer` (rule-optimizer.ts) runs one rule over every named variable and is a
 * `tf.Optimizer`, so the same object serves the trainer and anyone's tfjs code.
 *
 * State is keyed by parameter name (never by position) so checkpoints survive a reordering.
 */
import type { Tensor } from '../tf.js';

/** One parameter's optimizer state: tensors (moments, statistics, bases) and plain counters. */
export interface ParamState {
  /** Named state tensors, e.g. `exp_avg`, `exp_avg_sq`, `L`, `Q_L`. Float32. */
  tensors: Record<string, Tensor>;
  /** Named counters, e.g. `step`. Plain numbers so reading them never syncs a device. */
  counters: Record<string, number>;
}

/** What an update rule sees for one parameter on one step. */
export interface UpdateContext {
  /** Dotted parameter name (`blocks.3.attn.wq`). */
  name: string;
  /** The gradient, same shape as the parameter. Owned by the caller: do not dispose. */
  grad: Tensor;
  /** The parameter's current value. */
  param: Tensor;
  /** This parameter's state from init() or the previous update(). */
  state: ParamState;
  /** Learning rate for this step (the base lr times the schedule's factor). */
  lr: number;
  /** Whether weight decay applies to this parameter (see `decay` option). */
  decay: boolean;
  /** Records time spent in a named phase (e.g. `refresh` for eigenbases), in milliseconds. */
  time<T>(phase: string, fn: () => T): T;
}

export interface UpdateResult {
  /** The parameter's new value. */
  param: Tensor;
  /** The new state. Tensors of the old state not reused here are disposed by the runner. */
  state: ParamState;
}

/**
 * A per-parameter update rule. `update` runs inside `tf.tidy`: intermediate tensors are freed,
 * the returned ones are kept. Rules that need float64 work (eigendecompositions) may read
 * tensors with `dataSync()` inside `ctx.time('refresh', …)`.
 */
export interface UpdateRule {
  init(name: string, param: Tensor): ParamState;
  update(ctx: UpdateContext): UpdateResult;
  /** Bytes of optimizer state for a parameter of this shape, computed without allocating. */
  stateBytes(shape: readonly number[]): number;
}

/** Which parameters weight decay applies to: every one (torch.optim) or ≥2-D ones (nanoGPT, OLMo). */
export type DecayFilter = 'all' | 'matrices';
