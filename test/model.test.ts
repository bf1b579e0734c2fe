/**
 * The decoder on the cpu backend: shapes and parameter counts (hand-computed, and the paper's
 * 368M / 661M), causality, the loss of a fresh model, gradients against central finite
 * differences, the gathered target logit against the one-hot formula it replaced (cpu and
 * wasm), determinism of init, and no tensor leaks across training steps.
 */
import '@tensorflow/tfjs-backend-wasm';
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { tf } from '../src/tf.js';
import { installWasmKernelOverrides } from '../src/backend/wasm-kernels.js';
import { logSumExp } from '../src/model/layers.js';
import {
  countParams,
  flopsPerToken,
  forward,
  initParams,
  lossTerms,
  modelSchema,
  paramShapes,
  targetLogits,
  type ModelConfig,
} from '../src/model/index.js';

const tiny: ModelConfig = modelSchema.parse({ vocab_size: 11, d_model: 8, n_layers: 2, n_heads: 2, mlp_hidden: 12 });

function randomTokens(B: number, T: number, V: number, seed: number): tf.Tensor2D {
  let s = seed;
  const next = (): number => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) % V;
  return tf.tensor2d(Array.from({ length: B * T }, next), [B, T], 'int32');
}

before(async () => {
  await tf.setBackend('cpu');
});

describe('parameter shapes and counts', () => {
  it('names every parameter with its [in, out] shape', () => {
    const s = paramShapes(tiny);
    assert.equal(Object.keys(s).length, 1 + 2 * 10 + 2);
    assert.deepEqual(s['tok_emb'], [11, 8]);
    assert.deepEqual(s['blocks.1.attn.wq'], [8, 8]);
    assert.deepEqual(s['blocks.0.attn.q_norm.weight'], [4]);
    assert.deepEqual(s['blocks.0.mlp.w_up'], [8, 12]);
    assert.deepEqual(s['blocks.0.mlp.w_down'], [12, 8]);
    assert.deepEqual(s['lm_head'], [8, 11]);
  });

  it('counts the tiny model by hand', () => {
    // per block: 4·8·8 (attention) + 2·8·12 (MLP) + 2·8 (ln1, ln2) + 2·4 (q/k norms) = 472
    // embedding: 11·8 (tok_emb) + 8·11 (lm_head) = 176; ln_f: 8
    assert.deepEqual(countParams(tiny), { embedding: 176, nonEmbedding: 2 * 472 + 8, total: 176 + 952 });
  });

  it("matches the paper's 368M (360m) and 661M (660m) within 1%", () => {
    const m360 = { vocab_size: 32128, d_model: 1024, n_layers: 24, n_heads: 16, mlp_hidden: 4096 };
    const m660 = { vocab_size: 32128, d_model: 1408, n_layers: 24, n_heads: 22, mlp_hidden: 5632 };
    const t360 = countParams(m360).total;
    const t660 = countParams(m660).total;
    assert.equal(t360, 367_841_280); // 24·12,585,088 + 2·32128·1024 + 1024
    assert.equal(t660, 661_494_144);
    assert.ok(Math.abs(t360 / 368e6 - 1) < 0.01, `${t360}`);
    assert.ok(Math.abs(t660 / 661e6 - 1) < 0.01, `${t660}`);
  });

  it('counts training FLOPs as 6·(matmul params + head) + 12·L·T·d', () => {
    // matmul params: 2·(4·64 + 2·8·12) + 8·11 = 2·448 + 88 = 984 → 6·984 = 5904; attention 12·2·16·8 = 3072
    assert.equal(flopsPerToken(tiny, 16), 5904 + 3072);
  });
});

