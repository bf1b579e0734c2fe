/**
 * The study of issue 12 ("Does SOAP beat AdamW here?") as data: its stages, the sweep files each
 * runs (reproduce/stage*.yaml, each an ordinary `soap-train sweep` file), and the three things
 * the driver adds to those files:
 *   - stage 1's best learning rate per optimizer, written into the `optimizer:` sections of
 *     stages 2–4 (what `--grid optimizer={…}` on the command line would do);
 *   - stage 4's seeds: the stage-2 files again with a `train.seed` axis (seed 0 is stage 2);
 *   - for `--budget-scale` / `--quick`, a generated base config in the output folder that
 *     extends reproduce/base.yaml with a shorter budget (fractions scale train.steps of the
 *     base, so the budget has to change there, not in a `--set`).
 * Each sweep runs in `<out>/<sweep name>/`, so `soap-train sweep <out>/<sweep name>` reruns or
 * inspects one stage by itself.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { readConfigTree, type Tree } from '../../src/config/load.js';
import { readSweepFile, valueText, withCommandLine, type SweepSpec } from '../../src/sweep/spec.js';
import { withRates, type RateTable } from './rates.js';

export type StageId = 'batch' | 'lr' | 'headline' | 'frequency' | 'seeds';

export interface StageDef {
  id: StageId;
  /** The numbering: 0 is the optional batch-size stage. */
  number: number;
  title: string;
  /** Sweep files in reproduce/, run in this order. */
  files: string[];
  /** Whether the optimizer sections take stage 1's best rates. */
  usesBestRates: boolean;
  /** A train.seed axis added to the files' grid (stage 4). */
  seeds?: number[];
}

/** Stage 4 repeats the headline family with these seeds; stage 2 is seed 0 (base.yaml's). */
export const SEED_REPEATS = [1, 2];

export const STAGES: readonly StageDef[] = [
  { id: 'batch', number: 0, title: 'batch sizes: is 2048 tokens per step a large batch here?', files: ['stage0-batch.yaml'], usesBestRates: false },
  { id: 'lr', number: 1, title: 'learning-rate sweep per optimizer', files: ['stage1-lr.yaml'], usesBestRates: false },
  { id: 'headline', number: 2, title: 'AdamW at the full budget, SOAP and Shampoo families', files: ['stage2-adamw.yaml', 'stage2-family.yaml'], usesBestRates: true },
  { id: 'frequency', number: 3, title: 'precondition-frequency ablation', files: ['stage3-frequency.yaml'], usesBestRates: true },
  { id: 'seeds', number: 4, title: `headline family again with seeds ${SEED_REPEATS.join(' and ')}`, files: ['stage2-adamw.yaml', 'stage2-family.yaml'], usesBestRates: true, seeds: SEED_REPEATS },
];

/** Where the study's pieces are. */
export interface StudyLayout {
  /** reproduce/: the sweep files and base.yaml. */
  studyDir: string;
  /** Where the sweeps run: `<out>/<sweep name>/`. */
  out: string;
  /** The base config every sweep starts from: reproduce/base.yaml, or the scaled one in `out`. */
  base: string;
}

export interface StudySweep {
  stage: StageDef;
  /** The sweep file it comes from. */
  file: string;
  name: string;
  /** `<out>/<name>`. */
  dir: string;
  spec: SweepSpec;
}

/** Stage 4's sweep name for a stage-2 file's: stage2-family → stage4-seeds-family. */
export function seedSweepName(name: string): string {
  return `stage4-seeds-${name.replace(/^stage2-/, '')}`;
}

/**
 * The sweeps of one stage, ready for buildPlan. `rates` is stage 1's best rate per optimizer;
 * without it (a dry run before stage 1 ran) the files' own rates stay.
 */
