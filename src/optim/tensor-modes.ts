/**
 * Tensor building blocks shared by SOAP and Shampoo: dimension merging, per-axis statistics
 * (G contracted with itself over every other axis) and per-axis (mode) products, plus the
 * float64-host → float32-tensor upload and the axis permutation used by the refresh steps.
 *
 * Where the products run (`productPlacement`): with a backend that computes on this CPU anyway
 * (wasm, cpu) and the optional native BLAS loaded, a product is one float32 ?gemm on the
 * operands' values read in place (`hostView`), its result uploaded: OpenBLAS at one thread runs
 * these sizes (128–512) at 70–150 GFLOP/s against 25–37 for XNNPACK on wasm, measured on this
 * machine, and the upload is a memcpy. Otherwise tf.matMul, with transposed operands passed as
 * matMul flags, which soap-train's wasm BatchMatMul override runs at plain-GEMM speed (the
 * stock kernel's transposed path was ~10× slower).
 */
import { tf } from '../tf.js';
import { matMulEngine } from '../backend/blas-matmul.js';
import { loadNativeLapack, type NativeLapack } from './linalg/native.js';

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

/** Where the optimizers' matrix products run: tf.matMul, or native ?gemm on the host. */
export type ProductPlacement = 'device' | 'host';

let forcedPlacement: ProductPlacement | null = null;

/**
 * Pins the placement (`null`: decide per call, the default). For tests and benchmarks that
 * compare the two paths in one process; 'host' without the native binding throws on use.
 */
export function setProductPlacement(placement: ProductPlacement | null): void {
  forcedPlacement = placement;
}

/**
 * 'host' when the backend computes on this CPU (cpu, or wasm multiplying with XNNPACK) and the
 * native BLAS loaded, else 'device'. On wasm whose tf.matMul is already OpenBLAS on the heap
 * (src/backend/blas-matmul.ts) the device path is the same sgemm without the host path's upload
 * of each result. A GPU or native-TensorFlow backend keeps its products: there a host copy is a
 * transfer, and its own GEMMs are the fast ones.
 */
export function productPlacement(): ProductPlacement {
  if (forcedPlacement) return forcedPlacement;
  const backend = tf.getBackend();
  if (!loadNativeLapack()) return 'device';
  if (backend === 'cpu') return 'host';
  return backend === 'wasm' && matMulEngine() === 'xnnpack' ? 'host' : 'device';
}

/**
 * The binding with OpenBLAS at one thread, checked on every use: the count is process-wide and
 * a sum's order may depend on it, so a resumed run must not multiply with another count than
 * the straight one did (host-jobs.ts sets the same for the pool).
 */
function hostBlas(): NativeLapack {
  const lapack = loadNativeLapack();
  if (!lapack) throw new Error('host matrix products need the native BLAS (npm run native), which is not loaded');
  if (lapack.getNumThreads() !== 1) lapack.setNumThreads(1);
  return lapack;
}

/** The public parts of tfjs-backend-wasm's BackendWasm that `hostView` reads the heap with. */
interface WasmHeap {
  dataIdMap: { has(dataId: object): boolean };
  typedArrayFromHeap(info: { shape: number[]; dtype: tf.DataType; dataId: object }): Float32Array;
}

/**
 * A float32 tensor's values on the host, read only and valid only until the next tensor is
 * made: on wasm a view of the backend's heap (no copy; an allocation may grow the heap, which
 * detaches the view), elsewhere dataSync() (the cpu backend's own array, a copy on others).
 * Copies (wasm's readSync) would move ~40 MB per SOAP step on the tiny model and leave it all
 * as garbage.
 */
export function hostView(x: Tensor): Float32Array {
  const heap = tf.backend() as unknown as Partial<WasmHeap>;
  if (x.dtype === 'float32' && tf.getBackend() === 'wasm' && heap.typedArrayFromHeap && heap.dataIdMap?.has(x.dataId)) {
    return heap.typedArrayFromHeap(x);
  }
  return x.dataSync() as Float32Array;
}

/** op(a)·op(b) (m×n) of row-major float32 host arrays by the native ?gemm (one thread). */
export function hostGemm(a: Float32Array, b: Float32Array, m: number, n: number, k: number, transA = false, transB = false): Float32Array {
  return hostBlas().gemm(a, b, m, n, k, transA, transB);
}

/** op(a)·op(b) for 2-D float32 tensors, where `productPlacement` says. */
export function matMul2d(a: Tensor, b: Tensor, transposeA = false, transposeB = false): tf.Tensor2D {
  if (productPlacement() === 'device') return tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, transposeA, transposeB);
  const [rows, cols] = a.shape as [number, number];
  const [m, k] = transposeA ? [cols, rows] : [rows, cols];
  const n = transposeB ? b.shape[0] : (b.shape[1] as number);
  return tf.tensor2d(hostBlas().gemm(hostView(a), hostView(b), m, n, k, transposeA, transposeB), [m, n], 'float32');
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
  if (x.rank === 2) return gramPair(x as tf.Tensor2D, 1, axis === 0, axis === 1)[axis]!;
  const u = unfold(x, axis);
  return matMul2d(u, u, false, true);
}

