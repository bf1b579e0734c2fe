/**
 * The wasm backend with installWasmKernelOverrides() against the cpu backend: every matMul form
 * (transposes, batches, shared and broadcast operands) on both engines (OpenBLAS, XNNPACK),
 * UnsortedSegmentSum, Sum over leading axes, GatherV2 of rows, the fused GeLU (against float64
 * references) and RoPE (against the composite of tfjs ops), and the model's logits and gradients
 * with the fused kernels on and off; plus idempotent installation and no leaked tensors or wasm
 * buffers.
 */
import '@tensorflow/tfjs-backend-wasm';
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { tf } from '../src/tf.js';
import { installWasmKernelOverrides, wasmKernelOverridesInstalled, wasmKernelStatus } from '../src/backend/wasm-kernels.js';
import { setMatMulEngine, type MatMulEngine } from '../src/backend/blas-matmul.js';
import { disableFusedGeluForTests, fusedGeluActive } from '../src/backend/fused-gelu.js';
import { disableFusedRopeForTests, fusedRopeActive } from '../src/backend/fused-rope.js';
import { loadNativeLapack, nativeLapackStatus } from '../src/optim/linalg/native.js';
import { gelu, rope, ropeTables } from '../src/model/layers.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { forward, initParams, lossTerms, modelSchema, type ModelConfig } from '../src/model/index.js';
import { relErr } from './helpers/matrix.js';
import { values } from '../src/backend/wasm-self-check.js';

const noNative = loadNativeLapack() ? false : `native binding not available: ${nativeLapackStatus().reason}`;
const ENGINES: MatMulEngine[] = ['blas', 'xnnpack'];

/** Runs fn on a backend and returns its result as plain arrays (so nothing crosses backends). */
async function on<T>(backend: 'cpu' | 'wasm', fn: () => T): Promise<T> {
  await tf.setBackend(backend);
  return fn();
}

before(async () => {
  await tf.setBackend('wasm');
  installWasmKernelOverrides();
});

