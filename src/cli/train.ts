/**
 * `soap-train train --config FILE` (also the default command), `--resume`, and
 * `soap-train resume runs/<name>`.
 *
 * Order matters for "bad input writes nothing": the config is validated, the shards are opened
 * (headers checked) and, when resuming, the config compared and a valid checkpoint found before
 * anything in the run directory changes.
 */
import { Command } from 'commander';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pino } from 'pino';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { selectBackend } from '../backend/select.js';
import { loadLatestValidCheckpoint, type LoadedCheckpoint } from '../checkpoint/checkpoint.js';
import { loadConfig, parseOverride, type LoadedConfig, type Override } from '../config/load.js';
import { openTokenDataset } from '../data/dataset.js';
import { checkModelVocab } from '../data/vocab.js';
import { badInput } from '../errors.js';
import { writeFileAtomic } from '../run/atomic.js';
import { acquireRunLock, type RunLock } from '../run/lock.js';
import { buildManifest, type Manifest } from '../run/manifest.js';
import { recordResume, truncateJsonlAfter, unsafeConfigChanges } from '../run/resume.js';
import { chooseRunDir, createRunDir, runPaths, type RunPaths } from '../run/run-dir.js';
import { train } from '../train/trainer.js';
import { addConfigOptions, type ConfigOptions } from './common-options.js';
import { EXIT } from './errors.js';

export interface TrainOptions extends ConfigOptions {
  runDir?: string;
  name?: string;
  resume?: boolean;
}

export function addTrainOptions(cmd: Command, configRequired = true): Command {
  return addConfigOptions(cmd, configRequired)
    .option('--name <name>', 'run name: the run goes to runs/<name>/ (default: <config stem>-<date>-<time>)')
    .option('--run-dir <dir>', 'explicit run directory (overrides --name)')
    .option('--resume', 'continue the run in --name/--run-dir from its newest valid checkpoint (start it if it does not exist)');
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
    .action(async (dir: string, opts: ConfigOptions) => {
      process.exitCode = await runTrain({ ...opts, config: opts.config, runDir: dir, resume: true }, { fromRunDir: true });
    });
}

/** The config of an existing run: its config.yaml, with data globs resolved as when it started. */
function loadRunConfig(runDir: string, overrides: Override[]): LoadedConfig {
  const paths = runPaths(runDir);
  if (!existsSync(paths.config)) throw badInput('not a run directory (no config.yaml)', { file: runDir, fix: 'give the path of runs/<name>' });
  const loaded = loadConfig(paths.config, overrides);
  const manifest = JSON.parse(readFileSync(paths.manifest, 'utf8')) as Manifest;
  return { ...loaded, baseDirs: [dirname(manifest.config_file), process.cwd()] };
}

interface OpenedRun {
  paths: RunPaths;
  lock: RunLock;
  resume: LoadedCheckpoint | null;
  fresh: boolean;
}

/** Creates the run directory, or checks and locks an existing one and loads its checkpoint. */
function openRun(runDir: string, loaded: LoadedConfig, opts: TrainOptions, warn: (line: string) => void): OpenedRun {
  if (!opts.resume || !existsSync(runDir)) {
    const paths = createRunDir(runDir);
    return { paths, lock: acquireRunLock(runDir), resume: null, fresh: true };
  }
  const paths = runPaths(runDir);
  if (!existsSync(paths.config)) throw badInput('not a run directory (no config.yaml)', { file: runDir, fix: 'pick another --name' });
  const previous = parseYaml(readFileSync(paths.config, 'utf8')) as object;
  const changed = unsafeConfigChanges(previous, loaded.config);
  if (changed.length > 0) {
    throw badInput(`the config differs from the run's in ${changed.join(', ')}`, {
      file: paths.config,
      fix: 'resume with the same model/optimizer/data/batch settings (only steps, eval/log/checkpoint cadence and backend may change)',
    });
  }
  const lock = acquireRunLock(runDir);
  try {
    if (lock.tookOverStaleFrom !== null) warn(`took over the stale lock of pid ${lock.tookOverStaleFrom}`);
    const resume = loadLatestValidCheckpoint(runDir, (info) => warn(`skipping checkpoint ${info.dir}: ${info.reason}`));
    return { paths, lock, resume, fresh: false };
  } catch (err) {
    lock.release();
    throw err;
  }
}

