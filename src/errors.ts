/**
 * The one error type the CLI turns into a one-line message and an exit code.
 *
 * Every bad input (config, data, arguments, checkpoint, run directory) is raised as a
 * `SoapTrainError` that names the file, the dotted field and the fix, so the user reads one
 * line and knows what to change. Anything else that escapes is a bug or an environment failure.
 */
export type ExitCode = 0 | 1 | 2 | 130;

export interface ErrorPlace {
  /** The file the problem is in (config, shard, checkpoint), when there is one. */
  file?: string;
  /** The dotted config field (`optimizer.lr`) or the part of the file that is wrong. */
  field?: string;
  /** What the user should do about it. */
  fix?: string;
  /** Exit code for the CLI: 2 for bad input (default), 1 for a failure. */
  exitCode?: ExitCode;
}

export class SoapTrainError extends Error {
  readonly file?: string;
  readonly field?: string;
  readonly fix?: string;
  readonly exitCode: ExitCode;

  constructor(message: string, place: ErrorPlace = {}) {
    super(message);
    this.name = 'SoapTrainError';
    this.file = place.file;
    this.field = place.field;
    this.fix = place.fix;
    this.exitCode = place.exitCode ?? 2;
  }

  /** `file: field: message (fix)` on one line. */
  oneLine(): string {
    const where = [this.file, this.field].filter(Boolean).join(': ');
    const fix = this.fix ? ` (${this.fix})` : '';
    return `${where ? `${where}: ` : ''}${this.message}${fix}`.replace(/\s*\n\s*/g, ' ');
  }
}

/** Shorthand for a bad-input error (exit 2). */
export function badInput(message: string, place: Omit<ErrorPlace, 'exitCode'> = {}): SoapTrainError {
  return new SoapTrainError(message, { ...place, exitCode: 2 });
}
