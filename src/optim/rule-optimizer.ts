/**
 * Runs an `UpdateRule` over named variables as a `tf.Optimizer`: `applyGradients({name: grad})`
 * and `minimize(f)` work in any tfjs code, and the trainer uses the same object.
 */
import { tf } from '../tf.js';
import { jobOf, runHostJob, type HostJob, type HostResult } from './linalg/host-jobs.js';
import type { LinalgPool, PoolProgress } from './linalg/pool.js';
import type { DecayFilter, ParamState, PlannedWork, UpdateContext, UpdatePlan, UpdateRule } from './types.js';

type Tensor = tf.Tensor;
type Timer = UpdateContext['time'];

interface StepItem {
  name: string;
  grad: Tensor;
  variable: tf.Variable;
  decay: boolean;
}

/** A parameter's plan with its requests as host jobs (in request-key order). */
interface Planned {
  jobs: Array<[string, HostJob]>;
  carry: Record<string, Tensor>;
}

export interface AsyncStepOptions {
  /** Where the step's host linear algebra runs. */
  pool: LinalgPool;
  signal?: AbortSignal;
  /** Decompositions done so far in this step, with an ETA. */
  onProgress?(p: PoolProgress): void;
}

/**
 * The step's signal aborted between two parameters' updates: `updated` of `total` parameters
 * (and their optimizer state) already hold this step's values, the others the previous step's.
 * The in-memory state is then no step's state: it must not be checkpointed (the newest
 * checkpoint on disk is what a resume continues from).
 */
export class PartialStepError extends Error {
  constructor(
    readonly updated: number,
    readonly total: number,
    readonly reason: unknown,
  ) {
    super(`step abandoned after updating ${updated} of ${total} parameters`);
    this.name = 'PartialStepError';
  }
}

/**
 * Test hook, never set by users: block this many milliseconds after each parameter's update in
 * `applyGradientsAsync`, as slow synchronous device work would, so a test can stop a run in the
 * middle of a step's updates.
 */
const TEST_UPDATE_DELAY_MS = Number(process.env.SOAP_TRAIN_TEST_UPDATE_DELAY_MS ?? 0);

/**
 * Lets the event loop run (signal handlers, timers, progress) between two pieces of synchronous
 * device work: on wasm one parameter's update at 360m width is seconds of matMuls, a whole
 * step's tens of seconds.
 */
function yieldTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

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

  /** Whether the rule plans host linear algebra (SOAP, Shampoo): then a worker pool is worth starting early. */
  get usesHostWork(): boolean {
    return this.rule.plan !== undefined;
  }

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
   * Updates each named variable in place, one parameter after the other; host linear algebra
   * runs inline on this thread. Gradients are not disposed (the caller owns them); a name that
   * is not a registered variable is an error rather than a silent no-op.
   */
  override applyGradients(variableGradients: Parameters<tf.Optimizer['applyGradients']>[0]): void {
    const { times, time } = phaseTimer();
    for (const item of this.items(variableGradients)) {
      const planned = this.plan(item, time);
      try {
        const results = planned ? time('refresh', () => planned.jobs.map(([, job]) => runHostJob(job))) : [];
        this.update(item, time, planned && { results: keyed(planned.jobs, results), carry: planned.carry });
      } finally {
        if (planned) disposeCarry(planned.carry, this.states.get(item.name));
      }
    }
    this.lastPhaseTimes = times;
    this.incrementIterations();
  }

  /**
   * The same step with every parameter's host linear algebra computed together in `pool`
   * (largest first, in parallel, off this thread, so signals and progress keep flowing). The
   * results equal `applyGradients`' bit for bit. The event loop runs between parameters.
   * Aborting `signal` while the plans are made or the pool works rejects with its reason and
   * leaves parameters and state as they were; aborting it during the updates rejects with a
   * `PartialStepError` (some parameters already updated) at the next parameter boundary.
   */
  async applyGradientsAsync(variableGradients: Record<string, Tensor>, opts: AsyncStepOptions): Promise<void> {
    const { times, time } = phaseTimer();
    const items = this.items(variableGradients);
    const plans: Array<Planned | null> = [];
    try {
      for (const item of items) {
        plans.push(this.plan(item, time));
        // Between parameters the event loop runs (signals, progress); an abort here is clean:
        // nothing of this step has been applied yet.
        await yieldTurn();
        opts.signal?.throwIfAborted();
      }
      const jobs = plans.flatMap((p) => (p ? p.jobs.map(([, job]) => job) : []));
      const start = performance.now();
      const results = await opts.pool.run(jobs, { signal: opts.signal, onProgress: opts.onProgress });
      times.refresh = (times.refresh ?? 0) + performance.now() - start;
      let next = 0;
      for (let i = 0; i < items.length; i++) {
        const p = plans[i];
        const mine = p ? results.slice(next, (next += p.jobs.length)) : [];
        this.update(items[i], time, p && { results: keyed(p.jobs, mine), carry: p.carry });
        if (TEST_UPDATE_DELAY_MS > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, TEST_UPDATE_DELAY_MS);
        if (i + 1 < items.length) {
          await yieldTurn();
          if (opts.signal?.aborted) throw new PartialStepError(i + 1, items.length, opts.signal.reason);
        }
      }
    } finally {
      plans.forEach((p, i) => p && disposeCarry(p.carry, this.states.get(items[i].name)));
    }
    this.lastPhaseTimes = times;
    this.incrementIterations();
  }

  private items(variableGradients: Parameters<tf.Optimizer['applyGradients']>[0]): StepItem[] {
    const grads: Array<[string, Tensor]> = Array.isArray(variableGradients)
      ? variableGradients.map((g): [string, Tensor] => [g.name, g.tensor])
      : Object.entries(variableGradients);
    const variables = tf.engine().registeredVariables;
    const out: StepItem[] = [];
    for (const [name, grad] of grads) {
      const variable = variables[name];
      if (variable === undefined) throw new Error(`applyGradients: no variable named '${name}' is registered`);
      if (grad == null) continue;
      if (!this.states.has(name)) this.states.set(name, this.rule.init(name, variable));
      out.push({ name, grad, variable, decay: this.decay === 'all' || variable.rank >= 2 });
    }
    return out;
  }

  private context(item: StepItem, time: Timer, planned?: PlannedWork): UpdateContext {
    const state = this.states.get(item.name)!;
    return { name: item.name, grad: item.grad, param: item.variable, state, lr: this.learningRate, decay: item.decay, time, planned };
  }

  /** Runs the rule's `plan` and turns its requests into host jobs (inputs read, then freed unless carried). */
  private plan(item: StepItem, time: Timer): Planned | null {
    if (!this.rule.plan) return null;
    const out: { plan: UpdatePlan | null } = { plan: null };
    tf.tidy(() => {
      const p = (out.plan = this.rule.plan!(this.context(item, time)));
      // Kept: what the plan returns (tidy frees everything else it made).
      return p ? [...Object.values(p.carry), ...Object.values(p.requests).map((r) => r.input)] : [];
    });
    const plan = out.plan;
    if (plan === null) return null;
    const carried = new Set(Object.values(plan.carry));
    const jobs = Object.entries(plan.requests).map(([key, request]): [string, HostJob] => {
      const job = jobOf(request, request.input.dataSync() as Float32Array);
      if (!carried.has(request.input)) request.input.dispose();
      return [key, job];
    });
    return { jobs, carry: plan.carry };
  }

  private update(item: StepItem, time: Timer, planned: PlannedWork | null): void {
    const old = this.states.get(item.name)!;
    const result = tf.tidy(() => {
      const r = this.rule.update(this.context(item, time, planned ?? undefined));
      return { param: r.param, tensors: r.state.tensors, counters: r.state.counters };
    });
    if (result.param !== item.variable) {
      item.variable.assign(result.param);
      result.param.dispose();
    }
    disposeReplaced(old.tensors, result.tensors);
    this.states.set(item.name, { tensors: result.tensors, counters: result.counters });
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

function phaseTimer(): { times: PhaseTimes; time: Timer } {
  const times: PhaseTimes = {};
  const time = <T>(phase: string, fn: () => T): T => {
    const start = performance.now();
    try {
      return fn();
    } finally {
      times[phase] = (times[phase] ?? 0) + performance.now() - start;
    }
  };
  return { times, time };
}

function keyed(jobs: Array<[string, HostJob]>, results: HostResult[]): PlannedWork['results'] {
  return Object.fromEntries(jobs.map(([key], i) => [key, results[i]]));
}

/** Frees a plan's carried tensors, except those the parameter's new state kept. */
function disposeCarry(carry: Record<string, Tensor>, state: ParamState | undefined): void {
  const kept = new Set(Object.values(state?.tensors ?? {}));
  for (const t of Object.values(carry)) if (!kept.has(t) && !t.isDisposed) t.dispose();
}

function disposeReplaced(old: Record<string, Tensor>, next: Record<string, Tensor>): void {
  const kept = new Set(Object.values(next));
  for (const t of Object.values(old)) if (!kept.has(t)) t.dispose();
}
