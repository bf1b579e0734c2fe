/**
 * Times the optional native LAPACK binding (src/optim/linalg/native.ts) — eigh (?syevd) and QR
 * (?gelqf+?orglq) in float32 and float64 — with OpenBLAS on 1 and on 2 threads, next to numpy's
 * np.linalg.eigh / np.linalg.qr at the same sizes and thread counts, and the TypeScript eigh for
 * n ≤ 1024. Reports the median of `--reps` runs and writes bench/results/linalg-native.json.
 *
 *     node --import tsx bench/linalg-native.ts [sizes…] [--reps 3] [--threads 1,2]
 *     (default sizes 1024 2048 4096)
 *
 * numpy's thread count is set through OPENBLAS_NUM_THREADS/OMP_NUM_THREADS/MKL_NUM_THREADS in
 * its environment; other OPENBLAS_* variables (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE) pass through
 * unchanged to both and are recorded in the JSON.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eigh } from '../src/optim/linalg/eigh.js';
import { loadNativeLapack, nativeLapackStatus } from '../src/optim/linalg/native.js';
import { randomMatrix, randomSymmetric } from '../test/helpers/random.js';

type Times = { eigh32: number; eigh64: number; qr32: number; qr64: number };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : 0.5 * (s[m - 1] + s[m]);
}

/** Median wall time of `reps` runs, in ms. */
function timeMs(reps: number, fn: () => void): number {
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const start = performance.now();
    fn();
    t.push(performance.now() - start);
  }
  return median(t);
}

const PY = `
import json, sys, time
import numpy as np
reps = int(sys.argv[1])
out = {}
rng = np.random.default_rng(0)
def t(f):
    xs = []
    for _ in range(reps):
        s = time.perf_counter(); f(); xs.append((time.perf_counter() - s) * 1000)
    return float(np.median(xs))
for n in map(int, sys.argv[2:]):
    g = rng.standard_normal((n, n)); a = (g + g.T) / 2
    a32 = a.astype(np.float32); g32 = g.astype(np.float32)
    out[n] = {'eigh32': t(lambda: np.linalg.eigh(a32)), 'eigh64': t(lambda: np.linalg.eigh(a)),
              'qr32': t(lambda: np.linalg.qr(g32)), 'qr64': t(lambda: np.linalg.qr(g))}
print(json.dumps({'numpy': np.__version__, 'times': out}))
`;

function numpyTimes(sizes: number[], threads: number, reps: number): { numpy: string; times: Record<string, Times> } | null {
  const t = String(threads);
  const env = { ...process.env, OPENBLAS_NUM_THREADS: t, OMP_NUM_THREADS: t, MKL_NUM_THREADS: t };
  const r = spawnSync('python3', ['-c', PY, String(reps), ...sizes.map(String)], { env, encoding: 'utf8' });
  if (r.status !== 0 || !r.stdout) {
    console.warn(`numpy timings skipped: ${r.error?.message ?? r.stderr?.trim().split('\n').pop() ?? 'python3 failed'}`);
    return null;
  }
  return JSON.parse(r.stdout) as { numpy: string; times: Record<string, Times> };
}

function parseArgs(): { sizes: number[]; reps: number; threads: number[] } {
  const argv = process.argv.slice(2);
  let reps = 3;
  let threads = [1, 2];
  const sizes: number[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--reps') reps = Number(argv[++i]);
    else if (argv[i] === '--threads') threads = argv[++i].split(',').map(Number);
    else if (Number(argv[i]) > 0) sizes.push(Number(argv[i]));
  }
  return { sizes: sizes.length > 0 ? sizes : [1024, 2048, 4096], reps, threads };
}

function main(): void {
  const lapack = loadNativeLapack();
  if (!lapack) {
    console.log(`native LAPACK not available: ${nativeLapackStatus().reason}`);
    return;
  }
  const { sizes, reps, threads } = parseArgs();
  const openblasEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('OPENBLAS_')));
  console.log(`${lapack.config}; ${cpus().length} CPUs; env ${JSON.stringify(openblasEnv)}; median of ${reps}`);
  const tsEigh: Record<string, number> = {};
  for (const n of sizes.filter((s) => s <= 1024)) {
    const a = randomSymmetric(n, n);
    tsEigh[n] = timeMs(reps, () => eigh(a, n));
    console.log(`TypeScript eigh (float64) n=${n}: ${tsEigh[n].toFixed(0)} ms`);
  }
  const before = lapack.getNumThreads();
  const rows: Array<{ threads: number; n: number; native: Times; numpy: Times | null }> = [];
  let numpyVersion: string | null = null;
  for (const t of threads) {
    lapack.setNumThreads(t);
    const native: Record<string, Times> = {};
    for (const n of sizes) {
      const a = randomSymmetric(n, n);
      const g = randomMatrix(n, n, n + 1);
      const a32 = Float32Array.from(a);
      const g32 = Float32Array.from(g);
      // Preallocated outputs, so the timing is LAPACK plus the one input copy and transpose.
      const o64 = { values: new Float64Array(n), vectors: new Float64Array(n * n) };
      const o32 = { values: new Float32Array(n), vectors: new Float32Array(n * n) };
      const q64 = new Float64Array(n * n);
      const q32 = new Float32Array(n * n);
      native[n] = {
        eigh32: timeMs(reps, () => lapack.eigh(a32, n, o32)),
        eigh64: timeMs(reps, () => lapack.eigh(a, n, o64)),
        qr32: timeMs(reps, () => lapack.qr(g32, n, n, q32)),
        qr64: timeMs(reps, () => lapack.qr(g, n, n, q64)),
      };
    }
    const np = numpyTimes(sizes, t, reps);
    numpyVersion = np?.numpy ?? numpyVersion;
    for (const n of sizes) rows.push({ threads: t, n, native: native[n], numpy: np?.times[String(n)] ?? null });
  }
  lapack.setNumThreads(before);

  const f = (x: number | undefined) => (x === undefined ? '-' : (x / 1000).toFixed(2)).padStart(7);
  console.log('\nseconds (median)          eigh f32          eigh f64            qr f32            qr f64');
  console.log('threads     n      native   numpy    native   numpy    native   numpy    native   numpy');
  for (const r of rows) {
    const cols = (['eigh32', 'eigh64', 'qr32', 'qr64'] as const).map((k) => `${f(r.native[k])} ${f(r.numpy?.[k])}`);
    console.log(`${String(r.threads).padStart(7)} ${String(r.n).padStart(5)}   ${cols.join('  ')}`);
  }
  const outDir = join(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(outDir, { recursive: true });
  const result = { node: process.version, config: lapack.config, numpy: numpyVersion, env: openblasEnv, reps, date: new Date().toISOString(), ts_eigh_ms: tsEigh, rows };
  writeFileSync(join(outDir, 'linalg-native.json'), JSON.stringify(result, null, 2) + '\n');
  console.log(`wrote ${join(outDir, 'linalg-native.json')}`);
}

main();
