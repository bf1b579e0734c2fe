/**
 * The forward pass and the training loss of the decoder, as functions over named parameters.
 *
 *   x = tok_emb[tokens]                                   (B·T, d)
 *   for each block:  x = x + attn(LN1(x));  x = x + mlp(LN2(x))
 *   logits = LN_f(x)·lm_head                              (B·T, V)
 */
import { tf } from '../tf.js';
import type { ModelConfig } from './config.js';
import { attention, cachedCausalMask, cachedRopeTables, layerNorm, linear, logSumExp, mlp } from './layers.js';
import { paramShapes } from './params.js';

/** Named parameters; tf.Variables from initParams, or any tensors of the same shapes. */
export type Params = Record<string, tf.Tensor>;

function param(params: Params, name: string): tf.Tensor {
  const p = params[name];
  if (!p) throw new Error(`model parameter ${name} is missing`);
  return p;
}

/** Throws if a parameter is missing, has the wrong shape, or is not part of the model. */
export function checkParams(params: Params, cfg: ModelConfig): void {
  const shapes = paramShapes(cfg);
  for (const [name, shape] of Object.entries(shapes)) {
    const p = param(params, name);
    if (p.shape.length !== shape.length || p.shape.some((s, i) => s !== shape[i])) {
      throw new Error(`model parameter ${name} has shape [${p.shape}], expected [${shape}]`);
    }
  }
  for (const name of Object.keys(params)) {
    if (!(name in shapes)) throw new Error(`unknown model parameter ${name}`);
  }
}

/** Final hidden states LN_f(x) as [B·T, d] (the input of the head). */
function hidden(params: Params, tokens: tf.Tensor, cfg: ModelConfig): tf.Tensor2D {
  if (tokens.rank !== 2 || tokens.dtype !== 'int32') {
    throw new Error(`tokens must be int32 [B, T], got ${tokens.dtype} [${tokens.shape}]`);
  }
  const [B, T] = tokens.shape;
  return tf.tidy(() => {
    const ctx = {
      batch: B,
      seqLen: T,
      nHeads: cfg.n_heads,
      eps: cfg.norm_eps,
      rope: cachedRopeTables(T, cfg.d_model / cfg.n_heads, cfg.rope_base),
      mask: cachedCausalMask(T),
    };
    // The gather's gradient is UnsortedSegmentSum (registered for wasm by installWasmKernelOverrides).
    let x = tf.gather(param(params, 'tok_emb'), tf.reshape(tokens, [B * T])) as tf.Tensor2D; // (B·T, d)
    for (let i = 0; i < cfg.n_layers; i++) {
      const p = (n: string): tf.Tensor => param(params, `blocks.${i}.${n}`);
      const a = attention(layerNorm(x, p('ln1.weight'), cfg.norm_eps) as tf.Tensor2D, {
        wq: p('attn.wq'),
        wk: p('attn.wk'),
        wv: p('attn.wv'),
        wo: p('attn.wo'),
        qNorm: p('attn.q_norm.weight'),
        kNorm: p('attn.k_norm.weight'),
      }, ctx);
      x = tf.add(x, a);
      x = tf.add(x, mlp(layerNorm(x, p('ln2.weight'), cfg.norm_eps) as tf.Tensor2D, p('mlp.w_up'), p('mlp.w_down')));
    }
    return layerNorm(x, param(params, 'ln_f.weight'), cfg.norm_eps) as tf.Tensor2D;
  });
}

/** Logits as [B·T, V]: the layout the loss works in (no 3-D matmul, no extra reshape). */
function logits2d(params: Params, tokens: tf.Tensor, cfg: ModelConfig): tf.Tensor2D {
  return tf.tidy(() => linear(hidden(params, tokens, cfg), param(params, 'lm_head')));
}

/**
 * Next-token logits of a causal decoder: logits[b, t, :] depends on tokens[b, 0..t] only.
 * @param tokens int32 [B, T]
 * @returns float32 [B, T, V]
 */
