/**
 * Householder reflectors in float64, the one implementation behind the host QR (`householderQ`,
 * here), the panels of the device-blocked QR (qr-device.ts) and eigh's tridiagonalisation.
 *
 * A reflector is H = I − β·v·vᵀ (symmetric, orthogonal) with H·x = α·e₁. Vectors are stored in
 * contiguous runs of a Float64Array (a row of a row-major matrix), so every loop reads memory in
 * order; the callers lay their matrices out (transposed if need be) to make that true.
 */

/** What `reflector` found: β (0 when x needs no reflection) and α = (H·x)₀. */
export interface Reflection {
  beta: number;
  alpha: number;
}

/**
 * The reflector of x = src[from:to]: v = x − α·e₁ with α = −sign(x₀)·‖x‖ (the LAPACK sign
 * convention, torch.linalg.qr's, which keeps x₀ − α free of cancellation) and β = 2/‖v‖².
 * With `scaleFree`, v and β are those of x/s, s = max|xᵢ| (the same H, computed without overflow
 * or underflow in ‖x‖²); without it x is used as is (eigh, whose matrix is already scaled).
 * v is written to dst[from:to] (dst may be src). When x = 0 or x is already α·e₁, H = I: β = 0,
 * α = x₀ and nothing is written.
 */
export function reflector(src: ArrayLike<number>, dst: Float64Array, from: number, to: number, scaleFree: boolean): Reflection {
  let scale = 1;
  if (scaleFree) {
    scale = 0;
    for (let i = from; i < to; i++) scale = Math.max(scale, Math.abs(src[i]));
    if (scale === 0) return { beta: 0, alpha: 0 };
  }
  let sigma = 0;
  for (let i = from + 1; i < to; i++) {
    const v = scaleFree ? src[i] / scale : src[i];
    sigma += v * v;
  }
  if (sigma === 0) return { beta: 0, alpha: src[from] };
  const x0 = scaleFree ? src[from] / scale : src[from];
  const norm = Math.sqrt(x0 * x0 + sigma);
  const alpha = x0 >= 0 ? -norm : norm;
  if (scaleFree) for (let i = from + 1; i < to; i++) dst[i] = src[i] / scale;
  else if (dst !== src) for (let i = from + 1; i < to; i++) dst[i] = src[i];
  dst[from] = x0 - alpha;
  return { beta: 2 / ((x0 - alpha) * (x0 - alpha) + sigma), alpha: alpha * scale };
}

/**
 * y ← H·y = y − β·(vᵀy)·v for the reflector v = v[vFrom : vFrom+len] and the vector
 * y = y[yFrom : yFrom+len].
 */
export function reflect(v: ArrayLike<number>, vFrom: number, y: Float64Array, yFrom: number, len: number, beta: number): void {
  let dot = 0;
  for (let i = 0; i < len; i++) dot += v[vFrom + i] * y[yFrom + i];
  const f = beta * dot;
  for (let i = 0; i < len; i++) y[yFrom + i] -= f * v[vFrom + i];
}

/**
 * Q = H₀·H₁···H_{r−1}·[I; 0], rows×cols row-major, for r = betas.length reflectors stored as
 * rows of `vs` (row stride `vStride`): reflector k acts on rows and columns k+shift … of Q and
 * its entry for row i is vs[k·vStride + i]. Accumulated backwards, so reflector k only touches
 * Q[k+shift:, k+shift:]; cost ≈ 4·rows·cols·r flops. β = 0 skips a reflector (H = I).
 */
export function formQ(vs: ArrayLike<number>, vStride: number, betas: ArrayLike<number>, rows: number, cols: number, shift: number): Float64Array {
  const q = new Float64Array(rows * cols);
  for (let i = 0; i < Math.min(rows, cols); i++) q[i * cols + i] = 1;
  const w = new Float64Array(cols);
  for (let k = betas.length - 1; k >= 0; k--) {
    const beta = betas[k];
    if (beta === 0) continue;
    const start = k + shift;
    const rowK = k * vStride;
    // w = vᵀ·Q[start:, start:], then Q[start:, start:] −= β·v·wᵀ.
    w.fill(0, start, cols);
    for (let i = start; i < rows; i++) {
      const vi = vs[rowK + i];
      if (vi === 0) continue;
      const row = i * cols;
      for (let j = start; j < cols; j++) w[j] += vi * q[row + j];
    }
    for (let i = start; i < rows; i++) {
      const f = beta * vs[rowK + i];
      if (f === 0) continue;
      const row = i * cols;
      for (let j = start; j < cols; j++) q[row + j] -= f * w[j];
    }
  }
  return q;
}

/**
 * The thin Q factor of A = Q·R for a row-major m×n matrix A with m ≥ n: Q is m×n with
 * orthonormal columns spanning A's columns (for rank-deficient A, an orthonormal completion).
 * Reflector k maps column k (below the diagonal, after the earlier reflectors) to α·e_k with
 * `reflector`'s sign convention; column signs are otherwise not normalised. This is what SOAP's
 * refresh needs, Q of qr(P·Q_old), for small n. Works on Aᵀ so every reflector reads and writes
 * contiguous rows; cost ≈ 2mn² − ⅔n³ flops for R plus the same again to form Q.
 */
export function householderQ(a: ArrayLike<number>, m: number, n: number): Float64Array {
  if (a.length !== m * n) throw new Error(`householderQ: expected ${m * n} entries, got ${a.length}`);
  if (m < n) throw new Error(`householderQ: needs rows ≥ columns, got ${m}×${n}`);
  // B = Aᵀ (n×m): row j of B is column j of A. Reflector k ends up stored in B[k, k:].
  const b = new Float64Array(n * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) b[j * m + i] = a[i * n + j];
  const betas = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const rowK = k * m;
    const { beta } = reflector(b, b, rowK + k, rowK + m, true);
    betas[k] = beta;
    if (beta === 0) continue;
    for (let j = k + 1; j < n; j++) reflect(b, rowK + k, b, j * m + k, m - k, beta);
  }
  return formQ(b, m, betas, m, n, 0);
}
