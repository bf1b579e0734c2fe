/**
 * The decoder's building blocks as functions of tensors: LayerNorm without bias, exact GeLU,
 * RoPE on interleaved pairs and causal multi-head attention with QK-LayerNorm. They mirror
 * bench/peers/torch_gpt.py op for op (test/model-parity.test.ts); the z-loss term is ours alone.
 *
 * Linear layers take the residual stream as a 2-D [B·T, d] matrix so that every x·W is a plain
 * 2-D matMul, the one form the wasm backend's XNNPACK GEMM takes directly.
 */
import { tf } from '../tf.js';
import { fusedGelu, fusedGeluActive } from '../backend/fused-gelu.js';
import { fusedRope, fusedRopeActive } from '../backend/fused-rope.js';

/**
 * LayerNorm over the last axis with a weight and no bias:
 *   x̂ = (x − mean(x)) · r,  r = 1/sqrt(var(x) + eps)  (var the biased, 1/D, variance);  y = x̂ · w
 * with the gradient written out (fewer, larger ops than autodiff through mean and variance):
 *   dx = r · (g − mean(g) − x̂ · mean(g · x̂)),  g = dy · w;   dw = Σ_rows dy · x̂
 */
export function layerNorm(x: tf.Tensor, weight: tf.Tensor, eps: number): tf.Tensor {
  // customGrad passes the inputs and then `save` through one untyped rest parameter
  const ln = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xIn, wIn, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const mean = tf.mean(xIn, -1, true);
    const xc = tf.sub(xIn, mean);
    const r = tf.rsqrt(tf.add(tf.mean(tf.square(xc), -1, true), eps));
    const xhat = tf.mul(xc, r);
    save([xhat, r, wIn]);
    return {
      value: tf.mul(xhat, wIn),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, rs, w] = saved;
        const D = xh.shape[xh.rank - 1];
        const g = tf.mul(dy, w);
        const dx = tf.mul(tf.sub(tf.sub(g, tf.mean(g, -1, true)), tf.mul(xh, tf.mean(tf.mul(g, xh), -1, true))), rs);
        const dw = tf.sum(tf.reshape(tf.mul(dy, xh), [-1, D]), 0);
        return [dx, dw];
      },
    };
  });
  return ln(x, weight);
}

/**
 * logsumexp over the last axis, lse = m + log Σ exp(x − m) with m = max(x), with the gradient
 * d lse/dx = softmax(x) = exp(x − lse) written out: autodiff would also differentiate through m
 * (an exact zero, paid for with an Equal over the whole [N, V] logits).
 */
export function logSumExp(x: tf.Tensor2D): tf.Tensor1D {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xIn, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const m = tf.max(xIn, -1, true);
    const lse = tf.add(m, tf.log(tf.sum(tf.exp(tf.sub(xIn, m)), -1, true))); // (N, 1)
    save([xIn, lse]);
    return {
      value: tf.reshape(lse, [xIn.shape[0]]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(tf.expandDims(dy, -1), tf.exp(tf.sub(saved[0], saved[1]))),
    };
  });
  return f(x) as tf.Tensor1D;
}

/**
 * Exact (erf) GeLU, torch's default: gelu(x) = x/2 · (1 + erf(x/√2)). On wasm with the native
 * binding, one fused kernel forward and one backward (src/backend/fused-gelu.ts).
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (fusedGeluActive()) return fusedGelu(x);
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
}

/** y = x·W for x [N, in] and W [in, out]: a plain 2-D product (the fast path on wasm). */
export function linear(x: tf.Tensor2D, w: tf.Tensor): tf.Tensor2D {
  return tf.matMul(x, w as tf.Tensor2D);
}

/**
 * RoPE tables for positions 0..T−1 and head size hd: `cos`, `sin` shaped [T, 1, hd] to broadcast
 * over heads, with θ_i = t · base^(−2i/hd),
 *   cos[t, 2i] = cos[t, 2i+1] = cos θ_i,  sin[t, 2i] = −sin θ_i,  sin[t, 2i+1] = +sin θ_i
 * (the sign of the rotation folded into the sine table), and `swap` [hd, hd], the permutation
 * exchanging the members of each pair (x·swap)_{2i} = x_{2i+1}, (x·swap)_{2i+1} = x_{2i}.
 */
