/**
 * The headline: per seed, `compareRuns` (the paper's metric, as `soap-train compare` computes
 * it) with that seed's AdamW full-budget run as the baseline and that seed's SOAP and Shampoo
 * families as the runs; then, per optimizer, the spread of its ratios over the seeds.
 *
 * Each seed is its own comparison (AdamW's target moves with the seed too), so the spread is
 * that of the ratios the paper reports, not of the losses.
 */
import { compareRuns, type CompareBaseline, type CompareResult, type CompareRow, type PowerLawFit } from '../../src/compare/index.js';
import { getPath, type RunRecord } from '../../src/run/read-run.js';

/** Summary statistics of one quantity over seeds. */
export interface Spread {
  n: number;
  mean: number | null;
  /** Sample standard deviation (n − 1 in the denominator); null below 2 values. */
  std: number | null;
  min: number | null;
  max: number | null;
  values: { seed: number; value: number }[];
}

export function spread(values: readonly { seed: number; value: number | null }[]): Spread {
  const kept = values.filter((v): v is { seed: number; value: number } => v.value !== null && Number.isFinite(v.value));
  const n = kept.length;
  if (n === 0) return { n, mean: null, std: null, min: null, max: null, values: [] };
  const mean = kept.reduce((s, v) => s + v.value, 0) / n;
  const std = n >= 2 ? Math.sqrt(kept.reduce((s, v) => s + (v.value - mean) ** 2, 0) / (n - 1)) : null;
  return { n, mean, std, min: Math.min(...kept.map((v) => v.value)), max: Math.max(...kept.map((v) => v.value)), values: kept };
}

/** One optimizer's result at one seed. */
export interface SeedOutcome {
  runs: string[];
  /** 'fit' through the family's final losses, or 'crossing' of the full-budget run's curve. */
  method: 'fit' | 'crossing' | null;
  steps_to_target: number | null;
  wall_s_to_target: number | null;
  step_ratio: number | null;
  wall_ratio: number | null;
  fit: PowerLawFit | null;
  /** Final validation loss of the family's full-budget run. */
  final_val_loss: number | null;
  note: string | null;
}

export interface SeedCompare {
  seed: number;
  baseline: CompareBaseline;
  optimizers: Record<string, SeedOutcome>;
  /** compareRuns' whole result, as `soap-train compare --json` writes it. */
  compare: CompareResult;
}

export interface HeadlineSummary {
  step_ratio: Spread;
  wall_ratio: Spread;
  steps_to_target: Spread;
  final_val_loss: Spread;
  /** Largest |residual| of the fits over the seeds (null when no seed had a fit). */
  max_abs_residual: number | null;
  methods: string[];
}

export interface Headline {
  seeds: SeedCompare[];
  /** AdamW's own numbers over the seeds: the targets and its training clock. */
  adamw: { final_val_loss: Spread; wall_s: Spread; steps: number | null };
  summary: Record<string, HeadlineSummary>;
  notes: string[];
}

export function seedOf(run: RunRecord): number {
  const seed = getPath(run.config, 'train.seed');
  return typeof seed === 'number' ? seed : 0;
}

const longest = (runs: readonly RunRecord[]): RunRecord | undefined => runs.reduce<RunRecord | undefined>((a, r) => (!a || r.plannedSteps > a.plannedSteps ? r : a), undefined);

/** The row compareRuns gave the optimizer: its fit, else the crossing of its longest run. */
function outcomeOf(result: CompareResult, optimizer: string, family: readonly RunRecord[]): SeedOutcome {
  const rows = result.results.filter((r) => r.optimizer === optimizer);
  const full = longest(family);
  const finalLoss = full?.finalValLoss ?? null;
  const fit = rows.find((r) => r.method === 'fit');
  const chosen: CompareRow | undefined = fit ?? rows.find((r) => full !== undefined && r.runs.includes(full.name));
  if (!chosen) return { runs: family.map((r) => r.name), method: null, steps_to_target: null, wall_s_to_target: null, step_ratio: null, wall_ratio: null, fit: null, final_val_loss: finalLoss, note: 'no comparable run' };
  return {
    runs: chosen.runs,
    method: chosen.method,
    steps_to_target: chosen.steps_to_target,
    wall_s_to_target: chosen.wall_s_to_target,
    step_ratio: chosen.step_ratio,
    wall_ratio: chosen.wall_ratio,
    fit: chosen.fit,
    final_val_loss: finalLoss,
    note: chosen.note,
  };
}

/**
 * The headline from the runs of stages 2 and 4 (AdamW full-budget runs and the families, any
 * seeds). A seed whose AdamW run has not completed has no target yet and is left out (noted).
 */
export function computeHeadline(runs: readonly RunRecord[], optimizers: readonly string[]): Headline {
  const notes: string[] = [];
  const seeds = [...new Set(runs.map(seedOf))].sort((a, b) => a - b);
  const compared: SeedCompare[] = [];
  for (const seed of seeds) {
    const mine = runs.filter((r) => seedOf(r) === seed);
    const baseline = longest(mine.filter((r) => r.optimizer === 'adamw'));
    if (!baseline || baseline.status !== 'completed' || baseline.finalValLoss === null) {
      notes.push(`seed ${seed}: ${baseline ? `AdamW run ${baseline.name} is ${baseline.status.replace('_', ' ')}` : 'no AdamW run'}, so this seed has no target and is left out`);
      continue;
    }
    const family = mine.filter((r) => r.optimizer !== 'adamw');
    const compare = compareRuns(baseline, family);
    const outcomes = Object.fromEntries(optimizers.map((o) => [o, outcomeOf(compare, o, family.filter((r) => r.optimizer === o))]));
    compared.push({ seed, baseline: compare.baseline, optimizers: outcomes, compare });
  }
  const summary: Record<string, HeadlineSummary> = {};
  for (const o of optimizers) {
    const per = compared.map((c) => ({ seed: c.seed, outcome: c.optimizers[o] }));
    const residuals = per.map((p) => p.outcome.fit?.max_abs_residual).filter((v): v is number => v !== undefined);
    summary[o] = {
      step_ratio: spread(per.map((p) => ({ seed: p.seed, value: p.outcome.step_ratio }))),
      wall_ratio: spread(per.map((p) => ({ seed: p.seed, value: p.outcome.wall_ratio }))),
      steps_to_target: spread(per.map((p) => ({ seed: p.seed, value: p.outcome.steps_to_target }))),
      final_val_loss: spread(per.map((p) => ({ seed: p.seed, value: p.outcome.final_val_loss }))),
      max_abs_residual: residuals.length > 0 ? Math.max(...residuals) : null,
      methods: [...new Set(per.map((p) => p.outcome.method ?? 'none'))],
    };
    for (const p of per) {
      if (p.outcome.method !== 'fit') notes.push(`seed ${p.seed}, ${o}: ${p.outcome.method ?? 'no result'}${p.outcome.note ? ` (${p.outcome.note})` : ''}`);
    }
  }
  return {
    seeds: compared,
    adamw: {
      final_val_loss: spread(compared.map((c) => ({ seed: c.seed, value: c.baseline.target_loss }))),
      wall_s: spread(compared.map((c) => ({ seed: c.seed, value: c.baseline.wall_s }))),
      steps: compared[0]?.baseline.steps ?? null,
    },
    summary,
    notes,
  };
}
