/**
 * The arithmetic of `npm run bench`: percentiles, and one case's per-step times reduced to the
 * numbers the table shows (median step without refresh steps, mean step with them, the per-step
 * split, tokens/s, model FLOP utilisation). Pure functions, no I/O, so they are unit-tested.
 */

/** One training step's wall time and its split, in ms (as trainStep's StepTimes, plus the total). */
export interface StepRecord {
  /** 1-based step number. */
  step: number;
  total_ms: number;
  data_ms: number;
  fwd_bwd_ms: number;
  /** The optimizer's whole update, refresh included (trainStep's optim_ms). */
  optim_ms: number;
  /** Eigenbasis / inverse-root refresh inside the optimizer: part of optim_ms. */
  refresh_ms: number;
}

/**
 * A step counts as a refresh step when its refresh time exceeds this. Every optimizer step
 * reports a few µs of "refresh" (the worker pool's bookkeeping when no job is queued), and a real
 * refresh, even of the tiny model's 128×128 factors, takes tens of ms.
 */
export const REFRESH_MIN_MS = 1;

/** p-th percentile (0–100) with linear interpolation between order statistics (numpy's default). */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = ((s.length - 1) * p) / 100;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Median and spread of a sample. */
export interface Spread {
  median: number;
  p10: number;
  p90: number;
  min: number;
  max: number;
  n: number;
}

export function spread(xs: readonly number[]): Spread {
  return { median: median(xs), p10: percentile(xs, 10), p90: percentile(xs, 90), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}

/** What a case's measured window reduces to. Times in ms per step. */
export interface CaseSummary {
  /** Steps in the window (after warm-up). */
  measured_steps: number;
  /** Steps in the window that ran a refresh (SOAP eigenbases, Shampoo roots). */
  refresh_steps: number;
  /** Step time over the window's steps without a refresh: median and spread. */
  step_ms: Spread;
  /** Mean step time over every step in the window, refreshes included: the wall-clock rate. */
  step_ms_mean: number;
  /** Mean per step over the window; data + fwd_bwd + optim + refresh + other = step_ms_mean. */
  split_ms: { data: number; fwd_bwd: number; optim: number; refresh: number; other: number };
  /** Median optimizer time (refresh excluded) over steps without a refresh. */
  optim_ms_median: number;
  /** Mean optimizer time per step, refreshes amortised in (optim_ms incl. refresh). */
  optim_ms_mean: number;
  /** Mean time of one refresh (0 when none ran in the window). */
  refresh_ms_each: number;
  /** Tokens per step ÷ median step (spread from the step's p90 / p10). */
  tokens_per_s: { median: number; p10: number; p90: number };
  /** Tokens per step ÷ mean step: the honest rate with refreshes. */
  tokens_per_s_mean: number;
}

/**
 * Reduces the steps numbered `from`..`to` (1-based, inclusive). The median is over steps
 * without a refresh (a steady-state step); the mean is over all of them (what a run's clock
 * sees). With no refresh-free step in the window, the median falls back to all steps.
 */
export function summarizeCase(steps: readonly StepRecord[], window: { from: number; to: number }, tokensPerStep: number): CaseSummary {
  const measured = steps.filter((s) => s.step >= window.from && s.step <= window.to);
  if (measured.length === 0) throw new Error(`no steps in the window ${window.from}–${window.to} (got ${steps.length} steps)`);
  const refreshing = measured.filter((s) => s.refresh_ms > REFRESH_MIN_MS);
  const plain = refreshing.length < measured.length ? measured.filter((s) => s.refresh_ms <= REFRESH_MIN_MS) : measured;
  const stepSpread = spread(plain.map((s) => s.total_ms));
  const avg = (f: (s: StepRecord) => number) => mean(measured.map(f));
  const stepMean = avg((s) => s.total_ms);
  const data = avg((s) => s.data_ms);
  const fwdBwd = avg((s) => s.fwd_bwd_ms);
  const refresh = avg((s) => s.refresh_ms);
  const optim = avg((s) => s.optim_ms - s.refresh_ms);
  const rate = (ms: number) => tokensPerStep / (ms / 1000);
  return {
    measured_steps: measured.length,
    refresh_steps: refreshing.length,
    step_ms: stepSpread,
    step_ms_mean: stepMean,
    split_ms: { data, fwd_bwd: fwdBwd, optim, refresh, other: stepMean - data - fwdBwd - optim - refresh },
    optim_ms_median: median(plain.map((s) => s.optim_ms - s.refresh_ms)),
    optim_ms_mean: optim + refresh,
    refresh_ms_each: refreshing.length ? mean(refreshing.map((s) => s.refresh_ms)) : 0,
    tokens_per_s: { median: rate(stepSpread.median), p10: rate(stepSpread.p90), p90: rate(stepSpread.p10) },
    tokens_per_s_mean: rate(stepMean),
  };
}

/** a ÷ b, or null when either is missing or b is not positive. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  return a == null || b == null || !(b > 0) || !Number.isFinite(a) ? null : a / b;
}

/** Median GFLOP/s of repeated timings (ms) of a product of `flops`, with the spread. */
export function gflopsOf(flops: number, timesMs: readonly number[]): { median: number; min: number; max: number } {
  const g = timesMs.map((ms) => flops / (ms * 1e6));
  return { median: median(g), min: Math.min(...g), max: Math.max(...g) };
}
