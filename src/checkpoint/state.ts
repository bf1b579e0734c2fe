/**
 * Between live training state (tf variables, the optimizer's per-parameter state) and the
 * checkpoint's flat tensor map: `params/<name>` and `optim/<name>/<state>` keys, in a fixed
 * order so two identical runs write byte-identical tensors.bin files.
 */
import { tf } from '../tf.js';
import { badInput } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import { paramShapes } from '../model/index.js';
import type { RuleOptimizer } from '../optim/rule-optimizer.js';
import type { TensorEntry } from './tensor-file.js';

async function entryOf(t: tf.Tensor): Promise<TensorEntry> {
  if (t.dtype !== 'float32' && t.dtype !== 'int32') throw new Error(`cannot checkpoint a ${t.dtype} tensor`);
  const data = (await t.data()) as Float32Array | Int32Array;
  return { dtype: t.dtype, shape: [...t.shape], data };
}

/** Parameters (in model order), then optimizer state (sorted by parameter, then state name). */
export async function* trainingTensors(params: Record<string, tf.Variable>, optimizer: RuleOptimizer): AsyncIterable<[string, TensorEntry]> {
  for (const [name, v] of Object.entries(params)) yield [`params/${name}`, await entryOf(v)];
  const states = optimizer.stateEntries().sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [name, state] of states) {
    for (const key of Object.keys(state.tensors).sort()) yield [`optim/${name}/${key}`, await entryOf(state.tensors[key])];
  }
}

/** Per-parameter counters (SOAP's step, …) for the checkpoint's meta.json. */
export function optimizerCounters(optimizer: RuleOptimizer): Record<string, Record<string, number>> {
  return Object.fromEntries(optimizer.stateEntries().map(([name, s]) => [name, { ...s.counters }]));
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
    out[name] = tf.variable(tf.tensor(entry.data, shape, entry.dtype), true, name);
  }
  return out;
}

/** Puts every parameter's optimizer state (tensors and counters) back into the optimizer. */
export function restoreOptimizer(
  optimizer: RuleOptimizer,
  counters: Record<string, Record<string, number>>,
  tensors: Map<string, TensorEntry>,
): void {
  const byParam = new Map<string, Record<string, tf.Tensor>>();
  for (const [key, entry] of tensors) {
    const m = /^optim\/(.+)\/([^/]+)$/.exec(key);
    if (!m) continue;
    const group = byParam.get(m[1]) ?? {};
    group[m[2]] = tf.tensor(entry.data, entry.shape, entry.dtype);
    byParam.set(m[1], group);
  }
  for (const [name, c] of Object.entries(counters)) {
    optimizer.setState(name, { tensors: byParam.get(name) ?? {}, counters: { ...c } });
  }
}
