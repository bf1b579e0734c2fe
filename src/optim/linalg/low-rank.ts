/**
 * Eigendecompositions of the two Gram matrices of one gradient, s·G·Gᵀ and s·Gᵀ·G, without a
 * full eigensolve of the larger one (issue 9: SOAP's first bases for a 1024×4096 MLP weight).
 *
 * For G (rows×cols) let X be G or Gᵀ so that the requested statistic is X·Xᵀ (n×n) and
 * X is n×k. When n ≤ k, X·Xᵀ is formed and handed to the eigensolver. When n > k, X·Xᵀ has
 * rank ≤ k: with the small k×k Gram XᵀX = V·Σ²·Vᵀ, the eigenvectors of X·Xᵀ for the non-zero
 * eigenvalues Σ² are U = X·V·Σ⁻¹ (X's left singular vectors), and the rest of the basis spans
 * the null space of X·Xᵀ, where any orthonormal completion is as valid as the one LAPACK's
 * eigensolver happens to pick in a zero eigenspace. Steps:
 *
 *     S = s·XᵀX                     k×k, symmetric                  ≈ n·k² flops
 *     V, λ = smallEigh(S)           (injectable; LAPACK later)     ≈ 17/3·k³
 *     r = #{λⱼ > tol·λ₀}            numerical rank (see `defaultRankTolerance`)
 *     U = X·(V_r·Σ_r⁻¹)             n×r, σⱼ = sqrt(λⱼ/s)            ≈ 2·n·k·r
 *     Q = H₀···H_{r−1}              Householder QR of U, all n      ≈ 5·n·r² + 2·n²·r
 *                                   columns of Q (compact WY)
 *     Q[:, j] ← ±Q[:, j]            sign so that Q[:, j]·uⱼ > 0
 *
 * The Householder QR both re-orthonormalises U (Σ⁻¹ amplifies the rounding in X·vⱼ by
 * σ_max/σⱼ, so U's columns are orthonormal only to ~ε·σ_max/σ_min before it; Householder's Q is
 * orthonormal to machine precision whatever U's conditioning, and because R is upper triangular
 * column j of Q only mixes in columns ≤ j, the better-determined large-σ ones) and, with all n
 * columns of Q = H₀···H_{r−1} formed, completes it: columns r… of Q span range(U)⊥. Null-space
 * eigenvalues are reported as exactly 0.
 *
 * Matrices are float64 row-major; results follow `eigh` (eigh.ts): values descending, column j
 * of `vectors` the unit eigenvector of values[j]. householder.ts's `formQ` would accumulate Q
 * reflector by reflector (4n²r flops, streaming all of Q per reflector: ≈ 0.3 GFlop/s at
 * n = 2048); the completion here is blocked instead (`householderFullQ`), with the same
 * reflectors (`reflector`, `reflect`) and the same Q. Measured (bench/low-rank.ts, 1024×4096,
 * the 4096 side, one shared core): 52 s against ≈ 860 s for the full TypeScript eigh.
 */
import { eigh, type EighResult } from './eigh.js';
import { reflect, reflector } from './householder.js';
import { transpose } from './matrix.js';

/** Which Gram matrix of G (rows×cols): 'left' = G·Gᵀ (rows×rows), 'right' = Gᵀ·G (cols×cols). */
export type GramSide = 'left' | 'right';

/** A symmetric eigensolver with `eigh`'s contract (values descending, eigenvectors as columns). */
export type SymmetricEigensolver = (a: Float64Array, n: number) => EighResult;

/**
 * The orthonormal factor of a QR with `householderQ`'s contract: the thin Q (rows×cols,
 * row-major) of a rows×cols A, rows ≥ cols, Householder reflectors (so zero columns give H = I).
 * Only used when injected, on the zero-padded n×n [U | 0], to obtain the full Q (e.g. LAPACK's
 * ?geqrf+?orgqr through native.ts).
 */
export type ThinQr = (a: Float64Array, rows: number, cols: number) => Float64Array;

/** op(A)·op(B) (m×n) for row-major A (m×k, k×m when transA) and B (k×n, n×k when transB). */
export type Gemm = (a: Float64Array, b: Float64Array, m: number, n: number, k: number, transA: boolean, transB: boolean) => Float64Array;

