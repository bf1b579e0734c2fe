/**
 * One sweep of the study, run the way `soap-train sweep` runs it (the same library calls:
 * buildPlan validates every run before anything exists, the plan goes to `<dir>/sweep.yaml`,
 * LocalSweep starts one `soap-train train … --resume` child per run and skips completed ones,
 * collectResults/writeResults write sweep.json and sweep.md). The plan file is the same, so
 * `soap-train sweep <dir>` reruns, `--emit`s or `--collect`s the stage on its own.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { badInput } from '../../src/errors.js';
import { LocalSweep, trainerCommand, type RunOutcome, type SweepEvent } from '../../src/sweep/local.js';
import { buildPlan, planPath, readPlan, samePlan, writePlan, type SweepPlan } from '../../src/sweep/plan.js';
import { collectResults, writeResults, type SweepResults } from '../../src/sweep/results.js';
import type { StudySweep } from './study.js';

/** The sweep's plan, validated (every run's config loads) and named; nothing is written. */
export function planSweep(sweep: StudySweep): SweepPlan {
  return buildPlan(sweep.spec, sweep.name);
}

/**
 * Writes the plan into the sweep's folder, or checks that the plan already there is this one
 * (`soap-train sweep`'s rule: a folder holds one sweep). A different plan there means the stage
 * was planned with other settings, typically other best rates after stage 1 changed.
 */
export function preparePlanDir(dir: string, plan: SweepPlan): void {
  if (existsSync(planPath(dir))) {
    if (!samePlan(readPlan(dir), plan)) {
      throw badInput('this stage was planned differently before (other best rates from stage 1, or edited sweep files)', {
        file: dir,
        fix: `move ${dir} away to run the stage again with the current settings, or restore what changed`,
      });
    }
    return;
  }
  if (existsSync(dir)) throw badInput('exists and is not a sweep directory (no sweep.yaml)', { file: dir, fix: 'move it away or pass another --out' });
  mkdirSync(dir, { recursive: true });
  writePlan(dir, plan);
}

export interface RunSweepOptions {
  jobs: number;
  /** The trainer (default: this checkout's bin/soap-train, or $SOAP_TRAIN). */
  trainer?: string[];
  onEvent?: (e: SweepEvent) => void;
  /** Receives the running sweep, so a signal handler can stop it. */
  onStart?: (sweep: LocalSweep) => void;
}

export interface SweepOutcome {
  plan: SweepPlan;
  outcomes: RunOutcome[];
  results: SweepResults;
}

/** Runs (or skips) the sweep's runs and writes its sweep.json and sweep.md. */
export async function runSweep(sweep: StudySweep, plan: SweepPlan, opts: RunSweepOptions): Promise<SweepOutcome> {
  preparePlanDir(sweep.dir, plan);
  const local = new LocalSweep({ plan, dir: sweep.dir, command: opts.trainer ?? trainerCommand(), jobs: opts.jobs, onEvent: opts.onEvent });
  opts.onStart?.(local);
  const outcomes = await local.run();
  const results = collectResults(sweep.dir, plan, outcomes);
  writeResults(sweep.dir, results);
  return { plan, outcomes, results };
}

/** The results of a sweep as its folder holds them now (no run started); null before it was planned. */
export function readSweep(dir: string): { plan: SweepPlan; results: SweepResults } | null {
  if (!existsSync(planPath(dir))) return null;
  const plan = readPlan(dir);
  return { plan, results: collectResults(dir, plan) };
}
