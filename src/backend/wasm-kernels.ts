/**
 * Kernel overrides that make the wasm backend fast (and complete) for transformer training.
 *
 * Why: the wasm backend's `BatchMatMul` sends only one case to XNNPACK, a single 2-D product
 * with neither operand transposed (~30 GFLOP/s on 2 cores). Everything else (transposeA,
 * transposeB, a batch dimension > 1) falls to a scalar blocked loop at ~2 GFLOP/s, and the
 * backward pass of every matmul uses the transposed forms. The override below rewrites each
 * product into the XNNPACK case:
 *   1. a transposed operand is transposed explicitly first (a blocked copy on the wasm heap);
 *   2. when b has batch 1, a [batch, m, k] is a single [batch·m, k] × [k, n] product;
 *      when both inputs come transposed, (bᵀ·aᵀ)ᵀ may be cheaper (see swapIsCheaper);
 *   3. otherwise each batch item is one 2-D product on *views* into the operands' wasm memory
 *      (tensor ids registered at an offset into the existing buffers), so nothing is copied.
 * With the native binding built, the products go to OpenBLAS instead (blas-matmul.ts). `Sum`
 * over leading axes and `GatherV2` of rows are replaced too (wasm-row-kernels.ts), and RoPE gets a
 * kernel of its own (fused-rope.ts).
 * It also registers `UnsortedSegmentSum` (the gradient of `gather`, i.e. of the embedding),
 * which the wasm backend lacks and which otherwise throws, and an `Identity` that shares
 * buffers instead of copying them (the engine clones every tensor saved for backward).
 *
 * The arithmetic is XNNPACK's fp32 GEMM either way, so results equal the naive path up to
 * summation order (~1e-6 relative).
 *
 * The private parts used are listed in WasmBackendInternals; package.json pins
 * @tensorflow/tfjs-backend-wasm (and @tensorflow/tfjs) to the exact version this was written
 * against, and installWasmKernelOverrides() self-checks the kernels before keeping them.
 */
