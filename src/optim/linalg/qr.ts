/**
 * Householder QR in float64, returning the orthonormal factor only (what SOAP's power-iteration
 * refresh needs: Q of qr(P·Q_old)).
 */

/**
 * The thin Q factor of A = Q·R for a row-major m×n matrix A with m ≥ n: Q is m×n with
 * orthonormal columns spanning A's columns (for rank-deficient A, an orthonormal completion).
 * Reflector k is H = I − β v vᵀ with v chosen so H·a_k = α e_k, α = −sign(a_kk)·‖a_k[k:]‖, the
 * LAPACK sign convention (torch.linalg.qr's); column signs are otherwise not normalised.
 * Works on Aᵀ so every reflector reads and writes contiguous rows; cost ≈ 2mn² − ⅔n³ flops
 * for R plus the same again to form Q.
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
    let scale = 0;
    for (let i = k; i < m; i++) scale = Math.max(scale, Math.abs(b[rowK + i]));
    if (scale === 0) continue; // zero column: H = I
    let sigma = 0;
    for (let i = k + 1; i < m; i++) {
      const v = b[rowK + i] / scale;
      sigma += v * v;
    }
    if (sigma === 0) continue; // already upper-triangular in this column
    const x0 = b[rowK + k] / scale;
    const norm = Math.sqrt(x0 * x0 + sigma);
    const alpha = x0 >= 0 ? -norm : norm;
    // Scale-free reflector: v = (x/scale) − α e₁, β = 2/‖v‖².
    for (let i = k + 1; i < m; i++) b[rowK + i] /= scale;
    b[rowK + k] = x0 - alpha;
    const beta = 2 / ((x0 - alpha) * (x0 - alpha) + sigma);
    betas[k] = beta;
    for (let j = k + 1; j < n; j++) {
      const rowJ = j * m;
      let dot = 0;
      for (let i = k; i < m; i++) dot += b[rowK + i] * b[rowJ + i];
      const f = beta * dot;
      for (let i = k; i < m; i++) b[rowJ + i] -= f * b[rowK + i];
    }
  }
  // Q = H₀···H_{n−1}·[I; 0], accumulated backwards so reflector k touches only Q[k:, k:].
  const q = new Float64Array(m * n);
  for (let i = 0; i < n; i++) q[i * n + i] = 1;
  const w = new Float64Array(n);
  for (let k = n - 1; k >= 0; k--) {
    const beta = betas[k];
    if (beta === 0) continue;
    const rowK = k * m;
    w.fill(0, k, n);
    for (let i = k; i < m; i++) {
      const vi = b[rowK + i];
      if (vi === 0) continue;
      const row = i * n;
      for (let j = k; j < n; j++) w[j] += vi * q[row + j];
    }
    for (let i = k; i < m; i++) {
      const f = beta * b[rowK + i];
      if (f === 0) continue;
      const row = i * n;
      for (let j = k; j < n; j++) q[row + j] -= f * w[j];
    }
  }
  return q;
}
