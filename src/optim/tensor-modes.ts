/**
 * Tensor building blocks shared by SOAP and Shampoo: dimension merging, per-axis statistics
 * (G contracted with itself over every other axis) and per-axis (mode) products, plus the
 * float64-host → float32-tensor upload and the axis permutation used by the refresh steps.
 *
 * Transposed operands are passed as matMul flags: soap-train's wasm BatchMatMul override runs
 * them at plain-GEMM speed (the stock kernel's transposed path was ~10× slower).
 */
import { tf } from '../tf.js';

type Tensor = tf.Tensor;

/**
 * A matrix A to apply along one axis: `m`, or its transpose when `transposed` (a transposed
 * matMul, which the wasm BatchMatMul override runs at plain-GEMM speed, instead of a stored
 * transpose that would double the memory of every basis).
 */
export interface AxisMatrix {
  m: Tensor;
  transposed?: boolean;
}

/**
 * The reference SOAP `merge_dims` folding: walk the dims left to right, multiplying them
 * together while the product stays ≤ maxDim; a dim that would overflow the running product
 * closes it. E.g. [2,3,6] with maxDim 10 → [6,6]; [4096, 1024] with 10000 → [4096, 1024].
 * The quirks of the reference are kept (a size-1 running product is dropped, not emitted).
 */
export function mergeDims(shape: readonly number[], maxDim: number): number[] {
  const out: number[] = [];
  let current = 1;
  for (const size of shape) {
    const merged = current * size;
    if (merged > maxDim) {
      if (current > 1) {
        out.push(current);
        current = size;
      } else {
        out.push(size);
        current = 1;
      }
    } else {
      current = merged;
    }
  }
  if (current > 1 || out.length === 0) out.push(current);
  return out;
}

/** Moves `axis` to the front and flattens the rest: the mode-`axis` unfolding, [d_axis, rest]. */
function unfold(x: Tensor, axis: number): tf.Tensor2D {
  const rank = x.rank;
  const moved = axis === 0 ? x : tf.transpose(x, [axis, ...Array.from({ length: rank }, (_, i) => i).filter((i) => i !== axis)]);
  return tf.reshape(moved, [x.shape[axis], -1]);
}

/**
 * The statistic of one axis: X₍ᵢ₎·X₍ᵢ₎ᵀ where X₍ᵢ₎ is the mode-i unfolding (for a matrix G:
 * axis 0 gives G·Gᵀ, axis 1 gives Gᵀ·G; for a vector g: g·gᵀ).
 */
export function axisStatistic(x: Tensor, axis: number): tf.Tensor2D {
  if (x.rank === 2) {
    const x2 = x as tf.Tensor2D;
    const xt = tf.transpose(x2);
    return axis === 0 ? tf.matMul(x2, xt) : tf.matMul(xt, x2);
  }
  const u = unfold(x, axis);
  return tf.matMul(u, tf.transpose(u));
}

/**
 * X ×₀ A₀ ×₁ A₁ … : along every axis i with a matrix, the new axis-i fibres are A_i times the
 * old ones (null leaves the axis alone). For a matrix this is A₀·X·A₁ᵀ, two matMuls.
 * Higher ranks cycle the axes (the reference's tensordot order).
 */
export function modeProduct(x: Tensor, mats: ReadonlyArray<AxisMatrix | null>): Tensor {
  if (x.rank === 2 && mats.length === 2) {
    let y = x as tf.Tensor2D;
    if (mats[0]) y = tf.matMul(mats[0].m as tf.Tensor2D, y, mats[0].transposed ?? false, false);
    // X·A₁ᵀ: a plain product with m when A₁ = mᵀ, else with mᵀ.
    if (mats[1]) y = tf.matMul(y, mats[1].m as tf.Tensor2D, false, !(mats[1].transposed ?? false));
    return y;
  }
  if (mats.every((a) => a === null)) return x;
  const rank = x.rank;
  const cycle = [...Array.from({ length: rank - 1 }, (_, i) => i + 1), 0];
  let y = x;
  for (let i = 0; i < rank; i++) {
    const a = mats[i];
    if (a) {
      const shape = y.shape;
      y = tf.reshape(tf.matMul(a.m as tf.Tensor2D, tf.reshape(y, [shape[0], -1]), a.transposed ?? false, false), shape);
    }
    if (rank > 1) y = tf.transpose(y, cycle);
  }
  return y;
}

/** A float32 tensor from a float64 host matrix. */
export function hostToTensor(values: Float64Array, shape: number[]): Tensor {
  return tf.tensor(Float32Array.from(values), shape, 'float32');
}

/** Permutes `x` along `axis` so that index j of the result is index order[j] of the input (int32 `order`). */
export function permuteAxis(x: Tensor, axis: number, order: Tensor): Tensor {
  return tf.gather(x, order, axis);
}

/** Product of a shape's dims (1 for a scalar). */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
