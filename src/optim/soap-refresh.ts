/**
 * SOAP's eigenbasis computations (called inside ctx.time('refresh')): the initial
 * eigendecomposition (host float64 eigh, once per parameter) and the periodic refresh of the
 * reference `soap.py` (`get_orthogonal_matrix` and `get_orthogonal_matrix_QR`). The refresh
 * runs in float32 on the device like the reference (its power step, Rayleigh quotients and
 * torch.linalg.qr are float32): plain matMuls for P·Q and the transitions, and a blocked
 * Householder QR whose block updates are matMuls too. Only the n Rayleigh quotients and the
 * QR's narrow panels travel to the host.
 */
import { tf } from '../tf.js';
import { eigh } from './linalg/eigh.js';
import { householderQ } from './linalg/householder.js';
import { argsortDescending, symmetrize, transpose } from './linalg/matrix.js';
import { deviceHouseholderQ } from './linalg/qr-device.js';
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
    const stat = tensors[`GG_${i}`] as tf.Tensor2D;
    const qOld = tensors[`Q_${i}`] as tf.Tensor2D;
    const qOldT = tensors[`QT_${i}`] as tf.Tensor2D;
    // Float32 on the device, like the reference: PQ = P·Q (one plain matMul), and the Rayleigh
    // quotients diag(QᵀPQ) as the column sums of Q ⊙ PQ, so QᵀPQ is never formed. Only the
    // n quotients come to the host, to be sorted.
    const pq = tf.matMul(stat, qOld);
    const rayleigh = tf.sum(tf.mul(qOld, pq), 0);
    const order = argsortDescending(rayleigh.dataSync());
    rayleigh.dispose();
    v = permuteAxis(v, i, order);
    const sorted = tf.gather(pq, tf.tensor1d(order, 'int32'), 1) as tf.Tensor2D;
    const qNew = orthonormalFactor(sorted, n);
    const qNewT = tf.transpose(qNew);
    bases.push({ q: qNew, qT: qNewT });
    // A = Q_newᵀ·Q_old and Aᵀ = Q_oldᵀ·Q_new, both plain matMuls with the stored transposes.
    transitions.push({ m: tf.matMul(qNewT, qOld), mT: tf.matMul(qOldT, qNew) });
  });
  return { bases, transitions, expAvgSq: v };
}

/** Below this size the float64 host QR is as fast as the device one (op overhead) and more exact. */
const DEVICE_QR_MIN = 64;

/** Q of qr(a) for a square n×n float32 tensor: device-blocked for large n, host float64 for small. */
function orthonormalFactor(a: tf.Tensor2D, n: number): tf.Tensor2D {
  if (n >= DEVICE_QR_MIN) return deviceHouseholderQ(a);
  return hostToTensor(householderQ(a.dataSync(), n, n), [n, n]) as tf.Tensor2D;
}
