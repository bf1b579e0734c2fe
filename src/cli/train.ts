/**
 * `soap-train train --config FILE` (also the default command), `--resume`, and
 * `soap-train resume runs/<name>`: parse, validate, wire Ctrl-C/SIGTERM to an AbortController,
 * call `runExperiment`, map its result to an exit code. The run lifecycle is in run/experiment.ts.
 */
import { Command } from 'commander';
import { resolve } from 'node:path';
import { loadConfig, parseOverride } from '../config/load.js';
import { parseTimeLimit } from '../config/time-limit.js';
import { badInput } from '../errors.js';
import { loadRunConfig, runExperiment } from '../run/experiment.js';
import { chooseRunDir } from '../run/run-dir.js';
import { addConfigOptions, type ConfigOptions } from './common-options.js';
import { EXIT } from './errors.js';
import { consoleProgress } from './progress.js';

export interface TrainOptions extends ConfigOptions {
  runDir?: string;
  name?: string;
  resume?: boolean;
  timeLimit?: string;
}

export function addTrainOptions(cmd: Command, configRequired = true): Command {
  return addConfigOptions(cmd, configRequired)
    .option('--name <name>', 'run name: the run goes to runs/<name>/ (default: <config stem>-<date>-<time>)')
    .option('--run-dir <dir>', 'explicit run directory (overrides --name)')
    .option('--resume', 'continue the run in --name/--run-dir from its newest valid checkpoint (start it if it does not exist)')
    .option('--time-limit <limit>', "checkpoint and exit 75 (resume me) before this wall time, in Slurm's format: 90, 30:00, 12:00:00, 1-12:00:00 (sets train.max_wall_s)");
}

export function trainCommand(): Command {
  return addTrainOptions(new Command('train').description('train a model from a YAML config and write a run directory')).action(
    async (opts: TrainOptions) => {
      process.exitCode = await runTrain(opts);
    },
  );
}

export function resumeCommand(): Command {
  return addConfigOptions(new Command('resume'), false)
    .description('continue a run from its newest valid checkpoint, with the config saved in its run directory')
    .argument('<run-dir>', 'the run directory, e.g. runs/tiny-soap-20261124-101500')
    .option('--time-limit <limit>', "checkpoint and exit 75 (resume me) before this wall time, in Slurm's format (sets train.max_wall_s)")
    .action(async (dir: string, opts: ConfigOptions & { timeLimit?: string }) => {
      process.exitCode = await runTrain({ ...opts, runDir: dir, resume: true }, { fromRunDir: true });
    });
}

/** A SIGTERM this soon after the first counts as the same request delivered twice, not a second one. */
const DUPLICATE_SIGTERM_MS = 2000;

/** Runs one training job (new or resumed); resolves to the process exit code. */
export async function runTrain(opts: TrainOptions, how: { fromRunDir?: boolean } = {}): Promise<number> {
  const overrides = opts.set.map(parseOverride);
  if (opts.timeLimit !== undefined) overrides.push(parseOverride(`train.max_wall_s=${parseTimeLimit(opts.timeLimit)}`));
  if (!how.fromRunDir && !opts.config) throw badInput('--config FILE is required', { fix: 'e.g. soap-train --config configs/tiny-adamw.yaml' });
  const loaded = how.fromRunDir ? loadRunConfig(resolve(opts.runDir!), overrides) : loadConfig(opts.config!, overrides);
  if (opts.resume && !opts.name && !opts.runDir) throw badInput('--resume needs the run to continue: --name NAME or --run-dir DIR');
  const runDir = chooseRunDir({ runDir: opts.runDir, name: opts.name, configFile: loaded.file });

  const stop = new AbortController();
  let firstSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      // A second signal quits at once, without the checkpoint. Except the same SIGTERM delivered
      // twice: on preemption Slurm signals every process of the job while the batch script
      // forwards its own, so the trainer can see two within moments of each other.
      if (signal === 'SIGTERM' && performance.now() - firstSignalAt < DUPLICATE_SIGTERM_MS) {
        process.stderr.write('soap-train: SIGTERM again (a duplicate delivery): still writing the checkpoint\n');
        return;
      }
      process.exit(EXIT.interrupted);
    }
    firstSignalAt = performance.now();
    process.stderr.write(`\nsoap-train: ${signal}: finishing the current step and writing a checkpoint (again to quit now)\n`);
    stop.abort(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const summary = await runExperiment(loaded, { runDir, resume: opts.resume, signal: stop.signal, onProgress: consoleProgress() });
    process.stderr.write(
      `soap-train: ${summary.status}: ${summary.steps} steps, val loss ${summary.final_val_loss?.toFixed(4) ?? '-'}, ` +
        `${summary.tokens_per_s} tok/s, ${summary.wall_clock_s.toFixed(1)}s → ${runDir}/summary.json\n`,
    );
    return summary.status === 'interrupted' ? EXIT.interrupted : summary.status === 'time_limit' ? EXIT.resumeMe : EXIT.ok;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