describe('wasm kernel overrides', () => {
  it('installs once and reports it', () => {
    assert.equal(installWasmKernelOverrides(), true);
    assert.equal(installWasmKernelOverrides(), true);
    assert.ok(wasmKernelOverridesInstalled());
  });

  const cases: Array<[number[], number[], boolean, boolean]> = [
    [[5, 7], [7, 3], false, false],
    [[7, 5], [7, 3], true, false],
    [[5, 7], [3, 7], false, true],
    [[7, 5], [3, 7], true, true],
    [[4, 5, 7], [4, 7, 3], false, false],
    [[4, 7, 5], [4, 7, 3], true, false],
    [[4, 5, 7], [4, 3, 7], false, true],
    [[4, 7, 5], [4, 3, 7], true, true],
    [[4, 5, 7], [7, 3], false, false], // shared b → one [20, 7] × [7, 3] product
    [[2, 3, 5, 7], [1, 7, 6], false, false], // shared b with a rank-4 a
    [[2, 3, 5, 7], [2, 3, 6, 7], false, true], // rank 4, same batch
    [[1, 5, 7], [3, 7, 6], false, false], // broadcast a: falls back to the stock kernel
    [[2, 1, 5, 7], [1, 3, 7, 6], false, false], // two-sided broadcast: stock kernel
    [[3, 33, 17], [3, 33, 65], true, false], // odd sizes
  ];
  for (const engine of ENGINES)
  for (const [sa, sb, tA, tB] of cases) {
    it(`matMul [${sa}]${tA ? 'ᵀ' : ''} × [${sb}]${tB ? 'ᵀ' : ''} on ${engine} equals the cpu backend`, { skip: engine === 'blas' && noNative }, async () => {
      setMatMulEngine(engine);
      const va = values(sa.reduce((p, s) => p * s, 1), 1);
      const vb = values(sb.reduce((p, s) => p * s, 1), 2);
      const run = (): { shape: number[]; data: Float32Array } =>
        tf.tidy(() => {
          const y = tf.matMul(tf.tensor(va, sa), tf.tensor(vb, sb), tA, tB);
          return { shape: y.shape, data: y.dataSync() as Float32Array };
        });
      const ref = await on('cpu', run);
      const before = tf.memory().numTensors;
      const got = await on('wasm', run);
      setMatMulEngine(undefined);
      assert.deepEqual(got.shape, ref.shape);
      assert.ok(relErr(got.data, ref.data) < 1e-6, `rel err ${relErr(got.data, ref.data)}`);
      assert.equal(tf.memory().numTensors, before);
    });
  }

  it('Sum over leading axes (a LayerNorm weight gradient) and over the last axis equal the cpu backend', async () => {
    const x = values(6 * 5 * 7, 3);
    const run = (): Float32Array[] =>
      tf.tidy(() => {
        const t = tf.tensor3d(x, [6, 5, 7]);
        return [tf.sum(t, 0), tf.sum(t, [0, 1], true), tf.sum(t, -1)].map((y) => y.dataSync() as Float32Array);
      });
    const ref = await on('cpu', run);
    const got = await on('wasm', run);
    ref.forEach((r, i) => assert.ok(relErr(got[i], r) < 1e-6, `sum ${i}: rel err ${relErr(got[i], r)}`));
  });

  it('GatherV2 of rows (the embedding) and of single values (the target logits) equal the cpu backend; a bad index throws', async () => {
    const table = values(9 * 4, 5);
    const ids = [8, 0, 3, 3, 1];
    const run = (): Float32Array[] =>
      tf.tidy(() =>
        [tf.gather(tf.tensor2d(table, [9, 4]), tf.tensor1d(ids, 'int32')), tf.gather(tf.tensor1d(table), tf.tensor1d(ids, 'int32'))].map(
          (y) => y.dataSync() as Float32Array,
        ),
      );
    const ref = await on('cpu', run);
    const got = await on('wasm', run);
    assert.deepEqual(got.map((g) => Array.from(g)), ref.map((r) => Array.from(r)));
    await tf.setBackend('wasm');
    assert.throws(() => tf.tidy(() => tf.gather(tf.tensor2d(table, [9, 4]), tf.tensor1d([9], 'int32'))), /index 9 .* not in \[0, 9\)/);
  });

  it('the fused GeLU: forward and gradient equal float64 references (Python math.erfc)', { skip: noNative }, async () => {
    await tf.setBackend('wasm');
    assert.ok(fusedGeluActive(), `fused GeLU not active: ${wasmKernelStatus()?.fusedGelu.reason}`);
    const rows = (JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'gelu_reference.json'), 'utf8')) as { rows: Array<[number, number, number]> }).rows;
    const xs = tf.tensor1d(rows.map((r) => r[0]));
    const dy = tf.tensor1d(rows.map((_r, i) => 1 + (i % 4) / 2));
    const y = tf.tidy(() => gelu(xs).dataSync());
    const dx = tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(gelu(x), dy)))(xs).dataSync());
    const dyValues = dy.dataSync();
    rows.forEach(([x, value, slope], i) => {
      assert.ok(Math.abs(y[i] - value) <= 2e-7 * Math.abs(value) + 1e-30, `gelu(${x}) = ${y[i]}, want ${value}`);
      const want = slope * dyValues[i];
      assert.ok(Math.abs(dx[i] - want) <= 2e-7 * Math.abs(want) + 1e-30, `gradient at ${x}: ${dx[i]}, want ${want}`);
    });
    tf.dispose([xs, dy]);
  });

  it('the fused RoPE: forward and gradient equal the composite of tfjs ops', async () => {
    await tf.setBackend('wasm');
    assert.ok(fusedRopeActive());
    const [B, T, H, hd] = [2, 5, 3, 8];
    const x = tf.tensor4d(values(B * T * H * hd, 21), [B, T, H, hd]);
    const dy = tf.tensor4d(values(B * T * H * hd, 22), [B, T, H, hd]);
    const tables = ropeTables(T, hd, 10000);
    const both = (): Float32Array[] =>
      tf.tidy(() => [rope(x, tables).dataSync() as Float32Array, tf.grad((v: tf.Tensor) => tf.sum(tf.mul(rope(v as tf.Tensor4D, tables), dy)))(x).dataSync() as Float32Array]);
    const [fusedY, fusedDx] = both();
    disableFusedRopeForTests(true);
    const [refY, refDx] = both();
    disableFusedRopeForTests(false);
    assert.ok(relErr(fusedY, refY) < 1e-7, `forward rel err ${relErr(fusedY, refY)}`);
    assert.ok(relErr(fusedDx, refDx) < 1e-7, `gradient rel err ${relErr(fusedDx, refDx)}`);
    assert.ok(relErr(fusedY, x.dataSync()) > 0.1, 'the rotation did something');
    tf.dispose([x, dy, tables.cos, tables.sin, tables.swap]);
  });

  it('UnsortedSegmentSum (the embedding gradient) equals the cpu backend', async () => {
    const ids = [3, 0, 3, 5, 1, 3, 0];
    const x = values(ids.length * 4, 7);
    const run = (): Float32Array =>
      tf.tidy(() => tf.unsortedSegmentSum(tf.tensor2d(x, [ids.length, 4]), tf.tensor1d(ids, 'int32'), 6).dataSync() as Float32Array);
    const ref = await on('cpu', run);
    const got = await on('wasm', run);
    assert.deepEqual(Array.from(got), Array.from(ref));
    assert.deepEqual(Array.from(ref.slice(8, 12)), [0, 0, 0, 0]); // segment 2 has no rows
  });
});