/** The full n×n Q of the Householder QR of the row-major n×r U (first r columns: the thin Q). */
export type FullQr = (u: Float64Array, n: number, r: number) => Float64Array;

export interface DenseKernels {
  gemm?: Gemm;
  qrFull?: FullQr;
}

export type GramEighMethod = 'direct' | 'low-rank';

export interface GramEighOptions {
  /** The statistic is scale·G·Gᵀ (or scale·Gᵀ·G); must be finite and > 0. Default 1. */
  scale?: number;
  /** Eigensolver for the k×k (or, on the direct path, the requested n×n) Gram matrix. Default `eigh`. */
  smallEigh?: SymmetricEigensolver;
  /**
   * QR used to complete the basis on the low-rank path, called on [U | 0] (n×n). Default: the
   * blocked TypeScript Householder on U's r columns only (the same Q, no work on the zero
   * columns). An injected QR pays for the padding (≈ 8/3·n³ flops in LAPACK), see `CostRates`.
   */
  qr?: ThinQr;
  /**
   * Faster kernels for the dense work (LAPACK/BLAS through native.ts): `gemm` for the Gram
   * products and U = X·V, `qrFull` for the completion (the full n×n Q of U's Householder QR,
   * ≈ 2nr² + 4n²r flops, no padding). Each falls back to this file's TypeScript kernel when absent.
   */
  kernels?: DenseKernels;
  /**
   * 'direct': form the requested n×n Gram matrix and eigensolve it. 'low-rank': the path above
   * (valid for any shape). 'auto' (default): low-rank exactly when `gramEighCost` says it takes
   * less time at `rates`; never for the smaller (or equal) side.
   */
  method?: 'auto' | GramEighMethod;
  /** Relative rank threshold on λⱼ/λ₀ (low-rank path). Default `defaultRankTolerance(rows, cols)`. */
  rankTolerance?: number;
  /**
   * For 'auto': the throughput of the solvers in use (see `CostRates`; set `qr` when `qr` is
   * injected). Default `DEFAULT_COST_RATES`.
   */
  rates?: Partial<CostRates>;
}

export interface GramEighResult extends EighResult {
  /**
   * Eigenvalues above rankTolerance·λ₀ (low-rank path: the number of columns that are
   * eigenvectors for non-zero eigenvalues; the rest of the basis is the completion).
   */
  rank: number;
  method: GramEighMethod;
}

/**
 * The default relative threshold below which an eigenvalue of the Gram matrix counts as zero:
 * max(rows, cols)·2⁻⁵².
 *
 * Why: the computed small Gram fl(XᵀX) differs from XᵀX by E with |Eᵢⱼ| ≤ γ_n·‖xᵢ‖‖xⱼ‖ (sums of
 * n = the larger dimension products, γ_n ≈ n·2⁻⁵³), and a backward-stable eigensolver adds a
 * perturbation of O(k·2⁻⁵²·‖XᵀX‖). By Weyl's inequality every computed eigenvalue is then
 * uncertain by about max(n, k)·2⁻⁵²·λ₀, so smaller ones are indistinguishable from zero, and
 * their "eigenvector" is an arbitrary mix of the near-null directions that X·vⱼ/σⱼ would blow up
 * by 1/σⱼ (and λⱼ ≤ 0 gives no σⱼ at all). This is numpy's matrix_rank rule max(M, N)·ε on σ,
 * applied to σ² because the Gram matrix squares the condition number: singular values below
 * ≈ sqrt(max(n, k)·ε)·σ_max (≈ 1e-6 at n = 4096) are lost when XᵀX is formed in any case.
 * Dropping such an eigenvalue changes the statistic by at most tol·λ₀ (≈ 1e-12·λ₀ at n = 4096),
 * far below the float32 resolution of SOAP's device statistics.
 */
export function defaultRankTolerance(rows: number, cols: number): number {
  return Math.max(rows, cols) * 2 ** -52;
}

