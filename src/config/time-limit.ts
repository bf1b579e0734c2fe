/**
 * Slurm's time-limit formats (`sbatch --time`), so `--time-limit` accepts what a job script
 * already has: "minutes", "minutes:seconds", "hours:minutes:seconds", "days-hours",
 * "days-hours:minutes" and "days-hours:minutes:seconds".
 */
import { badInput } from '../errors.js';

/** Seconds in a Slurm-style time limit, e.g. `1-12:00:00` → 129600, `90` → 5400, `30:00` → 1800. */
export function parseTimeLimit(text: string): number {
  const m = /^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$/.exec(text.trim());
  if (!m) throw badInput(`--time-limit ${JSON.stringify(text)}: expected Slurm's format, e.g. 90 (minutes), 30:00, 12:00:00 or 1-12:00:00`);
  const [, days, a, b, c] = m;
  const n = (s: string | undefined) => (s === undefined ? 0 : Number(s));
  let seconds: number;
  if (days !== undefined) {
    // days-hours[:minutes[:seconds]]
    seconds = n(days) * 86400 + n(a) * 3600 + n(b) * 60 + n(c);
  } else if (c !== undefined) {
    seconds = n(a) * 3600 + n(b) * 60 + n(c); // hours:minutes:seconds
  } else if (b !== undefined) {
    seconds = n(a) * 60 + n(b); // minutes:seconds
  } else {
    seconds = n(a) * 60; // minutes
  }
  if (seconds <= 0) throw badInput(`--time-limit ${JSON.stringify(text)}: the limit must be positive`);
  return seconds;
}
