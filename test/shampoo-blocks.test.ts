/**
 * Shampoo's `block_size` (DistributedShampoo's blocking of large dims): per-block factors, roots
 * and grafting norms, the state layout and its bytes, leaks, and resuming a blocked run.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createOptimizer, tf } from '../src/index.js';
import type { ParamState } from '../src/optim/types.js';
import { randomMatrix } from './helpers/random.js';

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const randomTensor = (shape: number[], seed: number) => tf.tensor(Float32Array.from(randomMatrix(1, size(shape), seed)), shape);

/** Runs Shampoo on named shapes over seeded random gradients; returns parameter values and state. */
function run(config: Record<string, unknown>, shapes: Record<string, number[]>, tag: string, steps = 6) {
  const vars = Object.entries(shapes).map(([k, s], i) => tf.variable(randomTensor(s, 7 + i), true, `${tag}.${k}`));
  const opt = createOptimizer({ type: 'shampoo', lr: 0.05, precondition_frequency: 2, start_preconditioning_step: 2, ...config });
  for (let s = 0; s < steps; s++) {
    const grads = Object.fromEntries(Object.entries(shapes).map(([k, sh], i) => [`${tag}.${k}`, randomTensor(sh, 100 * (i + 1) + s)]));
    opt.applyGradients(grads);
    tf.dispose(Object.values(grads));
  }
  const params = Object.fromEntries(vars.map((v) => [v.name.slice(tag.length + 1), Array.from(v.dataSync())]));
  const state = Object.fromEntries(
    opt.stateEntries().map(([name, st]) => [
      name.slice(tag.length + 1),
      { counters: { ...st.counters }, tensors: Object.fromEntries(Object.entries(st.tensors).map(([k, t]) => [k, Array.from(t.dataSync())])) },
    ]),
  );
  opt.dispose();
  tf.dispose(vars);
  return { params, state };
}

test('block_size ≥ every dim is the unblocked optimizer, bit for bit, with the same state keys', () => {
  const shapes = { w: [6, 10], k: [2, 3, 4], b: [5] };
  for (const extra of [{}, { grafting: 'none' }, { root_method: 'newton' }]) {
    const plain = run(extra, shapes, 'blk_same_plain');
    const wide = run({ ...extra, block_size: 10 }, shapes, 'blk_same_wide');
    assert.deepEqual(wide, plain, JSON.stringify(extra));
  }
});

test('a 6×10 parameter with block_size 4 equals independent Shampoo on each of its 2×3 tiles (grafting per block)', () => {
  // Rows split 4 + 2, columns 4 + 4 + 2; DistributedShampoo grafts each block with its own norm.
  const rows = [[0, 4], [4, 2]];
  const cols = [[0, 4], [4, 4], [8, 2]];
  for (const extra of [{ weight_decay: 0.1 }, { grafting: 'none' }, { root_method: 'newton', epsilon: 1e-6 }]) {
    const config = { type: 'shampoo', lr: 0.05, precondition_frequency: 2, start_preconditioning_step: 2, ...extra };
    const w = tf.variable(randomTensor([6, 10], 11), true, 'blk_tiles.w');
    const tiles = rows.flatMap(([r0, rn]) => cols.map(([c0, cn]) => ({ begin: [r0, c0], size: [rn, cn] })));
    const tileVars = tiles.map((t, i) => tf.variable(tf.slice(w, t.begin, t.size), true, `blk_tiles.t${i}`));
    const blocked = createOptimizer({ ...config, block_size: 4 });
    const separate = tiles.map(() => createOptimizer(config));
    for (let s = 0; s < 7; s++) {
      const g = randomTensor([6, 10], 40 + s);
      blocked.applyGradients({ 'blk_tiles.w': g });
      tiles.forEach((t, i) => {
        const gt = tf.slice(g, t.begin, t.size);
        separate[i].applyGradients({ [`blk_tiles.t${i}`]: gt });
        gt.dispose();
      });
      g.dispose();
      const whole = w.arraySync() as number[][];
      tiles.forEach((t, i) => {
        const tile = tileVars[i].arraySync() as number[][];
        const piece = whole.slice(t.begin[0], t.begin[0] + t.size[0]).map((row) => row.slice(t.begin[1], t.begin[1] + t.size[1]));
        assert.deepEqual(piece, tile, `${JSON.stringify(extra)} step ${s + 1} tile ${i}`);
      });
    }
    // The blocked state holds each tile's factors and roots under its block index.
    const st = blocked.stateOf('blk_tiles.w')!;
    tiles.forEach((_, i) => {
      const own = separate[i].stateOf(`blk_tiles.t${i}`)!;
      for (const axis of [0, 1]) {
        for (const kind of ['GG', 'root']) {
          assert.deepEqual(st.tensors[`${kind}_${i}_${axis}`].dataSync(), own.tensors[`${kind}_${axis}`].dataSync(), `${kind} ${i} ${axis}`);
        }
      }
    });
    blocked.dispose();
    separate.forEach((o) => o.dispose());
    tf.dispose([w, ...tileVars]);
  }
});

