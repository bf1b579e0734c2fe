/**
 * Append-only JSON-lines files (metrics.jsonl, eval.jsonl): one object per line, written with
 * a synchronous append so a crash loses at most the row being written.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';

export class JsonlWriter {
  constructor(readonly path: string) {}

  append(row: object): void {
    appendFileSync(this.path, `${JSON.stringify(row)}\n`);
  }
}

/** Reads every complete row (a torn last line from a crash is ignored). */
export function readJsonl<T = Record<string, unknown>>(path: string): T[] {
  if (!existsSync(path)) return [];
  const rows: T[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      rows.push(JSON.parse(line) as T);
    } catch {
      // A partial line can only be the last one, left by a crash mid-append.
    }
  }
  return rows;
}