/**
 * Both Gram matrices of a matrix X, (sX)·(sX)ᵀ and (sX)ᵀ·(sX), each only where asked (null
 * elsewhere): X is scaled once by s (a float32 multiply on the device) so that a statistic's
 * weight costs no multiply of its n×n result. On the device sX is transposed once for both
 * products; on the host both read the same view of sX.
 */
export function gramPair(x: tf.Tensor2D, scale: number, left: boolean, right: boolean): [tf.Tensor2D | null, tf.Tensor2D | null] {
  const [m, n] = x.shape;
  const xs = scale === 1 ? x : (tf.mul(x, scale) as tf.Tensor2D);
  if (productPlacement() === 'device') {
    const xsT = tf.transpose(xs);
    return [left ? (tf.matMul(xs, xsT) as tf.Tensor2D) : null, right ? (tf.matMul(xsT, xs) as tf.Tensor2D) : null];
  }
  const blas = hostBlas();
  const view = hostView(xs);
  // Both products before either upload: an upload may detach the view.
  const l = left ? blas.gemm(view, view, m, m, n, false, true) : null;
  const r = right ? blas.gemm(view, view, n, n, m, true, false) : null;
  return [l && tf.tensor2d(l, [m, m], 'float32'), r && tf.tensor2d(r, [n, n], 'float32')];
}

/**
 * X ×₀ A₀ ×₁ A₁ … : along every axis i with a matrix, the new axis-i fibres are A_i times the
 * old ones (null leaves the axis alone). For a matrix this is A₀·X·A₁ᵀ, two products (on the
 * host: X read once, one upload). Higher ranks cycle the axes (the reference's tensordot order).
 */
export function modeProduct(x: Tensor, mats: ReadonlyArray<AxisMatrix | null>): Tensor {
  if (x.rank === 2 && mats.length === 2) {
    if (productPlacement() === 'host') return hostMatrixModeProduct(x as tf.Tensor2D, mats);
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
      y = tf.reshape(matMul2d(a.m, tf.reshape(y, [shape[0], -1]), a.transposed ?? false, false), shape);
    }
    if (rank > 1) y = tf.transpose(y, cycle);
  }
  return y;
}

/** A₀·X·A₁ᵀ for a matrix X on the host: one read of X and of each A, one upload of the result. */
function hostMatrixModeProduct(x: tf.Tensor2D, mats: ReadonlyArray<AxisMatrix | null>): Tensor {
  if (!mats[0] && !mats[1]) return x;
  const blas = hostBlas();
  const [r, c] = x.shape;
  let y = hostView(x);
  if (mats[0]) y = blas.gemm(hostView(mats[0].m), y, r, c, r, mats[0].transposed ?? false, false);
  if (mats[1]) y = blas.gemm(y, hostView(mats[1].m), r, c, c, false, !(mats[1].transposed ?? false));
  return tf.tensor2d(y, [r, c], 'float32');
}

/** A float32 tensor from a float64 host matrix. */
export function hostToTensor(values: Float64Array, shape: number[]): Tensor {
  return tf.tensor(Float32Array.from(values), shape, 'float32');
}

/**
 * Permutes `x` along `axis` so that index j of the result is index order[j] of the input (int32
 * `order`). A float32 `x` on a CPU backend (wasm, cpu) is permuted on the host: the wasm
 * GatherV2 kernel takes ~6 ms for the columns of a 512×512 matrix, a JS loop over its heap view
 * and an upload ~1 ms. Elsewhere tf.gather.
 */
export function permuteAxis(x: Tensor, axis: number, order: Tensor): Tensor {
  if (x.dtype !== 'float32' || !onCpuBackend()) return tf.gather(x, order, axis);
  const indices = order.dataSync() as Int32Array;
  return tf.tensor(permuteHost(hostView(x), x.shape, axis, indices), x.shape, 'float32');
}

/** Whether the backend computes on this CPU, so that host copies are memory moves, not transfers. */
function onCpuBackend(): boolean {
  const backend = tf.getBackend();
  return backend === 'wasm' || backend === 'cpu';
}

/** `values` (row-major, `shape`) permuted along `axis`: out[…, j, …] = in[…, order[j], …]. */
export function permuteHost(values: Float32Array, shape: readonly number[], axis: number, order: ArrayLike<number>): Float32Array {
  const n = shape[axis];
  const inner = numel(shape.slice(axis + 1));
  const outer = numel(shape.slice(0, axis));
  const out = new Float32Array(values.length);
  for (let o = 0; o < outer; o++) {
    const base = o * n * inner;
    if (inner === 1) {
      for (let j = 0; j < n; j++) out[base + j] = values[base + order[j]];
      continue;
    }
    for (let j = 0; j < n; j++) {
      const src = base + order[j] * inner;
      out.set(values.subarray(src, src + inner), base + j * inner);
    }
  }
  return out;
}

/** Product of a shape's dims (1 for a scalar). */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
