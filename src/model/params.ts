/**
 * The decoder's parameters: their names and shapes, how many there are, the training FLOPs per
 * token they imply, and their initialisation.
 *
 * Names are dotted paths; optimizer state, checkpoints and the per-matrix preconditioners all key
 * on them. Every matrix is stored [in, out] so the forward pass is a plain x·W (the layout the
 * wasm backend's fast GEMM takes without a transpose).
 */
import { tf } from '../tf.js';
import type { ModelConfig } from './config.js';

/** The architecture fields the shapes depend on (a parsed {@link ModelConfig} has them all). */
export type ModelShape = Pick<ModelConfig, 'vocab_size' | 'd_model' | 'n_layers' | 'n_heads' | 'mlp_hidden'>;

/** Size of one attention head, d_model / n_heads. */
export function headDim(cfg: Pick<ModelConfig, 'd_model' | 'n_heads'>): number {
  return cfg.d_model / cfg.n_heads;
}

/**
 * Every parameter's name and shape, in a fixed order (embedding, blocks 0..L−1, final norm,
 * head). Allocates no tensors.
 *
 *   tok_emb [V, d]; per block i: blocks.i.ln1.weight [d], blocks.i.attn.{wq,wk,wv,wo} [d, d],
 *   blocks.i.attn.{q_norm,k_norm}.weight [d/H], blocks.i.ln2.weight [d],
 *   blocks.i.mlp.w_up [d, mlp], blocks.i.mlp.w_down [mlp, d]; ln_f.weight [d]; lm_head [d, V].
 */
export function paramShapes(cfg: ModelShape): Record<string, number[]> {
  const { vocab_size: V, d_model: d, n_layers: L, mlp_hidden: m } = cfg;
  const hd = headDim(cfg);
  const shapes: Record<string, number[]> = { tok_emb: [V, d] };
  for (let i = 0; i < L; i++) {
    const p = `blocks.${i}`;
    shapes[`${p}.ln1.weight`] = [d];
    shapes[`${p}.attn.wq`] = [d, d];
    shapes[`${p}.attn.wk`] = [d, d];
    shapes[`${p}.attn.wv`] = [d, d];
    shapes[`${p}.attn.q_norm.weight`] = [hd];
    shapes[`${p}.attn.k_norm.weight`] = [hd];
    shapes[`${p}.attn.wo`] = [d, d];
    shapes[`${p}.ln2.weight`] = [d];
    shapes[`${p}.mlp.w_up`] = [d, m];
    shapes[`${p}.mlp.w_down`] = [m, d];
  }
  shapes['ln_f.weight'] = [d];
  shapes['lm_head'] = [d, V];
  return shapes;
}

/** Parameter names that count as embedding: the input table and the (untied) output head. */
export const EMBEDDING_PARAMS: readonly string[] = ['tok_emb', 'lm_head'];

export interface ParamCounts {
  /** tok_emb + lm_head = 2·V·d (untied, so both count). */
  embedding: number;
  /** Everything else: the blocks' matrices and norm weights, and ln_f. */
  nonEmbedding: number;
  /** embedding + nonEmbedding: the number the paper quotes (368M for 360m, 661M for 660m). */
  total: number;
}

/**
 * Parameter counts. With L blocks, width d, H heads, MLP width m, vocab V:
 *   nonEmbedding = L·(4d² + 2·d·m + 2d + 2·d/H) + d,   embedding = 2·V·d.
 * The paper's model names count everything: 360m (24×1024, m 4096, V 32128) has
 * 367.8M in total, 660m (24×1408, m 5632) 661.5M.
 */
export function countParams(cfg: ModelShape): ParamCounts {
  let embedding = 0;
  let nonEmbedding = 0;
  for (const [name, shape] of Object.entries(paramShapes(cfg))) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (EMBEDDING_PARAMS.includes(name)) embedding += n;
    else nonEmbedding += n;
  }
  return { embedding, nonEmbedding, total: embedding + nonEmbedding };
}

/**
 * Training FLOPs per token (forward + backward = 3 × forward, each multiply-add 2 FLOPs), the
 * PaLM / Chinchilla convention:
 *   6·(L·(4d² + 2·d·m) + d·V) + 12·L·T·d
 * The first term is the matmuls with weights (the blocks' projections and the output head; the
 * embedding lookup is a gather, 0 FLOPs). The second is attention: q·kᵀ and p·v cost 2·T·d each
 * per token and layer in the forward pass, counted over the full T×T square (no causal halving,
 * as in the convention). Norms, softmax, RoPE and GeLU are left out (O(d) per token).
 */
export function flopsPerToken(cfg: ModelShape, seqLen: number): number {
  const { vocab_size: V, d_model: d, n_layers: L, mlp_hidden: m } = cfg;
  const matmulParams = L * (4 * d * d + 2 * d * m) + d * V;
  return 6 * matmulParams + 12 * L * seqLen * d;
}

/** 32-bit FNV-1a: a stable per-parameter seed that does not shift when parameters are added. */
function hashSeed(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * The initial standard deviation of a parameter: init_std for matrices, divided by
 * sqrt(2·n_layers) for the projections that write into the residual stream (attn.wo,
 * mlp.w_down), as GPT-2 and OLMo do, so the residual's variance does not grow with depth.
 * Norm weights are 1 (returns 0 for them).
 */
export function initStd(name: string, cfg: Pick<ModelConfig, 'n_layers' | 'init_std'>): number {
  if (name.endsWith('.weight')) return 0;
  if (name.endsWith('.attn.wo') || name.endsWith('.mlp.w_down')) return cfg.init_std / Math.sqrt(2 * cfg.n_layers);
  return cfg.init_std;
}

export interface InitOptions {
  /** Base seed; each parameter draws from its own stream seeded by hash(seed, name). */
  seed: number;
  /** Prefix of each tf.Variable's name, so several models can live in one process. */
  namePrefix?: string;
}

/**
 * Fresh parameters: W ~ N(0, initStd(name)²) for matrices (see {@link initStd}), 1 for norm
 * weights. Deterministic in (cfg, seed) and backend-independent (tfjs draws seeded normals in
 * JS). Keys are the dotted names; each variable is named `namePrefix + name`.
 */
export function initParams(cfg: ModelConfig, opts: InitOptions): Record<string, tf.Variable> {
  const prefix = opts.namePrefix ?? '';
  const params: Record<string, tf.Variable> = {};
  for (const [name, shape] of Object.entries(paramShapes(cfg))) {
    const std = initStd(name, cfg);
    const value =
      std === 0 ? tf.ones(shape, 'float32') : tf.randomNormal(shape, 0, std, 'float32', hashSeed(`${opts.seed}/${name}`));
    params[name] = tf.variable(value, true, prefix + name);
    value.dispose(); // the variable holds its own reference to the data
  }
  return params;
}
