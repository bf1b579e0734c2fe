/**
 * The numbers of a report's run table, computed from a run's logged rows (not from summary.json,
 * which a run still in progress does not have, or has from an earlier attempt): final and best
 * losses, tokens per second on the training clock, and where a step's time goes.
 */
import type { MetricsRow, RunRecord, RunStatus } from '../run/read-run.js';

/** Milliseconds per optimizer step, averaged over every logged step; the four parts add up to the step. */
export interface StepTimeSplit {
  /** Steps the averages cover. */
  steps: number;
  data_ms: number;
  fwd_bwd_ms: number;
  /** The optimizer step without the preconditioner refresh (optim_ms − refresh_ms). */
  optim_ms: number;
  /** SOAP's eigenbasis / Shampoo's root refresh (part of the optimizer step in the raw rows). */
  refresh_ms: number;
  total_ms: number;
}

export interface RunStats {
  /** Unique display name (the run directory's basename unless two runs share one). */
  label: string;
  dir: string;
  optimizer: string;
  status: RunStatus;
  lastStep: number;
  plannedSteps: number;
  /** Tokens trained at lastStep. */
  tokens: number;
  /** Training clock at lastStep (evaluation and checkpoints excluded). */
  trainSeconds: number;
  /** Train loss of the last logged metrics row with a finite loss. */
  finalTrainLoss: number | null;
  /** Validation loss of the last evaluation. */
  finalValLoss: number | null;
  bestValLoss: { loss: number; step: number } | null;
  /** tokens / trainSeconds. */
  tokensPerSecond: number | null;
  stepTime: StepTimeSplit | null;
  /** refresh_ms / total_ms of stepTime. */
  refreshShare: number | null;
}

/** Sums of one row's timing: the interval since the previous row when logged, else the row's own step. */
function rowTiming(row: MetricsRow): { steps: number; data: number; fwdBwd: number; optim: number; refresh: number } {
  const t = row.interval ?? { steps: 1, ...row.time_ms };
  return { steps: t.steps, data: t.data_ms, fwdBwd: t.fwd_bwd_ms, optim: t.optim_ms, refresh: t.refresh_ms };
}

/**
 * The average step split into data, forward+backward, optimizer and refresh. Interval sums are
 * used (not the logged step's own time_ms) so every step counts, not only every log_interval-th.
 */
export function stepTimeSplit(metrics: readonly MetricsRow[]): StepTimeSplit | null {
  let steps = 0;
  let data = 0;
  let fwdBwd = 0;
  let optim = 0;
  let refresh = 0;
  for (const row of metrics) {
    const t = rowTiming(row);
    if (![t.steps, t.data, t.fwdBwd, t.optim, t.refresh].every(Number.isFinite)) continue;
    steps += t.steps;
    data += t.data;
    fwdBwd += t.fwdBwd;
    optim += t.optim;
    refresh += t.refresh;
  }
  if (steps <= 0) return null;
  const split = {
    steps,
    data_ms: data / steps,
    fwd_bwd_ms: fwdBwd / steps,
    // Rounding in the rows can make refresh exceed optim by a hundredth of a millisecond.
    optim_ms: Math.max(0, optim - refresh) / steps,
    refresh_ms: refresh / steps,
  };
  return { ...split, total_ms: split.data_ms + split.fwd_bwd_ms + split.optim_ms + split.refresh_ms };
}

export function runStats(run: RunRecord, label: string): RunStats {
  const lastMetrics = run.metrics.at(-1);
  const lastEval = run.evals.at(-1);
  const tokensAtLast = [lastMetrics, lastEval].filter((r) => r !== undefined && r.step === run.lastStep).map((r) => r!.tokens);
  const tokens = tokensAtLast.length > 0 ? Math.max(...tokensAtLast) : 0;
  const finiteTrain = run.metrics.filter((r) => Number.isFinite(r.loss));
  const finiteVal = run.evals.filter((r) => Number.isFinite(r.val_loss));
  const best = finiteVal.reduce<{ loss: number; step: number } | null>(
    (acc, r) => (acc === null || r.val_loss < acc.loss ? { loss: r.val_loss, step: r.step } : acc),
    null,
  );
  const stepTime = stepTimeSplit(run.metrics);
  return {
    label,
    dir: run.dir,
    optimizer: run.optimizer,
    status: run.status,
    lastStep: run.lastStep,
    plannedSteps: run.plannedSteps,
    tokens,
    trainSeconds: run.trainSeconds,
    finalTrainLoss: finiteTrain.at(-1)?.loss ?? null,
    finalValLoss: finiteVal.at(-1)?.val_loss ?? null,
    bestValLoss: best,
    tokensPerSecond: run.trainSeconds > 0 ? tokens / run.trainSeconds : null,
    stepTime,
    refreshShare: stepTime && stepTime.total_ms > 0 ? stepTime.refresh_ms / stepTime.total_ms : null,
  };
}