export interface RopeTables {
  cos: tf.Tensor3D;
  sin: tf.Tensor3D;
  swap: tf.Tensor2D;
}

export function ropeTables(seqLen: number, hd: number, base: number): RopeTables {
  const cos = new Float32Array(seqLen * hd);
  const sin = new Float32Array(seqLen * hd);
  for (let t = 0; t < seqLen; t++) {
    for (let i = 0; i < hd / 2; i++) {
      const angle = t / Math.pow(base, (2 * i) / hd);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[t * hd + 2 * i] = c;
      cos[t * hd + 2 * i + 1] = c;
      sin[t * hd + 2 * i] = -s;
      sin[t * hd + 2 * i + 1] = s;
    }
  }
  const swap = new Float32Array(hd * hd);
  for (let i = 0; i < hd; i += 2) {
    swap[(i + 1) * hd + i] = 1;
    swap[i * hd + i + 1] = 1;
  }
  return {
    cos: tf.tensor3d(cos, [seqLen, 1, hd]),
    sin: tf.tensor3d(sin, [seqLen, 1, hd]),
    swap: tf.tensor2d(swap, [hd, hd]),
  };
}

/**
 * Rotary embedding of x [B, T, H, hd] on interleaved pairs (x_{2i}, x_{2i+1}), as torch_gpt.py:
 *   y_{2i}   = x_{2i} cos θ_i − x_{2i+1} sin θ_i
 *   y_{2i+1} = x_{2i} sin θ_i + x_{2i+1} cos θ_i
 * computed as x·cos + (x·swap)·sin. The pair swap is a product with a 0/1 permutation matrix
 * (exact: one nonzero term per output) because it is a fast 2-D GEMM on wasm, where a reverse
 * over a trailing axis of 2 is a slow generic kernel. On wasm one fused kernel does the same
 * arithmetic (src/backend/fused-rope.ts).
 */
export function rope(x: tf.Tensor4D, tables: RopeTables): tf.Tensor4D {
  if (fusedRopeActive()) return fusedRope(x, tables.cos, tables.sin);
  return tf.tidy(() => {
    const [B, T, H, hd] = x.shape;
    const swapped = tf.reshape(tf.matMul(tf.reshape(x, [B * T * H, hd]), tables.swap), [B, T, H, hd]);
    return tf.add(tf.mul(x, tables.cos), tf.mul(swapped, tables.sin)) as tf.Tensor4D;
  });
}

/**
 * Tensors that depend only on a shape, made once per (backend, key) and kept for the process:
 * the RoPE tables and the causal mask, which every forward pass would otherwise rebuild and
 * upload. Made outside any tidy (tf.keep), so they survive the step that first asks for them.
 */
const shapeConstants = new Map<string, tf.Tensor[]>();

function cachedConstants<T extends tf.Tensor[]>(key: string, make: () => T): T {
  const fullKey = `${tf.getBackend()}:${key}`;
  const hit = shapeConstants.get(fullKey);
  if (hit && hit.every((t) => !t.isDisposed)) return hit as T;
  const made = make();
  made.forEach((t) => tf.keep(t));
  shapeConstants.set(fullKey, made);
  return made;
}

/**
 * Disposes the cached RoPE tables and causal masks: the trainer calls it when a run ends, so
 * that a finished run leaves no tensors behind (the next forward pass makes them again).
 */
export function releaseShapeConstants(): void {
  for (const tensors of shapeConstants.values()) tf.dispose(tensors.filter((t) => !t.isDisposed));
  shapeConstants.clear();
}

