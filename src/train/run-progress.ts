/**
 * The run's progress as one object: where the run is (step, tokens), its clocks, and the
 * running values its summary reports (last and best losses, bad steps in a row).
 *
 * The trainer mutates one `RunProgress`; a checkpoint saves it (`step`, `tokens_seen` and
 * `wall_clock_s` as meta.json's top-level fields, the rest under `progress`), a resumed run
 * starts from it, and `summarize` turns it into summary.json. Nothing is mapped by hand twice.
 */
import type { CheckpointMeta } from '../checkpoint/checkpoint.js';

export interface RunProgress {
  /** Optimizer steps taken. */
  step: number;
  /** Training tokens consumed (step × tokens per step). */
  tokens: number;
  /** Training wall-clock in seconds: evaluation and checkpoint writing excluded. */
  train_s: number;
  eval_s: number;
  checkpoint_s: number;
  last_train_loss: number | null;
  last_val_loss: number | null;
  best_val_loss: number | null;
  /** Step of the last evaluation, -1 before the first. */
  last_eval_step: number;
  /** Consecutive skipped (non-finite) steps; reset by a step that applies. */
  bad_steps_in_a_row: number;
}

/** The progress a run starts from: zero, or where its checkpoint left off. */
export function startingProgress(meta: CheckpointMeta | null): RunProgress {
  const p = meta?.progress;
  return {
    step: meta?.step ?? 0,
    tokens: meta?.tokens_seen ?? 0,
    train_s: meta?.wall_clock_s ?? 0,
    eval_s: p?.eval_s ?? 0,
    // Checkpoints written before these fields existed lack them: start counting from 0.
    checkpoint_s: p?.checkpoint_s ?? 0,
    last_train_loss: p?.last_train_loss ?? null,
    last_val_loss: p?.last_val_loss ?? null,
    best_val_loss: p?.best_val_loss ?? null,
    last_eval_step: p?.last_eval_step ?? -1,
    bad_steps_in_a_row: p?.bad_steps_in_a_row ?? 0,
  };
}

/** The part of `RunProgress` that meta.json keeps under `progress` (the rest is top-level). */
export function checkpointProgress(p: RunProgress): NonNullable<CheckpointMeta['progress']> {
  return {
    last_train_loss: p.last_train_loss,
    last_val_loss: p.last_val_loss,
    best_val_loss: p.best_val_loss,
    last_eval_step: p.last_eval_step,
    eval_s: p.eval_s,
    checkpoint_s: p.checkpoint_s,
    bad_steps_in_a_row: p.bad_steps_in_a_row,
  };
}

/** Records a validation loss (last and best). */
export function recordEval(p: RunProgress, loss: number, seconds: number): void {
  p.eval_s += seconds;
  p.last_eval_step = p.step;
  p.last_val_loss = loss;
  p.best_val_loss = p.best_val_loss === null ? loss : Math.min(p.best_val_loss, loss);
}

/** summary.json: how a run ended and what it reached. */
export interface RunSummary {
  /** `time_limit`: stopped with a checkpoint before `train.max_wall_s`; resume to continue. */
  status: 'completed' | 'interrupted' | 'time_limit' | 'failed';
  steps: number;
  tokens: number;
  final_train_loss: number | null;
  final_val_loss: number | null;
  best_val_loss: number | null;
  /** Training wall-clock in seconds (evaluation and checkpoint writing excluded). */
  wall_clock_s: number;
  eval_s: number;
  checkpoint_s: number;
  tokens_per_s: number;
  backend: string;
  optimizer: string;
  resumed_from_step: number | null;
  finished_at: string;
}

export function summarize(
  p: RunProgress,
  run: { status: RunSummary['status']; backend: string; optimizer: string; resumedFromStep: number | null },
): RunSummary {
  return {
    status: run.status,
    steps: p.step,
    tokens: p.tokens,
    final_train_loss: p.last_train_loss,
    final_val_loss: p.last_val_loss,
    best_val_loss: p.best_val_loss,
    wall_clock_s: round(p.train_s, 3),
    eval_s: round(p.eval_s, 3),
    checkpoint_s: round(p.checkpoint_s, 3),
    tokens_per_s: round(p.tokens / Math.max(p.train_s, 1e-9), 1),
    backend: run.backend,
    optimizer: run.optimizer,
    resumed_from_step: run.resumedFromStep,
    finished_at: new Date().toISOString(),
  };
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
