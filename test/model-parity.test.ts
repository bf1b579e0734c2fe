/**
 * The decoder against its PyTorch peer (bench/peers/torch_gpt.py): the peer's weights, run
 * through forward/lossTerms, must give the peer's logits, cross-entropy and gradients.
 *
 * test/fixtures/model/parity_small.json was made by test/fixtures/gen/model_parity.py (torch
 * 1.13, the peer in float64 on float32 weights; this test needs no Python). Vocab 64, d 32,
 * 2 layers, 2 heads, MLP 128, batch 2 × 16 tokens. Weights are already in soap-train's layout
 * ([in, out] matrices, Q/K/V split out of the peer's fused qkv; see the generator's docstring).
 *
 * One documented difference: soap-train's training loss adds the z-loss z·mean(lse²) (z_loss,
 * default 1e-4), which the peer does not have. `ce` is the peer's loss; `loss` is checked as the
 * peer's loss plus z·mean(lse²) with lse from the peer's logits, and equals ce with z_loss 0.
 */
import '@tensorflow/tfjs-backend-wasm';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tf } from '../src/tf.js';
import { installWasmKernelOverrides } from '../src/backend/wasm-kernels.js';
import { checkParams, forward, lossTerms, modelSchema, paramShapes, type ModelConfig, type Params } from '../src/model/index.js';
import { relErr } from './helpers/matrix.js';

interface ParityFixture {
  config: Record<string, number>;
  batch: number;
  seq_len: number;
  weights: Record<string, { shape: number[]; f32: string }>;
  inputs: number[][];
  targets: number[][];
  logits: { shape: number[]; f64: string };
  loss: number;
  mean_lse_sq: number;
  grads: Record<string, { norm: number; indices: number[]; values: number[] }>;
}

const here = dirname(fileURLToPath(import.meta.url));
const fx = JSON.parse(readFileSync(join(here, 'fixtures/model/parity_small.json'), 'utf8')) as ParityFixture;

/** Relative tolerance on logits (‖Δ‖/‖ref‖ and max|Δ|/max|ref|) and on the losses. */
const TOL = 1e-5;
/** Gradients: per parameter, ‖Δ‖ over the recorded entries and the norm, relative to ‖ref‖. */
const GRAD_TOL = 1e-5;

/** The bytes of a base64 string in a fresh (so aligned) ArrayBuffer; the fixture is little-endian. */
function bytes(b64: string): ArrayBuffer {
  const buf = Buffer.from(b64, 'base64');
  const copy = new ArrayBuffer(buf.length); // a Buffer may be an unaligned slice of a shared pool
  new Uint8Array(copy).set(buf);
  return copy;
}
const f32 = (b64: string): Float32Array => new Float32Array(bytes(b64));
const f64 = (b64: string): Float64Array => new Float64Array(bytes(b64));

const refLogits = f64(fx.logits.f64);
const refMaxAbs = refLogits.reduce((m, x) => Math.max(m, Math.abs(x)), 0);


function maxAbsErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function relDiff(a: number, b: number): number {
  return Math.abs(a - b) / Math.abs(b);
}

const cfg: ModelConfig = modelSchema.parse(fx.config);

