/**
 * Loading the newest checkpoint that is whole.
 *
 * Newest first, each candidate is checked by size (cheap), then index.json by checksum, then
 * tensors.bin is read and hashed in the same pass. A candidate that fails any check (truncated,
 * corrupted, missing files, a crash before meta.json) is reported to `onSkip` so the trainer can
 * log a warning naming it, and the previous one is tried. Tensors come back as typed arrays;
 * making tf tensors of them is the trainer's job (see state.ts), which keeps this module free of
 * any backend.
 */
import { SoapTrainError, badInput } from '../errors.js';
import { inspectCheckpoint, listCheckpoints } from './discover.js';
import { checkpointsDir, type CheckpointInfo, type CheckpointMeta } from './layout.js';
import { INDEX_FILE, TENSORS_FILE, readTensorFile, type TensorEntry } from './tensor-file.js';

/** A checkpoint read into memory. */
export interface LoadedCheckpoint {
  meta: CheckpointMeta;
  /** `params/<name>` and `optim/<name>/<state>` → typed array with dtype and shape. */
  tensors: Map<string, TensorEntry>;
  /** The `step-<N>` folder it came from. */
  dir: string;
}

/** Called for each checkpoint passed over; `reason` repeats `info.reason` for convenience. */
export type SkipHandler = (info: CheckpointInfo, reason: string) => void;

export interface LoadOptions {
  onSkip?: SkipHandler;
}

/**
 * Reads one checkpoint folder with full verification (sizes, both checksums, index sanity),
 * hashing tensors.bin while reading it. Throws a bad-input SoapTrainError naming the folder
 * and what is wrong.
 */
export function loadCheckpoint(dir: string, step: number): LoadedCheckpoint {
  const checked = inspectCheckpoint(dir, step, { full: true, skipHashOf: [TENSORS_FILE] });
  if (!checked.valid || !checked.meta) {
    throw badInput(checked.reason ?? 'invalid checkpoint', { file: dir, fix: 'use an earlier checkpoint' });
  }
  const tensors = readTensorFile(dir, { expectSha256: checked.meta.files[TENSORS_FILE].sha256 });
  return { meta: checked.meta, tensors, dir };
}

/**
 * The newest checkpoint of `runDir` that passes the full check. Invalid newer ones are passed
 * to `onSkip` (a function is accepted in place of the options, for brevity) and skipped.
 *
 * Returns null when the run has no `step-<N>` folder at all (it crashed before its first
 * checkpoint: the caller starts from scratch). Throws a bad-input SoapTrainError (exit 2)
 * naming the checkpoints folder and each folder's reason when there are checkpoints and none
 * is valid.
 */
export function loadLatestValidCheckpoint(runDir: string, opts: LoadOptions | SkipHandler = {}): LoadedCheckpoint | null {
  const onSkip = typeof opts === 'function' ? opts : (opts.onSkip ?? (() => {}));
  const all = listCheckpoints(runDir);
  if (all.length === 0) return null;
  const reasons: string[] = [];
  for (const candidate of [...all].reverse()) {
    let reason: string;
    if (!candidate.valid) {
      reason = candidate.reason ?? 'invalid';
    } else {
      try {
        return loadCheckpoint(candidate.dir, candidate.step);
      } catch (err) {
        if (!(err instanceof SoapTrainError)) throw err; // an I/O failure is not a bad checkpoint
        reason = describe(err, candidate.dir);
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
