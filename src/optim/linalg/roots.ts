/**
 * Matrix functions of symmetric matrices through their eigendecomposition (Shampoo's roots).
 */
import { eigh } from './eigh.js';

/**
 * (A + ε·I)^(−1/p) for a symmetric positive semi-definite n×n row-major A, computed as
 * V·diag((λᵢ + ε)^(−1/p))·Vᵀ from a float64 eigendecomposition A = V·diag(λ)·Vᵀ.
 * Eigenvalues that roundoff pushed below zero are floored at 0 before adding ε (exact
 * arithmetic would never give λ + ε < ε for a PSD A), so the result is always finite when
 * ε > 0. With ε = 0 a singular A throws rather than returning infinities.
 */
export function inverseRoot(a: ArrayLike<number>, n: number, p: number, epsilon: number): Float64Array {
  const { vectors, scaled } = inverseRootFactors(a, n, p, epsilon);
  return reassemble(vectors, scaled, n);
}

/**
 * The factors of `inverseRoot` before reassembly: the eigenvectors V (n×n row-major, columns)
 * and f = rootScales(λ), so that the root is V·diag(f)·Vᵀ. Callers with a fast matMul (Shampoo
 * on the device) reassemble themselves; same checks as `inverseRoot`.
 */
export function inverseRootFactors(a: ArrayLike<number>, n: number, p: number, epsilon: number): { vectors: Float64Array; scaled: Float64Array } {
  const { values, vectors } = eigh(a, n);
  return { vectors, scaled: rootScales(values, p, epsilon) };
}

/** f = (max(λ, 0) + ε)^(−1/p) for eigenvalues λ (negatives are roundoff of a PSD matrix). */
export function rootScales(values: ArrayLike<number>, p: number, epsilon: number): Float64Array {
  if (!(p > 0)) throw new Error(`inverseRoot: root must be positive, got ${p}`);
  const scaled = new Float64Array(values.length);
  for (let j = 0; j < values.length; j++) {
    const lam = Math.max(values[j], 0) + epsilon;
    if (!(lam > 0)) throw new Error('inverseRoot: singular matrix and epsilon = 0');
    scaled[j] = lam ** (-1 / p);
  }
  return scaled;
}

/** V·diag(f)·Vᵀ for an n×n row-major V, exploiting symmetry (only the upper triangle is summed). */
export function reassemble(v: Float64Array, f: Float64Array, n: number): Float64Array {
  // Row i of W = V·diag(f) is V[i,:]∘f; out[i][j] = Σ_k W[i,k]·V[j,k] reads two rows.
  const w = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) w[i * n + k] = v[i * n + k] * f[k];
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let j = i; j < n; j++) {
      const rj = j * n;
      let acc = 0;
      for (let k = 0; k < n; k++) acc += w[ri + k] * v[rj + k];
      out[ri + j] = acc;
      out[rj + i] = acc;
    }
  }
  return out;
}