/**
 * Throughput assumed by the cost model, in flop/s, per kind of work. The defaults are this
 * file's TypeScript kernels and the TypeScript `eigh`, measured on one core (bench/low-rank.ts);
 * pass the injected solvers' rates (native LAPACK eigh: ≈ 12–20× the TypeScript one) to decide
 * for them.
 */
export interface CostRates {
  /** The eigensolver (`smallEigh`; on the direct path it solves the n×n matrix). */
  eigh: number;
  /** Gram products, U = X·V, and the built-in blocked Householder completion. */
  gemm: number;
  /** An injected `qr`, run on the zero-padded n×n [U | 0]; unset: the built-in completion. */
  qr?: number;
  /** An injected `kernels.qrFull` (no padding); takes precedence over `qr`. */
  qrFull?: number;
}

export const DEFAULT_COST_RATES: Readonly<CostRates> = { eigh: 0.6e9, gemm: 1.5e9 };

/** Flop estimate of one path, split by kind of work, and the time it implies. */
export interface PathCost {
  /** Gram matrix products and U = X·V. */
  gemm: number;
  /** The eigensolve. */
  eigh: number;
  /** Householder QR of U and forming the full n×n Q (0 on the direct path). */
  completion: number;
  /** Estimated seconds at the given rates. */
  seconds: number;
}

/** Flops of the TypeScript eigh on n×n: ≈ (4/3 + 4/3)n³ (reduction + Q) + ≈ 3n³ (QL rotations), eigh.ts. */
export function eighFlops(n: number): number {
  return (17 / 3) * n ** 3;
}

/**
 * Flop and time estimates for the Gram eigendecomposition of the requested side (n×n, the other
 * dimension k) of a rows×cols G: `direct` forms the n×n Gram matrix (n²k) and eigensolves it;
 * `lowRank` is the path in this file's header with rank r (default min(n, k), the worst case):
 * k²n (small Gram) + 2nkr (U) in gemm, 17/3·k³ eigh, and a completion of 2nr² − ⅔r³ (blocked
 * QR of U) + nr² + r³/3 (T) + 2nr² (Y·Tᵀ) + 2n²r (Q = I − Y·Zᵀ) gemm flops, or ≈ 8/3·n³ when an
 * injected QR (rates.qr) factors the padded n×n [U | 0]. For G of 1024×4096 and the 4096 side:
 * direct 17 + 390 GFlop; low-rank 13 + 6.1 + 55 GFlop.
 */
export function gramEighCost(
  rows: number,
  cols: number,
  side: GramSide,
  options: { rank?: number; rates?: Partial<CostRates> } = {},
): { direct: PathCost; lowRank: PathCost } {
  const n = side === 'left' ? rows : cols;
  const k = side === 'left' ? cols : rows;
  const r = Math.min(options.rank ?? Math.min(n, k), n, k);
  const rates: CostRates = { ...DEFAULT_COST_RATES, ...options.rates };
  const directGemm = n * n * k;
  const directEigh = eighFlops(n);
  const lowGemm = k * k * n + 2 * n * k * r;
  const lowEigh = eighFlops(k);
  const completion =
    rates.qrFull !== undefined
      ? 2 * n * r * r + 4 * n * n * r
      : rates.qr !== undefined
        ? (8 / 3) * n ** 3
        : 5 * n * r * r + 2 * n * n * r - (1 / 3) * r ** 3;
  const completionRate = rates.qrFull ?? rates.qr ?? rates.gemm;
  return {
    direct: { gemm: directGemm, eigh: directEigh, completion: 0, seconds: directGemm / rates.gemm + directEigh / rates.eigh },
    lowRank: {
      gemm: lowGemm,
      eigh: lowEigh,
      completion,
      seconds: lowGemm / rates.gemm + lowEigh / rates.eigh + completion / completionRate,
    },
  };
}

/**
 * Whether 'auto' takes the low-rank path for this shape and side: only for the strictly larger
 * side, and only when `gramEighCost` estimates it faster at these rates.
 */
export function prefersLowRank(rows: number, cols: number, side: GramSide, rates: Partial<CostRates> = {}): boolean {
  const n = side === 'left' ? rows : cols;
  const k = side === 'left' ? cols : rows;
  if (n <= k) return false;
  const c = gramEighCost(rows, cols, side, { rates });
  return c.lowRank.seconds < c.direct.seconds;
}

