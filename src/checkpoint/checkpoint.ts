/**
 * Checkpoints that lose nothing: `runs/<name>/checkpoints/step-<N>/` holding
 *
 *   tensors.bin, index.json   parameters and the full optimizer state (see tensor-file.ts)
 *   meta.json                 written LAST: format version, step, tokens, clocks, the RNG seed,
 *                             the schedule position, optimizer counters, model config, and the
 *                             size and SHA-256 of every other file
 *
 * A checkpoint is built in `checkpoints/.tmp-step-<N>-<pid>/`, fsynced, renamed into place and
 * the parent fsynced (levanter/torchtitan discipline): a folder named step-<N> with a meta.json
 * whose checksums match is complete, anything else is skipped with a warning.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, openSync, fsyncSync, closeSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { SoapTrainError, badInput } from '../errors.js';
import { fsyncDir } from '../run/atomic.js';
import { crashPoint } from '../run/fault.js';
import { INDEX_FILE, TENSORS_FILE, readTensorFile, writeTensorFile, type FileDigest, type TensorEntry } from './tensor-file.js';

export const CHECKPOINT_FORMAT = 1;
export const META_FILE = 'meta.json';

/** Everything besides tensors that a resumed run needs to continue bit for bit. */
export interface CheckpointMeta {
  format_version: number;
  step: number;
  tokens_seen: number;
  /** Training wall-clock at this step (evaluation excluded), continued by the resumed run. */
  wall_clock_s: number;
  /** Batches and initialisation are pure functions of the seed: it is the whole RNG state. */
  rng: { seed: number };
  schedule: { step: number; lr: number };
  optimizer: { type: string; config: Record<string, unknown>; counters: Record<string, Record<string, number>> };
  model_config: Record<string, unknown>;
  /** Running values the summary reports (best validation loss so far, etc.). */
  progress: {
    last_train_loss: number | null;
    last_val_loss: number | null;
    best_val_loss: number | null;
    last_eval_step: number;
    eval_s: number;
  };
  files: Record<string, FileDigest>;
  created_at: string;
}

export interface CheckpointInfo {
  step: number;
  dir: string;
  bytes: number;
  valid: boolean;
  /** Why it is not valid (missing meta.json, size or checksum mismatch, …). */
  reason?: string;
}

export interface SaveInput extends Omit<CheckpointMeta, 'files' | 'created_at' | 'format_version'> {
  /** Tensors in a fixed order (params, then optimizer state), read lazily one at a time. */
  tensors: AsyncIterable<[string, TensorEntry]>;
}

export function checkpointsDir(runDir: string): string {
  return join(runDir, 'checkpoints');
}

const stepDirName = (step: number) => `step-${step}`;

/**
 * Writes a checkpoint atomically and returns its folder, size and time. On ENOSPC the partial
 * folder is removed and the error names the newest checkpoint that stays valid.
 */