import type { KernelBackend, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import type { WasmHeapBackend } from './heap-kernels.js';
import { tf } from '../tf.js';
import { blasBatchMatMul, matMulEngine } from './blas-matmul.js';
import { leadingAxesSum, rowGather } from './wasm-row-kernels.js';
import { registerFusedGeluKernels, unregisterFusedGeluKernels } from './fused-gelu.js';
import { registerFusedRopeKernel, unregisterFusedRopeKernel } from './fused-rope.js';
import { loadNativeLapack } from '../optim/linalg/native.js';
import { selfCheckWasmKernels, type SelfCheckResult } from './wasm-self-check.js';

/** The parts of tfjs-backend-wasm's `BackendWasm` this file uses (some are private there). */
interface WasmBackendInternals extends WasmHeapBackend {
  wasm: {
    cwrap(name: string, ret: null, args: string[]): (...args: unknown[]) => void;
    tfjs: {
      registerTensor(id: number, size: number, memoryOffset: number): void;
      disposeData(id: number): void;
    };
  };
  dataIdMap: { get(dataId: object): { id: number; memoryOffset: number } };
  dataIdNextNumber: number;
  incRef(dataId: object): void;
  disposeData(dataId: object): boolean;
}

type WasmBatchMatMul = (
  aId: number,
  aShape: Uint8Array,
  aRank: number,
  bId: number,
  bShape: Uint8Array,
  bRank: number,
  transposeA: boolean,
  transposeB: boolean,
  outId: number,
) => void;

/** The exported C function behind the stock kernel, wrapped once per backend instance. */
const cFunctions = new WeakMap<object, WasmBatchMatMul>();
let stockBatchMatMul: KernelConfig | undefined;
let stockIdentity: KernelConfig | undefined;
let stockSum: KernelConfig | undefined;
let stockGather: KernelConfig | undefined;
let installed = false;

function wasmBatchMatMul(backend: WasmBackendInternals): WasmBatchMatMul {
  let f = cFunctions.get(backend);
  if (!f) {
    const args = ['number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number'];
    f = backend.wasm.cwrap('BatchMatMul', null, args) as WasmBatchMatMul;
    cFunctions.set(backend, f);
  }
  return f;
}

function shapeBytes(shape: number[]): Uint8Array {
  return new Uint8Array(new Int32Array(shape).buffer);
}

/**
 * Swaps the last two axes of a float32 tensor into a fresh buffer; the caller disposes it.
 * A blocked copy in JS over the wasm heap: 4× faster than the wasm Transpose kernel's generic
 * strided loop (1.8 vs 7.3 ms for [2048, 512] on this machine).
 */
function transposeLast2(x: TensorInfo, backend: WasmBackendInternals): TensorInfo {
  const rank = x.shape.length;
  const R = x.shape[rank - 2];
  const C = x.shape[rank - 1];
  const out = backend.makeOutput([...x.shape.slice(0, -2), C, R], 'float32');
  // Views taken after makeOutput: an allocation may grow (and so detach) the heap.
  const src = backend.typedArrayFromHeap(x) as Float32Array;
  const dst = backend.typedArrayFromHeap(out) as Float32Array;
  const B = 8; // 8×8 tiles: measured fastest (16 and 32 are ~2× slower in V8)
  for (let base = 0; base < src.length; base += R * C) {
    for (let i0 = 0; i0 < R; i0 += B) {
      const i1 = Math.min(i0 + B, R);
      for (let j0 = 0; j0 < C; j0 += B) {
        const j1 = Math.min(j0 + B, C);
        for (let i = i0; i < i1; i++) {
          let s = base + i * C + j0;
          let d = base + j0 * R + i;
          for (let j = j0; j < j1; j++, s++, d += R) dst[d] = src[s];
        }
      }
    }
  }
  return out;
}

/**
 * out[i] = a[i] · b[i] (or b[0] when b is shared) for i < batch, every product a 2-D
 * XNNPACK call. Operands are row-major and untransposed: a [batch, m, k], b [batchB, k, n].
 */
function batchedProducts(
  backend: WasmBackendInternals,
  a: TensorInfo,
  b: TensorInfo,
  batch: number,
  batchB: number,
  m: number,
  k: number,
  n: number,
): TensorInfo {
  const call = wasmBatchMatMul(backend);
  const out = backend.makeOutput([batch, m, n], 'float32');
  const outId = backend.dataIdMap.get(out.dataId).id;
  const aInfo = backend.dataIdMap.get(a.dataId);
  const bInfo = backend.dataIdMap.get(b.dataId);
  if (batchB === 1) {
    // b shared: stack the batch into the rows of one product, [batch·m, k] × [k, n].
    call(aInfo.id, shapeBytes([1, batch * m, k]), 3, bInfo.id, shapeBytes([1, k, n]), 3, false, false, outId);
    return out;
  }
  const outOffset = backend.dataIdMap.get(out.dataId).memoryOffset;
  const aShape = shapeBytes([1, m, k]);
  const bShape = shapeBytes([1, k, n]);
  const views: number[] = [];
  // A view is a tensor id registered at an offset inside an existing buffer: no copy, and the
  // C++ side frees nothing when it is disposed (only its cached XNNPACK operator).
  const view = (offset: number, size: number): number => {
    const id = backend.dataIdNextNumber++;
    backend.wasm.tfjs.registerTensor(id, size, offset);
    views.push(id);
    return id;
  };
  try {
    for (let i = 0; i < batch; i++) {
      const aView = view(aInfo.memoryOffset + 4 * i * m * k, m * k);
      const bView = view(bInfo.memoryOffset + 4 * i * k * n, k * n);
      const oView = view(outOffset + 4 * i * m * n, m * n);
      call(aView, aShape, 3, bView, bShape, 3, false, false, oView);
    }
  } finally {
    for (const id of views) backend.wasm.tfjs.disposeData(id);
  }
  return out;
}

/**
 * BatchMatMul for wasm: OpenBLAS on heap views when the native binding is there
 * (blas-matmul.ts), else every case it can to XNNPACK (see the file comment).
 */
const fastBatchMatMul: KernelFunc = (args) => {
  const backend = args.backend as unknown as WasmBackendInternals;
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
  const rA = a.shape.length;
  const rB = b.shape.length;
  const batchA = a.shape.slice(0, -2).reduce((p, s) => p * s, 1);
  const batchB = b.shape.slice(0, -2).reduce((p, s) => p * s, 1);
  // Broadcasting a batch of a against a shared b is the only broadcast handled here; the rest
  // (a shared, or mismatched batch dims) keeps the stock kernel.
  const sameBatch = batchA === batchB && rA === rB && a.shape.slice(0, -2).every((s, i) => s === b.shape[i]);
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || !(sameBatch || batchB === 1)) {
    return stockBatchMatMul!.kernelFunc(args);
  }
  const m = transposeA ? a.shape[rA - 1] : a.shape[rA - 2];
  const k = transposeA ? a.shape[rA - 2] : a.shape[rA - 1];
  const kB = transposeB ? b.shape[rB - 1] : b.shape[rB - 2];
  const n = transposeB ? b.shape[rB - 2] : b.shape[rB - 1];
  if (k !== kB) {
    throw new Error(`matMul: inner dimensions ${k} and ${kB} of shapes [${a.shape}] and [${b.shape}] differ`);
  }
  const outShape = [...(batchB === 1 ? a.shape : b.shape).slice(0, -2), m, n];
  if (m * n * k === 0) {
    return stockBatchMatMul!.kernelFunc(args);
  }
  if (matMulEngine() === 'blas') {
    return blasBatchMatMul(backend, a, b, transposeA, transposeB, batchA, batchB, m, k, n, outShape);
  }
  const temps: TensorInfo[] = [];
  const untransposed = (x: TensorInfo, transpose: boolean): TensorInfo => {
    if (!transpose) return x;
    const t = transposeLast2(x, backend);
    temps.push(t);
    return t;
  };
  try {
    if (batchA === batchB && swapIsCheaper(m, k, n, transposeA, transposeB)) {
      // outᵀ = bᵀ·aᵀ: XNNPACK then packs a instead of b, and transposed inputs come for free.
      const left = untransposed(b, !transposeB); // bᵀ as [n, k]
      const right = untransposed(a, !transposeA); // aᵀ as [k, m]
      const outT = batchedProducts(backend, left, right, batchA, batchB, n, k, m);
      temps.push(outT);
      return { ...transposeLast2(outT, backend), shape: outShape };
    }
    const out = batchedProducts(backend, untransposed(a, transposeA), untransposed(b, transposeB), batchA, batchB, m, k, n);
    return { ...out, shape: outShape };
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
};

/**
 * Whether out = a·b is cheaper computed as (bᵀ·aᵀ)ᵀ. Besides the GEMM itself (the same either
 * way) the costs are explicit transposes (~1.8 ns per element, JS) and XNNPACK's packing of the
 * right operand (~4 ns per element, measured here): packing the smaller operand pays when the
 * inputs are transposed anyway, e.g. dW = Xᵀ·dY with dY wider than X.
 */
function swapIsCheaper(m: number, k: number, n: number, transposeA: boolean, transposeB: boolean): boolean {
  const T = 1.8;
  const P = 4;
  const direct = (transposeA ? T * m * k : 0) + (transposeB ? T * k * n : 0) + P * k * n;
  const swapped = (transposeB ? 0 : T * k * n) + (transposeA ? 0 : T * m * k) + P * k * m + T * m * n;
  return swapped < direct;
}

/**
 * UnsortedSegmentSum for wasm: out[s, :] = Σ_{i : ids[i] = s} x[i, :], rows with ids outside
 * [0, numSegments) dropped (as TensorFlow does). Summed in fp32 in index order, exactly what the
 * cpu backend computes. A plain loop over the wasm heap: it runs once per step on the
 * embedding gradient ([B·T, d] rows), far from the hot path.
 */
const unsortedSegmentSum: KernelFunc = (args) => {
  const backend = args.backend as unknown as WasmBackendInternals;
  const { x, segmentIds } = args.inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const { numSegments } = args.attrs as { numSegments: number };
  if (x.dtype !== 'float32' && x.dtype !== 'int32') throw new Error(`UnsortedSegmentSum: dtype ${x.dtype}`);
  const nIds = segmentIds.shape.reduce((p, s) => p * s, 1);
  const inner = x.shape.slice(segmentIds.shape.length).reduce((p, s) => p * s, 1);
  const out = backend.makeOutput([numSegments, ...x.shape.slice(segmentIds.shape.length)], x.dtype);
  // Views taken after makeOutput: an allocation may grow (and so detach) the heap.
  const o = backend.typedArrayFromHeap(out) as Float32Array | Int32Array;
  const xs = backend.typedArrayFromHeap(x) as Float32Array | Int32Array;
  const ids = backend.typedArrayFromHeap(segmentIds) as Int32Array;
  o.fill(0);
  for (let i = 0; i < nIds; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) o[dst + j] += xs[src + j];
  }
  return out;
};

