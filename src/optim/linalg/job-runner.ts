/**
 * The matrix functions the optimizers need, as self-contained jobs on host arrays, and the one
 * place that decides which implementation computes each (native LAPACK where the binding
 * loaded, else the TypeScript routines). A job is a pure function of its inputs: the same job
 * gives the same bits on the main thread or in any worker of the pool (pool.ts), so a step does
 * not depend on how many workers ran it.
 *
 *   eigh           A = V·diag(λ)·Vᵀ, float64, λ descending               SOAP's first basis
 *   gram_eigh      eigenbases of s·G·Gᵀ and/or s·Gᵀ·G from one G (low-rank path for the larger side)
 *   qr             Q of A = Q·R for a square float32 A (the reference's float32 QR)  SOAP's refresh
 *   inverse_root   V and f = (max(λ,0)+ε)^(−1/p) of a symmetric A, float64, or with LAPACK
 *                  from n = 64 the root (V∘f)·Vᵀ itself, float32                 Shampoo's roots
 *
 * This module is what every pool worker loads, so it must not import TensorFlow.js (directly or
 * through another module): loading tfjs costs 0.4–1 s per worker at start-up, which the first
 * step of a run would wait for. What needs tfjs (turning an optimizer's request into a job, where
 * SOAP's QR runs) is in host-jobs.ts.
 */
import { eigh as tsEigh, type EighResult } from './eigh.js';
import { householderQ } from './householder.js';
import { eighOfGram, eighOfGramPair, type CostRates, type DenseKernels, type GramEighOptions } from './low-rank.js';
import { rootScales } from './roots.js';
import { loadNativeLapack, type NativeLapack } from './native.js';

export type HostJob =
  | { op: 'eigh'; n: number; a: Float64Array }
  | { op: 'gram_eigh'; rows: number; cols: number; g: Float64Array; left: boolean; right: boolean }
  | { op: 'qr'; n: number; a: Float32Array }
  | { op: 'inverse_root'; n: number; a: Float64Array; root: number; epsilon: number };

/** A job's outputs by name (`values`, `vectors`, `q`, `left`, `right`, `scaled`, `root`). */
export type HostResult = Record<string, Float64Array | Float32Array>;

/** Which implementation runs a job's decompositions. */
export type LinalgMethod = 'native' | 'typescript';

/**
 * The implementation for this process: LAPACK through the optional binding when it loaded
 * (measured 12–20× faster than the TypeScript eigh from n = 128 up, bench/linalg.ts), else
 * TypeScript. One choice for every size: below n ≈ 32, where the two are within microseconds,
 * a single rule keeps results independent of the mix of sizes.
 */
export function linalgMethod(): LinalgMethod {
  return loadNativeLapack() ? 'native' : 'typescript';
}

/**
 * Throughputs of the native path for low-rank.ts's cost model (flop/s in that model's flop
 * counts; one OpenBLAS thread, this machine, float64): ?syevd 4096² ≈ 20 s for its 17/3·n³
 * "eigh flops", ?gemm ≈ 50 GFlop/s, `qrFull` of 4096×1024 ≈ 1.5–2.6 s. With them the low-rank
 * path wins for every larger side from LOW_RANK_MIN_ORDER up (4096 next to 1024: ≈ 3 s against
 * ≈ 20 s for the full eigh).
 */
const NATIVE_RATES: Readonly<CostRates> = { eigh: 20e9, gemm: 50e9, qrFull: 30e9 };

/** The rates of this process's implementation, for deciding where the low-rank path pays. */
export function gramEighRates(): Partial<CostRates> {
  return linalgMethod() === 'native' ? NATIVE_RATES : {};
}

function eighWith(lapack: NativeLapack | null, a: Float64Array, n: number): EighResult {
  if (!lapack) return tsEigh(a, n);
  // The binding reads the upper triangle and may overwrite its input: give it a copy.
  return lapack.eigh(Float64Array.from(a), n);
}

/**
 * The binding, with OpenBLAS at one thread: the pool is the parallelism, and a multi-threaded
 * BLAS sums in another order, so results would depend on where a job ran. The count is
 * process-wide and the model's products set their own between steps (src/backend/blas-matmul.ts),
 * so it is checked at every job; jobs run only while the main thread awaits them.
 */
