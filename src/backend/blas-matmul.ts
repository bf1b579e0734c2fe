/**
 * The model's matrix products in OpenBLAS, on the wasm backend's own memory.
 *
 * Why: forward+backward is 83–98% of a training step here, and nearly all of it is matMul.
 * The wasm backend's GEMM (XNNPACK, one thread: tfjs runs wasm without threads under Node)
 * peaks at ~30 GFLOP/s on this machine; OpenBLAS's sgemm does ~150 on one core and ~280 on
 * two (bench/NOTES.md). The native binding (native/lapack.c, optional) takes any Float32Array,
 * and a tensor on the wasm backend *is* a range of the wasm heap, so `BatchMatMul` can hand
 * OpenBLAS views of its operands and of a fresh output: no copy, no explicit transpose (sgemm
 * reads transposed operands itself), one call per product or per batch item.
 *
 * Threads. OpenBLAS's thread count is one process-wide setting, and its sums depend on it
 * (1 and 2 threads give different last bits, measured), so the count is a fixed property of
 * the process, {@link modelBlasThreads}, for every product large enough to split (smaller
 * ones run on one): the same for a straight run and its resume. The
 * optimizer's host products and the linear-algebra workers set OpenBLAS to one thread while
 * they run (tensor-modes.ts, job-runner.ts); every product here sets it back first. The phases
 * never overlap: the trainer awaits the workers' jobs before the next forward pass.
 *
 * Where the binding is missing (no C compiler or libopenblas-dev at install time), disabled
 * (SOAP_TRAIN_NATIVE=0) or turned off for the model (SOAP_TRAIN_MATMUL=xnnpack), the XNNPACK
 * route of wasm-kernels.ts stays.
 */
import { availableParallelism } from 'node:os';
import type { TensorInfo } from '@tensorflow/tfjs';
import { loadNativeLapack, type NativeLapack } from '../optim/linalg/native.js';
import type { WasmHeapBackend } from './heap-kernels.js';

/** Which GEMM computes the model's products on wasm. */
export type MatMulEngine = 'blas' | 'xnnpack';

let forcedEngine: MatMulEngine | undefined;

/**
 * Forces the engine (benchmarks and tests compare the two); undefined restores the default.
 * @internal
 */
export function setMatMulEngine(engine: MatMulEngine | undefined): void {
  forcedEngine = engine;
}

/**
 * The engine in effect: `blas` when the native binding loads, unless SOAP_TRAIN_MATMUL=xnnpack
 * (or a test forced one); `xnnpack` otherwise.
 */
export function matMulEngine(): MatMulEngine {
  if (forcedEngine) return forcedEngine === 'blas' && !loadNativeLapack() ? 'xnnpack' : forcedEngine;
  if (process.env.SOAP_TRAIN_MATMUL === 'xnnpack') return 'xnnpack';
  return loadNativeLapack() ? 'blas' : 'xnnpack';
}

/**
 * OpenBLAS threads for the model's products: SOAP_TRAIN_BLAS_THREADS when set (a positive
 * integer), else the cores Node may use. Part of what makes a run reproducible bit for bit:
 * resume with the same value.
 */
export function modelBlasThreads(): number {
  const env = process.env.SOAP_TRAIN_BLAS_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`SOAP_TRAIN_BLAS_THREADS must be a positive integer, got ${JSON.stringify(env)}`);
    return n;
  }
  return availableParallelism();
}

/** One line for the run's log: which GEMM runs the model, on how many threads. */
export function describeMatMulEngine(): string {
  const lapack = loadNativeLapack();
  if (matMulEngine() === 'blas' && lapack) return `OpenBLAS sgemm on the wasm heap, ${modelBlasThreads()} thread(s) (${lapack.config})`;
  return 'XNNPACK (wasm, one thread)';
}

/**
 * Products below this many multiply-adds (m·n·k) run on one thread: splitting them costs more
 * than it gains (attention's per-head [128, 32]·[32, 128]: 64 GFLOP/s on one thread, 35 on
 * two; a [2048, 256]·[256, 1024] layer: 86 on one, 161 on two; bench/matmul.ts). A function of
 * the shape only, so a product's thread count, and with it its last bits, never varies.
 */
const MIN_MACS_FOR_THREADS = 1 << 22;

function blasFor(m: number, n: number, k: number): NativeLapack {
  const lapack = loadNativeLapack();
  if (!lapack) throw new Error('the BLAS matMul engine needs the native binding (npm run native), which is not loaded');
  const threads = m * n * k >= MIN_MACS_FOR_THREADS ? modelBlasThreads() : 1;
  if (lapack.getNumThreads() !== threads) lapack.setNumThreads(threads);
  return lapack;
}

/**
 * out[i] = op(a[i])·op(b[i]) (b[0] for every i when b has batch 1), float32, into a new tensor
 * of `outShape`. `a` is [batch, m, k] ([batch, k, m] with transposeA), `b` [batchB, k, n]
 * ([batchB, n, k] with transposeB), both row-major; the caller has checked the shapes.
 */
export function blasBatchMatMul(
  backend: WasmHeapBackend,
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  batch: number,
  batchB: number,
  m: number,
  k: number,
  n: number,
  outShape: number[],
): TensorInfo {
  const stacked = batchB === 1 && !transposeA;
  const blas = blasFor(stacked ? batch * m : m, n, k);
  const out = backend.makeOutput(outShape, 'float32');
  // Views taken after makeOutput: an allocation may grow (and so detach) the heap.
  const A = backend.typedArrayFromHeap(a) as Float32Array;
  const B = backend.typedArrayFromHeap(b) as Float32Array;
  const C = backend.typedArrayFromHeap(out) as Float32Array;
  if (stacked) {
    // b shared and a's items stacked row after row: one [batch·m, k] × [k, n] product.
    blas.gemmInto(A, B, C, batch * m, n, k, false, transposeB);
    return out;
  }
  const aSize = m * k;
  const bSize = batchB === 1 ? 0 : k * n;
  const cSize = m * n;
  for (let i = 0; i < batch; i++) {
    blas.gemmInto(
      A.subarray(i * aSize, (i + 1) * aSize),
      B.subarray(i * bSize, i * bSize + k * n),
      C.subarray(i * cSize, (i + 1) * cSize),
      m,
      n,
      k,
      transposeA,
      transposeB,
    );
  }
  return out;
}
