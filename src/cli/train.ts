/**
 * `soap-train train --config FILE` (also the default command): one training run.
 *
 * Order matters for "bad input writes nothing": the config is validated and the shards are
 * opened (headers checked) before the run directory is created.
 */
import { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { pino } from 'pino';
import { stringify as toYaml } from 'yaml';
import { selectBackend } from '../backend/select.js';
import { openTokenDataset } from '../data/dataset.js';
import { buildManifest } from '../run/manifest.js';
import { chooseRunDir, createRunDir } from '../run/run-dir.js';
import { train } from '../train/trainer.js';
import { addConfigOptions, loadFromOptions, type ConfigOptions } from './common-options.js';
import { EXIT } from './errors.js';

export interface TrainOptions extends ConfigOptions {
  runDir?: string;
  name?: string;
}

export function addTrainOptions(cmd: Command, configRequired = true): Command {
  return addConfigOptions(cmd, configRequired)
    .option('--name <name>', 'run name: the run goes to runs/<name>/ (default: <config stem>-<date>-<time>)')
    .option('--run-dir <dir>', 'explicit run directory (overrides --name); must not exist yet');
}

export function trainCommand(): Command {
  return addTrainOptions(new Command('train').description('train a model from a YAML config and write a run directory')).action(
    async (opts: TrainOptions) => {
      process.exitCode = await runTrain(opts);
    },
  );
}

/** Runs one training job; resolves to the process exit code. */
export async function runTrain(opts: TrainOptions): Promise<number> {
  const loaded = loadFromOptions(opts);
  const { config } = loaded;
  const dataOpts = { baseDirs: loaded.baseDirs, vocabSize: config.model.vocab_size, raw: config.data.raw };
  const trainData = openTokenDataset(config.data.train, { ...dataOpts, field: 'data.train', configFile: loaded.file });
  const valData = openTokenDataset(config.data.val, { ...dataOpts, field: 'data.val', configFile: loaded.file });
  const runDir = chooseRunDir({ runDir: opts.runDir, name: opts.name, configFile: loaded.file });
  const backend = await selectBackend(config.backend);
  const paths = createRunDir(runDir);

  writeFileSync(paths.config, toYaml(config));
  writeFileSync(paths.manifest, `${JSON.stringify({ ...buildManifest(loaded.file, backend), run_dir: paths.dir }, null, 2)}\n`);
  const logger = pino({ base: undefined }, pino.destination({ dest: paths.log, sync: true }));
  logger.info({ event: 'backend', ...backend }, `backend ${backend.name}`);
  process.stderr.write(`soap-train: run ${paths.dir} (backend ${backend.name}: ${backend.reason})\n`);

  let stop = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop) process.exit(EXIT.interrupted); // a second Ctrl-C does not wait
    stop = true;
    logger.warn({ event: 'signal', signal }, 'stopping after the current step');
    process.stderr.write(`\nsoap-train: ${signal}: finishing the current step (again to quit now)\n`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const summary = await train({ config, paths, trainData, valData, logger, backend: backend.name, stopRequested: () => stop });
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
  }
}