/**
 * Identity that shares the input's buffer (a reference count, as the cpu backend does) instead
 * of copying it. The engine clones every tensor it saves for the backward pass through this
 * kernel, so the stock copy cost ~5% of a training step; tensors are immutable, so sharing
 * is safe (the wasm backend frees a buffer only when its count reaches 0, as for Reshape).
 */
const sharedIdentity: KernelFunc = (args) => {
  const backend = args.backend as unknown as WasmBackendInternals;
  const { x } = args.inputs as { x: TensorInfo };
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
};

/**
 * UnsortedSegmentSum through the public `KernelBackend` interface only (readSync / write): the
 * fallback when the self-check rejects the heap-based kernel above, so that the embedding's
 * gradient still works on a tfjs-backend-wasm whose internals differ. It copies its inputs out
 * of the wasm heap and the result back in, which the heap version avoids.
 */
const portableUnsortedSegmentSum: KernelFunc = (args) => {
  const backend = args.backend as KernelBackend;
  const { x, segmentIds } = args.inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const { numSegments } = args.attrs as { numSegments: number };
  if (x.dtype !== 'float32' && x.dtype !== 'int32') throw new Error(`UnsortedSegmentSum: dtype ${x.dtype}`);
  const xs = backend.readSync(x.dataId) as Float32Array | Int32Array;
  const ids = backend.readSync(segmentIds.dataId) as Int32Array;
  const innerShape = x.shape.slice(segmentIds.shape.length);
  const inner = innerShape.reduce((p, s) => p * s, 1);
  const o = x.dtype === 'float32' ? new Float32Array(numSegments * inner) : new Int32Array(numSegments * inner);
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    for (let j = 0; j < inner; j++) o[s * inner + j] += xs[i * inner + j];
  }
  const shape = [numSegments, ...innerShape];
  return { dataId: backend.write(o, shape, x.dtype), shape, dtype: x.dtype };
};

