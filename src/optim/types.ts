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
  /** What this step's `plan` asked for, computed (absent for rules without `plan`, or when it returned null). */
  planned?: PlannedWork;
}

/**
 * A matrix function an update needs from the host (eigendecomposition, QR, inverse root): the
 * runner reads `input` off the device, computes all requests of a step together (in the worker
 * pool when there is one, see linalg/pool.ts) and hands the results to `update` as
 * `ctx.planned.results[key]` (arrays named as in linalg/host-jobs.ts).
 */
export type MatrixRequest =
  /** Symmetric n×n → `values` (descending), `vectors` (columns), float64. */
  | { op: 'eigh'; input: Tensor }
  /** A 2-D G → the eigenbases (`left`, `right`, columns by descending eigenvalue) of G·Gᵀ and/or Gᵀ·G. */
  | { op: 'gram_eigh'; input: Tensor; left: boolean; right: boolean }
  /** Square float32 A → `q` of A = Q·R (float32, as the reference's torch.linalg.qr). */
  | { op: 'qr'; input: Tensor }
  /** Symmetric A → `vectors`, `scaled` = (max(λ,0)+ε)^(−1/root) of A/divide, float64. */
  | { op: 'inverse_root'; input: Tensor; divide: number; root: number; epsilon: number };

/** What `plan` asks for: host requests by key, and tensors computed while planning that `update` reuses. */
export interface UpdatePlan {
  requests: Record<string, MatrixRequest>;
  /** Kept alive until `update` has run; disposed then unless the new state holds them. */
  carry: Record<string, Tensor>;
}

/** The results of a plan, as `update` receives them. */
export interface PlannedWork {
  results: Record<string, Record<string, Float64Array | Float32Array>>;
  carry: Record<string, Tensor>;
}

export interface UpdateResult {
  /** The parameter's new value. */
  param: Tensor;
  /** The new state. Tensors of the old state not reused here are disposed by the runner. */
  state: ParamState;
}

/**
 * A per-parameter update rule. `update` runs inside `tf.tidy`: intermediate tensors are freed,
 * the returned ones are kept. Rules that need host linear algebra (eigendecompositions, QR,
 * roots) say so in `plan`, which runs first (also inside `tf.tidy`, keeping what it returns):
 * the runner then computes every parameter's requests of the step together, off the main
 * thread where it can, and calls `update` with the results in `ctx.planned`.
 */
export interface UpdateRule {
  init(name: string, param: Tensor): ParamState;
  /** Host work this step's update needs, or null for none. */
  plan?(ctx: UpdateContext): UpdatePlan | null;
  update(ctx: UpdateContext): UpdateResult;
  /** Bytes of optimizer state for a parameter of this shape, computed without allocating. */
  stateBytes(shape: readonly number[]): number;
}

/** Which parameters weight decay applies to: every one (torch.optim) or ≥2-D ones (nanoGPT, OLMo). */
export type DecayFilter = 'all' | 'matrices';
