/**
 * The CLI's one error handler: a `SoapTrainError` becomes one line on stderr and its exit code
 * (2 for bad input, 1 for a failure); anything else is a bug, printed with its stack, exit 1.
 */
import { SoapTrainError } from '../errors.js';
import { OptimizerConfigError } from '../optim/registry.js';

export const EXIT = { ok: 0, failure: 1, badInput: 2, interrupted: 130 } as const;

export function reportError(err: unknown): number {
  if (err instanceof SoapTrainError) {
    process.stderr.write(`soap-train: error: ${err.oneLine()}\n`);
    return err.exitCode;
  }
  if (err instanceof OptimizerConfigError) {
    process.stderr.write(`soap-train: error: ${err.message}\n`);
    return EXIT.badInput;
  }
  process.stderr.write(`soap-train: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return EXIT.failure;
}
