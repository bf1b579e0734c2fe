/**
 * Blocked Householder QR whose level-3 work runs as plain 2-D tf.matMuls (on wasm: XNNPACK's
 * fp32 GEMM, ~20× the host's float64 loops), for SOAP's refresh Q ← qr(P·Q).
 *
 * Why this split: the panel factorisations (an r×b slab, b·n² flops in all) are level-2 and
 * cheap, so they run on the host in float64 from the panel's float32 values; the trailing
 * updates and the formation of Q (≈ 8/3·n³ flops) are compact-WY block reflector products
 * I − V·T·Vᵀ applied with matMuls. The arithmetic is therefore float32 like the reference's
 * `torch.linalg.qr` on float32 input. The panels use householder.ts's `reflector` and `reflect`,
 * the same reflectors as the host `householderQ`, so the two agree up to float32 roundoff
 * column by column, including the orthonormal completion of rank-deficient inputs.
 *
 * Why a second QR at all: only the reflector arithmetic can be shared. What makes this one
 * fast, accumulating a panel's reflectors into V·T·Vᵀ and applying the trailing updates and Q
 * as float32 matMuls, has no counterpart in the unblocked float64 host loops, which stay the
 * faster and more exact choice below ~64 columns (soap-refresh.ts picks by size).
 */
import { tf } from '../../tf.js';
import { reflect, reflector } from './householder.js';

type Tensor2D = tf.Tensor2D;

/** Panel width: wide enough for efficient GEMMs, narrow enough that host panels stay cheap. */
const QR_BLOCK = 32;

/** One panel's block reflector I − V·T·Vᵀ, kept as the factors the matMuls need. */
interface Panel {
  /** Row offset k0 of the panel (= its first column). */
  k0: number;
  /** Panel width b. */
  b: number;
  /** Vᵀ, b×r (r = m − k0): row j is reflector j, zero before its own index. */
  vT: Tensor2D;
  /** V·T, r×b: applies the block reflector, for forming Q. */
  vTf: Tensor2D;
}

/**
 * Factors the r×b row-major `panel` (float32 values from the device) in float64: returns
 * Vᵀ (b×r, reflector j in row j), V·T and V·Tᵀ (r×b) with H₀···H_{b−1} = I − V·T·Vᵀ.
 * Reflectors are `householderQ`'s (householder.ts: scale-free v = x/s − α e₁, β = 2/‖v‖²);
 * a column that needs no reflection gets β = 0 and v = 0.
 */
function factorPanel(panel: ArrayLike<number>, r: number, b: number): { vT: Float64Array; vt: Float64Array; vtt: Float64Array } {
  // B = panelᵀ (b×r) so each reflector reads and writes a contiguous row.
  const w = new Float64Array(b * r);
  for (let i = 0; i < r; i++) for (let j = 0; j < b; j++) w[j * r + i] = panel[i * b + j];
  const betas = new Float64Array(b);
  const vT = new Float64Array(b * r);
  for (let k = 0; k < b; k++) {
    const rowK = k * r;
    const { beta } = reflector(w, vT, rowK + k, rowK + r, true);
    betas[k] = beta;
    if (beta === 0) continue;
    for (let j = k + 1; j < b; j++) reflect(vT, rowK + k, w, j * r + k, r - k, beta);
  }
  // T (b×b upper triangular): T_jj = β_j, T[:j, j] = −β_j·T[:j, :j]·(Vᵀ v_j)[:j] (LAPACK larft).
  const t = new Float64Array(b * b);
  const z = new Float64Array(b);
  for (let j = 0; j < b; j++) {
    const beta = betas[j];
    t[j * b + j] = beta;
    if (beta === 0 || j === 0) continue;
    const rowJ = j * r;
    for (let l = 0; l < j; l++) {
      const rowL = l * r;
      let dot = 0;
      for (let i = j; i < r; i++) dot += vT[rowL + i] * vT[rowJ + i];
      z[l] = dot;
    }
    for (let l = 0; l < j; l++) {
      let acc = 0;
      for (let p = l; p < j; p++) acc += t[l * b + p] * z[p];
      t[l * b + j] = -beta * acc;
    }
  }
  // V·T and V·Tᵀ (r×b); V[i, l] = vT[l, i].
  const vt = new Float64Array(r * b);
  const vtt = new Float64Array(r * b);
  for (let i = 0; i < r; i++) {
    for (let l = 0; l < b; l++) {
      const v = vT[l * r + i];
      if (v === 0) continue;
      const tl = l * b;
      for (let j = l; j < b; j++) vt[i * b + j] += v * t[tl + j]; // T upper: T[l, j], j ≥ l
      for (let j = 0; j <= l; j++) vtt[i * b + j] += v * t[j * b + l]; // Tᵀ[l, j] = T[j, l], j ≤ l
    }
  }
  return { vT, vt, vtt };
}

function upload(values: Float64Array, rows: number, cols: number): Tensor2D {
  return tf.tensor2d(Float32Array.from(values), [rows, cols], 'float32');
}

/**
 * The thin Q factor of a = Q·R (m×n float32 tensor, m ≥ n) by blocked Householder QR with the
 * block updates on the device; same reflectors as `householderQ`. Returns an m×n float32
 * tensor with orthonormal columns (to float32 roundoff, ~1e-6·√n). Intermediates are disposed.
 */
export function deviceHouseholderQ(a: Tensor2D, block = QR_BLOCK): Tensor2D {
  const [m, n] = a.shape;
  if (m < n) throw new Error(`deviceHouseholderQ: needs rows ≥ columns, got ${m}×${n}`);
  return tf.tidy(() => {
    const panels: Panel[] = [];
    // `trail` is the not-yet-factored block A[k0:, k0:] after all earlier reflectors.
    let trail: Tensor2D = a;
    for (let k0 = 0; k0 < n; k0 += block) {
      const r = m - k0;
      const c = n - k0;
      const b = Math.min(block, c);
      const panelT = c === b ? trail : tf.slice(trail, [0, 0], [r, b]);
      const { vT, vt, vtt } = factorPanel(panelT.dataSync(), r, b);
      const vTt = upload(vT, b, r);
      panels.push({ k0, b, vT: vTt, vTf: upload(vt, r, b) });
      if (c > b) {
        // A2 ← (I − V·T·Vᵀ)ᵀ·A2 = A2 − (V·Tᵀ)·(Vᵀ·A2); only rows b: of it are still unfactored.
        const rest = tf.slice(trail, [0, b], [r, c - b]);
        const updated = tf.sub(rest, tf.matMul(upload(vtt, r, b), tf.matMul(vTt, rest))) as Tensor2D;
        trail = tf.slice(updated, [b, 0], [r - b, c - b]);
      }
    }
    // Q = H₀···H_{n−1}·[I; 0], accumulated backwards: block k only touches Q[k0:, k0:], whose
    // top-left b×b corner is still the identity when that block is applied.
    let x: Tensor2D | null = null;
    for (let p = panels.length - 1; p >= 0; p--) {
      const { k0, b, vT, vTf } = panels[p];
      const r = m - k0;
      const c = n - k0;
      const base: Tensor2D =
        x === null ? tf.eye(r, c) : (tf.add(tf.pad(x, [[b, 0], [b, 0]]), tf.pad(tf.eye(b), [[0, r - b], [0, c - b]])) as Tensor2D);
      x = tf.sub(base, tf.matMul(vTf, tf.matMul(vT, base))) as Tensor2D;
    }
    return x ?? tf.zeros([m, n]);
  });
}
