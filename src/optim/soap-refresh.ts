/**
 * SOAP's eigenbases: the first one (an eigendecomposition per preconditioned axis, once per
 * parameter) and the periodic refresh of the reference `soap.py` (`get_orthogonal_matrix` and
 * `get_orthogonal_matrix_QR`), split into what the optimizer plans before its step (the
 * device products, and the host requests: eigh, QR) and what its update does with the results.
 *
 * First basis: float64 eigendecompositions on the host. For a matrix whose larger side would
 * cost more as a full eigh than through the smaller side's (linalg/low-rank.ts: the statistic
 * of one gradient has rank ≤ min(n, m)), one `gram_eigh` request on G gives both sides.
 * Refresh: float32 like the reference: P·Q, the Rayleigh quotients diag(QᵀPQ) and the sort
 * where the products run (tensor-modes.ts), then the Q factor of the sorted P·Q in the pool
 * (LAPACK) or on the device (blocked Householder), as `qrPlacement` decides.
 */
import { tf } from '../tf.js';
import { gramEighRates, qrPlacement } from './linalg/host-jobs.js';
import { prefersLowRank } from './linalg/low-rank.js';
import { deviceHouseholderQ } from './linalg/qr-device.js';
import { hostGemm, hostToTensor, hostView, matMul2d, modeProduct, permuteAxis, permuteHost, productPlacement } from './tensor-modes.js';
import type { MatrixRequest, PlannedWork } from './types.js';

type Tensor = tf.Tensor;

/**
 * Below this order SOAP keeps the full eigh of each statistic: it costs well under a second with
 * either eigensolver, and the small cases pinned by the reference replay fixtures keep the
 * eigensolver's own basis of the null space (any completion is valid, but only that one replays).
 */
export const LOW_RANK_MIN_ORDER = 512;

/**
 * The host requests for the first bases: one `gram_eigh` on G where it pays, else an `eigh` per
 * statistic. It pays for a larger side from 512 up with either implementation (low-rank.ts's
 * cost model at the active one's rates): G of 1024×4096 with LAPACK, ≈ 3 s against ≈ 20 s for
 * the full 4096² eigh; with the TypeScript eigh, 30 s against ≈ 10 min.
 */
export function firstBasisRequests(g: Tensor, stats: Array<Tensor | null>): Record<string, MatrixRequest> {
  if (g.rank === 2 && stats.some((s) => s)) {
    const [rows, cols] = g.shape;
    const big = rows >= cols ? 'left' : 'right';
    const bigPreconditioned = big === 'left' ? stats[0] !== null : stats[1] !== null;
    if (bigPreconditioned && Math.max(rows, cols) >= LOW_RANK_MIN_ORDER && prefersLowRank(rows, cols, big, gramEighRates())) {
      return { gram: { op: 'gram_eigh', input: g, left: stats[0] !== null, right: stats[1] !== null } };
    }
  }
  const requests: Record<string, MatrixRequest> = {};
  stats.forEach((s, i) => {
    if (s) requests[`eigh_${i}`] = { op: 'eigh', input: s };
  });
  return requests;
}

/** Axis i's first basis from the results of `firstBasisRequests`: eigenvectors as columns, largest first. */
export function firstBasis(planned: PlannedWork, axis: number, n: number): Tensor {
  const gram = planned.results.gram;
  const vectors = gram ? gram[axis === 0 ? 'left' : 'right'] : planned.results[`eigh_${axis}`].vectors;
  return hostToTensor(Float64Array.from(vectors), [n, n]);
}

/**
 * The first half of a refresh of axis i with its new statistic P and current basis Q, before
 * the QR:
 *
 *     e ← diag(Qᵀ P Q)             Rayleigh quotients of the new statistic in the old basis
 *     order ← argsort(e), largest first (ties: lower index first, a stable argsort)
 *     Q_new ← Q factor of qr((P·Q)[:, order])   one power-iteration step
 *
 * P·Q is computed once and serves both the quotients (column sums of Q ⊙ PQ, so QᵀPQ is never
 * formed) and the power step. Where products run on the host (tensor-modes.ts) all of it does:
 * the quotients in float32 arithmetic summed row by row, the sort and the column permutation in
 * JS (on wasm the column Sum and the GatherV2 of a 512-column factor took ~8 ms, more than its
 * product). Returns `order` (int32, for V) and either Q_new (device QR) or the host request.
 */