describe('initialisation', () => {
  it('is deterministic in the seed, names variables with the prefix, and scales output projections', () => {
    const cfg = modelSchema.parse({ vocab_size: 64, d_model: 64, n_layers: 8, n_heads: 4, mlp_hidden: 128 });
    const a = initParams(cfg, { seed: 3, namePrefix: 'a/' });
    const b = initParams(cfg, { seed: 3, namePrefix: 'b/' });
    const c = initParams(cfg, { seed: 4, namePrefix: 'c/' });
    try {
      assert.equal(a['blocks.2.attn.wq'].name, 'a/blocks.2.attn.wq');
      assert.deepEqual(a['blocks.2.attn.wq'].dataSync(), b['blocks.2.attn.wq'].dataSync());
      assert.notDeepEqual(a['blocks.2.attn.wq'].dataSync(), c['blocks.2.attn.wq'].dataSync());
      assert.notDeepEqual(a['blocks.2.attn.wq'].dataSync(), a['blocks.2.attn.wk'].dataSync());
      const std = (t: tf.Tensor): number => tf.tidy(() => tf.moments(t).variance.sqrt().dataSync()[0]);
      assert.ok(Math.abs(std(a['blocks.0.mlp.w_up']) - 0.02) < 0.002);
      assert.ok(Math.abs(std(a['blocks.0.mlp.w_down']) - 0.02 / 4) < 0.0005); // 0.02/sqrt(2·8)
      assert.deepEqual(Array.from(a['ln_f.weight'].dataSync()), new Array(64).fill(1));
    } finally {
      tf.dispose([...Object.values(a), ...Object.values(b), ...Object.values(c)]);
    }
  });
});

describe('forward', () => {
  it('returns [B, T, V] logits and is causal: token t never changes logits before t', () => {
    const params = initParams({ ...tiny, init_std: 0.5 }, { seed: 1, namePrefix: 'causal/' });
    try {
      const T = 7;
      const x = randomTokens(2, T, tiny.vocab_size, 9);
      const base = forward(params, x, tiny);
      assert.deepEqual(base.shape, [2, T, 11]);
      const ref = base.arraySync();
      for (const t of [0, 3, 6]) {
        const changed = x.arraySync().map((row) => row.map((v, j) => (j === t ? (v + 5) % 11 : v)));
        const x2 = tf.tensor2d(changed, [2, T], 'int32');
        const out = forward(params, x2, tiny).arraySync();
        for (let b = 0; b < 2; b++) {
          for (let j = 0; j < T; j++) {
            const diff = Math.max(...out[b][j].map((v, k) => Math.abs(v - ref[b][j][k])));
            if (j < t) assert.ok(diff < 1e-6, `position ${j} moved by ${diff} when token ${t} changed`);
            else if (j === t) assert.ok(diff > 1e-3, `position ${t} did not see its own token`);
          }
        }
        tf.dispose(x2);
      }
      tf.dispose([x, base]);
    } finally {
      tf.dispose(Object.values(params));
    }
  });

  it('gives a fresh model a loss of about ln(V), plus the z-loss term', () => {
    const cfg = modelSchema.parse({ vocab_size: 256, d_model: 64, n_layers: 2, n_heads: 4, mlp_hidden: 256 });
    const params = initParams(cfg, { seed: 0 });
    try {
      const x = randomTokens(4, 32, 256, 1);
      const y = randomTokens(4, 32, 256, 2);
      const { loss, ce } = lossTerms(params, x, y, cfg);
      const ceV = ce.dataSync()[0];
      // logits have std ≈ 0.02·sqrt(64) = 0.16, so ce ≈ ln V + 0.16²/2 (a near-uniform prediction)
      assert.ok(Math.abs(ceV - Math.log(256)) < 0.05, `ce ${ceV} vs ln 256 = ${Math.log(256)}`);
      const zTerm = loss.dataSync()[0] - ceV;
      assert.ok(Math.abs(zTerm - 1e-4 * Math.log(256) ** 2) < 2e-5, `z-loss term ${zTerm}`);
      tf.dispose([x, y, loss, ce]);
    } finally {
      tf.dispose(Object.values(params));
    }
  });
});

