/**
 * Between live training state (tf tensors, the optimizer's per-parameter `ParamState`) and the
 * checkpoint's flat tensor map: `params/<name>` and `optim/<name>/<state>` keys, in a fixed
 * order so two identical runs write byte-identical tensors.bin files.
 *
 * This is the only checkpoint module that touches tf; save/load/discover/prune work on typed
 * arrays and files.
 */
import { tf } from '../tf.js';
import { badInput } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import { paramShapes } from '../model/index.js';
import type { RuleOptimizer } from '../optim/rule-optimizer.js';
import type { ParamState } from '../optim/types.js';
import type { CheckpointMeta } from './layout.js';
import { saveCheckpoint, type SaveOptions, type SavedCheckpoint } from './save.js';
import type { IndexEntry, TensorEntry, TensorIndex, TensorSource } from './tensor-file.js';

/** Reads one tensor to the host (`await t.data()`: no blocking `dataSync`, one at a time). */
async function entryOf(key: string, t: tf.Tensor): Promise<TensorEntry> {
  if (t.dtype !== 'float32' && t.dtype !== 'int32') throw new Error(`cannot checkpoint ${key}: dtype ${t.dtype}`);
  const data = (await t.data()) as Float32Array | Int32Array;
  return { dtype: t.dtype, shape: [...t.shape], data };
}

const byName = <T>([a]: [string, T], [b]: [string, T]): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Parameters (in the given order: the model's), then optimizer state sorted by parameter name
 * and state name. Lazy: each tensor is read only when the writer asks for it, so host memory
 * holds one tensor at a time.
 */
export async function* snapshotTensors(
  params: Record<string, tf.Tensor>,
  states: ReadonlyArray<[string, ParamState]>,
): AsyncIterable<[string, TensorEntry]> {
  for (const [name, v] of Object.entries(params)) yield [`params/${name}`, await entryOf(name, v)];
  for (const [name, state] of [...states].sort(byName)) {
    for (const key of Object.keys(state.tensors).sort()) {
      yield [`optim/${name}/${key}`, await entryOf(`${name}/${key}`, state.tensors[key])];
    }
  }
}

/** Per-parameter counters (SOAP's `step`, …) for meta.json. */
export function countersOf(states: ReadonlyArray<[string, ParamState]>): Record<string, Record<string, number>> {
  return Object.fromEntries(states.map(([name, s]) => [name, { ...s.counters }]));
}

/** Everything a checkpoint holds, as the trainer has it (camelCase; meta.json is snake_case). */
export interface TrainingSnapshot {
  step: number;
  tokensSeen: number;
  wallClockS: number;
  /** Opaque JSON: whatever the trainer needs to continue its random streams. */
  rng: Record<string, unknown>;
  /** Opaque JSON: the schedule position. */
  schedule: Record<string, unknown>;
  modelConfig: Record<string, unknown>;
  progress?: CheckpointMeta['progress'];
  params: Record<string, tf.Tensor>;
  optimizer: { type: string; config: Record<string, unknown>; states: ReadonlyArray<[string, ParamState]> };
}

/**
 * Saves a checkpoint straight from tf tensors and optimizer state (see `saveCheckpoint` for the
 * atomic write, ENOSPC handling and the result). Tensors are read with `await t.data()` one at
 * a time while the file is written. The tensors must not be disposed or updated until this
 * resolves.
 */
export function saveTrainingCheckpoint(runDir: string, s: TrainingSnapshot, opts: SaveOptions = {}): Promise<SavedCheckpoint> {
  return saveCheckpoint(
    runDir,
    {
      step: s.step,
      tokens_seen: s.tokensSeen,
      wall_clock_s: s.wallClockS,
      rng: s.rng,
      schedule: s.schedule,
      optimizer: { type: s.optimizer.type, config: s.optimizer.config, counters: countersOf(s.optimizer.states) },
      model_config: s.modelConfig,
      ...(s.progress ? { progress: s.progress } : {}),
      tensors: snapshotTensors(s.params, s.optimizer.states),
    },
    opts,
  );
}

/**
 * Rebuilds the model's variables from a checkpoint (a `LoadedCheckpoint`, or any TensorSource);
 * every parameter must be there with its shape, which is checked in the index before anything
 * is read. Tensors are read and handed to tf one at a time: the host holds at most one
 * parameter's bytes besides what tf holds.
 */
export function restoreParams(model: ModelConfig, source: TensorSource, checkpointDir: string): Record<string, tf.Variable> {
  const shapes = Object.entries(paramShapes(model));
  for (const [name, shape] of shapes) {
    const entry = indexEntry(source, `params/${name}`);
    if (!entry || entry.shape.join(',') !== shape.join(',')) {
      throw badInput(`parameter ${name} ${entry ? `has shape [${entry.shape}], the model needs [${shape}]` : 'is missing'}`, {
        file: checkpointDir,
        fix: 'resume with the model config the run was started with',
      });
    }
  }
  const out: Record<string, tf.Variable> = {};
  try {
    for (const [name, shape] of shapes) {
      // tf.variable shares the initial tensor's data and keeps it referenced: dispose the
      // temporary so it does not linger in tf.memory().numTensors.
      const initial = tensorOf(source.readTensor(`params/${name}`), shape);
      out[name] = tf.variable(initial, true, name);
      initial.dispose();
    }
  } catch (err) {
    tf.dispose(Object.values(out));
    throw err;
  }
  return out;
}

/** A checkpoint's optimizer-state keys, grouped by parameter: name → state name → key. */
export function optimizerKeys(index: TensorIndex): Map<string, Record<string, string>> {
  const byParam = new Map<string, Record<string, string>>();
  for (const key of Object.keys(index.tensors)) {
    const m = /^optim\/(.+)\/([^/]+)$/.exec(key);
    if (!m) continue;
    byParam.set(m[1], { ...byParam.get(m[1]), [m[2]]: key });
  }
  return byParam;
}

/**
 * Puts every parameter's optimizer state (tensors and counters) back into the optimizer,
 * reading the state tensors one at a time from `source`. A parameter with tensors but no
 * counters gets empty counters (and vice versa), so nothing in the checkpoint is dropped. If a
 * read fails, the failing parameter's tensors made so far are disposed (states already handed
 * to the optimizer are its own) and the error propagates.
 */
export function restoreOptimizer(optimizer: RuleOptimizer, counters: Record<string, Record<string, number>>, source: TensorSource): void {
  const keys = optimizerKeys(source.index);
  for (const name of new Set([...Object.keys(counters), ...keys.keys()])) {
    const state: ParamState = { tensors: {}, counters: { ...counters[name] } };
    try {
      for (const [stateName, key] of Object.entries(keys.get(name) ?? {})) state.tensors[stateName] = tensorOf(source.readTensor(key));
    } catch (err) {
      tf.dispose(Object.values(state.tensors));
      throw err;
    }
    optimizer.setState(name, state);
  }
}

function indexEntry(source: TensorSource, key: string): IndexEntry | undefined {
  return Object.hasOwn(source.index.tensors, key) ? source.index.tensors[key] : undefined;
}

/**
 * A tf tensor of a freshly read entry. The typed array is the caller's to drop: tf keeps it
 * (cpu backend) or copies it into its own memory (wasm, tensorflow), and nothing else refers
 * to it afterwards.
 */
function tensorOf(entry: TensorEntry, shape: readonly number[] = entry.shape): tf.Tensor {
  return tf.tensor(entry.data, [...shape], entry.dtype);
}
