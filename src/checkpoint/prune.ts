/**
 * Removing old checkpoints (torchtitan's keep-last-k, k ≥ 2, plus levanter-style permanent
 * ones every `keepEvery` steps).
 *
 * k ≥ 2 because the newest checkpoint may be unreadable in a way the cheap size check does not
 * see (a flipped bit): the one before it must still be there when resuming falls back. Deleting
 * is made atomic the same way writing is: the folder is renamed to `.trash-*` first, so a crash
 * mid-delete never leaves a half-deleted `step-<N>` that looks like a checkpoint.
 */
import { existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { badInput } from '../errors.js';
import { fsyncDir } from '../run/atomic.js';
import { listCheckpoints } from './discover.js';
import { TMP_PREFIX, TRASH_PREFIX, checkpointsDir } from './layout.js';
import { isBeingWritten } from './save.js';

export interface PruneOptions {
  /** Keep the newest this many valid checkpoints; at least 2. */
  keep: number;
  /** Also keep every valid checkpoint whose step is a multiple of this; 0 or absent: none. */
  keepEvery?: number;
}

/**
 * Deletes what is no longer needed and returns the removed `step-<N>` folders:
 *
 *   kept     the newest `keep` valid checkpoints (cheap check), every valid one whose step is a
 *            multiple of `keepEvery`, and invalid folders newer than the newest valid one (they
 *            may be evidence; resuming skips them and a save of that step replaces them)
 *   removed  every other `step-<N>` folder, and stale `.tmp-*` / `.trash-*` folders (left by a
 *            crash; the run lock guarantees no other process is writing them)
 *
 * The newest valid checkpoint is never removed. `keep` < 2 is a bad-input error.
 */
export function pruneCheckpoints(runDir: string, opts: PruneOptions): string[] {
  if (!Number.isInteger(opts.keep) || opts.keep < 2) {
    throw badInput(`keep is ${opts.keep}; it must be at least 2 so a valid checkpoint survives a crash mid-write`, {
      field: 'checkpoint.keep',
      fix: 'set checkpoint.keep to 2 or more',
    });
  }
  const keepEvery = opts.keepEvery ?? 0;
  const root = checkpointsDir(runDir);
  if (!existsSync(root)) return [];
  const all = listCheckpoints(runDir);
  const valid = all.filter((c) => c.valid);
  const newest = valid.at(-1)?.step ?? Infinity;
  const keepSteps = new Set(valid.slice(-opts.keep).map((c) => c.step));
  const removed: string[] = [];
  for (const c of all) {
    const permanent = c.valid && keepEvery > 0 && c.step % keepEvery === 0;
    const drop = c.valid ? !keepSteps.has(c.step) && !permanent : c.step < newest;
    if (!drop) continue;
    const trash = join(root, `${TRASH_PREFIX}step-${c.step}-${process.pid}`);
    rmSync(trash, { recursive: true, force: true });
    renameSync(c.dir, trash);
    removed.push(c.dir);
  }
  // Make the renames durable before deleting contents, so a crash cannot bring back a
  // `step-<N>` with half its files gone (it would be skipped as invalid, but still clutter).
  if (removed.length > 0) fsyncDir(root);
  for (const name of readdirSync(root)) {
    const path = join(root, name);
    if ((name.startsWith(TMP_PREFIX) || name.startsWith(TRASH_PREFIX)) && !isBeingWritten(path)) {
      rmSync(path, { recursive: true, force: true });
    }
  }
  return removed;
}