/**
 * The eigendecomposition of scale·G·Gᵀ (side 'left', rows×rows) or scale·Gᵀ·G (side 'right',
 * cols×cols) for the row-major rows×cols G, in `eigh`'s format, plus the numerical rank and the
 * path taken. Either path gives a full orthonormal basis; on the low-rank path the eigenvalues
 * past the rank are exactly 0 and their eigenvectors an orthonormal completion (for G = 0: the
 * identity, as `eigh` gives for the zero matrix). Throws on non-finite G or a bad scale.
 */
export function eighOfGram(
  g: Float64Array | Float32Array,
  rows: number,
  cols: number,
  side: GramSide,
  options: GramEighOptions = {},
): GramEighResult {
  const ctx = prepare(g, rows, cols, options);
  return solveSide(ctx, side, options, null);
}

/**
 * Both sides at once, sharing the one small eigensolve between the direct solve of the smaller
 * side and the low-rank path of the larger (what SOAP's first step needs for a matrix). With
 * method 'auto' each side is decided as in `eighOfGram`.
 */
export function eighOfGramPair(
  g: Float64Array | Float32Array,
  rows: number,
  cols: number,
  options: GramEighOptions = {},
): { left: GramEighResult; right: GramEighResult } {
  const ctx = prepare(g, rows, cols, options);
  const smallSide: GramSide = rows <= cols ? 'left' : 'right';
  const bigSide: GramSide = smallSide === 'left' ? 'right' : 'left';
  const small = solveSide(ctx, smallSide, options, null);
  const big = solveSide(ctx, bigSide, options, chooseMethod(rows, cols, bigSide, options) === 'low-rank' ? small : null);
  return smallSide === 'left' ? { left: small, right: big } : { left: big, right: small };
}

/**
 * scale·G·Gᵀ (side 'left') or scale·Gᵀ·G ('right'), row-major, exactly symmetric (only one
 * triangle is computed, the other mirrored).
 */
export function gramMatrix(g: ArrayLike<number>, rows: number, cols: number, side: GramSide, scale = 1): Float64Array {
  if (g.length !== rows * cols) throw new Error(`gramMatrix: expected ${rows * cols} entries, got ${g.length}`);
  const x = side === 'left' ? Float64Array.from(g) : transpose(g, rows, cols);
  const n = side === 'left' ? rows : cols;
  const k = side === 'left' ? cols : rows;
  const s = syrk(x, n, k);
  if (scale !== 1) for (let i = 0; i < s.length; i++) s[i] *= scale;
  return s;
}

/**
 * A full n×n orthogonal Q whose first r columns span the columns of the n×r `u` (row-major),
 * with Q[:, j]·uⱼ ≥ 0, and whose other columns span their orthogonal complement: the Q of a
 * Householder QR of u with all n columns formed. For nearly orthonormal u, Q[:, :r] is u
 * re-orthonormalised (column j mixing in only columns ≤ j). `qrFull`, when given, computes it
 * directly; else `qr`, when given, is called on the zero-padded n×n [u | 0] (see `ThinQr`); the
 * default runs r reflectors in TypeScript.
 */
export function completeBasis(u: Float64Array, n: number, r: number, qr?: ThinQr, qrFull?: FullQr): Float64Array {
  if (u.length !== n * r) throw new Error(`completeBasis: expected ${n * r} entries, got ${u.length}`);
  if (r > n) throw new Error(`completeBasis: needs r ≤ n, got ${r} > ${n}`);
  let q: Float64Array;
  if (qrFull) {
    q = qrFull(u, n, r);
    if (q.length !== n * n) throw new Error(`completeBasis: qrFull returned ${q.length} entries, expected ${n * n}`);
  } else if (qr) {
    const padded = new Float64Array(n * n);
    for (let i = 0; i < n; i++) padded.set(u.subarray(i * r, i * r + r), i * n);
    q = qr(padded, n, n);
    if (q.length !== n * n) throw new Error(`completeBasis: qr returned ${q.length} entries, expected ${n * n}`);
  } else {
    q = householderFullQ(u, n, r);
  }
  // Column signs: Q[:, j] ≈ ±uⱼ; keep the sign of uⱼ (which carries the eigensolver's V sign).
  for (let j = 0; j < r; j++) {
    let dot = 0;
    for (let i = 0; i < n; i++) dot += q[i * n + j] * u[i * r + j];
    if (dot < 0) for (let i = 0; i < n; i++) q[i * n + j] = -q[i * n + j];
  }
  return q;
}

