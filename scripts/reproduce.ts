/**
 * `npm run reproduce [-- options]`: issue 12's study, "Does SOAP beat AdamW here?", on this
 * machine (reproduce/README.md says what it runs and how long it takes).
 *
 *   npm run reproduce                        the study: runs/reproduce/, then reproduce/RESULTS.md,
 *                                            results.json, the charts and the README section
 *   npm run reproduce -- --dry-run           the stages, runs and estimated time; writes nothing
 *   npm run reproduce -- --quick             a smoke test of the whole pipeline (tiny model, 8 steps)
 *   npm run reproduce -- --report-only       results, charts and README from the runs as they are
 *
 * Running it again skips completed runs and resumes interrupted ones.
 */
import { Command, Option } from 'commander';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { EXIT, reportError } from '../src/cli/errors.js';
import { badInput } from '../src/errors.js';
import { dryRun, reportOnly, runStudy, type StudyOptions } from './reproduce/driver.js';
import { MIN_SCALED_STEPS, QUICK_SCALE, type BudgetScale } from './reproduce/study.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

interface CliOptions {
  dryRun?: boolean;
  quick?: boolean;
  budgetScale?: string;
  jobs: string;
  out?: string;
  results?: string;
  skipBatch?: boolean;
  reportOnly?: boolean;
  readme: boolean;
}

/** The study's options from the command line (pure apart from resolving paths against `root`). */
export function studyOptions(argv: readonly string[], root = ROOT, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): { opts: StudyOptions; mode: 'run' | 'dry-run' | 'report-only' } {
  const program = new Command('reproduce')
    .description("issue 12's study: does SOAP beat AdamW here? (lr sweep, headline family, frequency ablation, seeds)")
    .option('--dry-run', 'print the stages, their runs and the estimated time; write nothing')
    .option('--quick', `a smoke test of the pipeline: a tiny model, ${MIN_SCALED_STEPS} steps per full run (its numbers mean nothing); sweeps in runs/reproduce-quick/`)
    .option('--budget-scale <factor>', 'multiply the steps, warmup and eval/log/checkpoint intervals by this (sweeps in runs/reproduce-x<factor>/)')
    .option('-j, --jobs <n>', 'runs at once (1: each run uses every core, the cleanest wall-clock; 2+: each gets one core and one linear-algebra thread)', '1')
    .option('--out <dir>', 'where the sweeps go (default runs/reproduce/, or as --quick/--budget-scale say)')
    .option('--results <dir>', 'where results.json, RESULTS.md and the charts go (default reproduce/ for the study, <out>/results/ otherwise)')
    .option('--skip-batch', 'leave out stage 0 (the batch-size sweep)')
    .option('--report-only', 'run nothing: write the results, charts and README section from the runs as they are')
    .addOption(new Option('--no-readme', 'do not update the README section (only the real study updates it)'))
    .exitOverride()
    .configureOutput({ writeErr: (s) => log(s.trimEnd()), writeOut: (s) => log(s.trimEnd()) });
  program.parse([...argv], { from: 'user' });
  const o = program.opts<CliOptions>();
  const jobs = Number(o.jobs);
  if (!Number.isInteger(jobs) || jobs < 1) throw badInput(`--jobs ${o.jobs}: expected a positive whole number`);
  if (o.quick && o.budgetScale !== undefined) throw badInput('--quick and --budget-scale both set the budget: give one');
  let scale: BudgetScale | null = o.quick ? QUICK_SCALE : null;
  if (o.budgetScale !== undefined) {
    const factor = Number(o.budgetScale);
    if (!(factor > 0) || !Number.isFinite(factor)) throw badInput(`--budget-scale ${o.budgetScale}: expected a positive number, e.g. 0.5`);
    scale = factor === 1 ? null : { factor, quick: false };
  }
  const out = resolve(root, o.out ?? (scale ? (scale.quick ? 'runs/reproduce-quick' : `runs/reproduce-x${scale.factor}`) : 'runs/reproduce'));
  const resultsDir = resolve(root, o.results ?? (scale ? join(out, 'results') : 'reproduce'));
  const opts: StudyOptions = {
    root,
    out,
    resultsDir,
    // Only the real study's numbers belong in the README.
    readme: o.readme && !scale ? join(root, 'README.md') : null,
    jobs,
    scale,
    skipBatch: o.skipBatch ?? false,
    log,
  };
  return { opts, mode: o.dryRun ? 'dry-run' : o.reportOnly ? 'report-only' : 'run' };
}

export async function main(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = studyOptions(argv);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version') return EXIT.ok;
    if (typeof code === 'string' && code.startsWith('commander.')) return EXIT.badInput;
    return reportError(err);
  }
  const { opts, mode } = parsed;
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) {
      opts.log('already stopping: each running run finishes its step and checkpoints');
      return;
    }
    opts.log('stopping: no new runs; the running ones checkpoint (a rerun continues them)');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    if (mode === 'dry-run') return dryRun(opts);
    if (mode === 'report-only') return await reportOnly(opts);
    return await runStudy({ ...opts, signal: controller.signal });
  } catch (err) {
    return reportError(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
