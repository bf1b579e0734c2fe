/**
 * Symmetric eigendecomposition in float64, pure TypeScript: Householder tridiagonalisation
 * followed by the implicit QL algorithm with Wilkinson-style shifts (the EISPACK tred2/tql2
 * pair, as in JAMA), rearranged so that every inner loop runs over contiguous memory.
 *
 * Layout choices (why the code looks the way it does):
 * - the trailing block is updated in full (both triangles) so the symmetric mat-vec reads rows;
 * - eigenvectors are accumulated as ROWS of Eᵀ, so each Givens rotation touches two
 *   contiguous rows, and the rotations of one QL sweep are applied together in column
 *   blocks that stay in L1 cache;
 * - the matrix is scaled by 1/max|aᵢⱼ| first, so convergence is judged relative to the
 *   matrix's own scale (statistics of 1e-12 behave exactly like statistics of 1).
 */
import { formQ, reflector } from './householder.js';
import { maxAbs } from './matrix.js';

export interface EighResult {
  /** Eigenvalues, largest first. */
  values: Float64Array;
  /** n×n row-major; column j is the unit eigenvector of `values[j]`. */
  vectors: Float64Array;
}

/**
 * Eigendecomposition A = V·diag(λ)·Vᵀ of a symmetric n×n row-major matrix (only symmetric
 * input is meaningful; the lower and upper triangles should agree). Eigenvalues are returned
 * in descending order with orthonormal eigenvectors as the columns of `vectors`.
 * Cost ≈ (4/3 + 4/3)n³ flops for the reduction and the Householder product, plus ≈ 3n³ for the
 * QL rotations. The zero matrix gives the identity. Throws on non-finite input.
 */
export function eigh(a: ArrayLike<number>, n: number): EighResult {
  if (a.length !== n * n) throw new Error(`eigh: expected ${n * n} entries, got ${a.length}`);
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) throw new Error('eigh: matrix has non-finite entries');
  const scale = maxAbs(a);
  const work = new Float64Array(n * n);
  if (scale > 0) for (let i = 0; i < n * n; i++) work[i] = a[i] / scale;
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const vt = tridiagonalize(work, n, d, e);
  tql(d, e, vt, n);
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => d[j] - d[i] || i - j);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const src = order[j];
    values[j] = d[src] * scale;
    const row = src * n;
    for (let k = 0; k < n; k++) vectors[k * n + j] = vt[row + k];
  }
  return { values, vectors };
}

/**
 * Reduces the symmetric `a` (overwritten) to tridiagonal T = Qᵀ A Q with diagonal `d` and
 * super-diagonal `e` (e[i] = T[i, i+1], e[n−1] = 0). Returns Qᵀ, row-major.
 * Step k reflects x = A[k+1:, k] onto α·e₁ with H = I − β v vᵀ and applies it on both sides
 * of the trailing block as the rank-2 update A ← A − v wᵀ − w vᵀ, w = p − (β/2)(pᵀv) v, p = β A v.
 */
function tridiagonalize(a: Float64Array, n: number, d: Float64Array, e: Float64Array): Float64Array {
  const betas = new Float64Array(n);
  const p = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    const rowK = k * n;
    const s = k + 1;
    d[k] = a[rowK + k];
    // No scale-free reflector needed: the whole matrix was scaled to max|aᵢⱼ| = 1 already.
    // v overwrites A[k, s:] so that Q can be formed afterwards.
    const { beta, alpha } = reflector(a, a, rowK + s, rowK + n, false);
    betas[k] = beta;
    e[k] = alpha;
    if (beta === 0) continue;
    // p = β·A22·v (rows of A22 are contiguous).
    let pv = 0;
    for (let i = s; i < n; i++) {
      const row = i * n;
      let acc = 0;
      for (let j = s; j < n; j++) acc += a[row + j] * a[rowK + j];
      acc *= beta;
      p[i] = acc;
      pv += acc * a[rowK + i];
    }
    const half = 0.5 * beta * pv;
    for (let i = s; i < n; i++) p[i] -= half * a[rowK + i];
    // A22 ← A22 − v wᵀ − w vᵀ with w now in p.
    for (let i = s; i < n; i++) {
      const row = i * n;
      const vi = a[rowK + i];
      const wi = p[i];
      for (let j = s; j < n; j++) a[row + j] -= vi * p[j] + wi * a[rowK + j];
    }
  }
  if (n >= 2) {
    d[n - 2] = a[(n - 2) * n + n - 2];
    e[n - 2] = a[(n - 2) * n + n - 1];
  }
  if (n >= 1) {
    d[n - 1] = a[n * n - 1];
    e[n - 1] = 0;
  }
  // Q = H₀·H₁···H_{n−3}; reflector k acts on rows and columns k+1… .
  const q = formQ(a, n, betas, n, n, 1);
  // Transpose in place: the QL rotations act on columns of Q, i.e. on rows of Qᵀ.
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const t = q[i * n + j];
      q[i * n + j] = q[j * n + i];
      q[j * n + i] = t;
    }
  }
  return q;
}

/** Columns per block when applying one sweep's rotations to Eᵀ (two rows of 256 doubles = 4 KiB). */
const ROTATION_BLOCK = 256;

/**
 * Implicit QL on the tridiagonal (d, e) (tql2), accumulating the rotations into the rows of
 * `vt` (= Eᵀ). On return `d` holds the eigenvalues (unsorted) and row j of `vt` the
 * eigenvector of d[j]. A sub-diagonal entry counts as zero once |e| ≤ 2⁻⁵²·max(|d|+|e|) seen.
 */
function tql(d: Float64Array, e: Float64Array, vt: Float64Array, n: number): void {
  const eps = 2 ** -52;
  let f = 0;
  let tst1 = 0;
  const cs = new Float64Array(n);
  const sn = new Float64Array(n);
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (m < n - 1 && Math.abs(e[m]) > eps * tst1) m++;
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > 100) throw new Error('eigh: QL iteration did not converge');
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = Math.sqrt(p * p + 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        p = d[m];
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1];
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = Math.sqrt(p * p + e[i] * e[i]); // safe: the matrix was scaled to max|a| = 1
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          cs[i] = c;
          sn[i] = s;
        }
        applyRotations(vt, n, l, m, cs, sn);
        p = (-s * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0;
  }
}

/**
 * Applies rotations i = m−1 … l (in that order) to rows (i, i+1) of `vt`:
 * row_{i+1} ← s·row_i + c·row_{i+1}, row_i ← c·row_i − s·row_{i+1}; blocked over columns.
 */
function applyRotations(vt: Float64Array, n: number, l: number, m: number, cs: Float64Array, sn: Float64Array): void {
  for (let k0 = 0; k0 < n; k0 += ROTATION_BLOCK) {
    const k1 = Math.min(n, k0 + ROTATION_BLOCK);
    for (let i = m - 1; i >= l; i--) {
      const c = cs[i];
      const s = sn[i];
      const ri = i * n;
      const rj = ri + n;
      for (let k = k0; k < k1; k++) {
        const h = vt[rj + k];
        const x = vt[ri + k];
        vt[rj + k] = s * x + c * h;
        vt[ri + k] = c * x - s * h;
      }
    }
  }
}