// ---------------------------------------------------------------------------------------------

interface Prepared {
  rows: number;
  cols: number;
  scale: number;
  /** G as float64, rows×cols. */
  g: Float64Array;
  /** Gᵀ, cols×rows, made on first use. */
  gt: Float64Array | null;
}

function prepare(g: Float64Array | Float32Array, rows: number, cols: number, options: GramEighOptions): Prepared {
  if (!(Number.isInteger(rows) && Number.isInteger(cols) && rows >= 1 && cols >= 1)) {
    throw new Error(`eighOfGram: bad shape ${rows}×${cols}`);
  }
  if (g.length !== rows * cols) throw new Error(`eighOfGram: expected ${rows * cols} entries, got ${g.length}`);
  const scale = options.scale ?? 1;
  if (!(Number.isFinite(scale) && scale > 0)) throw new Error(`eighOfGram: scale must be finite and > 0, got ${scale}`);
  const tol = options.rankTolerance;
  if (tol !== undefined && !(tol >= 0 && tol < 1)) throw new Error(`eighOfGram: rankTolerance must be in [0, 1), got ${tol}`);
  const g64 = g instanceof Float64Array ? g : Float64Array.from(g);
  for (let i = 0; i < g64.length; i++) if (!Number.isFinite(g64[i])) throw new Error('eighOfGram: G has non-finite entries');
  return { rows, cols, scale, g: g64, gt: null };
}

function chooseMethod(rows: number, cols: number, side: GramSide, options: GramEighOptions): GramEighMethod {
  const method = options.method ?? 'auto';
  if (method !== 'auto') return method;
  return prefersLowRank(rows, cols, side, options.rates) ? 'low-rank' : 'direct';
}

/** X (n×k, the statistic is X·Xᵀ) and Xᵀ for one side. */
function sideMatrices(ctx: Prepared, side: GramSide): { x: Float64Array; xt: Float64Array; n: number; k: number } {
  ctx.gt ??= transpose(ctx.g, ctx.rows, ctx.cols);
  return side === 'left'
    ? { x: ctx.g, xt: ctx.gt, n: ctx.rows, k: ctx.cols }
    : { x: ctx.gt, xt: ctx.g, n: ctx.cols, k: ctx.rows };
}

function rankOf(values: Float64Array, tol: number): number {
  const top = values.length > 0 ? values[0] : 0;
  if (!(top > 0)) return 0;
  let r = 0;
  while (r < values.length && values[r] > tol * top) r++;
  return r;
}

/**
 * One side. `smallDone`, when given, is the already computed eigendecomposition of the other
 * (smaller) side's Gram matrix, i.e. of s·XᵀX for this side's X.
 */
