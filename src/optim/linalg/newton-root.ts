/**
 * The inverse p-th root (A + ε·I)^(−1/p) of a symmetric positive (semi-)definite matrix by the
 * coupled Newton iteration, in float32 tensor ops only (matMuls and elementwise ops), so it runs
 * on whatever device holds the statistics: Shampoo's `root_method: newton`.
 *
 * The iteration is DistributedShampoo's `CoupledNewtonConfig` (facebookresearch/optimizers,
 * matrix_functions.py, coupled inverse Newton after Guo & Higham), written here from its math:
 *
 *     Â = A + ε·I,   z = (p + 1) / (2‖Â‖_F)      (‖Â‖_F ≥ λ_max, so z·λ ∈ (0, (p+1)/2])
 *     X₀ = z^(1/p)·I,   M₀ = z·Â                  (invariant: M_k = X_k^p·Â)
 *     repeat:  T = (1 + 1/p)·I − M/p ;  X ← X·T ;  M ← T^p·M
 *     until ‖M − I‖_max ≤ tolerance, or k = max_iterations
 *
 * Every eigenvalue of M moves monotonically to 1 (x ↦ x·((1+1/p) − x/p)^p maps (0, p+1) into
 * (0, 1] and pulls small x up by ≈(1+1/p)^p per step), so X → Â^(−1/p). It stops early, keeping
 * the better iterate, when ‖M − I‖_max grows by more than 1.2× (divergence, e.g. float32
 * rounding made an eigenvalue of a singular A negative) or stops decreasing below 1e-3 (the
 * float32 floor; the stagnation rule of DistributedShampoo's higher-order variant).
 *
 * DistributedShampoo's coupled Newton takes integer roots only (it raises for a denominator ≠ 1).
 * A rational exponent p = r/s (the paper's 2.5 = 5/2) is computed as its higher-order
 * variant does: Newton for the integer root r, then the s-th power, Â^(−s/r) = (Â^(−1/r))^s.
 * Exponents that are not a small fraction (`rationalExponent` returns null) are left to eigh.
 *
 * The result comes with its true residual ‖X_r^r·Â − I‖_max (recomputed from X, not the coupled
 * M, which drifts from X^r·Â in float32): the caller accepts the root or falls back to eigh.
 */
import { tf } from '../../tf.js';

type Tensor = tf.Tensor;
type Tensor2D = tf.Tensor2D;

/** DistributedShampoo's CoupledNewtonConfig defaults. */
export const NEWTON_MAX_ITERATIONS = 100;
export const NEWTON_ITERATION_TOLERANCE = 1e-6;

/** Largest numerator / denominator `rationalExponent` accepts: a matrix power costs ~log₂ of it per iteration. */
const MAX_NUMERATOR = 32;
const MAX_DENOMINATOR = 8;

/**
 * p as a fraction r/s in lowest terms with r ≤ 32 and s ≤ 8 (2 → 2/1, 2.5 → 5/2, 4 → 4/1,
 * 1.25 → 5/4), or null when p is no such fraction (then Newton does not apply).
 */
export function rationalExponent(p: number): { num: number; den: number } | null {
  if (!(p > 0) || !Number.isFinite(p)) return null;
  for (let den = 1; den <= MAX_DENOMINATOR; den++) {
    const num = Math.round(p * den);
    if (num >= 1 && num <= MAX_NUMERATOR && Math.abs(num / den - p) <= 1e-12 * p) return { num, den };
  }
  return null;
}

export interface NewtonRootOptions {
  /** Ridge ε·I added before the root. */
  epsilon: number;
  /** Iteration cap (DistributedShampoo: 100). */
  maxIterations?: number;
  /** Stop when ‖M − I‖_max is at most this (DistributedShampoo: 1e-6). */
  tolerance?: number;
}

export interface NewtonRootResult {
  /** (A + ε·I)^(−1/p), float32, n×n. Owned by the caller (not tracked by an enclosing tidy's output). */
  root: Tensor2D;
  /** ‖X_r^r·(A + εI) − I‖_max of the integer-root iterate (before the s-th power); NaN/∞ when it blew up. */
  residual: number;
  /** Newton iterations run. */
  iterations: number;
  /** Why it stopped: tolerance met, iteration cap, or the error stopped improving. */
  termination: 'converged' | 'max_iterations' | 'stalled';
}

/** A scalar computed by `fn`, read to the host (one sync) and freed. */
function readScalar(fn: () => Tensor): number {
  const t = tf.tidy(fn);
  const v = t.dataSync()[0];
  t.dispose();
  return v;
}

