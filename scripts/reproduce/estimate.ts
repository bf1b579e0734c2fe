/**
 * How long the study's runs take: an estimate per run from its config (for `--dry-run` and the
 * first ETA), corrected while the study runs by how fast the finished runs actually were.
 *
 * A run costs
 *   overhead + steps · tokens_per_step · train_s_per_token · size · factor(optimizer, f)
 *            + evaluations · eval_tokens · eval_s_per_token · size
 * where `size` is the model's training FLOPs per token relative to the calibration model
 * (floored: tfjs's per-op overhead dominates very small models), and
 *   factor(optimizer, f) = 1 + overhead(optimizer) + refresh(optimizer) / f
 * for a preconditioner refreshed every f steps (1 for AdamW).
 */
import type { ExperimentConfig } from '../../src/config/schema.js';
import { flopsPerToken, type ModelShape } from '../../src/model/params.js';

export interface CostModel {
  /** Seconds per training token of AdamW on the calibration model. */
  trainSecondsPerToken: number;
  /** Seconds per validation token (forward only). */
  evalSecondsPerToken: number;
  /** Process start, backend, data, first-step set-up: seconds per run. */
  runOverheadS: number;
  /** Per optimizer: extra step time as a fraction of AdamW's, and the refresh's at f = 1. */
  optimizers: Record<string, { overhead: number; refresh: number }>;
  calibrationModel: ModelShape;
  calibrationSeqLen: number;
  /** The smallest `size` used (see the module comment). */
  minSize: number;
}

/**
 * Measured 2026-12-02 in the study itself (commit 27fb172's code: the model's products in
 * OpenBLAS on both cores; 2-core AMD EPYC, one run at a time, reproduce/base.yaml's model,
 * d_model 128, 2 layers, 16 × 128 tokens per step): AdamW 0.134 s/step; SOAP 0.167 s/step at
 * f = 10 and 0.239 at f = 1 (1.244× and 1.782× AdamW); Shampoo 0.195 and 0.331 (1.453×, 2.474×);
 * one evaluation of 8 batches 0.33 s; about 5 s per run outside the training clock (start-up,
 * first step). The two factors per optimizer solve 1 + overhead + refresh/f for the two
 * measured frequencies.
 */
export const CALIBRATION: CostModel = {
  trainSecondsPerToken: 0.134 / 2048,
  evalSecondsPerToken: 0.33 / (8 * 16 * 128),
  runOverheadS: 5,
  optimizers: {
    adamw: { overhead: 0, refresh: 0 },
    soap: { overhead: 0.184, refresh: 0.598 },
    shampoo: { overhead: 0.34, refresh: 1.134 },
  },
  calibrationModel: { vocab_size: 256, d_model: 128, n_layers: 2, n_heads: 4, mlp_hidden: 512 },
  calibrationSeqLen: 128,
  minSize: 0.15,
};

/** Step-time factor of an optimizer relative to AdamW (unknown optimizers: as SOAP). */
export function optimizerFactor(type: string, frequency: number | null, model: CostModel = CALIBRATION): number {
  const o = model.optimizers[type] ?? model.optimizers.soap;
  return 1 + o.overhead + (frequency && frequency > 0 ? o.refresh / frequency : 0);
}

/** Evaluations a run makes: every eval_interval steps before the end, and one at the end. */
export function evaluationCount(steps: number, evalInterval: number): number {
  return evalInterval > 0 ? Math.floor((steps - 1) / evalInterval) + 1 : 1;
}

/** Estimated wall seconds of one run of `config`. */
export function estimateRunSeconds(config: ExperimentConfig, model: CostModel = CALIBRATION): number {
  const t = config.train;
  const size = Math.max(model.minSize, flopsPerToken(config.model, t.seq_len) / flopsPerToken(model.calibrationModel, model.calibrationSeqLen));
  const frequency = (config.optimizer as { precondition_frequency?: number }).precondition_frequency ?? null;
  const train = t.steps * t.batch_size * t.seq_len * model.trainSecondsPerToken * size * optimizerFactor(config.optimizer.type, frequency, model);
  const micro = t.micro_batch_size ?? t.batch_size;
  const evals = evaluationCount(t.steps, t.eval_interval) * t.eval_steps * micro * t.seq_len * model.evalSecondsPerToken * size;
  return model.runOverheadS + train + evals;
}

/**
 * The study's clock: which runs remain with their estimates, and how fast the runs finished in
 * this invocation were against theirs. ETA = remaining estimates × (actual ÷ estimated so far)
 * ÷ runs at once.
 */
export class StudyClock {
  private readonly remaining = new Map<string, number>();
  private actual = 0;
  private estimated = 0;
  private finishedCount = 0;
  private total = 0;

  constructor(private readonly jobs: number) {}

  /** A run the study will make (or skip), under a key unique in the study. */
  plan(key: string, estimateS: number): void {
    if (!this.remaining.has(key)) this.total++;
    this.remaining.set(key, estimateS);
  }

  /** A run is done: measured seconds when it ran now, null when it was skipped (done before). */
  finish(key: string, seconds: number | null): void {
    const estimate = this.remaining.get(key);
    if (estimate === undefined) return;
    this.remaining.delete(key);
    this.finishedCount++;
    if (seconds !== null && seconds > 0) {
      this.actual += seconds;
      this.estimated += estimate;
    }
  }

  /** Actual over estimated seconds of the runs measured so far (1 before the first). */
  speed(): number {
    return this.estimated > 0 ? this.actual / this.estimated : 1;
  }

  remainingSeconds(): number {
    let sum = 0;
    for (const s of this.remaining.values()) sum += s;
    return (sum * this.speed()) / Math.max(1, this.jobs);
  }

  get done(): number {
    return this.finishedCount;
  }

  get planned(): number {
    return this.total;
  }
}

/** 42 → "42 s", 750 → "12.5 min", 4000 → "1 h 07 min". */
export function formatDuration(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(1)} min`;
  const minutes = Math.round(seconds / 60);
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}
