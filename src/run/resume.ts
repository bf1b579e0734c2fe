/**
 * What resuming a run changes in its directory, and what it refuses.
 *
 * A resumed run must be the same run: the model, optimizer and data sections (and the batch
 * shape and seed) must equal those it was started with. Safe changes, documented in the README:
 * more steps (`train.steps`, which also stretches a cosine schedule that has no explicit
 * `schedule.decay_steps`), `schedule.decay_steps`, the evaluation, logging and checkpoint
 * cadence, `train.max_bad_steps` and the backend.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './atomic.js';
import { readJsonl } from './jsonl.js';

const SAFE_FIELDS = [
  'backend',
  'train.steps',
  'train.eval_interval',
  'train.eval_steps',
  'train.log_interval',
  'train.max_bad_steps',
  'train.max_wall_s',
  'train.stop_grace_s',
  'schedule.decay_steps',
  'checkpoint.interval',
  'checkpoint.interval_s',
  'checkpoint.keep',
  'checkpoint.keep_every',
];

function flatten(value: unknown, prefix: string, out: Map<string, string>): Map<string, string> {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.set(prefix, JSON.stringify(value));
  }
  return out;
}

/** Dotted fields whose values differ between the run's config and the new one and are not safe to change. */
export function unsafeConfigChanges(previous: object, next: object): string[] {
  const a = flatten(previous, '', new Map());
  const b = flatten(next, '', new Map());
  const fields = new Set([...a.keys(), ...b.keys()]);
  return [...fields].filter((f) => a.get(f) !== b.get(f) && !SAFE_FIELDS.includes(f)).sort();
}

/**
 * Drops the rows of a JSON-lines file whose `step` is past `step` (rewritten atomically), so a
 * resumed run's curves have no duplicate steps. Returns the last row that was dropped, if any.
 */
export function truncateJsonlAfter(path: string, step: number): Record<string, unknown> | null {
  const rows = readJsonl(path);
  const kept = rows.filter((r) => typeof r.step === 'number' && r.step <= step);
  if (kept.length === rows.length) return null;
  writeFileAtomic(path, kept.map((r) => `${JSON.stringify(r)}\n`).join(''));
  return rows.at(-1) ?? null;
}

/** Appends an entry to manifest.json's `resumes` list. */
export function recordResume(manifestPath: string, entry: Record<string, unknown>): void {
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { resumes?: unknown[] };
  manifest.resumes = [...(manifest.resumes ?? []), entry];
  writeFileAtomic(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
}
