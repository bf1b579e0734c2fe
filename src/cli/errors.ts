/**
 * The CLI's one error handler: a `SoapTrainError` becomes one line on stderr and its exit code
 * (2 for bad input, 1 for a failure); so does running out of memory (exit 1: a wasm
 * "memory access out of bounds", a failed host or TensorFlow allocation); anything else is a
 * bug, printed with its stack, exit 1.
 */
import { SoapTrainError } from '../errors.js';
import { OptimizerConfigError } from '../optim/registry.js';
import { explainOutOfMemory } from '../train/memory-plan.js';

/** 75 (EX_TEMPFAIL): stopped with a checkpoint at its time limit; run the same command (or `resume`) to continue. */
export const EXIT = { ok: 0, failure: 1, badInput: 2, resumeMe: 75, interrupted: 130 } as const;

export function reportError(thrown: unknown): number {
  // runExperiment already names the plan's sizes; an out-of-memory error from elsewhere gets the line without them.
  const err = explainOutOfMemory(thrown);
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
