/** `soap-train sweep`: placeholder, being written. */
import { Command } from 'commander';

export function sweepCommand(): Command {
  return new Command('sweep').description('(not yet implemented)').action(() => {
    throw new Error('soap-train sweep: not yet implemented');
  });
}
