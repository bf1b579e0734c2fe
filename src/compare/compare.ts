/**
 * The paper's metric: how many steps (and how much training wall-clock) each family of runs needs
 * to reach the baseline's final validation loss, relative to the baseline itself.
 *
 * Per family (families.ts; the baseline is grouped with the runs, so AdamW runs of other lengths
 * form a family with it):
 *   - 3+ runs that finished their schedule at 3+ distinct step counts: fit L(n) = E + A·n^(−α)
 *     through their final validation losses and solve it for the target (method "fit"). Runs that
 *     did not reach the end of their schedule (in progress, interrupted) are listed in the row
 *     but left out of the fit: their last loss is not that of a finished schedule of that length.
 *   - otherwise (a single run, a family of 2, too few finished runs, or no decreasing curve fits):
 *     one row per run, the first step where its validation curve reaches the target (method
 *     "crossing"), with a note saying why the fit was not used.
 * Wall-clock to target = steps to target × the family's measured seconds per step: total training
 * clock over total steps of its runs (evaluation and checkpoints are not on that clock).
 */
import { badInput } from '../errors.js';
import { runPaths } from '../run/run-dir.js';
import type { RunRecord, RunStatus } from '../run/read-run.js';
import { firstCrossing } from './crossing.js';
import { groupFamilies } from './families.js';
import { ALPHA_MIN, fitPowerLaw, stepsToLoss, type PowerLawFit } from './power-law.js';

export interface CompareBaseline {
  run: string;
  /** The baseline's final validation loss: the target every family is measured against. */
  target_loss: number;
  /** The baseline's own steps (its last logged step) and training clock there. */
  steps: number;
  wall_s: number;
}

export interface CompareRow {
  runs: string[];
  method: 'fit' | 'crossing';
  /** null where the target is unreachable (below the fit's E, or never crossed). */
  steps_to_target: number | null;
  wall_s_to_target: number | null;
  /** steps_to_target ÷ baseline steps; wall_s_to_target ÷ baseline wall_s. */
  step_ratio: number | null;
  wall_ratio: number | null;
  fit: PowerLawFit | null;
  // Fields beyond the issue's schema, for the table and for readers of the JSON:
  optimizer: string;
  /** Each run's status, aligned with `runs`. */
  status: RunStatus[];
  /** Whether the baseline run is one of `runs`. */
  includes_baseline: boolean;
  /** The family's measured training seconds per step; null before any step. */
  seconds_per_step: number | null;
  /** The (steps, final validation loss) points the fit went through; absent for crossings. */
  fit_points?: { run: string; steps: number; val_loss: number }[];
  /** Why a method was chosen or a run left out, when it is not the plain case. */
  note: string | null;
}

export interface CompareResult {
  baseline: CompareBaseline;
  results: CompareRow[];
}

/** The family's training seconds per step: total clock over total steps (null before any step). */
function familySecondsPerStep(members: readonly RunRecord[]): number | null {
  let seconds = 0;
  let steps = 0;
  for (const run of members) {
    if (run.lastStep <= 0) continue;
    seconds += run.trainSeconds;
    steps += run.lastStep;
  }
  return steps > 0 ? seconds / steps : null;
}

/** A run whose evaluations reached the end of its planned schedule: its final loss is a point on L(n). */
function finishedSchedule(run: RunRecord): boolean {
  const lastEval = run.evals.at(-1);
  return run.finalValLoss !== null && lastEval !== undefined && lastEval.step >= run.plannedSteps;
}

const ratio = (value: number | null, reference: number) => (value === null || !(reference > 0) ? null : value / reference);

function distinctOptimizers(members: readonly RunRecord[]): string {
  return [...new Set(members.map((r) => r.optimizer))].join(', ');
}

