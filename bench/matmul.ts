/**
 * GFLOP/s of tf.matMul on the wasm backend, stock kernel vs installWasmKernelOverrides(), for
 * the shapes a transformer step uses (linear layers forward/backward, attention per head).
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
    const y = tf.matMul(a1, b1, c.transposeA, c.transposeB);
    y.dataSync(); // wasm kernels are synchronous; this only makes sure the work is done
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
  const rows: Array<Case & { mflop: number; before: number; after: number; speedup: number }> = [];
  for (const c of cases) {
    uninstallWasmKernelOverrides();
    const before = measure(c, budget);
    installWasmKernelOverrides();
    const after = measure(c, budget);
    rows.push({ ...c, mflop: flops(c) / 1e6, before, after, speedup: after / before });
  }
  const fmt = (x: number): string => x.toFixed(1).padStart(7);
  console.log(`${'case'.padEnd(22)} ${'a'.padEnd(14)} ${'b'.padEnd(14)} tA tB  MFLOP  before  after  ×`);
  for (const r of rows) {
    console.log(
      `${r.label.padEnd(22)} ${JSON.stringify(r.a).padEnd(14)} ${JSON.stringify(r.b).padEnd(14)} ` +
        `${r.transposeA ? 'T ' : '- '} ${r.transposeB ? 'T ' : '- '} ${r.mflop.toFixed(0).padStart(5)}${fmt(r.before)}${fmt(r.after)} ${r.speedup.toFixed(1)}`,
    );
  }
  const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'matmul.json');
  mkdirSync(dirname(out), { recursive: true });
  const meta = { backend: 'wasm', date: new Date().toISOString(), node: process.version, unit: 'GFLOP/s' };
  writeFileSync(out, JSON.stringify({ ...meta, rows }, null, 2) + '\n');
  console.log(`wrote ${out}`);
}

await main();