/** ‖x − I‖_max. */
function distanceToIdentity(x: Tensor, eye: Tensor): number {
  return readScalar(() => tf.max(tf.abs(tf.sub(x, eye))));
}

/** x^k for an integer k ≥ 1 by repeated squaring (⌊log₂k⌋ + popcount(k) − 1 matMuls). */
function matrixPower(x: Tensor2D, k: number): Tensor2D {
  let result: Tensor2D | null = null;
  let base = x;
  for (let e = k; e > 0; e >>= 1) {
    if (e & 1) result = result === null ? base : (tf.matMul(result, base) as Tensor2D);
    if (e > 1) base = tf.matMul(base, base);
  }
  return result!;
}

/**
 * (A + ε·I)^(−1/p) by the coupled Newton iteration (see the module comment), for a symmetric
 * PSD float32 n×n `a` (symmetrized here) and a rational p (`rationalExponent`; throws for one
 * that is not). Syncs once per iteration to read the error. Intermediates are freed; the root
 * is returned as a new tensor.
 */
export function newtonInverseRoot(a: Tensor, p: number, options: NewtonRootOptions): NewtonRootResult {
  const frac = rationalExponent(p);
  if (!frac) throw new Error(`newtonInverseRoot: exponent ${p} is not a small fraction r/s (r ≤ ${MAX_NUMERATOR}, s ≤ ${MAX_DENOMINATOR})`);
  const [n, cols] = a.shape;
  if (a.rank !== 2 || n !== cols) throw new Error(`newtonInverseRoot: need a square matrix, got [${a.shape}]`);
  const r = frac.num;
  const maxIterations = options.maxIterations ?? NEWTON_MAX_ITERATIONS;
  const tolerance = options.tolerance ?? NEWTON_ITERATION_TOLERANCE;

  const eye = tf.eye(n);
  const ridge = tf.tidy(() => {
    const sym = tf.mul(tf.add(a, tf.transpose(a)), 0.5);
    return (options.epsilon !== 0 ? tf.add(sym, tf.mul(eye, options.epsilon)) : sym) as Tensor2D;
  });
  // ‖Â‖_F as s·‖Â/s‖_F with s = max|Â|: no overflow/underflow of the squares in float32.
  const scale = readScalar(() => tf.max(tf.abs(ridge)));
  const frob = scale > 0 && Number.isFinite(scale) ? scale * readScalar(() => tf.norm(tf.div(ridge, scale))) : scale;
  if (!(frob > 0) || !Number.isFinite(frob)) {
    // Zero or non-finite input: nothing to iterate; report an infinite residual so the caller falls back.
    const root = tf.tidy(() => tf.mul(eye, NaN)) as Tensor2D;
    tf.dispose([eye, ridge]);
    return { root, residual: Infinity, iterations: 0, termination: 'stalled' };
  }
  const z = (r + 1) / (2 * frob);
  let x = tf.tidy(() => tf.mul(eye, z ** (1 / r))) as Tensor2D;
  let m = tf.tidy(() => tf.mul(ridge, z)) as Tensor2D;
  let error = distanceToIdentity(m, eye);
  let iterations = 0;
  let termination: NewtonRootResult['termination'] = 'converged';
  while (error > tolerance) {
    if (iterations >= maxIterations) {
      termination = 'max_iterations';
      break;
    }
    const next = tf.tidy(() => {
      const t = tf.sub(tf.mul(eye, 1 + 1 / r), tf.div(m, r)) as Tensor2D;
      const nx = tf.matMul(x, t) as Tensor2D;
      const nm = tf.matMul(matrixPower(t, r), m) as Tensor2D;
      return { nx, nm };
    });
    const nextError = distanceToIdentity(next.nm, eye);
    iterations++;
    const diverging = iterations > 1 && !(nextError <= 1.2 * error);
    const stalled = error < 1e-3 && nextError >= error;
    if (diverging || stalled) {
      // Keep the better (previous) iterate.
      tf.dispose([next.nx, next.nm]);
      termination = 'stalled';
      break;
    }
    tf.dispose([x, m]);
    x = next.nx as Tensor2D;
    m = next.nm as Tensor2D;
    error = nextError;
  }
  m.dispose();
  // The true residual from X itself: the coupled M drifts from X^r·Â in float32.
  const residual = readScalar(() => tf.max(tf.abs(tf.sub(tf.matMul(matrixPower(x, r), ridge), eye))));
  let root = x;
  if (frac.den > 1) {
    root = tf.tidy(() => matrixPower(x, frac.den));
    x.dispose();
  }
  tf.dispose([eye, ridge]);
  return { root, residual: Number.isNaN(residual) ? Infinity : residual, iterations, termination };
}
