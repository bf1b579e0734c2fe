/**
 * `soap-train sweep`: a grid of runs from one base config, run here (`-j N` at once) or written as
 * a Slurm array / bash script; afterwards sweep.json, sweep.md and the compare table.
 *
 *   soap-train sweep --config configs/tiny-adamw.yaml --grid optimizer.lr=1e-3,3e-3 --seeds 2 --name lr
 *   soap-train sweep --config examples/sweep-tiny.yaml          (a sweep file: base + sweep: {grid, …})
 *   soap-train sweep runs/lr                                    (run it again: skips completed, resumes the rest)
 *   soap-train sweep runs/lr --emit slurm --sbatch time=04:00:00
 *   soap-train sweep runs/lr --collect                          (after a Slurm array: just the result files)
 *
 * The plan (runs/<sweep>/sweep.yaml) is written before anything runs; every run's config is
 * validated first, so a bad key or value is one line and nothing is created.
 */
import { Command, Option } from 'commander';
import { chmodSync, existsSync, mkdirSync, openSync, readSync, closeSync, fstatSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { badInput } from '../errors.js';
import { defaultRunName } from '../run/run-dir.js';
import { bashQuote, shellScript, slurmScript } from '../sweep/emit.js';
import { LocalSweep, soapTrainBin, trainerCommand, type RunOutcome, type SweepEvent } from '../sweep/local.js';
import { buildPlan, planPath, readPlan, samePlan, writePlan, type SweepPlan } from '../sweep/plan.js';
import { collectResults, formatSweepText, writeResults } from '../sweep/results.js';
import { isSweepFile, parseFractions, parseGridArg, parseSeeds, readSweepFile, withCommandLine, type SweepSpec } from '../sweep/spec.js';
import { EXIT } from './errors.js';

interface SweepOptions {
  config?: string;
  set: string[];
  grid: string[];
  seeds?: string;
  fractions?: string;
  name?: string;
  baseline?: string;
  jobs: string;
  timeLimit?: string;
  emit?: 'slurm' | 'shell';
  out?: string;
  sbatch: string[];
  grace: string;
  collect?: boolean;
  dryRun?: boolean;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

const HELP = `
A sweep file (--config) names its base config and the sweep:
  base: ../configs/tiny-adamw.yaml      # relative to the sweep file
  sweep:
    name: tiny-lr                       # optional (default: <file stem>-<date>-<time>)
    set: {train.eval_interval: 40}      # optional: overrides every run gets (not in the names)
    grid:                               # each key's values, parsed as --set parses them
      optimizer.lr: [1.0e-3, 3.0e-3]
      optimizer.betas: [[0.9, 0.95], [0.95, 0.95]]
    seeds: 2                            # optional: train.seed = 0, 1
    fractions: [0.5, 1]                 # optional: train.steps = round(fraction × base steps)
    baseline: lr3e-3_f1_s0              # optional
--grid, --set (per key), --seeds, --fractions, --name, --baseline on the command line replace the
file's. A whole section can be an axis: optimizer: [{type: adamw, lr: 3.0e-3}, {type: soap, …}].

Runs are named from their overrides (optimizer.lr=0.003 → lr3e-3, fractions f0.5, seeds s0) and
live in runs/<sweep>/<run>/, with logs in runs/<sweep>/logs/<run>.log. Running the same sweep again
(same --name, or soap-train sweep runs/<sweep>) skips completed runs and resumes the others.
The trainer is this checkout's bin/soap-train, or $SOAP_TRAIN when set.
Exit: 0 all runs done, 1 a run failed (the others still ran), 2 bad input, 75 a run reached
--time-limit (run again to resume), 130 stopped by Ctrl-C/SIGTERM (run again to resume).`;

export function sweepCommand(): Command {
  return new Command('sweep')
    .description('run a grid of experiments from one config (here, or as a Slurm array / bash script) and compare them')
    .argument('[sweep-dir]', 'an existing sweep directory (runs/<sweep>): run, emit or collect its plan again')
    .option('-c, --config <file>', 'base config, or a sweep file (base: + sweep:)')
    .option('-s, --set <key=value>', 'an override every run gets, not part of the run names, e.g. train.eval_interval=40 (repeatable)', collect, [])
    .option('-g, --grid <key=v1,v2>', 'an axis of the grid, e.g. optimizer.lr=1e-3,3e-3 (repeatable; values parsed as --set parses them)', collect, [])
    .option('--seeds <n>', 'train.seed = 0..n-1 for every grid point (name suffix s0, s1, …)')
    .option('--fractions <list>', 'train.steps = round(fraction × base steps), e.g. 0.5,0.625,0.75,0.875,1 (name part f0.5, …)')
    .option('--name <name>', 'sweep name: runs/<name>/ (default: <config stem>-<date>-<time>)')
    .option('--baseline <run>', 'the run the compare table measures against (default: the AdamW run with the most steps, first seed)')
    .option('-j, --jobs <n>', 'runs at once when running here', '1')
    .option('--time-limit <limit>', "passed to every run: checkpoint and exit 75 before this wall time (Slurm's format, e.g. 3:50:00)")
    .addOption(new Option('--emit <kind>', 'write a job script instead of running: slurm (sbatch array, one task per run) or shell').choices(['slurm', 'shell']))
    .option('--out <file>', 'where --emit writes the script (default: runs/<sweep>/sweep.slurm or sweep.sh)')
    .option('--sbatch <option>', 'an extra #SBATCH option for --emit slurm, e.g. time=04:00:00 or --partition=gpu (repeatable)', collect, [])
    .option('--grace <seconds>', 'for --emit slurm: Slurm sends SIGTERM this many seconds before the time limit', '120')
    .option('--collect', 'run nothing: write sweep.json, sweep.md and the compare table from the run directories as they are')
    .option('--dry-run', 'print the runs the sweep would make, and write nothing')
    .addHelpText('after', HELP)
    .action(async (sweepDir: string | undefined, opts: SweepOptions) => {
      process.exitCode = await runSweepCommand(sweepDir, opts);
    });
}

function positiveInt(text: string, option: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw badInput(`${option} ${text}: expected a positive whole number`);
  return n;
}

/** The plan: read back from a sweep directory, or built from --config and the grid options. */
function planFromOptions(sweepDir: string | undefined, opts: SweepOptions): { plan: SweepPlan; dir: string; fresh: boolean } {
  if (sweepDir !== undefined) {
    const given = ['config', 'set', 'grid', 'seeds', 'fractions', 'name'].filter((k) => {
      const v = opts[k as keyof SweepOptions];
      return Array.isArray(v) ? v.length > 0 : v !== undefined;
    });
    if (given.length > 0) throw badInput(`a sweep directory carries its own plan: drop --${given[0]}`, { fix: 'or start a new sweep with --config and another --name' });
    const dir = resolve(sweepDir);
    const plan = readPlan(dir);
    if (opts.baseline !== undefined) {
      if (!plan.runs.some((r) => r.name === opts.baseline)) throw badInput(`--baseline ${opts.baseline}: no run of this sweep has that name`, { fix: `one of: ${plan.runs.map((r) => r.name).join(', ')}` });
      plan.baseline = opts.baseline;
    }
    return { plan, dir, fresh: false };
  }
  if (!opts.config) throw badInput('--config FILE (a config or a sweep file) or a sweep directory is required', { fix: 'e.g. soap-train sweep --config configs/tiny-adamw.yaml --grid optimizer.lr=1e-3,3e-3' });
  const fromFile: SweepSpec = isSweepFile(opts.config) ? readSweepFile(opts.config) : { base: resolve(opts.config), grid: [] };
  const spec = withCommandLine(fromFile, {
    grid: opts.grid.map(parseGridArg),
    set: opts.set,
    seeds: opts.seeds === undefined ? undefined : parseSeeds(opts.seeds),
    fractions: opts.fractions === undefined ? undefined : parseFractions(opts.fractions),
    name: opts.name,
    baseline: opts.baseline,
  });
  const name = spec.name ?? defaultRunName(spec.file ?? spec.base);
  if (!/^[\w.@+=,-]+$/.test(name)) throw badInput(`--name ${JSON.stringify(name)}: use letters, digits and . _ - @ + = , only`);
  const plan = buildPlan(spec, name); // validates every run's config before anything is written
  return { plan, dir: resolve('runs', name), fresh: true };
}

/** Writes the plan, or checks that the one already there is the same sweep (a rerun). */
function savePlan(dir: string, plan: SweepPlan, fresh: boolean): void {
  if (!fresh) {
    writePlan(dir, plan); // only the baseline can have changed
    return;
  }
  if (existsSync(planPath(dir))) {
    const existing = readPlan(dir);
    if (!samePlan(existing, plan)) {
      throw badInput('a different sweep already uses this directory', {
        file: dir,
        fix: `pick another --name, or run that sweep again with soap-train sweep ${dir}`,
      });
    }
  } else if (existsSync(dir)) {
    throw badInput('exists and is not a sweep directory (no sweep.yaml)', { file: dir, fix: 'pick another --name' });
  }
  mkdirSync(dir, { recursive: true });
  writePlan(dir, plan);
}

function printDryRun(plan: SweepPlan, dir: string): void {
  const width = Math.max(...plan.runs.map((r) => r.name.length));
  process.stdout.write(`sweep ${plan.name}: ${plan.runs.length} runs of ${plan.base} in ${dir}\n`);
  for (const run of plan.runs) process.stdout.write(`  ${run.name.padEnd(width)}  ${run.optimizer} ${run.steps} steps  ${run.set.map((s) => `--set ${bashQuote(s)}`).join(' ')}\n`);
}

function emitScript(plan: SweepPlan, dir: string, opts: SweepOptions): string {
  const grace = positiveInt(opts.grace, '--grace');
  const kind = opts.emit!;
  const file = resolve(opts.out ?? resolve(dir, kind === 'slurm' ? 'sweep.slurm' : 'sweep.sh'));
  const common = { dir, soapTrain: soapTrainBin(), timeLimit: opts.timeLimit };
  const text = kind === 'slurm' ? slurmScript(plan, { ...common, graceSeconds: grace, sbatch: opts.sbatch }) : shellScript(plan, common);
  mkdirSync(resolve(dir, 'logs'), { recursive: true }); // Slurm does not create the --output folder
  writeFileSync(file, text);
  chmodSync(file, 0o755);
  return file;
}

/** The last non-empty line of a log, for the one-line failure report. */
function lastLogLine(file: string): string {
  try {
    const fd = openSync(file, 'r');
    try {
      const size = fstatSync(fd).size;
      const length = Math.min(size, 4096);
      const buf = Buffer.alloc(length);
      readSync(fd, buf, 0, length, size - length);
      return buf.toString('utf8').trim().split('\n').at(-1)?.trim() ?? '';
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

function progressLine(name: string, e: SweepEvent): string | null {
  const running = (list: string[]) => (list.length > 0 ? `; running: ${list.join(', ')}` : '');
  switch (e.type) {
    case 'skip':
      return `sweep ${name}: [${e.done}/${e.total}] ${e.run}: already completed, skipped`;
    case 'start':
      return `sweep ${name}: [${e.done}/${e.total}] start ${e.run} (log ${e.log})${running(e.running)}`;
    case 'end': {
      const o = e.outcome;
      const took = o.seconds === null ? '' : ` after ${o.seconds.toFixed(1)} s`;
      if (o.status === 'failed') {
        const last = lastLogLine(e.log);
        return `sweep ${name}: [${e.done}/${e.total}] ${e.run} FAILED (exit ${o.exitCode ?? 'by signal'})${took}${last ? `: ${last}` : ''} (log ${e.log})${running(e.running)}`;
      }
      return `sweep ${name}: [${e.done}/${e.total}] ${e.run} ${o.status.replace('_', ' ')}${took}${running(e.running)}`;
    }
    case 'stopping':
      return `sweep ${name}: stopping: no new runs; ${e.running.length > 0 ? `SIGTERM to ${e.running.join(', ')} (they checkpoint; run the sweep again to resume)` : 'none running'}`;
  }
}

function exitCodeFor(outcomes: readonly RunOutcome[], stopped: boolean): number {
  if (outcomes.some((o) => o.status === 'failed')) return EXIT.failure;
  if (stopped || outcomes.some((o) => o.status === 'interrupted' || o.status === 'not_started')) return EXIT.interrupted;
  if (outcomes.some((o) => o.status === 'time_limit')) return EXIT.resumeMe;
  return EXIT.ok;
}

export async function runSweepCommand(sweepDir: string | undefined, opts: SweepOptions): Promise<number> {
  const jobs = positiveInt(opts.jobs, '--jobs');
  const { plan, dir, fresh } = planFromOptions(sweepDir, opts);
  if (opts.dryRun) {
    printDryRun(plan, dir);
    return EXIT.ok;
  }
  if (opts.collect && opts.emit) throw badInput('--collect and --emit do different things: give one');
  savePlan(dir, plan, fresh);

  if (opts.emit) {
    const file = emitScript(plan, dir, opts);
    const how = opts.emit === 'slurm' ? `sbatch ${file}` : `bash ${file}`;
    process.stdout.write(`wrote ${file} (${plan.runs.length} runs; plan ${planPath(dir)})\nstart it with: ${how}\n`);
    if (opts.emit === 'slurm') process.stdout.write(`when the tasks are done: soap-train sweep ${dir} --collect\n`);
    return EXIT.ok;
  }

  if (opts.collect) {
    const results = collectResults(dir, plan);
    const files = writeResults(dir, results);
    process.stdout.write(formatSweepText(results));
    process.stderr.write(`sweep ${plan.name}: wrote ${files.json} and ${files.md}\n`);
    return EXIT.ok;
  }

  process.stderr.write(`sweep ${plan.name}: ${plan.runs.length} runs in ${dir}, ${jobs} at a time\n`);
  const sweep = new LocalSweep({
    plan,
    dir,
    command: trainerCommand(),
    jobs,
    timeLimit: opts.timeLimit,
    onEvent: (e) => {
      const line = progressLine(plan.name, e);
      if (line) process.stderr.write(`${line}\n`);
    },
  });
  let stopped = false;
  const onSignal = () => {
    stopped = true;
    sweep.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let outcomes: RunOutcome[];
  try {
    outcomes = await sweep.run();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const results = collectResults(dir, plan, outcomes);
  const files = writeResults(dir, results);
  process.stdout.write(formatSweepText(results));
  process.stderr.write(`sweep ${plan.name}: wrote ${files.json} and ${files.md}\n`);
  return exitCodeFor(outcomes, stopped);
}