export function compareRuns(baseline: RunRecord, runs: RunRecord[]): CompareResult {
  const target = baseline.finalValLoss;
  if (target === null) {
    throw badInput('the baseline has no validation loss (no eval rows)', {
      file: runPaths(baseline.dir).eval,
      fix: 'pick a baseline run that has evaluated at least once (train.eval_interval, or its last step)',
    });
  }
  const base: CompareBaseline = { run: baseline.name, target_loss: target, steps: baseline.lastStep, wall_s: baseline.trainSeconds };

  // The baseline joins the grouping (once, even when it is also listed among the runs).
  const all = [baseline, ...runs.filter((r) => r.dir !== baseline.dir)];
  const seen = new Set<string>();
  const unique = all.filter((r) => (seen.has(r.dir) ? false : (seen.add(r.dir), true)));

  const results: CompareRow[] = [];
  for (const family of groupFamilies(unique)) {
    // Shortest schedule first, so a row reads like its curve (input order among equals).
    const members = [...family].sort((a, b) => a.plannedSteps - b.plannedSteps);
    const secondsPerStep = familySecondsPerStep(members);
    const wallFor = (steps: number | null) => (steps === null || secondsPerStep === null ? null : steps * secondsPerStep);
    const finished = members.filter(finishedSchedule);
    const distinctSteps = new Set(finished.map((r) => r.evals.at(-1)!.step)).size;

    let fallbackNote: string | null = null;
    if (finished.length >= 3 && distinctSteps >= 3) {
      const points = finished.map((r) => ({ run: r.name, steps: r.evals.at(-1)!.step, val_loss: r.finalValLoss! }));
      const fit = fitPowerLaw(points.map((p) => ({ steps: p.steps, loss: p.val_loss })));
      if (fit) {
        const steps = stepsToLoss(fit, target);
        const wall = wallFor(steps);
        const left = members.filter((r) => !finished.includes(r));
        const notes = [
          ...(left.length > 0 ? [`not in the fit (schedule not finished): ${left.map((r) => `${r.name} (${r.status})`).join(', ')}`] : []),
          ...(steps === null ? [`target ${target.toFixed(4)} is at or below the fitted asymptote E = ${fit.E.toFixed(4)}`] : []),
          ...(degenerateFit(fit) ? [`degenerate fit: α = ${fit.alpha.toPrecision(2)} at its lower bound (the losses fall about linearly in log n), so E = ${fit.E.toFixed(2)} means nothing; trust steps to target only inside the family's range`] : []),
        ];
        results.push({
          runs: members.map((r) => r.name),
          method: 'fit',
          steps_to_target: steps,
          wall_s_to_target: wall,
          step_ratio: ratio(steps, base.steps),
          wall_ratio: ratio(wall, base.wall_s),
          fit,
          optimizer: distinctOptimizers(members),
          status: members.map((r) => r.status),
          includes_baseline: members.includes(baseline),
          seconds_per_step: secondsPerStep,
          fit_points: points,
          note: notes.length > 0 ? notes.join('; ') : null,
        });
        continue;
      }
      fallbackNote = 'no decreasing curve E + A·n^−α fits the family’s final losses; crossing per run';
    } else if (members.length >= 2) {
      fallbackNote =
        members.length === 2
          ? 'family of 2: too few points for the 3-parameter fit; crossing per run'
          : `only ${distinctSteps} finished schedule length(s) in a family of ${members.length}: too few for the fit; crossing per run`;
    }

    // Crossing: one row per run, each from its own validation curve.
    for (const run of members) {
      const steps = firstCrossing(run.evals, target);
      const wall = wallFor(steps);
      const firstEval = run.evals.find((e) => Number.isFinite(e.val_loss));
      const early =
        firstEval && firstEval.val_loss < target
          ? `already below the target at its first evaluation (step ${firstEval.step}): steps to target is an upper bound`
          : null;
      const note = [fallbackNote, early].filter((n): n is string => n !== null).join('; ');
      results.push({
        runs: [run.name],
        method: 'crossing',
        steps_to_target: steps,
        wall_s_to_target: wall,
        step_ratio: ratio(steps, base.steps),
        wall_ratio: ratio(wall, base.wall_s),
        fit: null,
        optimizer: run.optimizer,
        status: [run.status],
        includes_baseline: run === baseline,
        seconds_per_step: secondsPerStep,
        note: note || null,
      });
    }
  }
  return { baseline: base, results };
}

/**
 * A fit whose α sits at the search's lower bound: L(n) = E + A·n^−α then degenerates into
 * E + A − A·α·ln n, a straight line in log n whose E and A are arbitrary (only A·α is
 * determined), so extrapolating it far is meaningless. Seen with three nearly log-linear points.
 */
function degenerateFit(fit: PowerLawFit): boolean {
  return fit.alpha <= 2 * ALPHA_MIN;
}
