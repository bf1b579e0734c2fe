/**
 * SOAP's eigenbasis computations, on the host in float64 (called inside ctx.time('refresh')):
 * the initial eigendecomposition and the periodic refresh of the reference `soap.py`
 * (`get_orthogonal_matrix` and `get_orthogonal_matrix_QR`).
 */
import { tf } from '../tf.js';
import { eigh } from './linalg/eigh.js';
import { argsortDescending, matmul, permuteColumns, symmetrize, transpose } from './linalg/matrix.js';
import { householderQ } from './linalg/qr.js';
import { hostToTensor, permuteAxis, type AxisMatrix } from './tensor-modes.js';

type Tensor = tf.Tensor;

/** One axis's basis as float32 tensors, Q and Qᵀ (both kept so rotations avoid transposed matMuls). */
export interface Basis {
  q: Tensor;
  qT: Tensor;
}

function basisFromHost(q: Float64Array, n: number): Basis {
  return { q: hostToTensor(q, [n, n]), qT: hostToTensor(transpose(q, n, n), [n, n]) };
}

/** A symmetric n×n statistic read back from its tensor as float64. */
function readStatistic(t: Tensor, n: number): Float64Array {
  return symmetrize(t.dataSync(), n);
}

/**
 * The first basis of a statistic P: its eigenvectors as columns, largest eigenvalue first
 * (the reference's eigh + flip). Eigenvectors of a zero statistic are the identity.
 */
export function initialBasis(statistic: Tensor, n: number): Basis {
  return basisFromHost(eigh(readStatistic(statistic, n), n).vectors, n);
}

export interface RefreshResult {
  /** One per axis: the new basis, or null for identity axes. */
  bases: Array<Basis | null>;
  /** One per axis: A = Q_newᵀ·Q_old with Aᵀ, so M_new = M ×ᵢ A (null for identity axes). */
  transitions: Array<AxisMatrix | null>;
  /** V with each preconditioned axis permuted like its basis columns. */
  expAvgSq: Tensor;
}

/**
 * One refresh, per preconditioned axis i with statistic P and current basis Q:
 *
 *     e ← diag(Qᵀ P Q)             Rayleigh quotients of the new statistic in the old basis
 *     order ← argsort(e), largest first ; Q ← Q[:, order] ; V ← V permuted along axis i
 *     Q_new ← Q factor of qr(P·Q)  one power-iteration step
 *
 * P·Q is computed once and serves both the quotients and the power step (its columns permute
 * with Q's). The transition Q_newᵀ·Q_old uses the unpermuted Q_old so that it also carries the
 * permutation into M.
 */
export function refreshBases(
  tensors: Record<string, Tensor>,
  preconditioned: boolean[],
  workShape: number[],
  expAvgSq: Tensor,
): RefreshResult {
  let v = expAvgSq;
  const bases: Array<Basis | null> = [];
  const transitions: Array<AxisMatrix | null> = [];
  preconditioned.forEach((p, i) => {
    if (!p) {
      bases.push(null);
      transitions.push(null);
      return;
    }
    const n = workShape[i];
    const stat = readStatistic(tensors[`GG_${i}`], n);
    const qOld = Float64Array.from(tensors[`Q_${i}`].dataSync());
    const pq = matmul(stat, qOld, n, n, n);
    const rayleigh = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      const row = k * n;
      for (let j = 0; j < n; j++) rayleigh[j] += qOld[row + j] * pq[row + j];
    }
    const order = argsortDescending(rayleigh);
    v = permuteAxis(v, i, order);
    const qNew = householderQ(permuteColumns(pq, n, n, order), n, n);
    const qNewT = transpose(qNew, n, n);
    const a = matmul(qNewT, qOld, n, n, n);
    bases.push(basisFromHost(qNew, n));
    transitions.push({ m: hostToTensor(a, [n, n]), mT: hostToTensor(transpose(a, n, n), [n, n]) });
  });
  return { bases, transitions, expAvgSq: v };
}