describe('gradients', () => {
  it('match central finite differences on a tiny model', () => {
    // init_std 0.3 makes the gradients large enough to be measured in float32
    const cfg: ModelConfig = { ...tiny, init_std: 0.3, z_loss: 0.01 };
    const params = initParams(cfg, { seed: 5, namePrefix: 'fd/' });
    const x = randomTokens(2, 5, 11, 3);
    const y = randomTokens(2, 5, 11, 4);
    const lossOf = (): number => tf.tidy(() => lossTerms(params, x, y, cfg).loss.dataSync()[0]);
    const { grads } = tf.variableGrads(() => lossTerms(params, x, y, cfg).loss, Object.values(params));
    try {
      const names = ['tok_emb', 'blocks.0.attn.wq', 'blocks.0.attn.wk', 'blocks.1.attn.k_norm.weight', 'blocks.1.mlp.w_down',
        'blocks.0.ln1.weight', 'ln_f.weight', 'lm_head', 'blocks.1.attn.wv', 'blocks.0.attn.wo'];
      const h = 1e-2;
      for (const name of names) {
        const v = params[name];
        const g = grads[v.name].dataSync();
        // probe the three entries with the largest gradients, where float32 noise matters least
        const order = [...g.keys()].sort((i, j) => Math.abs(g[j]) - Math.abs(g[i])).slice(0, 3);
        for (const idx of order) {
          const orig = v.dataSync().slice();
          const bump = (delta: number): number => {
            const w = orig.slice();
            w[idx] += delta;
            v.assign(tf.tensor(w, v.shape));
            return lossOf();
          };
          const fd = (bump(h) - bump(-h)) / (2 * h);
          v.assign(tf.tensor(orig, v.shape));
          const rel = Math.abs(fd - g[idx]) / Math.max(Math.abs(g[idx]), 1e-3);
          assert.ok(rel < 0.03, `${name}[${idx}]: autodiff ${g[idx]} vs finite difference ${fd} (rel ${rel})`);
        }
      }
    } finally {
      tf.dispose([x, y, ...Object.values(grads), ...Object.values(params)]);
    }
  });

  it('leaks no tensors across forward+backward steps', () => {
    const params = initParams(tiny, { seed: 2, namePrefix: 'leak/' });
    const x = randomTokens(2, 6, 11, 5);
    const y = randomTokens(2, 6, 11, 6);
    const counts: number[] = [];
    for (let step = 0; step < 4; step++) {
      const ce = tf.tidy(() => {
        let ceT: tf.Scalar | undefined;
        const { grads } = tf.variableGrads(() => {
          const t = lossTerms(params, x, y, tiny);
          ceT = tf.keep(t.ce); // variableGrads runs f in a tidy: keep ce to read it after
          return t.loss;
        }, Object.values(params));
        for (const v of Object.values(params)) v.assign(tf.sub(v, tf.mul(grads[v.name], 0.1)));
        return ceT!;
      });
      ce.dataSync();
      ce.dispose();
      counts.push(tf.memory().numTensors);
    }
    assert.deepEqual(counts.slice(1), [counts[0], counts[0], counts[0]]);
    tf.dispose([x, y, ...Object.values(params)]);
  });
});