function solveSide(ctx: Prepared, side: GramSide, options: GramEighOptions, smallDone: EighResult | null): GramEighResult {
  const smallEigh = options.smallEigh ?? eigh;
  const tol = options.rankTolerance ?? defaultRankTolerance(ctx.rows, ctx.cols);
  const { x, xt, n, k } = sideMatrices(ctx, side);
  const method = chooseMethod(ctx.rows, ctx.cols, side, options);
  const gemm = options.kernels?.gemm;
  const gramOf = (m: Float64Array, rowsOf: number, inner: number): Float64Array => (gemm ? symmetricPart(gemm(m, m, rowsOf, rowsOf, inner, false, true), rowsOf) : syrk(m, rowsOf, inner));
  if (method === 'direct') {
    const a = gramOf(x, n, k);
    for (let i = 0; i < a.length; i++) a[i] *= ctx.scale;
    const { values, vectors } = smallEigh(a, n);
    return { values, vectors, rank: rankOf(values, tol), method };
  }
  let small = smallDone;
  if (!small) {
    const s = gramOf(xt, k, n);
    for (let i = 0; i < s.length; i++) s[i] *= ctx.scale;
    small = smallEigh(s, k);
  }
  const r = rankOf(small.values, tol);
  // W = (V_r·Σ_r⁻¹)ᵀ, r×k: row j is vⱼ/σⱼ with σⱼ = sqrt(λⱼ/scale), so U = X·Wᵀ.
  const w = new Float64Array(r * k);
  for (let j = 0; j < r; j++) {
    const inv = 1 / Math.sqrt(small.values[j] / ctx.scale);
    for (let p = 0; p < k; p++) w[j * k + p] = small.vectors[p * k + j] * inv;
  }
  const u = gemm ? gemm(x, w, n, r, k, false, true) : mulNT(x, w, n, r, k);
  const vectors = completeBasis(u, n, r, options.qr, options.kernels?.qrFull);
  const values = new Float64Array(n);
  for (let j = 0; j < r; j++) values[j] = small.values[j];
  return { values, vectors, rank: r, method };
}

// --- Householder completion, blocked -----------------------------------------------------------

/** Panel width of the blocked QR (reflectors per block update). */
const QR_PANEL = 32;

/**
 * Householder QR of the n×r `u` with all n columns of Q formed, in compact-WY form so that
 * nearly all the work is in `gemmNT`: a blocked QR (panels of QR_PANEL reflectors applied to the
 * trailing columns as one block reflector), then Q = H₀···H_{r−1} = I − Y·T·Yᵀ with T the
 * r×r upper-triangular factor (LAPACK's dlarft recurrence) and Q formed as I − Y·(Y·Tᵀ)ᵀ.
 * ≈ 2nr² (QR) + 3nr² (YᵀY, Y·Tᵀ) + 2n²r flops, vs. 4n²r for accumulating reflector by
 * reflector (householder.ts `formQ`, which streams all of Q once per reflector and ran at
 * ≈ 0.3 GFlop/s at n = 2048). The reflectors, signs and Q are those of `householderQ`.
 */
function householderFullQ(u: Float64Array, n: number, r: number): Float64Array {
  // Rows of `y` are the columns of U being reduced; after the loop row k holds reflector k in
  // y[k, k:] and zeros before (the R entries are not needed).
  const y = transpose(u, n, r);
  const betas = new Float64Array(r);
  for (let s = 0; s < r; s += QR_PANEL) {
    const nb = Math.min(QR_PANEL, r - s);
    const len = n - s;
    // Panel: reflectors s … s+nb−1, each applied to the remaining rows of the panel.
    for (let k = s; k < s + nb; k++) {
      const rowK = k * n;
      const { beta } = reflector(y, y, rowK + k, rowK + n, true);
      betas[k] = beta;
      if (beta === 0) y.fill(0, rowK + k, rowK + n); // H = I: a zero reflector keeps Y·T·Yᵀ exact
      else for (let j = k + 1; j < s + nb; j++) reflect(y, rowK + k, y, j * n + k, n - k, beta);
      y.fill(0, rowK, rowK + k);
    }
    const trailing = r - s - nb;
    if (trailing === 0) continue;
    // Panel reflectors as an nb×len block P (row a = reflector s+a from column s on, zero before
    // its own start), and T_p with H_s···H_{s+nb−1} = I − Pᵀ·T_p·P in these coordinates.
    const tP = triangularFactor(gram(y, s * n + s, n, nb, len), betas.subarray(s, s + nb), nb);
    // Each trailing column b (a row of y) gets H_{s+nb−1}···H_s·b = (I − Pᵀ·T_pᵀ·P)·b:
    // M = B·Pᵀ (trailing×nb), M ← M·T_p, B ← B − M·P.
    const m = new Float64Array(trailing * nb);
    gemmNT(trailing, nb, len, y, (s + nb) * n + s, n, y, s * n + s, n, m, 0, nb, 1, false);
    const mt = new Float64Array(trailing * nb);
    for (let i = 0; i < trailing; i++) {
      for (let b = 0; b < nb; b++) {
        let acc = 0;
        for (let a = 0; a <= b; a++) acc += m[i * nb + a] * tP[a * nb + b];
        mt[i * nb + b] = acc;
      }
    }
    const pT = new Float64Array(len * nb); // Pᵀ, len×nb, so B −= M·P is again an A·Bᵀ product
    for (let a = 0; a < nb; a++) for (let i = 0; i < len; i++) pT[i * nb + a] = y[(s + a) * n + s + i];
    gemmNT(trailing, len, nb, mt, 0, nb, pT, 0, nb, y, (s + nb) * n + s, n, -1, false);
  }
  // Q = I − Yc·T·Ycᵀ with Yc = yᵀ (n×r): Z = Yc·Tᵀ (n×r), then Q = I − Yc·Zᵀ.
  const t = triangularFactor(gram(y, 0, n, r, n), betas, r);
  const yc = transpose(y, r, n);
  const z = new Float64Array(n * r);
  gemmNT(n, r, r, yc, 0, r, t, 0, r, z, 0, r, 1, false);
  const q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) q[i * n + i] = 1;
  gemmNT(n, n, r, yc, 0, r, z, 0, r, q, 0, n, -1, false);
  return q;
}

