/**
 * Runs an `UpdateRule` over named variables as a `tf.Optimizer`: `applyGradients({name: grad})`
 * and `minimize(f)` work in any tfjs code, and the trainer uses the same object.
 */
import { tf } from '../tf.js';
import type { DecayFilter, ParamState, UpdateRule } from './types.js';

type Tensor = tf.Tensor;

export interface RuleOptimizerOptions {
  /** Registry name, e.g. `soap`. */
  type: string;
  lr: number;
  decay: DecayFilter;
  /** The validated config this optimizer was built from (returned by getConfig()). */
  config: Record<string, unknown>;
}

/** Time spent in named phases during the last `applyGradients` call, in milliseconds. */
export type PhaseTimes = Record<string, number>;

export class RuleOptimizer extends tf.Optimizer {
  /** Learning rate of the next step; the trainer sets it from the schedule before each step. */
  learningRate: number;
  readonly type: string;
  private readonly rule: UpdateRule;
  private readonly decay: DecayFilter;
  private readonly config: Record<string, unknown>;
  private readonly states = new Map<string, ParamState>();
  /** Phase timings of the last step (e.g. `{refresh: 12.5}`); empty when nothing was timed. */
  lastPhaseTimes: PhaseTimes = {};

  constructor(rule: UpdateRule, options: RuleOptimizerOptions) {
    super();
    this.rule = rule;
    this.type = options.type;
    this.learningRate = options.lr;
    this.decay = options.decay;
    this.config = options.config;
  }

  override getClassName(): string {
    return `soap-train/${this.type}`;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return this.config as tf.serialization.ConfigDict;
  }

  /**
   * Updates each named variable in place. Gradients are not disposed (the caller owns them);
   * a name that is not a registered variable is an error rather than a silent no-op.
   */
  override applyGradients(variableGradients: Parameters<tf.Optimizer["applyGradients"]>[0]): void {
    const grads: Array<[string, Tensor]> = Array.isArray(variableGradients)
      ? variableGradients.map((g): [string, Tensor] => [g.name, g.tensor])
      : Object.entries(variableGradients);
    const variables = tf.engine().registeredVariables;
    const times: PhaseTimes = {};
    const time = <T>(phase: string, fn: () => T): T => {
      const start = performance.now();
      try {
        return fn();
      } finally {
        times[phase] = (times[phase] ?? 0) + performance.now() - start;
      }
    };
    for (const [name, grad] of grads) {
      const variable = variables[name];
      if (variable === undefined) {
        throw new Error(`applyGradients: no variable named '${name}' is registered`);
      }
      if (grad == null) continue;
      const old = this.states.get(name) ?? this.rule.init(name, variable);
      const decay = this.decay === 'all' || variable.rank >= 2;
      const result = tf.tidy(() => {
        const r = this.rule.update({ name, grad, param: variable, state: old, lr: this.learningRate, decay, time });
        return { param: r.param, tensors: r.state.tensors, counters: r.state.counters };
      });
      if (result.param !== variable) {
        variable.assign(result.param);
        result.param.dispose();
      }
      disposeReplaced(old.tensors, result.tensors);
      this.states.set(name, { tensors: result.tensors, counters: result.counters });
    }
    this.lastPhaseTimes = times;
    this.incrementIterations();
  }

  /** The state of one parameter (undefined before its first step). */
  stateOf(name: string): ParamState | undefined {
    return this.states.get(name);
  }

  /** Every parameter's state, keyed by parameter name; for checkpoints. */
  stateEntries(): Array<[string, ParamState]> {
    return [...this.states.entries()];
  }

  /** Replaces the state of one parameter (e.g. from a checkpoint); takes ownership of the tensors. */
  setState(name: string, state: ParamState): void {
    const old = this.states.get(name);
    if (old) disposeReplaced(old.tensors, state.tensors);
    this.states.set(name, state);
  }

  /** Bytes of optimizer state for a parameter of this shape, without allocating anything. */
  stateBytes(shape: readonly number[]): number {
    return this.rule.stateBytes(shape);
  }

  override dispose(): void {
    for (const state of this.states.values()) {
      for (const t of Object.values(state.tensors)) t.dispose();
    }
    this.states.clear();
    super.dispose();
  }
}

function disposeReplaced(old: Record<string, Tensor>, next: Record<string, Tensor>): void {
  const kept = new Set(Object.values(next));
  for (const t of Object.values(old)) if (!kept.has(t)) t.dispose();
}
