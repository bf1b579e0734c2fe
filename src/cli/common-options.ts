/**
 * Options shared by the commands that read a config (`train`, `inspect`): --config and --set.
 */
import { Command, Option } from 'commander';
import { loadConfig, parseOverride, type LoadedConfig } from '../config/load.js';
import { badInput } from '../errors.js';

export interface ConfigOptions {
  config?: string;
  set: string[];
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function addConfigOptions(cmd: Command, required = true): Command {
  const config = new Option('-c, --config <file>', 'experiment config (YAML); may `extends:` another file');
  if (required) config.makeOptionMandatory();
  return cmd
    .addOption(config)
    .option('-s, --set <key=value>', 'override a config field, e.g. --set optimizer.lr=3e-3 (repeatable; value parsed as YAML)', collect, []);
}

export function loadFromOptions(opts: ConfigOptions): LoadedConfig {
  if (!opts.config) throw badInput('--config FILE is required');
  return loadConfig(opts.config, opts.set.map(parseOverride));
}