/** The rows×rows Gram matrix A·Aᵀ of a rows×len block of `a` (offset, row stride). */
function gram(a: Float64Array, off: number, stride: number, rows: number, len: number): Float64Array {
  const c = new Float64Array(rows * rows);
  gemmNT(rows, rows, len, a, off, stride, a, off, stride, c, 0, rows, 1, true);
  mirrorLower(c, rows);
  return c;
}

/**
 * The upper-triangular T (r×r) with H₀···H_{r−1} = I − Y·T·Yᵀ for reflectors Hₖ = I − βₖ·yₖ·yₖᵀ,
 * given the Gram matrix YᵀY of the reflector vectors: T[k,k] = βₖ and
 * T[:k, k] = −βₖ·T[:k, :k]·(YᵀY)[:k, k] (LAPACK dlarft, forward, columnwise).
 */
function triangularFactor(yty: Float64Array, betas: ArrayLike<number>, r: number): Float64Array {
  const t = new Float64Array(r * r);
  for (let k = 0; k < r; k++) {
    const beta = betas[k];
    t[k * r + k] = beta;
    if (beta === 0) continue;
    for (let i = 0; i < k; i++) {
      let acc = 0;
      for (let j = i; j < k; j++) acc += t[i * r + j] * yty[j * r + k];
      t[i * r + k] = -beta * acc;
    }
  }
  return t;
}

// --- Dense kernels ---------------------------------------------------------------------------

/** X·Xᵀ for the row-major n×k X: n×n, one triangle computed and mirrored (exactly symmetric). */
function syrk(x: Float64Array, n: number, k: number): Float64Array {
  const c = new Float64Array(n * n);
  gemmNT(n, n, k, x, 0, k, x, 0, k, c, 0, n, 1, true);
  mirrorLower(c, n);
  return c;
}

/** A·Bᵀ for row-major A (m×k) and B (n×k), as a new m×n array. */
function mulNT(a: Float64Array, b: Float64Array, m: number, n: number, k: number): Float64Array {
  const c = new Float64Array(m * n);
  gemmNT(m, n, k, a, 0, k, b, 0, k, c, 0, n, 1, false);
  return c;
}

/** c made exactly symmetric from its lower triangle (a BLAS product is symmetric only to rounding). */
function symmetricPart(c: Float64Array, n: number): Float64Array {
  mirrorLower(c, n);
  return c;
}

/** Copies the lower triangle of the n×n c onto the upper one. */
function mirrorLower(c: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) c[i * n + j] = c[j * n + i];
}

/** Depth of one pass over the shared dimension (doubles): a 4-row panel of A stays in L1. */
const KC = 256;
/** Rows of B per pass: a 64×256 panel of B (128 KiB) stays in L2 while all of A streams by. */
const NC = 64;

