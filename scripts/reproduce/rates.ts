/**
 * Stage 1's outcome: the learning rate of each run, each optimizer's best rate (the lowest final
 * validation loss among its completed runs, as `soap-train sweep` picks its "best per
 * optimizer"), and that rate written into the optimizer sections of the later stages' sweeps.
 */
import { applyOverrides, parseOverride, type Tree } from '../../src/config/load.js';
import { badInput } from '../../src/errors.js';
import type { SweepRow } from '../../src/sweep/results.js';
import { valueText, type SweepSpec } from '../../src/sweep/spec.js';

/** One run of the lr sweep. */
export interface LrRun {
  run: string;
  optimizer: string;
  lr: number | null;
  status: string;
  final_val_loss: number | null;
}

export interface BestRate {
  lr: number;
  run: string;
  final_val_loss: number;
  /** The rates this optimizer was swept over, ascending. */
  rates: number[];
  /** Where the best sits at an end of the swept rates: the optimum may lie beyond it. */
  edge: 'lowest' | 'highest' | null;
}

/** Optimizer type → its best rate. */
export type RateTable = Record<string, number>;

/** The config a run's overrides make on their own (the base left out): where its lr is. */
export function overridesTree(set: readonly string[]): Tree {
  return applyOverrides({}, set.map(parseOverride));
}

/** optimizer.lr as a run's overrides set it (the section's lr, or a later optimizer.lr), else null. */
export function lrOf(set: readonly string[]): number | null {
  const lr = (overridesTree(set).optimizer as Tree | undefined)?.lr;
  return typeof lr === 'number' ? lr : null;
}

export function lrRuns(rows: readonly SweepRow[]): LrRun[] {
  return rows.map((row) => ({ run: row.name, optimizer: row.optimizer, lr: lrOf(row.overrides), status: row.status, final_val_loss: row.final_val_loss }));
}

/**
 * Each optimizer's best rate: the completed run with the lowest finite final validation loss
 * (a diverged or failed rate is simply not best); on a tie the smaller rate, the safer one.
 * An optimizer with no completed run has no entry.
 */
export function chooseBestRates(runs: readonly LrRun[]): Record<string, BestRate> {
  const out: Record<string, BestRate> = {};
  const optimizers = [...new Set(runs.map((r) => r.optimizer))];
  for (const optimizer of optimizers) {
    const mine = runs.filter((r) => r.optimizer === optimizer);
    const rates = [...new Set(mine.map((r) => r.lr).filter((lr): lr is number => lr !== null))].sort((a, b) => a - b);
    const usable = mine.filter((r) => r.status === 'completed' && r.lr !== null && r.final_val_loss !== null && Number.isFinite(r.final_val_loss));
    if (usable.length === 0) continue;
    const best = usable.reduce((b, r) => (r.final_val_loss! < b.final_val_loss! || (r.final_val_loss === b.final_val_loss && r.lr! < b.lr!) ? r : b));
    const edge = rates.length < 2 ? null : best.lr === rates[0] ? 'lowest' : best.lr === rates.at(-1) ? 'highest' : null;
    out[optimizer] = { lr: best.lr!, run: best.run, final_val_loss: best.final_val_loss!, rates, edge };
  }
  return out;
}

export function rateTable(best: Record<string, BestRate>): RateTable {
  return Object.fromEntries(Object.entries(best).map(([optimizer, b]) => [optimizer, b.lr]));
}

/**
 * The spec with every optimizer section of its `optimizer` axis at the table's rate for that
 * type (what `--grid optimizer={…},{…}` would give). A type missing from the table is bad input:
 * stage 1 did not finish a run of it. Run names do not change (a section axis whose types differ
 * is named by type alone), so a rerun finds its runs again.
 */
export function withRates(spec: SweepSpec, rates: RateTable): SweepSpec {
  const grid = spec.grid.map((axis) => {
    if (axis.key !== 'optimizer') return axis;
    const values = axis.values.map((v) => {
      const section = v.value as Record<string, unknown>;
      const type = String(section.type);
      const lr = rates[type];
      if (lr === undefined) {
        throw badInput(`stage 1 has no completed run of ${type}, so it has no learning rate for it`, {
          file: spec.file,
          fix: 'look at the failed stage-1 runs (their logs), fix the cause and run npm run reproduce again',
        });
      }
      const value = { ...section, lr };
      return { value, text: valueText(value) };
    });
    return { ...axis, values };
  });
  return { ...spec, grid };
}
