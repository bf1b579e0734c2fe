/**
 * Where a report goes. By default a one-run report lives inside that run (`<run>/report/`, the
 * trainer never writes there), and a report on several runs goes to `reports/<date>-<time>/`
 * under the working directory. A report may overwrite an earlier report (it writes the same
 * file names), but never a directory it did not make: that would lose someone's files silently.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { badInput } from '../errors.js';

/** report.json: the report's numbers for scripts, and the mark of a directory `report` made. */
export const REPORT_JSON = 'report.json';
export const REPORT_GENERATOR = 'soap-train report';

function stamp(now: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}-${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`;
}

export function defaultOutDir(runDirs: readonly string[], cwd = process.cwd(), now = new Date()): string {
  return runDirs.length === 1 ? join(runDirs[0], 'report') : resolve(cwd, 'reports', stamp(now));
}

function madeByReport(dir: string): boolean {
  const marker = join(dir, REPORT_JSON);
  if (!existsSync(marker)) return false;
  try {
    return (JSON.parse(readFileSync(marker, 'utf8')) as { generator?: unknown }).generator === REPORT_GENERATOR;
  } catch {
    return false;
  }
}

/** Creates the directory, or checks that an existing one is empty or an earlier report. */
export function prepareOutDir(dir: string): string {
  const abs = resolve(dir);
  if (existsSync(abs)) {
    if (!statSync(abs).isDirectory()) throw badInput('--out is a file, not a directory', { file: dir, fix: 'pass a new or empty directory' });
    if (readdirSync(abs).length > 0 && !madeByReport(abs)) {
      throw badInput('--out is not empty and holds no earlier report; refusing to write into it', {
        file: dir,
        fix: 'pass a new or empty directory, or the directory of an earlier report',
      });
    }
  }
  mkdirSync(abs, { recursive: true });
  return abs;
}