test('blocking changes the step of a matrix with a dim over block_size (per-block factors and grafting)', () => {
  const plain = run({}, { w: [6, 10] }, 'blk_diff_plain');
  const blocked = run({ block_size: 4 }, { w: [6, 10] }, 'blk_diff_blocked');
  const diff = Math.max(...plain.params.w.map((v, i) => Math.abs(v - blocked.params.w[i])));
  assert.ok(diff > 1e-4, `blocked equals unblocked (max diff ${diff})`);
});

test('blocked layout: state keys per block, max_precond_dim per block dim, n-D blocks, exact stateBytes', () => {
  const opt = createOptimizer({ type: 'shampoo', lr: 0.01, block_size: 4, max_precond_dim: 3, precondition_frequency: 1, start_preconditioning_step: 1 });
  const shapes: Record<string, number[]> = { w: [6, 10], k: [5, 6, 3], b: [9] };
  const vars = Object.entries(shapes).map(([k, s], i) => tf.variable(randomTensor(s, 3 + i), true, `blk_keys.${k}`));
  for (let s = 0; s < 3; s++) {
    const grads = Object.fromEntries(Object.entries(shapes).map(([k, sh], i) => [`blk_keys.${k}`, randomTensor(sh, 60 + 10 * i + s)]));
    opt.applyGradients(grads);
    tf.dispose(Object.values(grads));
  }
  const factorKeys = (name: string) =>
    Object.keys(opt.stateOf(`blk_keys.${name}`)!.tensors)
      .filter((k) => k.startsWith('GG_'))
      .sort();
  // w: blocks 0 (4×4), 1 (4×4), 2 (4×2), 3 (2×4), 4 (2×4), 5 (2×2); only dims ≤ 3 get a factor.
  assert.deepEqual(factorKeys('w'), ['GG_2_1', 'GG_3_0', 'GG_4_0', 'GG_5_0', 'GG_5_1']);
  assert.deepEqual(opt.stateOf('blk_keys.w')!.tensors.GG_5_1.shape, [2, 2]);
  // k [5,6,3]: pieces 4+1, 4+2, 3 → blocks (4,4,3) (4,2,3) (1,4,3) (1,2,3).
  assert.deepEqual(factorKeys('k'), ['GG_0_2', 'GG_1_1', 'GG_1_2', 'GG_2_0', 'GG_2_2', 'GG_3_0', 'GG_3_1', 'GG_3_2']);
  // 1-D parameters are never blocked (nor preconditioned).
  assert.deepEqual(factorKeys('b'), []);
  for (const [name, shape] of Object.entries(shapes)) {
    const st = opt.stateOf(`blk_keys.${name}`)!;
    const bytes = Object.values(st.tensors).reduce((a, t) => a + 4 * t.size, 0);
    assert.equal(opt.stateBytes(shape), bytes, name);
    assert.ok(Object.values(st.tensors).every((t) => t.dtype === 'float32' && [...t.dataSync()].every(Number.isFinite)), name);
  }
  for (const v of vars) assert.ok([...v.dataSync()].every(Number.isFinite));
  opt.dispose();
  tf.dispose(vars);
});

