/**
 * The rows the charts plot, in long format (one row per run and point) so one Vega-Lite spec
 * draws any number of runs: loss points (train from metrics.jsonl, validation from eval.jsonl),
 * per-step scalars (learning rate, gradient norm) and the step-time split per run.
 */
import type { RunRecord } from '../run/read-run.js';
import type { StepTimeSplit } from './run-stats.js';

export type LossSeries = 'train' | 'validation';

export interface LossPoint {
  run: string;
  series: LossSeries;
  step: number;
  tokens: number;
  /** Training clock (evaluation and checkpoints excluded), so runs compare on training time. */
  seconds: number;
  loss: number;
}

export interface TrainPoint {
  run: string;
  step: number;
  lr: number;
  grad_norm: number;
}

export const STEP_PHASES = [
  { key: 'data_ms', label: 'data' },
  { key: 'fwd_bwd_ms', label: 'forward + backward' },
  { key: 'optim_ms', label: 'optimizer' },
  { key: 'refresh_ms', label: 'refresh' },
] as const;

export interface StepTimeRow {
  run: string;
  phase: (typeof STEP_PHASES)[number]['label'];
  /** Position of the phase in the stack (data first). */
  order: number;
  ms: number;
  /** ms / the run's whole step. */
  share: number;
}

export interface ChartData {
  /** Run labels in report order: the colour domain, so a run keeps its colour when others are hidden. */
  runs: string[];
  loss: LossPoint[];
  train: TrainPoint[];
  stepTime: StepTimeRow[];
}

// JSON has no NaN or Infinity: such points are left out of the curves.
const plottable = (v: number): boolean => Number.isFinite(v);

/**
 * Points per curve (one run's train loss, say) beyond which a curve is thinned. A chart is ~460 px
 * wide, so 2000 points are still several per pixel, while a long run's 10^4–10^5 rows would make
 * report.html tens of megabytes and its hover layer slow.
 */
export const MAX_CURVE_POINTS = 2000;

/**
 * At most `max` + 2 rows of a curve, in order: the rows are cut into consecutive buckets and each
 * keeps its rows of smallest and largest value (for each value given), plus the first and last
 * row. Unlike keeping every k-th row, this keeps a loss spike or a gradient-norm burst.
 */
export function thinCurve<T>(rows: readonly T[], values: readonly ((row: T) => number)[], max = MAX_CURVE_POINTS): T[] {
  if (rows.length <= max) return [...rows];
  const buckets = Math.max(1, Math.floor(max / (2 * values.length)));
  const size = Math.ceil(rows.length / buckets);
  const keep = new Set<number>([0, rows.length - 1]);
  for (let start = 0; start < rows.length; start += size) {
    const end = Math.min(rows.length, start + size);
    for (const value of values) {
      let lo = start;
      let hi = start;
      for (let i = start + 1; i < end; i++) {
        if (value(rows[i]) < value(rows[lo])) lo = i;
        if (value(rows[i]) > value(rows[hi])) hi = i;
      }
      keep.add(lo).add(hi);
    }
  }
  return [...keep].sort((a, b) => a - b).map((i) => rows[i]);
}

export function lossPoints(run: RunRecord, label: string): LossPoint[] {
  const train = run.metrics
    .filter((r) => plottable(r.loss))
    .map((r): LossPoint => ({ run: label, series: 'train', step: r.step, tokens: r.tokens, seconds: r.wall_s, loss: r.loss }));
  const validation = run.evals
    .filter((r) => plottable(r.val_loss))
    .map((r): LossPoint => ({ run: label, series: 'validation', step: r.step, tokens: r.tokens, seconds: r.wall_s, loss: r.val_loss }));
  const byLoss = [(p: LossPoint) => p.loss];
  return [...thinCurve(train, byLoss), ...thinCurve(validation, byLoss)];
}

export function trainPoints(run: RunRecord, label: string): TrainPoint[] {
  const points = run.metrics
    .filter((r) => plottable(r.lr) && plottable(r.grad_norm))
    .map((r) => ({ run: label, step: r.step, lr: r.lr, grad_norm: r.grad_norm }));
  return thinCurve(points, [(p) => p.lr, (p) => p.grad_norm]);
}

export function stepTimeRows(split: StepTimeSplit | null, label: string): StepTimeRow[] {
  if (!split || split.total_ms <= 0) return [];
  return STEP_PHASES.map((p, order) => ({ run: label, phase: p.label, order, ms: split[p.key], share: split[p.key] / split.total_ms }));
}

export function chartData(runs: readonly { run: RunRecord; label: string; stepTime: StepTimeSplit | null }[]): ChartData {
  return {
    runs: runs.map((r) => r.label),
    loss: runs.flatMap((r) => lossPoints(r.run, r.label)),
    train: runs.flatMap((r) => trainPoints(r.run, r.label)),
    stepTime: runs.flatMap((r) => stepTimeRows(r.stepTime, r.label)),
  };
}
