/**
 * Where checkpoints live and what meta.json holds.
 *
 *   runs/<name>/checkpoints/
 *     step-<N>/                 one complete checkpoint (N = optimizer steps taken)
 *       tensors.bin, index.json parameters and optimizer state (format in tensor-file.ts)
 *       meta.json               written LAST, see `CheckpointMeta`
 *     .tmp-step-<N>-<pid>/      a checkpoint being written (or left by a crash: ignored, pruned)
 *     .trash-step-<N>-<pid>/    a folder on its way out (renamed first so deletion is atomic)
 *
 * A `step-<N>` folder counts only if its meta.json parses, has a known `format_version`, and
 * every file it lists is present with the recorded size (cheap check) and SHA-256 (full
 * check, what resuming uses).
 */
import { join } from 'node:path';
import { alignUp, tensorBytes, type FileDigest } from './tensor-file.js';

export type { FileDigest } from './tensor-file.js';

/**
 * Bump when meta.json, the tensor format or an optimizer's state layout changes; loaders read
 * every version in READABLE_FORMATS and refuse others.
 *   1  first format
 *   2  SOAP keeps Q only (format 1 also stored `QT_<i>`; such state loads and the transposes
 *      are dropped at the next step); progress gains checkpoint_s and bad_steps_in_a_row
 */
export const CHECKPOINT_FORMAT = 2;
export const READABLE_FORMATS: readonly number[] = [1, 2];
export const META_FILE = 'meta.json';
export const TMP_PREFIX = '.tmp-';
export const TRASH_PREFIX = '.trash-';

/**
 * meta.json: everything besides tensors that a resumed run needs to continue bit for bit.
 *
 * ```json
 * {"format_version": 2, "step": 200, "tokens_seen": 819200, "wall_clock_s": 61.2,
 *  "rng": {"seed": 3}, "schedule": {"step": 200, "lr": 0.00093},
 *  "optimizer": {"type": "soap", "config": {...}, "counters": {"blocks.0.attn.wq": {"step": 200}}},
 *  "model_config": {...}, "progress": {...},
 *  "files": {"tensors.bin": {"bytes": 123456, "sha256": "ab…"}, "index.json": {"bytes": 2345, "sha256": "cd…"}},
 *  "created_at": "2026-11-24T19:30:12.000Z"}
 * ```
 */
export interface CheckpointMeta {
  format_version: number;
  /** Optimizer steps taken; the folder is `step-<step>`. */
  step: number;
  tokens_seen: number;
  /** Training wall-clock at this step (evaluation excluded), continued by the resumed run. */
  wall_clock_s: number;
  /** Opaque to the checkpoint code: whatever the trainer needs to continue its random streams. */
  rng: Record<string, unknown>;
  /** Opaque schedule position (step, current lr, …), for people and for checks on resume. */
  schedule: Record<string, unknown>;
  /** Registry name, the validated optimizer config, and each parameter's plain counters. */
  optimizer: { type: string; config: Record<string, unknown>; counters: Record<string, Record<string, number>> };
  model_config: Record<string, unknown>;
  /** Running values the trainer's summary continues (best validation loss so far, …). */
  progress?: {
    last_train_loss: number | null;
    last_val_loss: number | null;
    best_val_loss: number | null;
    last_eval_step: number;
    eval_s: number;
    /** Added after format 1 was fixed; absent in older checkpoints (read as 0). */
    checkpoint_s?: number;
    bad_steps_in_a_row?: number;
  };
  /** Size and SHA-256 of every other file in the folder (`tensors.bin`, `index.json`). */
  files: Record<string, FileDigest>;
  /** ISO time the checkpoint was written. */
  created_at: string;
}

/** What the caller of `saveCheckpoint` provides of the metadata (the rest is computed). */
export type MetaInput = Omit<CheckpointMeta, 'files' | 'created_at' | 'format_version'>;

/** One `step-<N>` folder as found on disk. */
export interface CheckpointInfo {
  step: number;
  dir: string;
  /** Bytes of the files meta.json lists (0 when it is invalid before sizes were read). */
  bytes: number;
  valid: boolean;
  /** Why it is not valid: missing meta.json, unknown format, size or checksum mismatch, … */
  reason?: string;
}

/** `<runDir>/checkpoints`, the folder holding every `step-<N>`. */
export function checkpointsDir(runDir: string): string {
  return join(runDir, 'checkpoints');
}

/** `step-<N>`: a checkpoint folder's name. */
export function stepDirName(step: number): string {
  return `step-${step}`;
}

/** The step of a `step-<N>` folder name, or null for anything else. */
export function parseStepDirName(name: string): number | null {
  const m = /^step-(\d+)$/.exec(name);
  return m ? Number(m[1]) : null;
}

/**
 * Size of a checkpoint's tensors.bin, computed from shapes without allocating anything (for
 * `inspect`). `paramShapes` are the model's parameters; `optimizerStateBytes` is either the
 * total optimizer-state bytes or a per-shape function (`RuleOptimizer.stateBytes`).
 *
 *   params    = Σ alignUp(4 · numel(shape))            exact
 *   optimizer = Σ alignUp(stateBytes(shape))           within 4 bytes per state tensor (each
 *                                                      float32 array pads by 0 or 4)
 *   indexBytes ≈ 100 bytes per tensor                  index.json; meta.json adds a few KiB
 */
export function checkpointBytes(
  paramShapes: Record<string, readonly number[]>,
  optimizerStateBytes: number | ((shape: readonly number[]) => number),
): { params: number; optimizer: number; indexBytes: number; total: number } {
  let params = 0;
  let optimizer = typeof optimizerStateBytes === 'number' ? optimizerStateBytes : 0;
  let tensors = 0;
  for (const shape of Object.values(paramShapes)) {
    params += alignUp(tensorBytes(shape));
    tensors += 1;
    if (typeof optimizerStateBytes === 'function') {
      const state = optimizerStateBytes(shape);
      optimizer += alignUp(state);
      // The index only needs an estimate: assume about two state tensors per parameter.
      tensors += state > 0 ? 2 : 0;
    }
  }
  const indexBytes = 100 * tensors;
  return { params, optimizer, indexBytes, total: params + optimizer + indexBytes };
}