export function planRefresh(stat: Tensor, q: Tensor): { order: Tensor; qNew: Tensor | null; request: MatrixRequest | null } {
  const n = q.shape[0];
  let order: Tensor;
  let sorted: tf.Tensor2D;
  if (productPlacement() === 'host') {
    const qv = hostView(q);
    const pq = hostGemm(hostView(stat), qv, n, n, n);
    const idx = descendingOrder(columnDots(qv, pq, n));
    order = tf.tensor1d(idx, 'int32');
    sorted = tf.tensor2d(permuteHost(pq, [n, n], 1, idx), [n, n], 'float32');
  } else {
    const pq = matMul2d(stat, q);
    const rayleigh = tf.sum(tf.mul(q, pq), 0);
    // tf.topk sorts descending and breaks ties by the lower index, like a stable argsort.
    order = tf.topk(rayleigh, n, true).indices;
    sorted = permuteAxis(pq, 1, order) as tf.Tensor2D;
  }
  if (qrPlacement(n) === 'device') return { order, qNew: deviceHouseholderQ(sorted), request: null };
  return { order, qNew: null, request: { op: 'qr', input: sorted } };
}

/**
 * e_j = Σ_i a_ij·b_ij for row-major n×n a, b, in float32 arithmetic (each product and each
 * partial sum rounded to float32, rows in order: what tf.sum(tf.mul(a, b), 0) computes).
 */
function columnDots(a: Float32Array, b: Float32Array, n: number): Float32Array {
  const e = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const row = i * n;
    for (let j = 0; j < n; j++) e[j] = Math.fround(e[j] + Math.fround(a[row + j] * b[row + j]));
  }
  return e;
}

/** The indices of `values` largest first, ties by the lower index (tf.topk's order). */
function descendingOrder(values: Float32Array): Int32Array {
  const idx = Array.from({ length: values.length }, (_, i) => i);
  idx.sort((x, y) => values[y] - values[x] || x - y);
  return Int32Array.from(idx);
}

/** Q_new of axis i from the plan's carry (device QR) or the host result. */
export function refreshedBasis(planned: PlannedWork, axis: number, n: number): Tensor {
  const carried = planned.carry[`Q_${axis}`];
  if (carried) return carried;
  return tf.tensor(planned.results[`qr_${axis}`].q, [n, n], 'float32');
}

/**
 * M, which lives in the old bases' coordinates, moved into the new bases': M ×ᵢ (Q_newᵢᵀ·Q_oldᵢ)
 * on every refreshed axis. Two spellings, equal up to float32 rounding, chosen by their
 * multiply-adds (N = numel, dᵢ the refreshed sizes):
 *   through the parameter's own coordinates, back with Q_old and forward with Q_new (the
 *   reference's project_back then project): 2·N·Σdᵢ;
 *   with the transition matrices Aᵢ = Q_newᵢᵀ·Q_oldᵢ: Σdᵢ³ to form them, N·Σdᵢ to apply.
 * The first is never dearer for a matrix with both sides refreshed ((m − n)² ≥ 0): [128, 512]
 * costs 84 M against 178 M. The second wins where N is large against the dᵢ³, as for most
 * higher-rank tensors ([4, 6, 5]: 2.2 k against 3.6 k) and a one-sided smaller factor.
 */
export function changeOfBasis(m: Tensor, oldBases: ReadonlyArray<Tensor | null>, newBases: ReadonlyArray<Tensor | null>): Tensor {
  const dims = newBases.map((q) => (q ? q.shape[0] : 0));
  const sumD = dims.reduce((a, d) => a + d, 0);
  const sumCubes = dims.reduce((a, d) => a + d ** 3, 0);
  if (sumCubes >= m.size * sumD) {
    const original = modeProduct(m, oldBases.map((q) => q && { m: q }));
    return modeProduct(original, newBases.map((q) => q && { m: q, transposed: true }));
  }
  return modeProduct(m, newBases.map((q, i) => q && { m: matMul2d(q, oldBases[i]!, true, false) }));
}

/** V permuted along each refreshed axis like its basis columns. */
export function permuteSecondMoment(v: Tensor, planned: PlannedWork, preconditioned: boolean[]): Tensor {
  let out = v;
  preconditioned.forEach((p, i) => {
    if (p) out = permuteAxis(out, i, planned.carry[`order_${i}`]);
  });
  return out;
}
