/**
 * GFLOP/s of tf.matMul on the wasm backend for the shapes a transformer step uses (linear
 * layers forward/backward, attention per head): the stock kernel, installWasmKernelOverrides()
 * routing to XNNPACK, and the same override routing to OpenBLAS (blas-matmul.ts) on 1 and 2
 * threads (those columns are empty when the native binding is not built).
 *
 *   node --import tsx bench/matmul.ts [--quick]
 * Prints a table and writes bench/results/matmul.json.
 */
import '@tensorflow/tfjs-backend-wasm';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tf } from '../src/tf.js';
import { installWasmKernelOverrides, uninstallWasmKernelOverrides } from '../src/backend/wasm-kernels.js';
import { setMatMulEngine } from '../src/backend/blas-matmul.js';
import { loadNativeLapack } from '../src/optim/linalg/native.js';

interface Case {
  label: string;
  a: number[];
  b: number[];
  transposeA: boolean;
  transposeB: boolean;
}

/** Linear layer x[N,d]·W[d,k] and its two gradients; attention products at T=128/256, hd=32/64. */
const cases: Case[] = [
  { label: 'linear fwd x·W', a: [2048, 256], b: [256, 1024], transposeA: false, transposeB: false },
  { label: 'linear dX = dY·Wᵀ', a: [2048, 1024], b: [256, 1024], transposeA: false, transposeB: true },
  { label: 'linear dW = Xᵀ·dY', a: [2048, 256], b: [2048, 1024], transposeA: true, transposeB: false },
  { label: 'linear fwd 3-D x·W', a: [16, 128, 256], b: [256, 1024], transposeA: false, transposeB: false },
  { label: 'head fwd x·W', a: [2048, 128], b: [128, 256], transposeA: false, transposeB: false },
  { label: 'attn q·kᵀ', a: [64, 128, 32], b: [64, 128, 32], transposeA: false, transposeB: true },
  { label: 'attn p·v', a: [64, 128, 128], b: [64, 128, 32], transposeA: false, transposeB: false },
  { label: 'attn dV = pᵀ·dY', a: [64, 128, 128], b: [64, 128, 32], transposeA: true, transposeB: false },
  { label: 'attn q·kᵀ T256 hd64', a: [32, 256, 64], b: [32, 256, 64], transposeA: false, transposeB: true },
];

function flops(c: Case): number {
  const r = c.a.length;
  const batch = c.a.slice(0, -2).reduce((p, s) => p * s, 1);
  const m = c.transposeA ? c.a[r - 1] : c.a[r - 2];
  const k = c.transposeA ? c.a[r - 2] : c.a[r - 1];
  const n = c.transposeB ? c.b[c.b.length - 2] : c.b[c.b.length - 1];
  return 2 * batch * m * k * n;
}

/**
 * Median GFLOP/s over repetitions running at least `budgetMs` in total (after one warm-up).
 * Each repetition multiplies fresh copies of the operands (copied outside the timing): XNNPACK
 * caches its packed right operand per tensor, and in training every product sees new tensors.
 */
function measure(c: Case, budgetMs: number): number {
  const a = tf.randomNormal(c.a, 0, 1, 'float32', 1);
  const b = tf.randomNormal(c.b, 0, 1, 'float32', 2);
  const run = (): number => {
    const [a1, b1] = [a.add(0), b.add(0)];
    const t0 = performance.now();
    // wasm kernels are synchronous: the product is done when matMul returns. (A dataSync here
    // would add a copy of the output to the time: 3 ms of an 8 MB result, as long as OpenBLAS's product.)
    const y = tf.matMul(a1, b1, c.transposeA, c.transposeB);
    const dt = performance.now() - t0;
    tf.dispose([y, a1, b1]);
    return dt;
  };
  run();
  const times: number[] = [];
  let total = 0;
  while (total < budgetMs || times.length < 3) {
    const t = run();
    times.push(t);
    total += t;
    if (times.length >= 50) break;
  }
  a.dispose();
  b.dispose();
  times.sort((x, y) => x - y);
  return flops(c) / (times[Math.floor(times.length / 2)] * 1e-3) / 1e9;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const budget = quick ? 150 : 600;
  await tf.setBackend('wasm');
  const blas = loadNativeLapack() !== null;
  const blasRate = (c: Case, threads: number): number | null => {
    if (!blas) return null;
    process.env.SOAP_TRAIN_BLAS_THREADS = String(threads);
    setMatMulEngine('blas');
    return measure(c, budget);
  };
  const rows: Array<Case & { mflop: number; stock: number; xnnpack: number; blas1: number | null; blas2: number | null }> = [];
  for (const c of cases) {
    uninstallWasmKernelOverrides();
    const stock = measure(c, budget);
    installWasmKernelOverrides();
    setMatMulEngine('xnnpack');
    const xnnpack = measure(c, budget);
    const blas1 = blasRate(c, 1);
    const blas2 = blasRate(c, 2);
    setMatMulEngine(undefined);
    rows.push({ ...c, mflop: flops(c) / 1e6, stock, xnnpack, blas1, blas2 });
  }
  const fmt = (x: number | null): string => (x === null ? '–' : x.toFixed(1)).padStart(8);
  console.log(`${'case'.padEnd(22)} ${'a'.padEnd(14)} ${'b'.padEnd(14)} tA tB  MFLOP   stock xnnpack  blas 1t  blas 2t`);
  for (const r of rows) {
    console.log(
      `${r.label.padEnd(22)} ${JSON.stringify(r.a).padEnd(14)} ${JSON.stringify(r.b).padEnd(14)} ` +
        `${r.transposeA ? 'T ' : '- '} ${r.transposeB ? 'T ' : '- '} ${r.mflop.toFixed(0).padStart(5)}${fmt(r.stock)}${fmt(r.xnnpack)}${fmt(r.blas1)}${fmt(r.blas2)}`,
    );
  }
  const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'matmul.json');
  mkdirSync(dirname(out), { recursive: true });
  const meta = { backend: 'wasm', date: new Date().toISOString(), node: process.version, unit: 'GFLOP/s' };
  writeFileSync(out, JSON.stringify({ ...meta, rows }, null, 2) + '\n');
  console.log(`wrote ${out}`);
}

await main();
