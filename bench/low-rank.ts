/**
 * Times the low-rank Gram eigendecomposition (src/optim/linalg/low-rank.ts) of the larger side
 * of G against the full eigh of that side's n×n Gram matrix, and the phases of the low-rank
 * path, with the TypeScript solvers and (where the binding loads) native LAPACK ones.
 *
 *     node --import tsx bench/low-rank.ts [ROWSxCOLS …] [--reps N] [--full-max N]
 *
 * Default shapes 256x1024 512x2048 1024x4096 (the 360m MLP weight); the larger side is cols.
 * The full TypeScript eigh is measured up to --full-max (default 2048) and extrapolated as n³
 * from the largest measured size beyond. Reports medians of --reps runs (default 3, or 1 for
 * n ≥ 4096 unless --reps is given). Prints a table; writes nothing.
 */
import { eigh, type EighResult } from '../src/optim/linalg/eigh.js';
import { completeBasis, DEFAULT_COST_RATES, eighFlops, eighOfGram, gramEighCost, gramMatrix } from '../src/optim/linalg/low-rank.js';
import { loadNativeLapack } from '../src/optim/linalg/native.js';
import { randomMatrix } from '../test/helpers/random.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : 0.5 * (s[m - 1] + s[m]);
}

/** Median wall time in seconds of `reps` runs. */
function time(reps: number, fn: () => unknown): number {
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const start = performance.now();
    fn();
    ts.push((performance.now() - start) / 1000);
  }
  return median(ts);
}

const args = process.argv.slice(2);
const flag = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const repsGiven = args.includes('--reps');
const repsArg = flag('--reps', 3);
const fullMax = flag('--full-max', 2048);
const shapes = args
  .filter((a) => /^\d+x\d+$/.test(a))
  .map((a) => a.split('x').map(Number) as [number, number]);
if (shapes.length === 0) shapes.push([256, 1024], [512, 2048], [1024, 4096]);

const lapack = loadNativeLapack();
if (lapack) lapack.setNumThreads(1);
const nativeEigh = lapack ? (a: Float64Array, n: number): EighResult => lapack.eigh(Float64Array.from(a), n) : null;
const nativeQr = lapack ? (a: Float64Array, m: number, n: number): Float64Array => lapack.qr(a, m, n) : null;
console.log(lapack ? `native LAPACK: ${lapack.config} (1 thread)` : 'native LAPACK: not available');

const fmt = (s: number | null): string => (s === null ? '—' : s < 10 ? s.toFixed(2) : s.toFixed(1)).padStart(8);
let extrapolateFrom: { n: number; s: number } | null = null;

for (const [rows, cols] of shapes) {
  const n = Math.max(rows, cols);
  const k = Math.min(rows, cols);
  const side = cols >= rows ? 'right' : 'left';
  const reps = n >= 4096 && !repsGiven ? 1 : repsArg;
  const g = randomMatrix(rows, cols, 7);
  console.log(`\nG ${rows}×${cols}: the ${n}×${n} side (k = ${k}), median of ${reps}`);

  // Phases of the low-rank path (TypeScript).
  const small = gramMatrix(g, rows, cols, side === 'right' ? 'left' : 'right', 0.05);
  const tGram = time(reps, () => gramMatrix(g, rows, cols, side === 'right' ? 'left' : 'right', 0.05));
  const tSmallEigh = time(reps, () => eigh(small, k));
  const u = randomMatrix(n, k, 8);
  const tComplete = time(reps, () => completeBasis(u, n, k));
  const tLow = time(reps, () => eighOfGram(g, rows, cols, side, { scale: 0.05, method: 'low-rank' }));
  console.log(
    `  low-rank, TypeScript: ${fmt(tLow)} s  [small Gram ${fmt(tGram)}, eigh ${k}² ${fmt(tSmallEigh)}, ` +
      `completion ${fmt(tComplete)}, U = X·V etc. ${fmt(tLow - tGram - tSmallEigh - tComplete)}]`,
  );
  const cost = gramEighCost(rows, cols, side);
  console.log(
    `    rates: gram ${(((k * k * n) / tGram) * 1e-9).toFixed(2)} GFlop/s, eigh ${((eighFlops(k) / tSmallEigh) * 1e-9).toFixed(2)} GFlop/s, ` +
      `completion ${((cost.lowRank.completion / tComplete) * 1e-9).toFixed(2)} GFlop/s; model ${fmt(cost.lowRank.seconds)} s ` +
      `(DEFAULT_COST_RATES eigh ${DEFAULT_COST_RATES.eigh / 1e9}, gemm ${DEFAULT_COST_RATES.gemm / 1e9} GFlop/s)`,
  );
  if (nativeEigh && nativeQr) {
    const tLowNe = time(reps, () => eighOfGram(g, rows, cols, side, { scale: 0.05, method: 'low-rank', smallEigh: nativeEigh }));
    const tLowNq = time(reps, () =>
      eighOfGram(g, rows, cols, side, { scale: 0.05, method: 'low-rank', smallEigh: nativeEigh, qr: nativeQr }),
    );
    console.log(`  low-rank, native eigh: ${fmt(tLowNe)} s; native eigh + native QR of [U | 0]: ${fmt(tLowNq)} s`);
  }

  // Full eigh of the big side.
  const big = gramMatrix(g, rows, cols, side, 0.05);
  const tBigGram = time(reps, () => gramMatrix(g, rows, cols, side, 0.05));
  let tFull: number | null = null;
  let note = 'not measured: --full-max';
  if (n <= fullMax) {
    tFull = time(reps, () => eigh(big, n));
    note = 'measured';
    extrapolateFrom = { n, s: tFull };
  } else if (extrapolateFrom) {
    tFull = extrapolateFrom.s * (n / extrapolateFrom.n) ** 3;
    note = `extrapolated ∝ n³ from n = ${extrapolateFrom.n}`;
  }
  console.log(`  full, TypeScript eigh ${n}²: ${fmt(tFull)} s (${note}) + Gram ${fmt(tBigGram)} s; model ${fmt(cost.direct.seconds)} s`);
  if (nativeEigh) {
    const tFullN = time(reps, () => nativeEigh(big, n));
    console.log(`  full, native eigh ${n}²: ${fmt(tFullN)} s + Gram ${fmt(tBigGram)} s`);
  }
}
