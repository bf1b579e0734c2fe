/** `soap-train compare`: placeholder, being written. */
import { Command } from 'commander';

export function compareCommand(): Command {
  return new Command('compare').description('(not yet implemented)').action(() => {
    throw new Error('soap-train compare: not yet implemented');
  });
}