export async function saveCheckpoint(
  runDir: string,
  input: SaveInput,
  /** Replaces the file writer (tests inject ENOSPC through it). */
  write?: (fd: number, buf: Uint8Array) => void,
): Promise<{ dir: string; bytes: number; ms: number }> {
  const started = performance.now();
  const root = checkpointsDir(runDir);
  mkdirSync(root, { recursive: true });
  const final = join(root, stepDirName(input.step));
  const tmp = join(root, `.tmp-${stepDirName(input.step)}-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    const { tensors: tensorsDigest, indexFile } = await writeTensorFile(tmp, withCrashPoints(input.tensors), write);
    crashPoint();
    const { tensors: _lazy, ...rest } = input;
    const meta: CheckpointMeta = {
      format_version: CHECKPOINT_FORMAT,
      ...rest,
      files: { [TENSORS_FILE]: tensorsDigest, [INDEX_FILE]: indexFile },
      created_at: new Date().toISOString(),
    };
    writeDurable(join(tmp, META_FILE), `${JSON.stringify(meta, null, 2)}\n`);
    fsyncDir(tmp);
    crashPoint();
    if (existsSync(final)) {
      // Only an invalid leftover can sit at a step we are about to write: move it aside first.
      const trash = join(root, `.trash-${stepDirName(input.step)}-${process.pid}`);
      renameSync(final, trash);
      rmSync(trash, { recursive: true, force: true });
    }
    renameSync(tmp, final);
    crashPoint();
    fsyncDir(root);
    return { dir: final, bytes: tensorsDigest.bytes + indexFile.bytes, ms: performance.now() - started };
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC') {
      const previous = listCheckpoints(runDir, { full: false }).filter((c) => c.valid).at(-1);
      throw new SoapTrainError(
        `disk full while writing checkpoint ${stepDirName(input.step)}; ${previous ? `${previous.dir} stays valid` : 'no earlier checkpoint exists'}`,
        { file: final, fix: 'free disk space and resume with --resume', exitCode: 1 },
      );
    }
    throw err;
  }
}

async function* withCrashPoints(entries: AsyncIterable<[string, TensorEntry]>): AsyncIterable<[string, TensorEntry]> {
  for await (const entry of entries) {
    crashPoint();
    yield entry;
  }
}

function writeDurable(path: string, text: string): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Reads and checks one checkpoint folder: by size (cheap) or also by SHA-256 (`full`). */
export function inspectCheckpoint(dir: string, step: number, full: boolean): CheckpointInfo & { meta?: CheckpointMeta } {
  const info = { step, dir, bytes: 0, valid: false };
  const metaPath = join(dir, META_FILE);
  if (!existsSync(metaPath)) return { ...info, reason: 'no meta.json (incomplete write)' };
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(readFileSync(metaPath, 'utf8')) as CheckpointMeta;
  } catch {
    return { ...info, reason: 'meta.json is not valid JSON' };
  }
  if (meta.format_version !== CHECKPOINT_FORMAT) return { ...info, reason: `unknown format_version ${String(meta.format_version)}` };
  if (meta.step !== step) return { ...info, reason: `meta.json says step ${meta.step}` };
  let bytes = 0;
  for (const [name, digest] of Object.entries(meta.files ?? {})) {
    const path = join(dir, name);
    if (!existsSync(path)) return { ...info, reason: `${name} is missing` };
    const size = statSync(path).size;
    if (size !== digest.bytes) return { ...info, reason: `${name} has ${size} bytes, expected ${digest.bytes} (truncated?)` };
    if (full && sha256File(path) !== digest.sha256) return { ...info, reason: `${name} checksum mismatch (corrupted)` };
    bytes += size;
  }
  return { step, dir, bytes, valid: true, meta };
}

/** Every `step-<N>` folder, oldest first, with its validity. */
export function listCheckpoints(runDir: string, opts: { full: boolean }): CheckpointInfo[] {
  const root = checkpointsDir(runDir);
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .map((name) => ({ name, m: /^step-(\d+)$/.exec(name) }))
    .filter((e): e is { name: string; m: RegExpExecArray } => e.m !== null)
    .map(({ name, m }) => {
      const { meta: _meta, ...info } = inspectCheckpoint(join(root, name), Number(m[1]), opts.full);
      return info;
    })
    .sort((a, b) => a.step - b.step);
}

export interface LoadedCheckpoint {
  meta: CheckpointMeta;
  tensors: Map<string, TensorEntry>;
  dir: string;
}

/**
 * The newest checkpoint whose checksums match; invalid newer ones are reported through
 * `onSkip` and passed over. Null when the run has no checkpoint folder at all; a bad-input
 * error when there are checkpoints but none is valid.
 */
export function loadLatestValidCheckpoint(runDir: string, onSkip: (info: CheckpointInfo) => void = () => {}): LoadedCheckpoint | null {
  const all = listCheckpoints(runDir, { full: false });
  if (all.length === 0) return null;
  for (const candidate of [...all].reverse()) {
    const checked = inspectCheckpoint(candidate.dir, candidate.step, true);
    if (!checked.valid || !checked.meta) {
      onSkip(checked);
      continue;
    }
    try {
      return { meta: checked.meta, tensors: readTensorFile(candidate.dir), dir: candidate.dir };
    } catch (err) {
      onSkip({ ...checked, valid: false, reason: err instanceof Error ? err.message : String(err) });
    }
  }
  throw badInput(`no valid checkpoint among ${all.length} (${all.map((c) => `step-${c.step}: ${c.reason ?? 'unreadable'}`).join('; ')})`, {
    file: checkpointsDir(runDir),
    fix: 'start a new run, or restore a checkpoint folder from a backup',
  });
}

/**
 * Keeps the newest `keep` valid checkpoints plus every step divisible by `keepEvery`; removes the
 * rest, invalid folders older than the newest valid one, and stale temp folders. The newest
 * valid checkpoint is never removed.
 */
export function pruneCheckpoints(runDir: string, opts: { keep: number; keepEvery: number }): string[] {
  const root = checkpointsDir(runDir);
  if (!existsSync(root)) return [];
  const all = listCheckpoints(runDir, { full: false });
  const valid = all.filter((c) => c.valid);
  const newest = valid.at(-1)?.step ?? Infinity;
  const keepSteps = new Set(valid.slice(-Math.max(1, opts.keep)).map((c) => c.step));
  const removed: string[] = [];
  for (const c of all) {
    const keepForever = c.valid && opts.keepEvery > 0 && c.step % opts.keepEvery === 0;
    const stale = c.valid ? !keepSteps.has(c.step) && !keepForever : c.step < newest;
    if (stale) {
      rmSync(c.dir, { recursive: true, force: true });
      removed.push(c.dir);
    }
  }
  for (const name of readdirSync(root)) {
    if (name.startsWith('.tmp-') || name.startsWith('.trash-')) rmSync(join(root, name), { recursive: true, force: true });
  }
  return removed;
}