export function forward(params: Params, tokens: tf.Tensor, cfg: ModelConfig): tf.Tensor3D {
  const [B, T] = tokens.shape;
  return tf.tidy(() => tf.reshape(logits2d(params, tokens, cfg), [B, T, cfg.vocab_size]));
}

/** The largest flat index an int32 gather index can hold. */
const MAX_FLAT_INDEX = 2 ** 31 - 1;

/**
 * The target logit of each row, picked[n] = logits[n, target_n], as a gather on the flattened
 * logits at n·V + target_n. Its gradient scatters dy into an [N·V] zero tensor
 * (UnsortedSegmentSum, registered for wasm by installWasmKernelOverrides): the size of the
 * logits' gradient itself, so no [N, V] one-hot and no [N, V] product with it is built in the
 * forward or the backward pass. The value is exactly the one-hot masked sum's (one logit plus
 * exact zeros). Rows whose flat index would pass `maxFlatIndex` (int32) are gathered in chunks.
 * @param logits float32 [N, V]; @param targets int32 with N elements, each in [0, V).
 */
export function targetLogits(logits: tf.Tensor2D, targets: tf.Tensor, maxFlatIndex = MAX_FLAT_INDEX): tf.Tensor1D {
  const [N, V] = logits.shape;
  const rowsPerChunk = Math.max(1, Math.floor((maxFlatIndex + 1) / V));
  return tf.tidy(() => {
    const flatTargets = tf.reshape(targets, [N]);
    const pick = (rows: tf.Tensor2D, t: tf.Tensor): tf.Tensor1D => {
      const n = rows.shape[0];
      const flatIndex = tf.add(tf.range(0, n * V, V, 'int32'), t); // n·V + target_n
      return tf.gather(tf.reshape(rows, [n * V]), flatIndex) as tf.Tensor1D;
    };
    if (N <= rowsPerChunk) return pick(logits, flatTargets);
    const parts: tf.Tensor1D[] = [];
    for (let start = 0; start < N; start += rowsPerChunk) {
      const n = Math.min(rowsPerChunk, N - start);
      parts.push(pick(tf.slice(logits, [start, 0], [n, V]), tf.slice(flatTargets, [start], [n])));
    }
    return tf.concat(parts) as tf.Tensor1D;
  });
}

export interface LossTerms {
  /** ce + z_loss·mean(lse²): the scalar to differentiate. */
  loss: tf.Scalar;
  /** Mean cross-entropy in nats (what is reported and compared across optimizers). */
  ce: tf.Scalar;
}

/**
 * Training loss over all B·T positions, with lse_n = logsumexp_v(logits[n, v]):
 *   ce   = mean_n (lse_n − logits[n, target_n])     (the target logit by a gather, see targetLogits)
 *   loss = ce + z · mean_n lse_n²        (z = cfg.z_loss; the PaLM/OLMo z-loss, 0 turns it off)
 * Inside `tf.variableGrads(f)`, f runs in a tidy that frees all but the returned loss: take
 * `tf.keep(terms.ce)` there to read ce afterwards (and dispose it).
 * @param inputs int32 [B, T]; @param targets int32 [B, T] (inputs shifted by one in the data).
 */
export function lossTerms(params: Params, inputs: tf.Tensor, targets: tf.Tensor, cfg: ModelConfig): LossTerms {
  if (targets.dtype !== 'int32' || targets.shape.join() !== inputs.shape.join()) {
    throw new Error(`targets must be int32 [${inputs.shape}], got ${targets.dtype} [${targets.shape}]`);
  }
  return tf.tidy(() => {
    const logits = logits2d(params, inputs, cfg); // (B·T, V)
    const lse = logSumExp(logits); // (B·T)
    const picked = targetLogits(logits, targets); // (B·T)
    const ce = tf.mean(tf.sub(lse, picked)) as tf.Scalar;
    const loss = cfg.z_loss > 0 ? (tf.add(ce, tf.mul(tf.mean(tf.square(lse)), cfg.z_loss)) as tf.Scalar) : ce.clone();
    return { loss, ce };
  });
}
