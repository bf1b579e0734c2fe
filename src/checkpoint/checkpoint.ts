/**
 * Checkpoints that lose nothing: the module's front door. Import from here.
 *
 *   runs/<name>/checkpoints/step-<N>/
 *     tensors.bin, index.json   parameters and the full optimizer state (tensor-file.ts)
 *     meta.json                 written LAST: format version, step, tokens, clocks, RNG and
 *                               schedule position, optimizer counters, model config, and the
 *                               size and SHA-256 of every other file (layout.ts)
 *
 * A checkpoint is built in `checkpoints/.tmp-step-<N>-<pid>/`, fsynced, renamed into place and
 * the parent fsynced (levanter/torchtitan discipline): a `step-<N>` folder whose meta.json
 * checksums match is complete; anything else is skipped with a warning.
 *
 *   layout.ts       paths, `CheckpointMeta`, `CheckpointInfo`, `checkpointBytes` (sizes for inspect)
 *   save.ts         `saveCheckpoint(runDir, {…meta, tensors}, {write?})`: atomic, ENOSPC-safe
 *   discover.ts     `listCheckpoints(runDir, {full?})`, `inspectCheckpoint`: cheap and full checks
 *   load.ts         `loadLatestValidCheckpoint(runDir, {onSkip})`, `loadCheckpoint(dir, step)`: verified
 *                   first (tensors.bin hashed in one streaming pass), then `{meta, dir, index,
 *                   readTensor(key)}`: tensors are read one at a time, never all at once
 *   prune.ts        `pruneCheckpoints(runDir, {keep ≥ 2, keepEvery?})`
 *   state.ts        tf side: `saveTrainingCheckpoint`, `snapshotTensors`, `restoreParams`, `restoreOptimizer`
 *                   (these pull tensors from a loaded checkpoint one at a time: peak host memory
 *                   while resuming is what tf holds plus one tensor)
 *   tensor-file.ts  the tensors.bin/index.json format, streaming write, streaming verification
 *                   and per-tensor positioned reads (`openTensorFile`)
 */
export {
  CHECKPOINT_FORMAT,
  META_FILE,
  checkpointBytes,
  checkpointsDir,
  stepDirName,
  type CheckpointInfo,
  type CheckpointMeta,
  type MetaInput,
} from './layout.js';
export { isBeingWritten, saveCheckpoint, type SaveInput, type SaveOptions, type SavedCheckpoint } from './save.js';
export { inspectCheckpoint, latestValidCheckpoint, listCheckpoints, readMeta, type CheckOptions } from './discover.js';
export { loadCheckpoint, loadLatestValidCheckpoint, type LoadOptions, type LoadedCheckpoint, type SkipHandler } from './load.js';
export { pruneCheckpoints, type PruneOptions } from './prune.js';
export {
  INDEX_FILE,
  TENSORS_FILE,
  type FileDigest,
  type FileReader,
  type TensorEntry,
  type TensorIndex,
  type TensorSource,
} from './tensor-file.js';
