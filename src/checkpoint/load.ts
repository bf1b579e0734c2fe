/**
 * Loading the newest checkpoint that is whole, without a second copy of it in memory.
 *
 * Newest first, each candidate is checked by size (cheap), then index.json by checksum, then
 * tensors.bin by checksum in one streaming pass through a bounded buffer (no tensor kept). A
 * candidate that fails any check (truncated, corrupted, missing files, a crash before
 * meta.json, an I/O error or a read that ends early) is reported to `onSkip` so the trainer can
 * log a warning naming it, and the previous one is tried.
 *
 * The result holds no tensors: `readTensor(key)` reads one tensor's bytes from the verified
 * file into a fresh typed array when asked. Making a tf tensor of each and dropping the array
 * is the trainer's job (`restoreParams`, `restoreOptimizer` in state.ts, which pull tensors one
 * at a time), so host memory holds at most one tensor besides what tf holds, and this module
 * stays free of any backend.
 */
import { SoapTrainError, badInput } from '../errors.js';
import { inspectCheckpoint, listCheckpoints } from './discover.js';
import { checkpointsDir, type CheckpointInfo, type CheckpointMeta } from './layout.js';
import { INDEX_FILE, TENSORS_FILE, isIoError, openTensorFile, type FileReader, type TensorEntry, type TensorIndex, type TensorSource } from './tensor-file.js';

/** A verified checkpoint whose tensors are read on demand, one at a time. */
export interface LoadedCheckpoint extends TensorSource {
  meta: CheckpointMeta;
  /** The `step-<N>` folder it came from. */
  dir: string;
  /** index.json: each `params/<name>` and `optim/<name>/<state>` key's dtype, shape and place, in file order. */
  index: TensorIndex;
  /**
   * Reads one tensor (positioned read of its bytes) into a fresh typed array the caller owns;
   * nothing is cached. Throws a SoapTrainError naming tensors.bin if it became unreadable or
   * was replaced since it was verified, and a plain Error for a key not in `index`.
   */
  readTensor(key: string): TensorEntry;
}

/** Called for each checkpoint passed over; `reason` repeats `info.reason` for convenience. */
export type SkipHandler = (info: CheckpointInfo, reason: string) => void;

export interface LoadOptions {
  onSkip?: SkipHandler;
  /** Replaces the positioned read of tensors.bin; tests inject I/O errors through it. */
  read?: FileReader;
}

/**
 * Opens one checkpoint folder with full verification (sizes, both checksums, index sanity)
 * before returning it. Throws a SoapTrainError naming the folder and what is wrong (bad input,
 * exit 2), or an I/O error (EIO, EACCES, …) of reading meta.json or index.json as it is.
 */
export function loadCheckpoint(dir: string, step: number, opts: Pick<LoadOptions, 'read'> = {}): LoadedCheckpoint {
  const checked = inspectCheckpoint(dir, step, { full: true, skipHashOf: [TENSORS_FILE] });
  if (!checked.valid || !checked.meta) {
    throw badInput(checked.reason ?? 'invalid checkpoint', { file: dir, fix: 'use an earlier checkpoint' });
  }
  const file = openTensorFile(dir, { expectSha256: checked.meta.files[TENSORS_FILE].sha256, read: opts.read });
  return { meta: checked.meta, dir, index: file.index, readTensor: file.readTensor };
}

/**
 * The newest checkpoint of `runDir` that passes the full check. Invalid newer ones are passed
 * to `onSkip` (a function is accepted in place of the options, for brevity) and skipped; an
 * I/O error reading one counts as invalid (the reason carries the system's message).
 *
 * Returns null when the run has no `step-<N>` folder at all (it crashed before its first
 * checkpoint: the caller starts from scratch). Throws a bad-input SoapTrainError (exit 2)
 * naming the checkpoints folder and each folder's reason when there are checkpoints and none
 * is valid.
 */
export function loadLatestValidCheckpoint(runDir: string, opts: LoadOptions | SkipHandler = {}): LoadedCheckpoint | null {
  const onSkip = typeof opts === 'function' ? opts : (opts.onSkip ?? (() => {}));
  const read = typeof opts === 'function' ? undefined : opts.read;
  const all = listCheckpoints(runDir);
  if (all.length === 0) return null;
  const reasons: string[] = [];
  for (const candidate of [...all].reverse()) {
    let reason: string;
    if (!candidate.valid) {
      reason = candidate.reason ?? 'invalid';
    } else {
      try {
        return loadCheckpoint(candidate.dir, candidate.step, { read });
      } catch (err) {
        if (err instanceof SoapTrainError) reason = describe(err, candidate.dir);
        else if (isIoError(err)) reason = `unreadable: ${err.message}`;
        else throw err; // a bug, not a bad checkpoint
      }
    }
    reasons.push(`step-${candidate.step}: ${reason}`);
    onSkip({ ...candidate, valid: false, reason }, reason);
  }
  throw badInput(`no valid checkpoint among ${all.length} (${reasons.join('; ')})`, {
    file: checkpointsDir(runDir),
    fix: 'start a new run under another --name, or restore a checkpoint folder from a backup',
  });
}

/** The error's one-line text without the folder prefix (the caller names the folder). */
function describe(err: SoapTrainError, dir: string): string {
  const file = err.file?.startsWith(dir) ? err.file.slice(dir.length + 1) : err.file;
  if (file === TENSORS_FILE || file === INDEX_FILE) return `${file} ${err.message}`;
  return err.message;
}
