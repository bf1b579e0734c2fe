/**
 * The tf side of checkpoints: real tf variables and a real optimizer's state saved with
 * `saveTrainingCheckpoint`, loaded, restored into fresh variables and a fresh optimizer, bit for
 * bit and without leaking tensors; `checkpointBytes` predicts the file size without allocating.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkpointBytes, loadLatestValidCheckpoint } from '../src/checkpoint/checkpoint.js';
import { restoreOptimizer, restoreParams, saveTrainingCheckpoint, snapshotTensors } from '../src/checkpoint/state.js';
import { initParams, modelSchema, paramShapes } from '../src/model/index.js';
import { createOptimizer } from '../src/optim/registry.js';
import type { ParamState } from '../src/optim/types.js';
import { tf } from '../src/tf.js';
import { tempDirs } from './helpers/tmp.js';

const tempRun = tempDirs('soap-ckpt-state-');

const model = modelSchema.parse({ vocab_size: 16, d_model: 8, n_layers: 2, n_heads: 2, mlp_hidden: 16 });
const bits = (t: tf.Tensor) => new Uint8Array((t.dataSync() as Float32Array).slice().buffer);

test('real tf tensors and a fake optimizer state (NaN payloads, −0, int32) round-trip bit for bit', async () => {
  await tf.setBackend('cpu');
  const run = tempRun();
  const awkward = new Float32Array([Number.NaN, -0, Infinity, -Infinity, 1.4e-45, -3.4028234e38]);
  new Uint32Array(awkward.buffer)[0] = 0x7fc0beef;
  const params = { 'blocks.0.attn.wq': tf.tensor(awkward, [2, 3]), ln: tf.tensor([1, -0, 2]) };
  const states: Array<[string, ParamState]> = [
    ['ln', { tensors: { exp_avg: tf.tensor([0.5, -0, 7]) }, counters: { step: 3 } }],
    ['blocks.0.attn.wq', { tensors: { Q_L: tf.eye(2), idx: tf.tensor([-7, 2147483647], [2], 'int32') }, counters: { step: 3, refreshes: 1 } }],
  ];
  const saved = await saveTrainingCheckpoint(run, {
    step: 3,
    tokensSeen: 96,
    wallClockS: 1.5,
    rng: { seed: 7, stream: [1, 2] },
    schedule: { step: 3, lr: 0.01 },
    modelConfig: { d_model: 8 },
    params,
    optimizer: { type: 'soap', config: { type: 'soap', lr: 0.01 }, states },
  });
  const loaded = loadLatestValidCheckpoint(run);
  assert.ok(loaded);
  assert.equal(loaded.dir, saved.dir);
  assert.deepEqual(loaded.meta.rng, { seed: 7, stream: [1, 2] });
  assert.deepEqual(loaded.meta.optimizer.counters, { ln: { step: 3 }, 'blocks.0.attn.wq': { step: 3, refreshes: 1 } });
  // Parameters in the given order, then optimizer state sorted by parameter and state name.
  assert.deepEqual(Object.keys(loaded.index.tensors), [
    'params/blocks.0.attn.wq',
    'params/ln',
    'optim/blocks.0.attn.wq/Q_L',
    'optim/blocks.0.attn.wq/idx',
    'optim/ln/exp_avg',
  ]);
  const got = (key: string) => loaded.readTensor(key);
  assert.deepEqual(new Uint8Array(got('params/blocks.0.attn.wq').data.buffer), new Uint8Array(awkward.buffer));
  assert.deepEqual(got('params/blocks.0.attn.wq').shape, [2, 3]);
  assert.ok(Object.is(got('optim/ln/exp_avg').data[1], -0));
  assert.equal(got('optim/blocks.0.attn.wq/idx').dtype, 'int32');
  assert.deepEqual([...got('optim/blocks.0.attn.wq/idx').data], [-7, 2147483647]);
  tf.dispose([...Object.values(params), ...states.flatMap(([, s]) => Object.values(s.tensors))]);
});

test('a real optimizer resumed from a checkpoint continues exactly, with no leaked tensors', async () => {
  await tf.setBackend('cpu');
  const run = tempRun();
  const grads = (params: Record<string, tf.Variable>, k: number) =>
    Object.fromEntries(Object.entries(params).map(([n, v]) => [n, tf.fill(v.shape, 0.01 * k + 0.001 * n.length)]));
  const step = (opt: ReturnType<typeof createOptimizer>, params: Record<string, tf.Variable>, k: number) => {
    const g = grads(params, k);
    opt.applyGradients(g);
    tf.dispose(Object.values(g));
  };
  const config = { type: 'adamw', lr: 0.01 };
  // Reference: three uninterrupted steps.
  let params = initParams(model, { seed: 1 });
  let opt = createOptimizer(config);
  for (const k of [1, 2, 3]) step(opt, params, k);
  const reference = Object.fromEntries(Object.entries(params).map(([n, v]) => [n, bits(v)]));
  opt.dispose();
  tf.dispose(Object.values(params));
  // Interrupted: two steps, checkpoint, drop everything, restore, one more step.
  params = initParams(model, { seed: 1 });
  opt = createOptimizer(config);
  for (const k of [1, 2]) step(opt, params, k);
  await saveTrainingCheckpoint(run, {
    step: 2, tokensSeen: 0, wallClockS: 0, rng: {}, schedule: {}, modelConfig: model, params,
    optimizer: { type: 'adamw', config, states: opt.stateEntries() },
  });
  opt.dispose();
  tf.dispose(Object.values(params));
  const before = tf.memory().numTensors;
  const loaded = loadLatestValidCheckpoint(run)!;
  params = restoreParams(model, loaded, loaded.dir);
  opt = createOptimizer(config);
  restoreOptimizer(opt, loaded.meta.optimizer.counters, loaded);
  const stateTensors = opt.stateEntries().reduce((n, [, s]) => n + Object.keys(s.tensors).length, 0);
  assert.equal(tf.memory().numTensors - before, Object.keys(params).length + stateTensors, 'one tensor per variable and state, nothing else');
  step(opt, params, 3);
  for (const [n, v] of Object.entries(params)) assert.deepEqual(bits(v), reference[n], n);
  opt.dispose();
  tf.dispose(Object.values(params));
  assert.equal(tf.memory().numTensors, before);
});

test('restoring pulls tensors one at a time, checks shapes before reading, and leaks nothing when a read fails', async () => {
  await tf.setBackend('cpu');
  const run = tempRun();
  const config = { type: 'adamw', lr: 0.01 };
  const params = initParams(model, { seed: 3, namePrefix: 'pull/' });
  const opt = createOptimizer(config);
  const g = Object.fromEntries(Object.values(params).map((v) => [v.name, tf.onesLike(v)]));
  opt.applyGradients(g);
  const states = opt.stateEntries().map(([n, s]): [string, ParamState] => [n.slice('pull/'.length), s]);
  await saveTrainingCheckpoint(run, {
    step: 1, tokensSeen: 0, wallClockS: 0, rng: {}, schedule: {}, modelConfig: model,
    params: Object.fromEntries(Object.entries(params).map(([n, v]) => [n, v])),
    optimizer: { type: 'adamw', config, states },
  });
  opt.dispose();
  tf.dispose([...Object.values(params), ...Object.values(g)]);
  const loaded = loadLatestValidCheckpoint(run)!;
  // A source that counts reads, and fails at the n-th one.
  const reads: string[] = [];
  const source = (failAt = Infinity) => ({
    index: loaded.index,
    readTensor: (key: string) => {
      reads.push(key);
      if (reads.length === failAt) throw new Error(`read ${key} failed`);
      return loaded.readTensor(key);
    },
  });
  const before = tf.memory().numTensors;
  const wider = modelSchema.parse({ ...model, d_model: 12, n_heads: 2 });
  assert.throws(() => restoreParams(wider, source(), loaded.dir), /parameter tok_emb has shape \[16,8\], the model needs \[16,12\]/);
  assert.deepEqual(reads, [], 'shapes come from the index: nothing read for a mismatched model');
  assert.throws(() => restoreParams(model, source(3), loaded.dir), /failed/);
  assert.equal(tf.memory().numTensors, before, 'the two variables made before the failure were disposed');
  reads.length = 0;
  const restored = restoreParams(model, source(), loaded.dir);
  assert.deepEqual(reads, Object.keys(paramShapes(model)).map((n) => `params/${n}`), 'each parameter read once, in order');
  const fresh = createOptimizer(config);
  reads.length = 0;
  assert.throws(() => restoreOptimizer(fresh, loaded.meta.optimizer.counters, source(5)), /failed/);
  fresh.dispose();
  tf.dispose(Object.values(restored));
  assert.equal(tf.memory().numTensors, before, 'the half-made state was disposed; the states set before it went with the optimizer');
});

test('tensors are pulled one at a time: each is on disk before the next is read', async () => {
  const run = tempRun();
  const sizes: number[] = [];
  const params = { a: tf.zeros([1000]), b: tf.zeros([1000]), c: tf.zeros([1000]) };
  const lazy = snapshotTensors(params, []);
  async function* watched() {
    for await (const entry of lazy) {
      const tmp = join(run, 'checkpoints', `.tmp-step-1-${process.pid}`, 'tensors.bin');
      sizes.push(statSync(tmp, { throwIfNoEntry: false })?.size ?? -1);
      yield entry;
    }
  }
  const { saveCheckpoint } = await import('../src/checkpoint/save.js');
  await saveCheckpoint(run, {
    step: 1, tokens_seen: 0, wall_clock_s: 0, rng: {}, schedule: {}, model_config: {},
    optimizer: { type: 'x', config: {}, counters: {} }, tensors: watched(),
  });
  assert.deepEqual(sizes, [0, 4000, 8000]);
  tf.dispose(Object.values(params));
});

test('checkpointBytes predicts tensors.bin without allocating', async () => {
  const run = tempRun();
  const shapes = paramShapes(model);
  const params = initParams(model, { seed: 2, namePrefix: 'bytes/' });
  const opt = createOptimizer({ type: 'adamw', lr: 0.01 });
  // Variables are registered as `bytes/<name>` (so they cannot clash with other tests').
  const g = Object.fromEntries(Object.values(params).map((v) => [v.name, tf.onesLike(v)]));
  opt.applyGradients(g);
  const saved = await saveTrainingCheckpoint(run, {
    step: 1, tokensSeen: 0, wallClockS: 0, rng: {}, schedule: {}, modelConfig: model, params,
    optimizer: { type: 'adamw', config: {}, states: opt.stateEntries().map(([n, s]) => [n.slice('bytes/'.length), s]) },
  });
  const predicted = checkpointBytes(shapes, (shape) => opt.stateBytes(shape));
  const actual = statSync(join(saved.dir, 'tensors.bin')).size;
  assert.ok(Math.abs(predicted.params + predicted.optimizer - actual) <= 8 * Object.keys(shapes).length, `${predicted.params + predicted.optimizer} vs ${actual}`);
  assert.ok(predicted.total >= actual);
  opt.dispose();
  tf.dispose([...Object.values(params), ...Object.values(g)]);
});