function lapackForJobs(): NativeLapack | null {
  const lapack = loadNativeLapack();
  if (lapack && lapack.getNumThreads() !== 1) lapack.setNumThreads(1);
  return lapack;
}

/**
 * Loads the LAPACK binding, so that a worker started ahead of its first job pays for it then
 * rather than inside a step. It leaves OpenBLAS's thread count alone: the main thread may be in
 * the middle of a forward pass, whose products have theirs.
 */
export function prepareJobRunner(): void {
  loadNativeLapack();
}

/**
 * From this order up, with LAPACK, a worker returns Shampoo's root reassembled (V∘f)·Vᵀ by one
 * float32 ?gemm, instead of V and f for the device to multiply: at 4096 that is ≈ 1.5 s of
 * OpenBLAS in the pool against 5–9 s of synchronous wasm matMul on the main thread, for the same
 * float32 product (the root is stored in float32 either way). Below it the device path stays,
 * and below 64 Shampoo reassembles in float64 on the host (as the replay fixtures were made).
 */
const HOST_REASSEMBLY_MIN = 64;

/** (V∘f)·Vᵀ in float32 (row-major n×n V, eigenvectors as columns). */
function reassembleFloat32(lapack: NativeLapack, vectors: Float64Array, scaled: Float64Array, n: number): Float32Array {
  const weighted = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) weighted[i * n + j] = vectors[i * n + j] * scaled[j];
  return lapack.gemm(weighted, Float32Array.from(vectors), n, n, n, false, true);
}

/** Runs one job with this process's implementation (see `linalgMethod`). */
export function runHostJob(job: HostJob): HostResult {
  const lapack = lapackForJobs();
  switch (job.op) {
    case 'eigh': {
      const { values, vectors } = eighWith(lapack, job.a, job.n);
      return { values, vectors };
    }
    case 'gram_eigh': {
      const kernels: DenseKernels | undefined = lapack
        ? { gemm: (a, b, m, n, k, ta, tb) => lapack.gemm(a, b, m, n, k, ta, tb), qrFull: (u, n, r) => lapack.qrFull(u, n, r) }
        : undefined;
      const options: GramEighOptions = { smallEigh: (a, n) => eighWith(lapack, a, n), kernels, rates: gramEighRates() };
      if (job.left && job.right) {
        const { left, right } = eighOfGramPair(job.g, job.rows, job.cols, options);
        return { left: left.vectors, right: right.vectors };
      }
      const side = job.left ? 'left' : 'right';
      return { [side]: eighOfGram(job.g, job.rows, job.cols, side, options).vectors };
    }
    case 'qr':
      return { q: lapack ? lapack.qr(Float32Array.from(job.a), job.n, job.n) : Float32Array.from(householderQ(job.a, job.n, job.n)) };
    case 'inverse_root': {
      const { values, vectors } = eighWith(lapack, job.a, job.n);
      const scaled = rootScales(values, job.root, job.epsilon);
      if (lapack && job.n >= HOST_REASSEMBLY_MIN) return { root: reassembleFloat32(lapack, vectors, scaled, job.n) };
      return { vectors, scaled };
    }
  }
}

/** Rough flop count of a job, for scheduling the largest first and for ETAs. */
export function hostJobFlops(job: HostJob): number {
  switch (job.op) {
    case 'eigh':
    case 'inverse_root':
      return 9 * job.n ** 3;
    case 'qr':
      return (8 / 3) * job.n ** 3;
    case 'gram_eigh': {
      const k = Math.min(job.rows, job.cols);
      const big = Math.max(job.rows, job.cols);
      // The small side's eigh and products, plus the larger side's completion (≈ 4·n²·k).
      return 9 * k ** 3 + 4 * big * k * k + (job.left && job.right ? 4 * big * big * k : 0);
    }
  }
}

/** The buffers a job owns, to transfer (not copy) them to a worker. */
export function hostJobBuffers(job: HostJob): ArrayBuffer[] {
  return [(job.op === 'gram_eigh' ? job.g : job.a).buffer as ArrayBuffer];
}
