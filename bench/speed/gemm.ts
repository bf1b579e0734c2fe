/**
 * The denominators of model FLOP utilisation, measured in the same run: a plain fp32
 * 1024×1024×1024 tf.matMul on the backend the cases train on (wasm: OpenBLAS on the heap with the
 * native binding, else XNNPACK's GEMM: what every linear layer of the step ends up in), and OpenBLAS's sgemm through the native binding on 1 and
 * 2 threads (this machine's BLAS ceiling; PyTorch's CPU matmuls run on the same OpenBLAS).
 *
 * The bench measures them at its start and at its end; the denominator is the fastest product
 * seen (`peakRates`): other work on a shared machine only ever slows a product down, so the
 * fastest is the closest to what the machine can do (a median measured at a busy moment gave
 * "MFU" above 100%).
 */
import { selectBackend } from '../../src/backend/select.js';
import { matMulEngine, modelBlasThreads } from '../../src/backend/blas-matmul.js';
import type { BackendName } from '../../src/config/schema.js';
import { loadNativeLapack, nativeLapackStatus } from '../../src/optim/linalg/native.js';
import { tf } from '../../src/tf.js';
import { gflopsOf } from './stats.js';

export interface GemmRate {
  /** GFLOP/s: median over the repetitions, and the slowest / fastest. */
  median: number;
  min: number;
  max: number;
  reps: number;
}

export interface GemmRates {
  n: number;
  /** `engine`: what tf.matMul runs on wasm (OpenBLAS on the heap, or XNNPACK); threads: its threads. */
  backend: { name: string; engine: string; threads: number | null; rate: GemmRate };
  /** A reason instead of rates when the native binding is not built. */
  openblas: { config: string; threads1: GemmRate; threads2: GemmRate } | { unavailable: string };
}

/** Untimed products before the timed ones. */
const WARMUP = 2;

/**
 * Backend GEMM: fresh operand copies every repetition (made outside the timing), since XNNPACK
 * caches the packed right operand per tensor and a training step always multiplies new tensors.
 */
async function backendRate(backend: BackendName, n: number, reps: number): Promise<GemmGauge> {
  const choice = await selectBackend(backend);
  const a = tf.randomNormal([n, n], 0, 1, 'float32', 1);
  const b = tf.randomNormal([n, n], 0, 1, 'float32', 2);
  const times: number[] = [];
  for (let r = -WARMUP; r < reps; r++) {
    const [a1, b1] = [a.add(0), b.add(0)];
    a1.dataSync();
    b1.dataSync();
    const t0 = performance.now();
    const y = tf.matMul(a1, b1);
    y.dataSync();
    const dt = performance.now() - t0;
    tf.dispose([y, a1, b1]);
    if (r >= 0) times.push(dt); // the first ones pay XNNPACK's set-up and the wasm heap's growth
  }
  tf.dispose([a, b]);
  const blas = choice.name === 'wasm' && matMulEngine() === 'blas';
  return {
    name: choice.name,
    engine: choice.name !== 'wasm' ? choice.name : blas ? 'OpenBLAS' : 'XNNPACK',
    threads: blas ? modelBlasThreads() : await wasmThreads(choice.name),
    rate: rateOf(2 * n ** 3, times),
  };
}

type GemmGauge = GemmRates['backend'];

/**
 * XNNPACK's thread count on wasm; null off wasm. In Node it is 1: tfjs 4.22 reports no wasm
 * multithreading support under Node (its WASM_HAS_MULTITHREAD_SUPPORT flag is false there).
 */
async function wasmThreads(backend: string): Promise<number | null> {
  if (backend !== 'wasm') return null;
  const { getThreadsCount } = await import('@tensorflow/tfjs-backend-wasm');
  return getThreadsCount();
}

function rateOf(flops: number, times: number[]): GemmRate {
  return { ...gflopsOf(flops, times), reps: times.length };
}

function openblasRate(n: number, reps: number): GemmRates['openblas'] {
  const lapack = loadNativeLapack();
  if (!lapack) return { unavailable: nativeLapackStatus().reason };
  const a = Float32Array.from({ length: n * n }, (_, i) => Math.sin(i));
  const b = Float32Array.from({ length: n * n }, (_, i) => Math.cos(i));
  const before = lapack.getNumThreads();
  const at = (threads: number): GemmRate => {
    lapack.setNumThreads(threads);
    const times: number[] = [];
    for (let r = -WARMUP; r < reps; r++) {
      const t0 = performance.now();
      lapack.gemm(a, b, n, n, n);
      if (r >= 0) times.push(performance.now() - t0);
    }
    return rateOf(2 * n ** 3, times);
  };
  const result = { config: lapack.config, threads1: at(1), threads2: at(2) };
  lapack.setNumThreads(before);
  return result;
}

export async function measureGemm(backend: BackendName, n = 1024, reps = 10): Promise<GemmRates> {
  return { n, backend: await backendRate(backend, n, reps), openblas: openblasRate(n, reps) };
}

/** The fastest rate of each kind over several measurements, in GFLOP/s (null: not measured). */
export interface PeakRates {
  backend: number;
  openblas1: number | null;
  openblas2: number | null;
}

export function peakRates(all: readonly GemmRates[]): PeakRates {
  const blas = (pick: (o: { threads1: GemmRate; threads2: GemmRate }) => GemmRate) => {
    const rates = all.flatMap((g) => ('unavailable' in g.openblas ? [] : [pick(g.openblas).max]));
    return rates.length ? Math.max(...rates) : null;
  };
  return { backend: Math.max(...all.map((g) => g.backend.rate.max)), openblas1: blas((o) => o.threads1), openblas2: blas((o) => o.threads2) };
}

/** The rates as printed above the tables: median (min–max) at the start / at the end, and the peak. */
export function gemmLines(start: GemmRates, end: GemmRates, peaks: PeakRates): string[] {
  const rate = (r: GemmRate) => `${r.median.toFixed(1)} (${r.min.toFixed(1)}–${r.max.toFixed(1)})`;
  const lines = [
    "GEMM 1024³ fp32, GFLOP/s median (min–max) at start / at end; the peak is MFU's denominator:",
    `  ${start.backend.name} tf.matMul (${start.backend.engine}, ${start.backend.threads ?? '?'} thread(s)): ${rate(start.backend.rate)} / ${rate(end.backend.rate)}; peak ${peaks.backend.toFixed(1)}`,
  ];
  if ('unavailable' in start.openblas || 'unavailable' in end.openblas) {
    const why = 'unavailable' in start.openblas ? start.openblas.unavailable : 'unavailable at the end';
    return [...lines, `  OpenBLAS: ${why}`];
  }
  const [s, e] = [start.openblas, end.openblas];
  return [
    ...lines,
    `  OpenBLAS sgemm, 1 thread: ${rate(s.threads1)} / ${rate(e.threads1)}; peak ${peaks.openblas1?.toFixed(1)}`,
    `  OpenBLAS sgemm, 2 threads: ${rate(s.threads2)} / ${rate(e.threads2)}; peak ${peaks.openblas2?.toFixed(1)}`,
  ];
}
