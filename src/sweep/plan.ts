/**
 * The sweep plan: the spec expanded into named runs, each validated with the config loader
 * before anything is created, and written to `runs/<sweep>/sweep.yaml` before any run starts,
 * so `--emit`, reruns and `--collect` all read the same list.
 *
 * Expansion order is the grid's order (first axis outermost), then fractions, then seeds
 * (innermost): the runs of one setting sit together and seed 0 comes first.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { z } from 'zod';
import { applyOverrides, loadConfig, parseOverride, readConfigTree, type Tree } from '../config/load.js';
import { badInput, SoapTrainError } from '../errors.js';
import { axisLabels, axisParts, joinName, uniqueNames } from './naming.js';
import type { SweepSpec } from './spec.js';

/** One run of the sweep: its folder name and the `--set` arguments that make it. */
export interface ExpandedRun {
  name: string;
  /** `key=value` texts, exactly as `--set` takes them: the sweep's fixed sets, the grid's in order, steps, seed. */
  set: string[];
}

export interface PlannedRun extends ExpandedRun {
  /** optimizer.type of the resolved config (for "best per optimizer" even if the run never starts). */
  optimizer: string;
  /** train.steps of the resolved config. */
  steps: number;
}

export interface SweepPlan {
  version: 1;
  name: string;
  /** Absolute path of the base config every run starts from. */
  base: string;
  /** The run the compare table measures against (else the longest AdamW run, first seed). */
  baseline?: string;
  runs: PlannedRun[];
}

export const PLAN_FILE = 'sweep.yaml';

/** Every combination of the spec's axes, fractions and seeds, named (pure: no files read). */
export function expandSweep(spec: Pick<SweepSpec, 'grid' | 'set' | 'seeds' | 'fractions'>, baseSteps: number): ExpandedRun[] {
  const keys = spec.grid.map((a) => a.key);
  const fixed = spec.set ?? [];
  const fixedKeys = fixed.map((t) => t.slice(0, t.indexOf('=')));
  const swept = [...keys, ...(spec.fractions ? ['train.steps'] : []), ...(spec.seeds !== undefined ? ['train.seed'] : [])];
  const both = fixedKeys.find((k) => swept.includes(k));
  if (both) throw badInput(`--set ${both} is also swept (by --grid, --fractions or --seeds): give it one way`, { field: both });
  if (spec.fractions && keys.includes('train.steps')) {
    throw badInput('--fractions scale train.steps: do not also put train.steps in the grid', { field: 'train.steps' });
  }
  if (spec.seeds !== undefined && keys.includes('train.seed')) {
    throw badInput('--seeds sets train.seed: do not also put train.seed in the grid', { field: 'train.seed' });
  }
  const labels = axisLabels(keys);
  type Partial = { parts: string[]; set: string[] };
  let combos: Partial[] = [{ parts: [], set: [...fixed] }];
  for (const axis of spec.grid) {
    const parts = axisParts(axis.key, labels.get(axis.key)!, axis.values.map((v) => v.value));
    combos = combos.flatMap((c) => axis.values.map((v, i) => ({ parts: [...c.parts, parts[i]], set: [...c.set, `${axis.key}=${v.text}`] })));
  }
  if (spec.fractions) {
    const stepsOf = new Map<number, number>();
    for (const f of spec.fractions) {
      const steps = Math.round(f * baseSteps);
      if (steps < 1) throw badInput(`fraction ${f} of ${baseSteps} steps is less than one step`, { field: 'train.steps' });
      const other = stepsOf.get(steps);
      if (other !== undefined) throw badInput(`fractions ${other} and ${f} both give train.steps=${steps}`, { field: 'train.steps', fix: 'drop one of them' });
      stepsOf.set(steps, f);
    }
    combos = combos.flatMap((c) => spec.fractions!.map((f) => ({ parts: [...c.parts, `f${f}`], set: [...c.set, `train.steps=${Math.round(f * baseSteps)}`] })));
  }
  if (spec.seeds !== undefined) {
    const seeds = Array.from({ length: spec.seeds }, (_, i) => i);
    combos = combos.flatMap((c) => seeds.map((s) => ({ parts: [...c.parts, `s${s}`], set: [...c.set, `train.seed=${s}`] })));
  }
  const names = uniqueNames(combos.map((c) => ({ name: joinName(c.parts, c.set), overrides: c.set })));
  return combos.map((c, i) => ({ name: names[i], set: c.set }));
}