/** Runs one training job (new or resumed); resolves to the process exit code. */
export async function runTrain(opts: TrainOptions, how: { fromRunDir?: boolean } = {}): Promise<number> {
  const overrides = opts.set.map(parseOverride);
  const loaded = how.fromRunDir ? loadRunConfig(resolve(opts.runDir!), overrides) : loadConfigFromOptions(opts, overrides);
  const { config } = loaded;
  const dataOpts = { baseDirs: loaded.baseDirs, vocabSize: config.model.vocab_size, raw: config.data.raw };
  const trainData = openTokenDataset(config.data.train, { ...dataOpts, field: 'data.train', configFile: loaded.file });
  const valData = openTokenDataset(config.data.val, { ...dataOpts, field: 'data.val', configFile: loaded.file });
  try {
    checkModelVocab([trainData, valData], config.model.vocab_size, { configFile: loaded.file, field: 'model.vocab_size' });
  } catch (err) {
    trainData.close();
    valData.close();
    throw err;
  }
  if (opts.resume && !opts.name && !opts.runDir) {
    throw badInput('--resume needs the run to continue: --name NAME or --run-dir DIR');
  }
  const runDir = chooseRunDir({ runDir: opts.runDir, name: opts.name, configFile: loaded.file });
  const backend = await selectBackend(config.backend);
  const warnings: string[] = [];
  const run = openRun(runDir, loaded, opts, (line) => warnings.push(line));
  const { paths } = run;

  const logger = pino({ base: undefined }, pino.destination({ dest: paths.log, sync: true, append: true }));
  for (const line of warnings) {
    logger.warn({ event: 'resume_warning' }, line);
    process.stderr.write(`soap-train: warning: ${line}\n`);
  }
  if (run.fresh) {
    writeFileSync(paths.config, toYaml(config));
    writeFileSync(paths.manifest, `${JSON.stringify({ ...buildManifest(loaded.file, backend), run_dir: paths.dir }, null, 2)}\n`);
  } else {
    const fromStep = run.resume?.meta.step ?? 0;
    const lastRow = truncateJsonlAfter(paths.metrics, fromStep);
    truncateJsonlAfter(paths.eval, fromStep);
    const lostS = lastRow && typeof lastRow.wall_s === 'number' ? lastRow.wall_s - (run.resume?.meta.wall_clock_s ?? 0) : 0;
    writeFileAtomic(paths.config, toYaml(config));
    recordResume(paths.manifest, { at: new Date().toISOString(), argv: process.argv.slice(2), from_step: fromStep, lost_training_s: Math.max(0, lostS), backend, pid: process.pid });
  }
  logger.info({ event: 'backend', ...backend }, `backend ${backend.name}`);
  const what = run.resume ? `resuming ${paths.dir} from step ${run.resume.meta.step}` : `run ${paths.dir}`;
  process.stderr.write(`soap-train: ${what} (backend ${backend.name}: ${backend.reason})\n`);

  let stop = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop) process.exit(EXIT.interrupted); // a second Ctrl-C does not wait for the checkpoint
    stop = true;
    logger.warn({ event: 'signal', signal }, 'stopping after the current step');
    process.stderr.write(`\nsoap-train: ${signal}: finishing the current step and writing a checkpoint (again to quit now)\n`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const summary = await train({ config, paths, trainData, valData, logger, backend: backend.name, resume: run.resume, stopRequested: () => stop });
    process.stderr.write(
      `soap-train: ${summary.status}: ${summary.steps} steps, val loss ${summary.final_val_loss?.toFixed(4) ?? '-'}, ` +
        `${summary.tokens_per_s} tok/s, ${summary.wall_clock_s.toFixed(1)}s → ${paths.summary}\n`,
    );
    return summary.status === 'interrupted' ? EXIT.interrupted : EXIT.ok;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    trainData.close();
    valData.close();
    run.lock.release();
  }
}

function loadConfigFromOptions(opts: TrainOptions, overrides: Override[]): LoadedConfig {
  if (!opts.config) throw badInput('--config FILE is required', { fix: 'e.g. soap-train --config configs/tiny-adamw.yaml' });
  return loadConfig(opts.config, overrides);
}