test('blocked Shampoo (eigh and newton) leaks no tensors across steps and refreshes', () => {
  for (const extra of [{}, { root_method: 'newton' }, { root_method: 'newton', grafting: 'none', betas: [0.9, 1] }]) {
    const opt = createOptimizer({ type: 'shampoo', lr: 1e-3, block_size: 4, precondition_frequency: 2, ...extra });
    const shapes: Record<string, number[]> = { w: [6, 10], k: [5, 6, 3], b: [7] };
    const vars = Object.entries(shapes).map(([k, s], i) => tf.variable(randomTensor(s, 20 + i), true, `blk_leak.${k}`));
    const counts: number[] = [];
    for (let s = 0; s < 8; s++) {
      const grads = Object.fromEntries(Object.entries(shapes).map(([k, sh], i) => [`blk_leak.${k}`, randomTensor(sh, 80 + 10 * i + s)]));
      opt.applyGradients(grads);
      tf.dispose(Object.values(grads));
      counts.push(tf.memory().numTensors);
    }
    assert.ok(counts.every((c) => c === counts[0]), `${JSON.stringify(extra)}: numTensors drifted: ${counts}`);
    for (const v of vars) assert.ok([...v.dataSync()].every(Number.isFinite));
    opt.dispose();
    tf.dispose(vars);
  }
});

test('resume: blocked newton state saved mid-run (stateEntries) and restored on a fresh optimizer (setState) continues identically', () => {
  const config = { type: 'shampoo', lr: 0.05, block_size: 4, root_method: 'newton', precondition_frequency: 3, start_preconditioning_step: 1 };
  const shapes: Record<string, number[]> = { w: [6, 10], k: [5, 6, 3], b: [7] };
  const vars = Object.entries(shapes).map(([k, s], i) => tf.variable(randomTensor(s, 30 + i), true, `blk_resume.${k}`));
  const grads = (s: number) => Object.fromEntries(Object.entries(shapes).map(([k, sh], i) => [`blk_resume.${k}`, randomTensor(sh, 500 + 10 * i + s)]));
  const step = (opt: ReturnType<typeof createOptimizer>, s: number) => {
    const g = grads(s);
    opt.applyGradients(g);
    tf.dispose(Object.values(g));
  };
  const first = createOptimizer(config);
  for (let s = 0; s < 4; s++) step(first, s);
  // A checkpoint: host copies of the parameters, the state tensors and the counters.
  const savedParams = vars.map((v) => ({ data: v.dataSync().slice(), shape: v.shape }));
  const saved = first.stateEntries().map(([name, st]): [string, { counters: Record<string, number>; tensors: Record<string, { data: Float32Array; shape: number[] }> }] => [
    name,
    {
      counters: { ...st.counters },
      tensors: Object.fromEntries(Object.entries(st.tensors).map(([k, t]) => [k, { data: t.dataSync().slice() as Float32Array, shape: t.shape }])),
    },
  ]);
  assert.ok(saved.some(([, st]) => 'newton_fallbacks' in st.counters));
  for (let s = 4; s < 10; s++) step(first, s);
  const expected = vars.map((v) => Array.from(v.dataSync()));
  const expectedCounters = first.stateEntries().map(([n, st]) => [n, { ...st.counters }]);
  first.dispose();

  vars.forEach((v, i) => {
    const t = tf.tensor(savedParams[i].data, savedParams[i].shape);
    v.assign(t);
    t.dispose();
  });
  const second = createOptimizer(config);
  for (const [name, st] of saved) {
    const state: ParamState = { counters: { ...st.counters }, tensors: {} };
    for (const [k, e] of Object.entries(st.tensors)) state.tensors[k] = tf.tensor(e.data, e.shape);
    second.setState(name, state);
  }
  for (let s = 4; s < 10; s++) step(second, s);
  assert.deepEqual(vars.map((v) => Array.from(v.dataSync())), expected);
  assert.deepEqual(second.stateEntries().map(([n, st]) => [n, { ...st.counters }]), expectedCounters);
  second.dispose();
  tf.dispose(vars);
});
