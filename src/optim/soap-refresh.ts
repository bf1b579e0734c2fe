/**
 * SOAP's eigenbases: the first one (an eigendecomposition per preconditioned axis, once per
 * parameter) and the periodic refresh of the reference `soap.py` (`get_orthogonal_matrix` and
 * `get_orthogonal_matrix_QR`), split into what the optimizer plans before its step (the
 * device products, and the host requests: eigh, QR) and what its update does with the results.
 *
 * First basis: float64 eigendecompositions on the host. For a matrix whose larger side would
 * cost more as a full eigh than through the smaller side's (linalg/low-rank.ts: the statistic
 * of one gradient has rank ≤ min(n, m)), one `gram_eigh` request on G gives both sides.
 * Refresh: float32 like the reference: P·Q, the Rayleigh quotients diag(QᵀPQ) and the sort on
 * the device, then the Q factor of the sorted P·Q on the host (LAPACK) or the device (blocked
 * Householder), as `qrPlacement` decides.
 */
import { tf } from '../tf.js';
import { gramEighRates, qrPlacement } from './linalg/host-jobs.js';
import { prefersLowRank } from './linalg/low-rank.js';
import { deviceHouseholderQ } from './linalg/qr-device.js';
import { hostToTensor, permuteAxis, type AxisMatrix } from './tensor-modes.js';
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
 * The device half of a refresh of axis i with its new statistic P and current basis Q:
 *
 *     e ← diag(Qᵀ P Q)             Rayleigh quotients of the new statistic in the old basis
 *     order ← argsort(e), largest first
 *     Q_new ← Q factor of qr((P·Q)[:, order])   one power-iteration step
 *
 * P·Q is computed once and serves both the quotients (column sums of Q ⊙ PQ, so QᵀPQ is never
 * formed) and the power step. Returns `order` (int32, for V) and either Q_new (device QR) or the
 * host request for it.
 */
export function planRefresh(stat: Tensor, q: Tensor): { order: Tensor; qNew: Tensor | null; request: MatrixRequest | null } {
  const pq = tf.matMul(stat as tf.Tensor2D, q as tf.Tensor2D);
  const rayleigh = tf.sum(tf.mul(q, pq), 0);
  // tf.topk sorts descending and breaks ties by the lower index, like a stable argsort.
  const order = tf.topk(rayleigh, rayleigh.shape[0], true).indices;
  const sorted = tf.gather(pq, order, 1) as tf.Tensor2D;
  if (qrPlacement(q.shape[0]) === 'device') return { order, qNew: deviceHouseholderQ(sorted), request: null };
  return { order, qNew: null, request: { op: 'qr', input: sorted } };
}

/** Q_new of axis i from the plan's carry (device QR) or the host result. */
export function refreshedBasis(planned: PlannedWork, axis: number, n: number): Tensor {
  const carried = planned.carry[`Q_${axis}`];
  if (carried) return carried;
  return tf.tensor(planned.results[`qr_${axis}`].q, [n, n], 'float32');
}

/**
 * The transition of the first moment into the new basis on one axis: A = Q_newᵀ·Q_old, so that
 * M_new = M ×ᵢ A (it also carries the permutation, since Q_old is the unsorted basis).
 */
export function transition(qNew: Tensor, qOld: Tensor): AxisMatrix {
  return { m: tf.matMul(qNew as tf.Tensor2D, qOld as tf.Tensor2D, true, false) };
}

/** V permuted along each refreshed axis like its basis columns. */
export function permuteSecondMoment(v: Tensor, planned: PlannedWork, preconditioned: boolean[]): Tensor {
  let out = v;
  preconditioned.forEach((p, i) => {
    if (p) out = permuteAxis(out, i, planned.carry[`order_${i}`]);
  });
  return out;
}