/**
 * train.steps of the base config, which fractions scale. Read from the merged YAML rather than the
 * validated config: a base may leave out what the grid fills in (`optimizer:` as a grid axis).
 */
function baseSteps(base: string, spec: SweepSpec): number {
  const tree = applyOverrides(readConfigTree(base), (spec.set ?? []).map(parseOverride));
  const steps = (tree.train as Tree | undefined)?.steps;
  if (typeof steps === 'number' && Number.isInteger(steps) && steps > 0) return steps;
  if (!spec.fractions) return 1; // not used: only fractions scale the base's steps
  throw badInput('--fractions scale train.steps, and the base config has no train.steps (a positive whole number)', { file: base, field: 'train.steps' });
}

/**
 * Expands the spec and validates every run's config with the loader (keys, values, types), so a
 * bad grid value is one line naming the key before anything exists.
 */
export function buildPlan(spec: SweepSpec, name: string): SweepPlan {
  const base = resolve(spec.base);
  const runs = expandSweep(spec, baseSteps(base, spec)).map((run) => {
    let config;
    try {
      config = loadConfig(spec.base, run.set.map(parseOverride)).config;
    } catch (err) {
      if (err instanceof SoapTrainError) throw badInput(`sweep run ${run.name}: ${err.oneLine()}`);
      throw err;
    }
    return { ...run, optimizer: config.optimizer.type, steps: config.train.steps };
  });
  if (spec.baseline !== undefined && !runs.some((r) => r.name === spec.baseline)) {
    throw badInput(`--baseline ${spec.baseline}: no run of this sweep has that name`, { fix: `one of: ${runs.map((r) => r.name).join(', ')}` });
  }
  return { version: 1, name, base, ...(spec.baseline !== undefined ? { baseline: spec.baseline } : {}), runs };
}

const planSchema = z.object({
  version: z.literal(1),
  name: z.string().min(1),
  base: z.string().min(1),
  baseline: z.string().optional(),
  runs: z
    .array(z.object({ name: z.string().regex(/^[\w.@+=,-]+$/), set: z.array(z.string()), optimizer: z.string(), steps: z.number().int().positive() }).strict())
    .min(1),
});

export function planPath(sweepDir: string): string {
  return join(sweepDir, PLAN_FILE);
}

/** Reads `<sweepDir>/sweep.yaml`; badInput naming the file when it is missing or malformed. */
export function readPlan(sweepDir: string): SweepPlan {
  const file = planPath(resolve(sweepDir));
  if (!existsSync(file)) throw badInput('not a sweep directory (no sweep.yaml)', { file: sweepDir, fix: 'give the runs/<sweep> folder a sweep wrote' });
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw badInput(`not valid YAML: ${(err as Error).message.split('\n')[0]}`, { file });
  }
  const parsed = planSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw badInput(issue.message, { file, field: issue.path.join('.') || undefined, fix: 'rewrite it by running the sweep command again with a new --name' });
  }
  return parsed.data as SweepPlan;
}

export function writePlan(sweepDir: string, plan: SweepPlan): void {
  const header = '# The expanded sweep: soap-train sweep reads this on reruns, --emit and --collect. Do not edit by hand.\n';
  writeFileSync(planPath(sweepDir), header + toYaml(plan, { lineWidth: 0 }));
}

/** Same base and the same runs with the same overrides: a rerun of the sweep, not a different one. */
export function samePlan(a: SweepPlan, b: SweepPlan): boolean {
  const runs = (p: SweepPlan) => JSON.stringify(p.runs.map((r) => [r.name, r.set]));
  return a.base === b.base && runs(a) === runs(b);
}
