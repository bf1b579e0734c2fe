/**
 * Stage 0: is the study's batch a large one? McCandlish et al. (2018, "An empirical model of
 * large-batch training") model the steps S a batch B needs to reach a given loss as
 *   S(B) = S_min · (1 + B_noise / B),
 * so doubling a batch far below B_noise nearly halves the steps and doubling one far above it
 * saves almost none; B_noise is the critical batch (S = 2·S_min there). S is linear in 1/B, so
 * a least-squares line through (1/B, S) gives S_min (intercept) and S_min·B_noise (slope).
 *
 * The target is the highest final validation loss among the runs (every run reached it); each
 * run's steps to it are read off its validation curve (the crossing `soap-train compare` uses).
 * The critical batch grows as the loss falls, so it is measured at that target, not at the
 * study's final losses.
 */
import { firstCrossing } from '../../src/compare/index.js';
import { getPath, type RunRecord } from '../../src/run/read-run.js';

export interface CriticalBatchFit {
  s_min: number;
  /** In sequences, like the batch sizes. */
  b_noise: number;
  max_abs_residual: number;
}

/** The least-squares fit of S = S_min + S_min·B_noise/B; null when it does not describe a saturating curve. */
export function fitCriticalBatch(points: readonly { batch: number; steps: number }[]): CriticalBatchFit | null {
  if (new Set(points.map((p) => p.batch)).size < 2) return null;
  const xs = points.map((p) => 1 / p.batch);
  const mx = xs.reduce((s, x) => s + x, 0) / xs.length;
  const my = points.reduce((s, p) => s + p.steps, 0) / points.length;
  let sxx = 0;
  let sxy = 0;
  points.forEach((p, i) => {
    sxx += (xs[i] - mx) ** 2;
    sxy += (xs[i] - mx) * (p.steps - my);
  });
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  // Steps that do not fall with the batch, or a line through the origin or below: no finite
  // S_min, no critical batch to speak of.
  if (!(slope > 0) || !(intercept > 0)) return null;
  const residual = Math.max(...points.map((p, i) => Math.abs(p.steps - (intercept + slope * xs[i]))));
  return { s_min: intercept, b_noise: slope / intercept, max_abs_residual: residual };
}

export interface BatchRun {
  run: string;
  batch_size: number;
  tokens_per_step: number;
  status: string;
  final_val_loss: number | null;
  steps_to_target: number | null;
  tokens_to_target: number | null;
}

export interface BatchAnalysis {
  target_loss: number;
  runs: BatchRun[];
  /** Steps at the smaller batch over steps at the double one: 2 = perfect scaling, 1 = none. */
  doublings: { from: number; to: number; speedup: number }[];
  fit: CriticalBatchFit | null;
  /** The critical batch (B_noise) in sequences and tokens. */
  critical: { sequences: number; tokens: number } | null;
  /** The study's batch (stage 2's) against it. */
  study_batch: { sequences: number; tokens: number; over_critical: number | null };
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** The batch analysis from stage 0's runs; null without at least two completed runs. */
export function analyzeBatch(runs: readonly RunRecord[], studyBatch: { sequences: number; seqLen: number }): BatchAnalysis | null {
  const done = runs.filter((r) => r.status === 'completed' && r.finalValLoss !== null);
  if (done.length < 2) return null;
  const target = Math.max(...done.map((r) => r.finalValLoss!));
  const rows: BatchRun[] = [...runs]
    .map((r) => {
      const batch = num(getPath(r.config, 'train.batch_size')) ?? 0;
      const seqLen = num(getPath(r.config, 'train.seq_len')) ?? studyBatch.seqLen;
      const steps = r.status === 'completed' ? firstCrossing(r.evals, target) : null;
      return {
        run: r.name,
        batch_size: batch,
        tokens_per_step: batch * seqLen,
        status: r.status,
        final_val_loss: r.finalValLoss,
        steps_to_target: steps,
        tokens_to_target: steps === null ? null : steps * batch * seqLen,
      };
    })
    .sort((a, b) => a.batch_size - b.batch_size);
  const reached = rows.filter((r) => r.steps_to_target !== null);
  const doublings = reached.flatMap((r) => {
    const twice = reached.find((o) => o.batch_size === 2 * r.batch_size);
    return twice ? [{ from: r.batch_size, to: twice.batch_size, speedup: r.steps_to_target! / twice.steps_to_target! }] : [];
  });
  const fit = fitCriticalBatch(reached.map((r) => ({ batch: r.batch_size, steps: r.steps_to_target! })));
  const critical = fit ? { sequences: fit.b_noise, tokens: fit.b_noise * studyBatch.seqLen } : null;
  return {
    target_loss: target,
    runs: rows,
    doublings,
    fit,
    critical,
    study_batch: {
      sequences: studyBatch.sequences,
      tokens: studyBatch.sequences * studyBatch.seqLen,
      over_critical: fit ? studyBatch.sequences / fit.b_noise : null,
    },
  };
}