describe('the model on wasm', () => {
  const cfg: ModelConfig = modelSchema.parse({ vocab_size: 64, d_model: 32, n_layers: 2, n_heads: 4, mlp_hidden: 64, z_loss: 1e-3, init_std: 0.1 });
  const B = 2;
  const T = 12;
  const tokens = Array.from({ length: B * (T + 1) }, (_, i) => (i * 37 + 11) % 64);
  const inputs = tokens.filter((_, i) => i % (T + 1) !== T);
  const targets = tokens.filter((_, i) => i % (T + 1) !== 0);

  /** Logits, loss and every gradient, computed on the current backend from the same init. */
  function evaluate(): { logits: Float32Array; loss: number; grads: Record<string, Float32Array> } {
    const params = initParams(cfg, { seed: 11, namePrefix: `${tf.getBackend()}/` });
    try {
      return tf.tidy(() => {
        const x = tf.tensor2d(inputs, [B, T], 'int32');
        const y = tf.tensor2d(targets, [B, T], 'int32');
        const logits = forward(params, x, cfg).dataSync() as Float32Array;
        const { value, grads } = tf.variableGrads(() => lossTerms(params, x, y, cfg).loss, Object.values(params));
        const out: Record<string, Float32Array> = {};
        for (const [name, v] of Object.entries(params)) out[name] = grads[v.name].dataSync() as Float32Array;
        return { logits, loss: value.dataSync()[0], grads: out };
      });
    } finally {
      tf.dispose(Object.values(params));
    }
  }

  /** The wasm configurations a run can get: what a user with the native binding runs, and without. */
  const variants: Array<{ label: string; engine: MatMulEngine; fused: boolean; skip: string | false }> = [
    { label: 'OpenBLAS products and fused kernels', engine: 'blas', fused: true, skip: noNative },
    { label: 'XNNPACK products and tfjs ops', engine: 'xnnpack', fused: false, skip: false },
  ];
  for (const v of variants)
  it(`gives the cpu backend’s logits, loss and gradients within 1e-4 (${v.label})`, { skip: v.skip }, async () => {
    const ref = await on('cpu', evaluate);
    setMatMulEngine(v.engine);
    disableFusedGeluForTests(!v.fused);
    disableFusedRopeForTests(!v.fused);
    const got = await on('wasm', evaluate);
    setMatMulEngine(undefined);
    disableFusedGeluForTests(false);
    disableFusedRopeForTests(false);
    assert.ok(relErr(got.logits, ref.logits) < 1e-4, `logits rel err ${relErr(got.logits, ref.logits)}`);
    assert.ok(Math.abs(got.loss - ref.loss) / ref.loss < 1e-4, `loss ${got.loss} vs ${ref.loss}`);
    for (const name of Object.keys(ref.grads)) {
      const e = relErr(got.grads[name], ref.grads[name]);
      assert.ok(e < 1e-4, `grad ${name}: rel err ${e}`);
    }
  });

  it('frees every tensor and wasm buffer across training steps', async () => {
    await tf.setBackend('wasm');
    const params = initParams(cfg, { seed: 1, namePrefix: 'wasm-leak/' });
    const x = tf.tensor2d(inputs, [B, T], 'int32');
    const y = tf.tensor2d(targets, [B, T], 'int32');
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const counts: Array<[number, number]> = [];
    for (let step = 0; step < 3; step++) {
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => lossTerms(params, x, y, cfg).loss, Object.values(params));
        for (const v of Object.values(params)) v.assign(tf.sub(v, tf.mul(grads[v.name], 0.01)));
      });
      counts.push([tf.memory().numTensors, backend.numDataIds()]);
    }
    assert.deepEqual(counts[2], counts[0]);
    assert.deepEqual(counts[1], counts[0]);
    tf.dispose([x, y, ...Object.values(params)]);
  });
});
