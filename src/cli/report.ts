/** `soap-train report`: placeholder, being written. */
import { Command } from 'commander';

export function reportCommand(): Command {
  return new Command('report').description('(not yet implemented)').action(() => {
    throw new Error('soap-train report: not yet implemented');
  });
}