/** Outcome of the start-up self-check, once it has run. */
export interface WasmKernelStatus {
  /** Whether the overrides are in effect (false: the stock wasm kernels are). */
  installed: boolean;
  /** The self-check of the overrides: passed or not, its cost, and the first failure. */
  selfCheck: SelfCheckResult;
  /** When the check failed: which UnsortedSegmentSum is registered instead (none if it too failed). */
  segmentSumFallback?: 'portable' | 'none';
  /** The fused GeLU kernels (native binding only): registered, or why not. */
  fusedGelu: { registered: boolean; reason: string };
}

let checked: WasmKernelStatus | undefined;
/** Whether the wasm UnsortedSegmentSum registered now is one of ours (the backend had none). */
let ownSegmentSum = false;

/** Registers kernelFunc (or a whole stock config, setupFunc included) for wasm, replacing any. */
function setKernel(kernelName: string, kernel: KernelFunc | KernelConfig): void {
  if (tf.getKernel(kernelName, 'wasm')) tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel(typeof kernel === 'function' ? { kernelName, backendName: 'wasm', kernelFunc: kernel } : kernel);
}

function registerOverrides(): void {
  const stock = tf.getKernel('BatchMatMul', 'wasm');
  if (!stock) throw new Error('wasm backend has no BatchMatMul kernel');
  stockBatchMatMul = { ...stock };
  const identity = tf.getKernel('Identity', 'wasm');
  stockIdentity = identity ? { ...identity } : undefined;
  const sum = tf.getKernel('Sum', 'wasm');
  const gather = tf.getKernel('GatherV2', 'wasm');
  if (!sum || !gather) throw new Error('wasm backend has no Sum or GatherV2 kernel');
  stockSum = { ...sum };
  stockGather = { ...gather };
  // Marked installed first, so that a throw half-way is undone by uninstallWasmKernelOverrides.
  installed = true;
  setKernel('BatchMatMul', fastBatchMatMul);
  setKernel('Identity', sharedIdentity);
  setKernel('Sum', leadingAxesSum(stockSum.kernelFunc));
  setKernel('GatherV2', rowGather(stockGather.kernelFunc));
  registerFusedRopeKernel();
  if (ownSegmentSum || !tf.getKernel('UnsortedSegmentSum', 'wasm')) {
    setKernel('UnsortedSegmentSum', unsortedSegmentSum);
    ownSegmentSum = true;
  }
}

/** After a failed self-check: stock kernels back, and the portable UnsortedSegmentSum if it checks out. */
function fallBack(): 'portable' | 'none' | undefined {
  uninstallWasmKernelOverrides();
  if (!ownSegmentSum) return undefined;
  setKernel('UnsortedSegmentSum', portableUnsortedSegmentSum);
  if (selfCheckWasmKernels(['UnsortedSegmentSum']).ok) return 'portable';
  tf.unregisterKernel('UnsortedSegmentSum', 'wasm');
  ownSegmentSum = false;
  return 'none';
}

