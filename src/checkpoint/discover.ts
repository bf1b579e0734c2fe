/**
 * Finding checkpoints and deciding which count.
 *
 * Two levels of checking, both reading meta.json first (it is written last, so its presence
 * means the writer got to the end):
 *   cheap  every listed file is present with the recorded size: catches crashes mid-write and
 *          truncation; costs a few stat calls (listing, pruning, `inspect`)
 *   full   also the SHA-256 of every file: catches flipped bits and unreadable files (an I/O
 *          error is a reason like any other); reads the whole checkpoint (resuming, `inspect`
 *          of a run directory)
 * `.tmp-*` and `.trash-*` folders, and anything not named `step-<N>`, are never checkpoints.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { META_FILE, READABLE_FORMATS, checkpointsDir, parseStepDirName, type CheckpointInfo, type CheckpointMeta } from './layout.js';
import { INDEX_FILE, TENSORS_FILE, isIoError, sha256File } from './tensor-file.js';

export interface CheckOptions {
  /** Also compare SHA-256 checksums (reads every byte). Default false: sizes only. */
  full?: boolean;
  /**
   * Files whose checksum is left out of a full check because the caller verifies it itself
   * (the loader hashes tensors.bin with `openTensorFile`, through its own reader).
   */
  skipHashOf?: readonly string[];
}

export type CheckedCheckpoint = CheckpointInfo & { meta?: CheckpointMeta };

/** meta.json parsed and checked for the fields the loader relies on; a reason string if not. */
export function readMeta(dir: string): CheckpointMeta | string {
  const path = join(dir, META_FILE);
  if (!existsSync(path)) return 'no meta.json (incomplete write)';
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(readFileSync(path, 'utf8')) as CheckpointMeta;
  } catch (err) {
    return isIoError(err) ? `meta.json is unreadable: ${err.message}` : 'meta.json is not valid JSON (torn write?)';
  }
  if (typeof meta !== 'object' || meta === null) return 'meta.json is not an object';
  if (!READABLE_FORMATS.includes(meta.format_version)) {
    return `unknown format_version ${JSON.stringify(meta.format_version)} (this soap-train reads ${READABLE_FORMATS.join(', ')})`;
  }
  if (!Number.isInteger(meta.step) || meta.step < 0) return `meta.json step ${JSON.stringify(meta.step)} is not a step count`;
  const files = meta.files;
  if (typeof files !== 'object' || files === null) return 'meta.json lists no files';
  for (const required of [TENSORS_FILE, INDEX_FILE]) if (!(required in files)) return `meta.json does not list ${required}`;
  for (const [name, digest] of Object.entries(files)) {
    if (!Number.isInteger(digest?.bytes) || !/^[0-9a-f]{64}$/.test(String(digest?.sha256))) return `meta.json entry for ${name} is malformed`;
  }
  if (typeof meta.optimizer?.counters !== 'object' || meta.optimizer.counters === null) return 'meta.json has no optimizer counters';
  return meta;
}

/** Checks one `step-<N>` folder. The parsed meta comes back with a valid result. */
export function inspectCheckpoint(dir: string, step: number, opts: CheckOptions = {}): CheckedCheckpoint {
  const info: CheckpointInfo = { step, dir, bytes: 0, valid: false };
  const meta = readMeta(dir);
  if (typeof meta === 'string') return { ...info, reason: meta };
  if (meta.step !== step) return { ...info, reason: `meta.json says step ${meta.step}, the folder step ${step}` };
  let bytes = 0;
  for (const [name, digest] of Object.entries(meta.files)) {
    const path = join(dir, name);
    if (!existsSync(path)) return { ...info, reason: `${name} is missing` };
    const size = statSync(path).size;
    if (size !== digest.bytes) return { ...info, bytes, reason: `${name} has ${size} bytes, expected ${digest.bytes} (truncated?)` };
    bytes += size;
  }
  if (opts.full) {
    for (const [name, digest] of Object.entries(meta.files)) {
      if (opts.skipHashOf?.includes(name)) continue;
      let sha256: string;
      try {
        sha256 = sha256File(join(dir, name));
      } catch (err) {
        if (!isIoError(err)) throw err;
        return { ...info, bytes, reason: `${name} is unreadable: ${err.message}` };
      }
      if (sha256 !== digest.sha256) return { ...info, bytes, reason: `${name} checksum mismatch (corrupted)` };
    }
  }
  return { step, dir, bytes, valid: true, meta };
}

/**
 * Every `step-<N>` folder of a run, oldest first, with its validity: by size (default) or
 * also by checksum (`{full: true}`). An empty list when the run has no checkpoints folder.
 */
export function listCheckpoints(runDir: string, opts: CheckOptions = {}): CheckpointInfo[] {
  const root = checkpointsDir(runDir);
  if (!existsSync(root)) return [];
  const found: CheckpointInfo[] = [];
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    const step = parseStepDirName(entry.name);
    if (step === null || !entry.isDirectory()) continue;
    const { meta: _meta, ...info } = inspectCheckpoint(join(root, entry.name), step, opts);
    found.push(info);
  }
  return found.sort((a, b) => a.step - b.step);
}

/** The newest checkpoint that passes the cheap check (sizes), or undefined. */
export function latestValidCheckpoint(runDir: string): CheckpointInfo | undefined {
  return listCheckpoints(runDir).filter((c) => c.valid).at(-1);
}
