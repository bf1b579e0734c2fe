/**
 * The soap-train command line. `soap-train --config FILE` is `soap-train train --config FILE`.
 * Exit codes: 0 done, 2 bad input (config, data, arguments), 1 failure, 130 interrupted.
 */
import { Command, CommanderError } from 'commander';
import { packageVersion } from '../run/manifest.js';
import { inspectCommand } from './inspect.js';
import { optimizersCommand } from './optimizers.js';
import { prepareCommand } from './prepare.js';
import { compareCommand } from './compare.js';
import { reportCommand } from './report.js';
import { sweepCommand } from './sweep.js';
import { EXIT, reportError } from './errors.js';
import { addTrainOptions, resumeCommand, runTrain, trainCommand, type TrainOptions } from './train.js';

export function buildProgram(): Command {
  const program = new Command('soap-train')
    .description('Language-model pre-training with SOAP, Shampoo and AdamW side by side (TensorFlow.js)')
    .version(packageVersion())
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  // The root accepts the train options so `soap-train --config X` trains.
  addTrainOptions(program, false).action(async (opts: TrainOptions) => {
    process.exitCode = await runTrain(opts);
  });
  for (const cmd of [trainCommand(), resumeCommand(), inspectCommand(), optimizersCommand(), prepareCommand(), reportCommand(), compareCommand(), sweepCommand()]) {
    program.addCommand(cmd.exitOverride());
  }
  // Options of the root's train action are mandatory only when no subcommand is named.
  program.enablePositionalOptions();
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  if (argv.length === 0) {
    program.outputHelp();
    return EXIT.badInput;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; argument errors were already printed by commander.
      return err.exitCode === 0 ? EXIT.ok : EXIT.badInput;
    }
    return reportError(err);
  }
}
