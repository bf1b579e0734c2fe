/**
 * Writing a checkpoint so that a crash at any instant leaves the previous ones usable
 * (levanter/torchtitan discipline):
 *
 *   1. `checkpoints/.tmp-step-<N>-<pid>/`: tensors.bin streamed one tensor at a time, index.json
 *   2. meta.json LAST, holding the size and SHA-256 of the other two
 *   3. fsync every file and the folder, rename it to `step-<N>`, fsync `checkpoints/`
 *
 * Until step 3's rename the checkpoint does not exist for anyone; after the parent's fsync it
 * survives a power cut. A crash leaves at most a `.tmp-*` folder, which loaders ignore and
 * `pruneCheckpoints` removes. The tensors arrive as a (possibly async) iterable so the caller
 * can read device tensors lazily, one at a time (`await t.data()`): peak host memory is the
 * largest tensor, not the checkpoint. See state.ts for the tf-facing front (`saveTrainingCheckpoint`).
 */
import { closeSync, existsSync, mkdirSync, openSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SoapTrainError } from '../errors.js';
import { commitDirAtomic } from '../run/atomic.js';
import { crashPoint } from '../run/fault.js';
import { inspectCheckpoint, latestValidCheckpoint } from './discover.js';
import {
  CHECKPOINT_FORMAT,
  META_FILE,
  TMP_PREFIX,
  TRASH_PREFIX,
  checkpointsDir,
  stepDirName,
  type CheckpointMeta,
  type MetaInput,
} from './layout.js';
import { INDEX_FILE, TENSORS_FILE, writeAll, writeTensorFile, type FileWriter, type TensorEntry } from './tensor-file.js';

/** The metadata fields the caller knows, plus the tensors in a fixed order. */
export interface SaveInput extends MetaInput {
  /**
   * `params/<name>` then `optim/<name>/<state>` entries, pulled one at a time. Two identical
   * states given in the same order give byte-identical tensors.bin files.
   */
  tensors: AsyncIterable<[string, TensorEntry]> | Iterable<[string, TensorEntry]>;
}

export interface SaveOptions {
  /** Replaces the low-level file writer; tests inject ENOSPC through it. */
  write?: FileWriter;
}

export interface SavedCheckpoint {
  /** The `step-<N>` folder. */
  dir: string;
  /** Bytes on disk (tensors.bin + index.json; meta.json's few KiB not counted). */
  bytes: number;
  /** Wall-clock time of the save, in milliseconds. */
  ms: number;
  /** True when a valid checkpoint of this step was already there and was kept as it is. */
  reused: boolean;
}

/** Temp folders being written by this process right now; prune leaves them alone. */
const writing = new Set<string>();

/** Whether `dir` is a temp folder this process is writing at the moment. */
export function isBeingWritten(dir: string): boolean {
  return writing.has(dir);
}

/** errno codes that mean "no room": the disk, or this user's quota, is full. */
const NO_SPACE = new Set(['ENOSPC', 'EDQUOT']);

/**
 * Writes the checkpoint of `input.step` atomically under `runDir/checkpoints/step-<N>/` and
 * returns its folder, size and time.
 *
 * - A valid checkpoint of the same step already there (full check) is kept and `reused` is
 *   true: the state at a step is a pure function of the run, so rewriting it adds nothing and
 *   would open a window with no `step-<N>` at all. An invalid one is replaced.
 * - Disk full (ENOSPC/EDQUOT) anywhere in the write: the temp folder is removed, earlier
 *   checkpoints are untouched, and a SoapTrainError with exit code 1 names the newest valid
 *   checkpoint that stays usable. Other errors also remove the temp folder and are rethrown.
 */
export async function saveCheckpoint(runDir: string, input: SaveInput, opts: SaveOptions = {}): Promise<SavedCheckpoint> {
  const started = performance.now();
  const root = checkpointsDir(runDir);
  mkdirSync(root, { recursive: true });
  const name = stepDirName(input.step);
  const final = join(root, name);
  if (existsSync(final)) {
    const existing = inspectCheckpoint(final, input.step, { full: true });
    if (existing.valid) return { dir: final, bytes: existing.bytes, ms: performance.now() - started, reused: true };
  }
  const tmp = join(root, `${TMP_PREFIX}${name}-${process.pid}`);
  const write = opts.write ?? writeAll;
  rmSync(tmp, { recursive: true, force: true }); // our own leftover from an earlier failed attempt
  writing.add(tmp);
  try {
    mkdirSync(tmp);
    const written = await writeTensorFile(tmp, withCrashPoints(input.tensors), write);
    crashPoint();
    const { tensors: _stream, ...fields } = input;
    const meta: CheckpointMeta = {
      format_version: CHECKPOINT_FORMAT,
      ...fields,
      files: { [TENSORS_FILE]: written.tensors, [INDEX_FILE]: written.indexFile },
      created_at: new Date().toISOString(),
    };
    writeNewFile(join(tmp, META_FILE), Buffer.from(`${JSON.stringify(meta, null, 2)}\n`), write);
    crashPoint();
    if (existsSync(final)) {
      // An invalid leftover (a corrupted or half-deleted folder) sits where ours goes: it holds
      // nothing worth keeping, so move it aside atomically and delete it after the commit.
      renameSync(final, join(root, `${TRASH_PREFIX}${name}-${process.pid}`));
    }
    commitDirAtomic(tmp, final);
    crashPoint();
    rmSync(join(root, `${TRASH_PREFIX}${name}-${process.pid}`), { recursive: true, force: true });
    return { dir: final, bytes: written.tensors.bytes + written.indexFile.bytes, ms: performance.now() - started, reused: false };
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (NO_SPACE.has((err as NodeJS.ErrnoException).code ?? '')) {
      const previous = latestValidCheckpoint(runDir);
      throw new SoapTrainError(
        `disk full while writing checkpoint ${name}; ${previous ? `the previous checkpoint ${previous.dir} stays valid` : 'there is no earlier checkpoint'}`,
        { file: final, fix: previous ? 'free disk space, then resume with --resume' : 'free disk space and start again', exitCode: 1 },
      );
    }
    throw err;
  } finally {
    writing.delete(tmp);
  }
}

/** A crash point before each tensor, so the crash tests can kill the writer mid-file. */
async function* withCrashPoints(
  entries: AsyncIterable<[string, TensorEntry]> | Iterable<[string, TensorEntry]>,
): AsyncIterable<[string, TensorEntry]> {
  for await (const entry of entries) {
    crashPoint();
    yield entry;
  }
}

/** Creates `path` (which must not exist) with `bytes` through `write`; the commit fsyncs it. */
function writeNewFile(path: string, bytes: Uint8Array, write: FileWriter): void {
  const fd = openSync(path, 'wx');
  try {
    write(fd, bytes);
  } finally {
    closeSync(fd);
  }
}
