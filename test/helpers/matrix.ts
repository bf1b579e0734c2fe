/**
 * Float64 matrix helpers only the linear-algebra tests and benchmarks need (row-major
 * Float64Arrays with their sizes passed alongside, like src/optim/linalg/matrix.ts).
 */
import { maxAbs } from '../../src/optim/linalg/matrix.js';

/** The n×n identity, row-major. */
export function identity(n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) out[i * n + i] = 1;
  return out;
}

/**
 * C = A·B for A (m×k) and B (k×n), row-major, float64. The i-k-j loop order streams rows of
 * B and C so the inner loop is a contiguous axpy.
 */
export function matmul(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const ci = i * n;
    for (let p = 0; p < k; p++) {
      const aip = a[i * k + p];
      if (aip === 0) continue;
      const bp = p * n;
      for (let j = 0; j < n; j++) c[ci + j] += aip * b[bp + j];
    }
  }
  return c;
}

/** Frobenius norm ‖A‖_F, scaled to avoid overflow/underflow. */
export function frobenius(a: ArrayLike<number>): number {
  const s = maxAbs(a);
  if (s === 0 || !Number.isFinite(s)) return s;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const v = a[i] / s;
    sum += v * v;
  }
  return s * Math.sqrt(sum);
}

/** ‖a − b‖₂ / ‖b‖₂ over all entries (same lengths). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relErr: lengths ${a.length} and ${b.length} differ`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}