describe('model parity with the PyTorch peer (test/fixtures/model/parity_small.json)', () => {
  it('the fixture matches the config: every parameter, in soap-train shapes', () => {
    // rope_base, norm_eps, z_loss are soap-train's defaults 10000, 1e-5, 1e-4 (the peer: 10000, 1e-5, none)
    assert.equal(cfg.rope_base, 10000);
    assert.equal(cfg.norm_eps, 1e-5);
    const shapes = paramShapes(cfg);
    assert.deepEqual(Object.keys(fx.weights).sort(), Object.keys(shapes).sort());
    for (const [name, w] of Object.entries(fx.weights)) {
      assert.deepEqual(w.shape, shapes[name], name);
      assert.equal(f32(w.f32).length, w.shape.reduce((a, b) => a * b, 1), name);
    }
    assert.deepEqual(fx.logits.shape, [fx.batch, fx.seq_len, cfg.vocab_size]);
  });

  for (const backend of ['cpu', 'wasm'] as const) {
    describe(`on ${backend}`, () => {
      let params: Record<string, tf.Variable> = {};
      let inputs: tf.Tensor2D;
      let targets: tf.Tensor2D;
      const setup = async (): Promise<void> => {
        if (tf.getBackend() === backend && Object.keys(params).length > 0) return;
        await tf.setBackend(backend);
        if (backend === 'wasm') assert.ok(installWasmKernelOverrides(), 'wasm kernel overrides self-check');
        tf.dispose(Object.values(params));
        params = {};
        for (const [name, w] of Object.entries(fx.weights)) {
          params[name] = tf.variable(tf.tensor(f32(w.f32), w.shape, 'float32'), true, `parity_${backend}.${name}`);
        }
        inputs = tf.tensor2d(fx.inputs, undefined, 'int32');
        targets = tf.tensor2d(fx.targets, undefined, 'int32');
        checkParams(params as Params, cfg);
      };
      after(() => {
        tf.dispose([...Object.values(params), inputs, targets]);
        params = {};
      });

      it('logits match the peer to 1e-5 relative', async () => {
        await setup();
        const logits = forward(params, inputs, cfg);
        assert.deepEqual(logits.shape, fx.logits.shape);
        const got = logits.dataSync();
        logits.dispose();
        const rel = relErr(got, refLogits);
        const worst = maxAbsErr(got, refLogits) / refMaxAbs;
        assert.ok(rel <= TOL, `‖Δ‖/‖ref‖ = ${rel}`);
        assert.ok(worst <= TOL, `max|Δ|/max|ref| = ${worst}`);
      });

      it("ce is the peer's cross-entropy; loss adds soap-train's z-loss, which the peer lacks", async () => {
        await setup();
        const t = lossTerms(params, inputs, targets, cfg);
        const [ce, loss] = [t.ce.dataSync()[0], t.loss.dataSync()[0]];
        tf.dispose([t.ce, t.loss]);
        assert.ok(relDiff(ce, fx.loss) <= TOL, `ce ${ce} vs peer ${fx.loss}`);
        const withZ = fx.loss + cfg.z_loss * fx.mean_lse_sq;
        assert.ok(cfg.z_loss > 0 && relDiff(loss, withZ) <= TOL, `loss ${loss} vs ${withZ}`);
        assert.ok(relDiff(loss, fx.loss) > 10 * TOL, 'the z-loss term is visible at this size');
        const t0 = lossTerms(params, inputs, targets, { ...cfg, z_loss: 0 });
        const loss0 = t0.loss.dataSync()[0];
        tf.dispose([t0.ce, t0.loss]);
        assert.ok(relDiff(loss0, fx.loss) <= TOL, `z_loss 0: loss ${loss0} vs peer ${fx.loss}`);
      });

      it("gradients of ce (z_loss 0) match the peer's autograd", async () => {
        await setup();
        const byVar = new Map(Object.entries(params).map(([k, v]) => [v.name, k]));
        const { value, grads } = tf.variableGrads(() => lossTerms(params, inputs, targets, { ...cfg, z_loss: 0 }).loss, Object.values(params));
        value.dispose();
        assert.equal(Object.keys(grads).length, Object.keys(fx.grads).length);
        for (const [varName, g] of Object.entries(grads)) {
          const name = byVar.get(varName);
          assert.ok(name, varName);
          const ref = fx.grads[name];
          const data = g.dataSync();
          let sq = 0;
          for (const x of data) sq += x * x;
          assert.ok(relDiff(Math.sqrt(sq), ref.norm) <= GRAD_TOL, `${name}: ‖g‖ ${Math.sqrt(sq)} vs ${ref.norm}`);
          const err = Math.sqrt(ref.indices.reduce((s, j, i) => s + (data[j] - ref.values[i]) ** 2, 0));
          assert.ok(err <= GRAD_TOL * ref.norm, `${name}: sampled entries off by ${err} (‖g‖ ${ref.norm})`);
        }
        tf.dispose(Object.values(grads));
      });
    });
  }
});