describe('the target logit by a gather', () => {
  /**
   * The loss as it was before the gather: the target logit as Σ_v logits[n, v]·onehot[n, v],
   * which builds an [N, V] one-hot and an [N, V] product (and their gradients).
   */
  function oneHotLoss(params: Record<string, tf.Tensor>, x: tf.Tensor2D, y: tf.Tensor2D, cfg: ModelConfig): tf.Scalar {
    return tf.tidy(() => {
      const [B, T] = x.shape;
      const logits = tf.reshape(forward(params, x, cfg), [B * T, cfg.vocab_size]) as tf.Tensor2D;
      const lse = logSumExp(logits);
      const picked = tf.sum(tf.mul(logits, tf.oneHot(tf.reshape(y, [B * T]), cfg.vocab_size)), -1);
      const ce = tf.mean(tf.sub(lse, picked));
      return tf.add(ce, tf.mul(tf.mean(tf.square(lse)), cfg.z_loss)) as tf.Scalar;
    });
  }

  /** Loss and every gradient of both formulas on the current backend, as plain arrays. */
  function bothFormulas(cfg: ModelConfig): Record<'gather' | 'oneHot', { loss: number; grads: Float32Array[] }> {
    const params = initParams(cfg, { seed: 7, namePrefix: `gather-${tf.getBackend()}/` });
    const x = randomTokens(3, 6, cfg.vocab_size, 11);
    const y = randomTokens(3, 6, cfg.vocab_size, 12);
    try {
      const run = (f: () => tf.Scalar): { loss: number; grads: Float32Array[] } => {
        const { value, grads } = tf.variableGrads(f, Object.values(params));
        const out = { loss: value.dataSync()[0], grads: Object.values(params).map((v) => grads[v.name].dataSync() as Float32Array) };
        tf.dispose([value, ...Object.values(grads)]);
        return out;
      };
      return { gather: run(() => lossTerms(params, x, y, cfg).loss), oneHot: run(() => oneHotLoss(params, x, y, cfg)) };
    } finally {
      tf.dispose([x, y, ...Object.values(params)]);
    }
  }

  for (const backend of ['cpu', 'wasm'] as const) {
    it(`gives the one-hot formula's loss and gradients on ${backend}`, async () => {
      await tf.setBackend(backend);
      if (backend === 'wasm') installWasmKernelOverrides(); // UnsortedSegmentSum: the gather's gradient
      try {
        const cfg: ModelConfig = { ...tiny, init_std: 0.3, z_loss: 0.01 };
        const { gather, oneHot } = bothFormulas(cfg);
        // The picked logit is one logit plus exact zeros either way, so the loss is the same float;
        // the gradients are bit-identical today too (the same two [N, V] terms, summed in either order).
        assert.equal(gather.loss, oneHot.loss);
        gather.grads.forEach((g, i) => {
          const ref = oneHot.grads[i];
          const scale = Math.max(...ref.map(Math.abs));
          const worst = Math.max(...g.map((v, k) => Math.abs(v - ref[k])));
          assert.ok(scale > 0 && worst <= 1e-6 * scale, `parameter ${i}: max |Δ| ${worst} against max |g| ${scale}`);
        });
      } finally {
        await tf.setBackend('cpu');
      }
    });
  }

  it('picks logits[n, target_n], in chunks when flat indices would pass int32, with the scattered gradient', () => {
    // logits[n, v] = 10·n + v, so the picked values are readable: 10·n + target_n.
    const logits = tf.tensor2d(Array.from({ length: 4 * 5 }, (_, i) => 10 * Math.floor(i / 5) + (i % 5)), [4, 5]);
    const targets = tf.tensor1d([4, 0, 2, 3], 'int32');
    for (const maxFlatIndex of [2 ** 31 - 1, 9, 4]) {
      // 9: two rows per chunk (flat indices 0..9), 4: one row per chunk
      const picked = targetLogits(logits, targets, maxFlatIndex);
      assert.deepEqual(Array.from(picked.dataSync()), [4, 10, 22, 33]);
      const grad = tf.grad((l: tf.Tensor) => tf.sum(tf.mul(targetLogits(l as tf.Tensor2D, targets, maxFlatIndex), tf.tensor1d([1, 2, 3, 4]))))(logits);
      const expected = new Float32Array(20);
      [4, 0, 2, 3].forEach((t, n) => (expected[n * 5 + t] = n + 1));
      assert.deepEqual(grad.dataSync(), expected);
      tf.dispose([picked, grad]);
    }
    tf.dispose([logits, targets]);
  });
});
