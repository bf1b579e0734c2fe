/**
 * Seeded random matrices for tests and benchmarks: reproducible across machines because the
 * generator is a plain 32-bit integer hash (mulberry32), not Math.random.
 */
import { householderQ } from '../../src/optim/linalg/householder.js';

/** A uniform [0, 1) generator from a 32-bit seed (mulberry32). */
export function uniformRng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples (Box–Muller on a uniformRng). */
export function normalRng(seed: number): () => number {
  const u = uniformRng(seed);
  return () => {
    const a = Math.max(u(), 1e-300);
    return Math.sqrt(-2 * Math.log(a)) * Math.cos(2 * Math.PI * u());
  };
}

/** An m×n row-major matrix of standard normal entries. */
export function randomMatrix(m: number, n: number, seed: number): Float64Array {
  const rng = normalRng(seed);
  return Float64Array.from({ length: m * n }, rng);
}

/** A random symmetric n×n matrix (G + Gᵀ)/2 with Gaussian G. */
export function randomSymmetric(n: number, seed: number): Float64Array {
  const g = randomMatrix(n, n, seed);
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[i * n + j] = 0.5 * (g[i * n + j] + g[j * n + i]);
  return out;
}

/** A random n×n orthogonal matrix: the Q factor of a Gaussian matrix. */
export function randomOrthogonal(n: number, seed: number): Float64Array {
  return householderQ(randomMatrix(n, n, seed), n, n);
}

/** Q·diag(values)·Qᵀ for a random orthogonal Q: a symmetric matrix with exactly these eigenvalues. */
export function withSpectrum(values: ArrayLike<number>, seed: number): Float64Array {
  const n = values.length;
  const q = randomOrthogonal(n, seed);
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let acc = 0;
      for (let k = 0; k < n; k++) acc += q[i * n + k] * values[k] * q[j * n + k];
      out[i * n + j] = acc;
      out[j * n + i] = acc;
    }
  }
  return out;
}