/**
 * C ← C + sign·A·Bᵀ, every entry a dot product of two contiguous rows: A(i, p) =
 * a[aOff + i·lda + p] (m×k), B(j, p) = b[bOff + j·ldb + p] (n×k), C(i, j) = c[cOff + i·ldc + j].
 * Blocked over p (KC) and B's rows (NC) with a 4×4 register tile. With `lower` (A = B) only the
 * entries j ≤ i are guaranteed (the diagonal tiles also write some above).
 */
function gemmNT(
  m: number,
  n: number,
  k: number,
  a: Float64Array,
  aOff: number,
  lda: number,
  b: Float64Array,
  bOff: number,
  ldb: number,
  c: Float64Array,
  cOff: number,
  ldc: number,
  sign: number,
  lower: boolean,
): void {
  for (let p0 = 0; p0 < k; p0 += KC) {
    const p1 = Math.min(k, p0 + KC);
    for (let j0 = 0; j0 < n; j0 += NC) {
      const j1 = Math.min(n, j0 + NC);
      for (let i = lower ? j0 : 0; i < m; i += 4) {
        const i1 = Math.min(i + 4, m);
        for (let j = j0; j < j1; j += 4) {
          if (lower && j > i + 3) break;
          const jEnd = Math.min(j + 4, j1);
          const ai = aOff + i * lda;
          const bj = bOff + j * ldb;
          const cij = cOff + i * ldc + j;
          if (i1 - i === 4 && jEnd - j === 4) tile4x4(a, ai, lda, b, bj, ldb, c, cij, ldc, p0, p1, sign);
          else edgeTile(a, ai, lda, i1 - i, b, bj, ldb, jEnd - j, c, cij, ldc, p0, p1, sign);
        }
      }
    }
  }
}

function tile4x4(
  a: Float64Array,
  a0: number,
  lda: number,
  b: Float64Array,
  b0: number,
  ldb: number,
  c: Float64Array,
  o: number,
  ldc: number,
  p0: number,
  p1: number,
  sign: number,
): void {
  const a1 = a0 + lda;
  const a2 = a1 + lda;
  const a3 = a2 + lda;
  const b1 = b0 + ldb;
  const b2 = b1 + ldb;
  const b3 = b2 + ldb;
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
  let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  for (let p = p0; p < p1; p++) {
    const x0 = a[a0 + p];
    const x1 = a[a1 + p];
    const x2 = a[a2 + p];
    const x3 = a[a3 + p];
    const y0 = b[b0 + p];
    const y1 = b[b1 + p];
    const y2 = b[b2 + p];
    const y3 = b[b3 + p];
    c00 += x0 * y0; c01 += x0 * y1; c02 += x0 * y2; c03 += x0 * y3;
    c10 += x1 * y0; c11 += x1 * y1; c12 += x1 * y2; c13 += x1 * y3;
    c20 += x2 * y0; c21 += x2 * y1; c22 += x2 * y2; c23 += x2 * y3;
    c30 += x3 * y0; c31 += x3 * y1; c32 += x3 * y2; c33 += x3 * y3;
  }
  c[o] += sign * c00; c[o + 1] += sign * c01; c[o + 2] += sign * c02; c[o + 3] += sign * c03;
  o += ldc;
  c[o] += sign * c10; c[o + 1] += sign * c11; c[o + 2] += sign * c12; c[o + 3] += sign * c13;
  o += ldc;
  c[o] += sign * c20; c[o + 1] += sign * c21; c[o + 2] += sign * c22; c[o + 3] += sign * c23;
  o += ldc;
  c[o] += sign * c30; c[o + 1] += sign * c31; c[o + 2] += sign * c32; c[o + 3] += sign * c33;
}

function edgeTile(
  a: Float64Array,
  a0: number,
  lda: number,
  mi: number,
  b: Float64Array,
  b0: number,
  ldb: number,
  nj: number,
  c: Float64Array,
  o: number,
  ldc: number,
  p0: number,
  p1: number,
  sign: number,
): void {
  for (let i = 0; i < mi; i++) {
    for (let j = 0; j < nj; j++) {
      let acc = 0;
      for (let p = p0; p < p1; p++) acc += a[a0 + i * lda + p] * b[b0 + j * ldb + p];
      c[o + i * ldc + j] += sign * acc;
    }
  }
}