/** Registers the fused GeLU kernels when the native binding is loaded and they pass their check. */
function installFusedGelu(): { registered: boolean; reason: string } {
  if (!loadNativeLapack()) return { registered: false, reason: 'the native binding is not loaded' };
  registerFusedGeluKernels();
  const check = selfCheckWasmKernels(['SoapGelu', 'SoapGeluGrad']);
  if (check.ok) return { registered: true, reason: 'native' };
  unregisterFusedGeluKernels();
  return { registered: false, reason: `self-check failed: ${check.failure}` };
}

/**
 * Re-registers `BatchMatMul` for wasm with the XNNPACK-routing kernel above, `Identity` with
 * the buffer-sharing one, and registers `UnsortedSegmentSum` if the backend has none. Call it
 * after `await tf.setBackend('wasm')` (or `tf.ready()` with wasm chosen).
 *
 * The first call runs a self-check (wasm-self-check.ts, a few ms): every override on small
 * cases against a plain-JS reference. If one disagrees or throws, e.g. because a different
 * tfjs-backend-wasm lays out its internals differently, the stock `BatchMatMul` and
 * `Identity` stay, `UnsortedSegmentSum` is a portable (public-API) version, and this returns
 * false; {@link wasmKernelStatus} says why. Idempotent: later calls return the same answer.
 * @returns true when the overrides are (now) installed.
 */
export function installWasmKernelOverrides(): boolean {
  if (installed) return true;
  if (checked && !checked.selfCheck.ok) return false;
  if (tf.findBackend('wasm') == null) {
    throw new Error('installWasmKernelOverrides: the wasm backend is not initialised; await tf.setBackend("wasm") first');
  }
  if (checked) {
    registerOverrides(); // checked and passed before (uninstalled since, by a benchmark)
    if (checked.fusedGelu.registered) registerFusedGeluKernels();
    return true;
  }
  let result: SelfCheckResult;
  try {
    registerOverrides();
    result = selfCheckWasmKernels(['BatchMatMul', 'Identity', 'UnsortedSegmentSum', 'Sum', 'GatherV2', 'SoapRope']);
  } catch (err) {
    result = { ok: false, ms: 0, failure: `installing the overrides threw ${String((err as Error)?.message ?? err).split('\n')[0]}` };
  }
  if (result.ok) {
    checked = { installed: true, selfCheck: result, fusedGelu: installFusedGelu() };
    return true;
  }
  checked = { installed: false, selfCheck: result, segmentSumFallback: fallBack(), fusedGelu: { registered: false, reason: 'the other overrides failed their self-check' } };
  return false;
}

/**
 * Puts the stock `BatchMatMul`, `Identity`, `Sum` and `GatherV2` back and takes the fused GeLU
 * away (benchmarks and tests use it to compare); the `UnsortedSegmentSum` kernel stays, since
 * nothing else provides it.
 */
export function uninstallWasmKernelOverrides(): void {
  if (!installed) return;
  if (stockBatchMatMul) setKernel('BatchMatMul', stockBatchMatMul);
  unregisterFusedGeluKernels();
  unregisterFusedRopeKernel();
  if (stockSum) setKernel('Sum', stockSum);
  if (stockGather) setKernel('GatherV2', stockGather);
  if (stockIdentity) setKernel('Identity', stockIdentity);
  else if (tf.getKernel('Identity', 'wasm')) tf.unregisterKernel('Identity', 'wasm');
  installed = false;
}

/** Whether {@link installWasmKernelOverrides} is in effect. */
export function wasmKernelOverridesInstalled(): boolean {
  return installed;
}

/** The self-check's outcome (undefined before the first {@link installWasmKernelOverrides}). */
export function wasmKernelStatus(): WasmKernelStatus | undefined {
  return checked ? { ...checked, installed } : undefined;
}

/**
 * Test hook, not user-facing: stock kernels back, the heap UnsortedSegmentSum registered
 * again, and the self-check forgotten, so that the next install checks afresh.
 * @internal
 */
export function resetWasmKernelOverridesForTests(): void {
  uninstallWasmKernelOverrides();
  if (ownSegmentSum) setKernel('UnsortedSegmentSum', unsortedSegmentSum);
  checked = undefined;
}
