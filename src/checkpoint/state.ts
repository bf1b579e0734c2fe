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
import type { TensorEntry } from './tensor-file.js';

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

/** Rebuilds the model's variables from a checkpoint; every parameter must be there with its shape. */
export function restoreParams(model: ModelConfig, tensors: Map<string, TensorEntry>, checkpointDir: string): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {};
  for (const [name, shape] of Object.entries(paramShapes(model))) {
    const entry = tensors.get(`params/${name}`);
    if (!entry || entry.shape.join(',') !== shape.join(',')) {
      tf.dispose(Object.values(out));
      throw badInput(`parameter ${name} ${entry ? `has shape [${entry.shape}], the model needs [${shape}]` : 'is missing'}`, {
        file: checkpointDir,
        fix: 'resume with the model config the run was started with',
      });
    }
    // tf.variable shares the initial tensor's data and keeps it referenced: dispose the
    // temporary so it does not linger in tf.memory().numTensors.
    const initial = tf.tensor(entry.data, shape, entry.dtype);
    out[name] = tf.variable(initial, true, name);
    initial.dispose();
  }
  return out;
}

/** Optimizer state tensors of a checkpoint, grouped by parameter: name → state name → entry. */
export function optimizerEntries(tensors: Map<string, TensorEntry>): Map<string, Record<string, TensorEntry>> {
  const byParam = new Map<string, Record<string, TensorEntry>>();
  for (const [key, entry] of tensors) {
    const m = /^optim\/(.+)\/([^/]+)$/.exec(key);
    if (!m) continue;
    byParam.set(m[1], { ...byParam.get(m[1]), [m[2]]: entry });
  }
  return byParam;
}

/**
 * Puts every parameter's optimizer state (tensors and counters) back into the optimizer. A
 * parameter with tensors but no counters gets empty counters (and vice versa), so nothing read
 * from the checkpoint is dropped or leaked.
 */
export function restoreOptimizer(
  optimizer: RuleOptimizer,
  counters: Record<string, Record<string, number>>,
  tensors: Map<string, TensorEntry>,
): void {
  const entries = optimizerEntries(tensors);
  for (const name of new Set([...Object.keys(counters), ...entries.keys()])) {
    const state: ParamState = { tensors: {}, counters: { ...counters[name] } };
    for (const [key, e] of Object.entries(entries.get(name) ?? {})) state.tensors[key] = tf.tensor(e.data, e.shape, e.dtype);
    optimizer.setState(name, state);
  }
}
