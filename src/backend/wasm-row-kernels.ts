/**
 * Two wasm kernels that the training step calls on whole rows, where the stock ones take a slow
 * generic path (tf.profile of a tiny step, bench/kernel-profile.ts):
 *
 * - `Sum` over the leading axes, e.g. a LayerNorm weight's gradient Σ_rows dy·x̂ of [2048, 128]
 *   into [128]: the stock kernel transposes the reduced axes to the end first and then sums
 *   strided, 4 ms per call (15 ns per element; 61 ms of a 415 ms step). Here: one pass adding
 *   each row into float64 accumulators, ~0.6 ms, and more accurate (float64 sums).
 * - `GatherV2` of whole rows along axis 0 (the embedding lookup, the target logits): the stock
 *   kernel copies element by element through generic strides, 13.5 ms for [256, 128][2048];
 *   here each row is one TypedArray.set.
 *
 * Every other case (other axes, int32 sums, batch dimensions) goes to the stock kernel, passed in
 * by wasm-kernels.ts, which registers these after a self-check (wasm-self-check.ts).
 */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import type { WasmHeapBackend } from './heap-kernels.js';

const size = (shape: readonly number[]): number => shape.reduce((p, s) => p * s, 1);

/** Sorted, non-negative axes; null if one is out of range or repeated. */
function normalizeAxes(axis: number | number[], rank: number): number[] | null {
  const axes = (Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + rank : a)).sort((a, b) => a - b);
  if (axes.some((a, i) => a < 0 || a >= rank || (i > 0 && a === axes[i - 1]))) return null;
  return axes;
}

/** `Sum` with the leading-axes case done here, the rest by `stock`. */
export function leadingAxesSum(stock: KernelFunc): KernelFunc {
  return (args) => {
    const backend = args.backend as unknown as WasmHeapBackend;
    const { x } = args.inputs as { x: TensorInfo };
    const { axis, keepDims } = args.attrs as { axis: number | number[]; keepDims: boolean };
    const rank = x.shape.length;
    const axes = normalizeAxes(axis, rank);
    // Reducing axes 0..p−1 of a rank-r tensor with p < r: the rows are the leading p axes.
    const leading = axes !== null && axes.length > 0 && axes.length < rank && axes.every((a, i) => a === i);
    if (x.dtype !== 'float32' || !leading) return stock(args);
    const rows = size(x.shape.slice(0, axes.length));
    const cols = size(x.shape.slice(axes.length));
    const outShape = keepDims ? x.shape.map((s, i) => (i < axes.length ? 1 : s)) : x.shape.slice(axes.length);
    const out = backend.makeOutput(outShape, 'float32');
    // Views taken after makeOutput: an allocation may grow (and so detach) the heap.
    const src = backend.typedArrayFromHeap(x) as Float32Array;
    const dst = backend.typedArrayFromHeap(out) as Float32Array;
    const acc = new Float64Array(cols);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      for (let c = 0; c < cols; c++) acc[c] += src[base + c];
    }
    dst.set(acc);
    return out;
  };
}

/** `GatherV2` of rows along axis 0 (no batch dimensions) done here, the rest by `stock`. */
export function rowGather(stock: KernelFunc): KernelFunc {
  return (args) => {
    const backend = args.backend as unknown as WasmHeapBackend;
    const { x, indices } = args.inputs as { x: TensorInfo; indices: TensorInfo };
    const { axis, batchDims } = args.attrs as { axis: number; batchDims: number };
    const rank = x.shape.length;
    const along0 = (axis === 0 || axis === -rank) && (batchDims ?? 0) === 0;
    if (!along0 || indices.dtype !== 'int32' || (x.dtype !== 'float32' && x.dtype !== 'int32') || rank === 0) return stock(args);
    const nRows = x.shape[0];
    const inner = size(x.shape.slice(1));
    const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
    const src = backend.typedArrayFromHeap(x) as Float32Array | Int32Array;
    const dst = backend.typedArrayFromHeap(out) as Float32Array | Int32Array;
    const ids = backend.typedArrayFromHeap(indices) as Int32Array;
    for (let i = 0; i < ids.length; i++) {
      const row = ids[i];
      if (!(row >= 0 && row < nRows)) throw new Error(`GatherV2: index ${row} at position ${i} is not in [0, ${nRows})`);
      if (inner === 1) dst[i] = src[row];
      else dst.set(src.subarray(row * inner, (row + 1) * inner), i * inner);
    }
    return out;
  };
}