export function stageSweeps(stage: StageDef, layout: StudyLayout, rates: RateTable | null): StudySweep[] {
  return stage.files.map((fileName) => {
    const file = join(layout.studyDir, fileName);
    let spec: SweepSpec = { ...readSweepFile(file), base: layout.base };
    if (stage.usesBestRates && rates) spec = withRates(spec, rates);
    let name = spec.name ?? fileName.replace(/\.yaml$/, '');
    if (stage.seeds) {
      const axis = { key: 'train.seed', values: stage.seeds.map((seed) => ({ value: seed, text: valueText(seed) })) };
      name = seedSweepName(name);
      spec = withCommandLine(spec, { grid: [axis], name });
    }
    return { stage, file, name, dir: join(layout.out, name), spec: { ...spec, name } };
  });
}

/** What `--budget-scale` and `--quick` change in the base config. */
export interface BudgetScale {
  /** Multiplies train.steps, schedule.warmup_steps and the eval/log/checkpoint intervals. */
  factor: number;
  /** Also a much smaller model and 2 evaluation batches: a smoke test whose numbers mean nothing. */
  quick: boolean;
}

/** The fewest steps a scaled budget keeps: the five fractions must give five different lengths. */
export const MIN_SCALED_STEPS = 8;

/** `--quick`: 8 steps per full run (the fewest that keep the family's 5 lengths apart). */
export const QUICK_SCALE: BudgetScale = { factor: MIN_SCALED_STEPS / 400, quick: true }; // base.yaml's 400 steps → 8

const num = (tree: Tree, section: string, key: string): number | undefined => {
  const value = (tree[section] as Tree | undefined)?.[key];
  return typeof value === 'number' ? value : undefined;
};

/** Data globs as absolute paths: the loader resolves them against the top config's folder. */
function absoluteGlobs(value: unknown, baseDir: string): unknown {
  const abs = (p: unknown) => (typeof p === 'string' && !isAbsolute(p) ? resolve(baseDir, p) : p);
  return Array.isArray(value) ? value.map(abs) : abs(value);
}

/**
 * The scaled base config (pure): `extends` the real base, with the budget and the intervals
 * multiplied by `scale.factor` (steps at least MIN_SCALED_STEPS, every interval at least 1,
 * warmup shorter than the run), and the data globs made absolute because the generated file
 * lives elsewhere.
 */
export function scaledBaseTree(baseFile: string, scale: BudgetScale): Tree {
  const tree = readConfigTree(baseFile);
  const f = scale.factor;
  const steps = Math.max(MIN_SCALED_STEPS, Math.round((num(tree, 'train', 'steps') ?? 240) * f));
  const times = (v: number | undefined, fallback: number) => Math.max(1, Math.round((v ?? fallback) * f));
  const data = (tree.data ?? {}) as Tree;
  const out: Tree = {
    extends: resolve(baseFile),
    data: { train: absoluteGlobs(data.train, dirname(resolve(baseFile))), val: absoluteGlobs(data.val, dirname(resolve(baseFile))) },
    schedule: { warmup_steps: Math.min(steps - 1, times(num(tree, 'schedule', 'warmup_steps'), 0)) },
    train: {
      steps,
      eval_interval: times(num(tree, 'train', 'eval_interval'), 40),
      log_interval: times(num(tree, 'train', 'log_interval'), 10),
    },
    checkpoint: { interval: times(num(tree, 'checkpoint', 'interval'), 80) },
  };
  if (scale.quick) {
    out.model = { d_model: 32, n_layers: 1, n_heads: 2, mlp_hidden: 64 };
    (out.train as Tree).eval_steps = 2;
  }
  return out;
}

/** Writes the scaled base into `dir` and returns its path. */
export function writeScaledBase(baseFile: string, scale: BudgetScale, dir: string): string {
  const file = join(dir, 'base.yaml');
  const what = scale.quick ? '--quick (a smoke test: tiny model, its numbers mean nothing)' : `--budget-scale ${scale.factor}`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, `# Generated by npm run reproduce ${what}: ${baseFile} with a scaled budget.\n${toYaml(scaledBaseTree(baseFile, scale))}`);
  return file;
}