/** {@link ropeTables}, made once per (backend, T, hd, base). */
export function cachedRopeTables(seqLen: number, hd: number, base: number): RopeTables {
  const [cos, sin, swap] = cachedConstants(`rope:${seqLen}:${hd}:${base}`, () => {
    const t = ropeTables(seqLen, hd, base);
    return [t.cos, t.sin, t.swap];
  });
  return { cos: cos as tf.Tensor3D, sin: sin as tf.Tensor3D, swap: swap as tf.Tensor2D };
}

/** {@link causalMask}, made once per (backend, T). */
export function cachedCausalMask(seqLen: number): tf.Tensor2D {
  return cachedConstants(`mask:${seqLen}`, () => [causalMask(seqLen)])[0] as tf.Tensor2D;
}

/** Additive causal mask [T, T]: 0 where key ≤ query, −1e9 above the diagonal (exp → exactly 0). */
export function causalMask(seqLen: number): tf.Tensor2D {
  const m = new Float32Array(seqLen * seqLen);
  for (let q = 0; q < seqLen; q++) for (let k = q + 1; k < seqLen; k++) m[q * seqLen + k] = -1e9;
  return tf.tensor2d(m, [seqLen, seqLen]);
}

export interface AttentionWeights {
  wq: tf.Tensor;
  wk: tf.Tensor;
  wv: tf.Tensor;
  wo: tf.Tensor;
  qNorm: tf.Tensor;
  kNorm: tf.Tensor;
}

export interface AttentionContext {
  batch: number;
  seqLen: number;
  nHeads: number;
  eps: number;
  rope: RopeTables;
  mask: tf.Tensor2D;
}

/**
 * Causal multi-head self-attention with QK-LayerNorm and RoPE, on x [B·T, d] (already normed):
 *   q = rope(LN_q(x·Wq)), k = rope(LN_k(x·Wk)), v = x·Wv   per head, LN over hd
 *   y = softmax(q·kᵀ/√hd + mask)·v,  out = concat_heads(y)·Wo
 * The heads are batched as [B·H, T, hd] products (the wasm override splits them into 2-D GEMMs);
 * 1/√hd is folded into q, which is cheaper than scaling the T×T scores.
 */
export function attention(x: tf.Tensor2D, w: AttentionWeights, ctx: AttentionContext): tf.Tensor2D {
  return tf.tidy(() => {
    const { batch: B, seqLen: T, nHeads: H } = ctx;
    const d = x.shape[1];
    const hd = d / H;
    // (B·T, d) → (B·T·H, hd) → LN over hd → (B, T, H, hd) → rope → (B·H, T, hd)
    const heads = (w2: tf.Tensor, norm: tf.Tensor | null, scale: number): tf.Tensor3D => {
      let h: tf.Tensor = tf.reshape(linear(x, w2), [B * T * H, hd]);
      if (norm) h = layerNorm(h, norm, ctx.eps);
      let h4 = tf.reshape(h, [B, T, H, hd]) as tf.Tensor4D;
      if (norm) h4 = rope(h4, ctx.rope);
      if (scale !== 1) h4 = tf.mul(h4, scale);
      return tf.reshape(tf.transpose(h4, [0, 2, 1, 3]), [B * H, T, hd]);
    };
    const q = heads(w.wq, w.qNorm, 1 / Math.sqrt(hd));
    const k = heads(w.wk, w.kNorm, 1);
    const v = heads(w.wv, null, 1);
    const scores = tf.add(tf.matMul(q, k, false, true), ctx.mask); // (B·H, T, T)
    const y = tf.matMul(tf.softmax(scores, -1), v); // (B·H, T, hd)
    const merged: tf.Tensor2D = tf.reshape(tf.transpose(tf.reshape(y, [B, H, T, hd]), [0, 2, 1, 3]), [B * T, d]);
    return linear(merged, w.wo);
  });
}

/** The GeLU MLP on x [B·T, d]: gelu(x·W_up)·W_down. */
export function mlp(x: tf.Tensor2D, wUp: tf.Tensor, wDown: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => linear(gelu(linear(x, wUp)) as tf.Tensor2D, wDown));
}
