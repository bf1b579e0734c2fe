/**
 * Times the host eigendecomposition and QR at the paper's sizes (issue 9): native LAPACK
 * (src/optim/linalg/native.ts, OpenBLAS on one thread, as each job of the pool runs it) in
 * float64 and float32, the TypeScript eigh and Householder QR, the float32 blocked QR on the
 * wasm backend (SOAP's refresh without the binding), and numpy's np.linalg.eigh / qr (float64)
 * single-threaded and on all cores, in the same run; then the pool rows: one 360m
 * layer's host jobs through `LinalgPool` with 1 worker and with one per core (the first SOAP step
 * by full eigh and as planned now, a SOAP refresh, a Shampoo refresh). Prints two tables and
 * writes bench/results/linalg.json.
 *
 *     node --import tsx bench/linalg.ts [sizes…] [--skip N,…] [--ts-max N] [--budget S] [--no-pool]
 *
 *   sizes       default 1024 2048 4096 5632 (smaller ones, e.g. 128 256 512, only when given)
 *   --skip      sizes to leave out, e.g. --skip 5632
 *   --ts-max    largest n for the TypeScript eigh/QR and the wasm QR (default 2048: the TypeScript
 *               eigh grows ≈8× per doubling, so 4096 would take well over ten minutes)
 *   --budget    with the default sizes, 5632 runs (last) only when the projected total stays
 *               under this many seconds (default 600; 0: always); explicit sizes always run
 *   --no-pool   leave out the pool row
 *
 * Timings are the best of 3 runs for n ≤ 1024, else one run (n ≥ 2048 takes seconds to minutes).
 * numpy runs through python3 with OPENBLAS/MKL/OMP threads = 1 and = the core count. When
 * python3 has no numpy, running as root installs Debian's python3-numpy (apt-get) and uses
 * /usr/bin/python3; otherwise the numpy columns stay empty.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { selectBackend } from '../src/backend/select.js';
import { eigh } from '../src/optim/linalg/eigh.js';
import type { HostJob } from '../src/optim/linalg/host-jobs.js';
import { householderQ } from '../src/optim/linalg/householder.js';
import { loadNativeLapack, nativeLapackStatus } from '../src/optim/linalg/native.js';
import { LinalgPool } from '../src/optim/linalg/pool.js';
import { deviceHouseholderQ } from '../src/optim/linalg/qr-device.js';
import { tf } from '../src/tf.js';
import { randomMatrix, randomSymmetric } from '../test/helpers/random.js';

const DEFAULT_SIZES = [1024, 2048, 4096, 5632];
const CORES = availableParallelism();

interface Row {
  n: number;
  reps: number;
  native_eigh64_ms: number | null;
  native_eigh32_ms: number | null;
  native_qr64_ms: number | null;
  native_qr32_ms: number | null;
  ts_eigh_ms: number | null;
  ts_qr_ms: number | null;
  /** Blocked QR with matMul block updates on the wasm backend, float32. */
  qr_wasm_ms: number | null;
  numpy_eigh_1t_ms: number | null;
  numpy_eigh_all_ms: number | null;
  numpy_qr_1t_ms: number | null;
  numpy_qr_all_ms: number | null;
  /** LAPACK float64 / numpy float64 single-threaded. */
  eigh_ratio: number | null;
  qr_ratio: number | null;
  /** Seconds the whole row took (all columns). */
  row_s: number;
}

interface PoolRow {
  jobs: string;
  /** ms per worker count. */
  ms: Record<string, number>;
  /** ms(all cores) / ms(1 worker). */
  ratio: number;
}

/** Best wall time of `reps` runs, in ms; `setup` (untimed) makes each run's input. */
function best<T>(reps: number, setup: () => T, fn: (x: T) => unknown): number {
  let t = Infinity;
  for (let i = 0; i < reps; i++) {
    const x = setup();
    const start = performance.now();
    fn(x);
    t = Math.min(t, performance.now() - start);
  }
  return t;
}

function parseArgs(): { sizes: number[]; defaulted: boolean; tsMax: number; budgetS: number; pool: boolean } {
  const argv = process.argv.slice(2);
  const sizes: number[] = [];
  const skip = new Set<number>();
  let tsMax = 2048;
  let budgetS = 600;
  let pool = true;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--skip') for (const s of (argv[++i] ?? '').split(',')) skip.add(Number(s));
    else if (a === '--ts-max') tsMax = Number(argv[++i]);
    else if (a === '--budget') budgetS = Number(argv[++i]);
    else if (a === '--no-pool') pool = false;
    else if (Number(a) > 0) sizes.push(Number(a));
    else throw new Error(`unknown argument ${a}`);
  }
  const defaulted = sizes.length === 0;
  const chosen = (defaulted ? DEFAULT_SIZES : sizes).filter((n) => !skip.has(n)).sort((a, b) => a - b);
  return { sizes: [...new Set(chosen)], defaulted, tsMax, budgetS, pool };
}

const PY = `
import json, sys, time
import numpy as np
n, reps = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(n)
g = rng.standard_normal((n, n)); a = (g + g.T) / 2
def t(f):
    b = float('inf')
    for _ in range(reps):
        s = time.perf_counter(); f(); b = min(b, time.perf_counter() - s)
    return b * 1000
print(json.dumps({'eigh': t(lambda: np.linalg.eigh(a)), 'qr': t(lambda: np.linalg.qr(g))}))
`;

/** A python3 with numpy (installing Debian's python3-numpy when root and it is missing), or null. */
function numpyPython(): { python: string; version: string } | null {
  const probe = (py: string) => {
    const r = spawnSync(py, ['-c', 'import numpy; print(numpy.__version__)'], { encoding: 'utf8' });
    return r.status === 0 ? { python: py, version: r.stdout.trim() } : null;
  };
  const found = probe('python3') ?? (existsSync('/usr/bin/python3') ? probe('/usr/bin/python3') : null);
  if (found) return found;
  if (process.getuid?.() !== 0 || spawnSync('apt-get', ['--version']).status !== 0) {
    console.warn('numpy columns left empty: no python3 with numpy (and not root with apt-get to install python3-numpy)');
    return null;
  }
  console.log('python3 has no numpy: installing Debian python3-numpy with apt-get');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'python3-numpy'], { stdio: 'inherit', env }).status === 0;
  if (!install()) {
    spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
    install();
  }
  const after = probe('/usr/bin/python3') ?? probe('python3');
  if (!after) console.warn('numpy columns left empty: installing python3-numpy did not give a python3 with numpy');
  return after;
}

/** numpy's float64 eigh and QR at n on `threads` BLAS threads (ms), or null. */
function numpyTimes(python: string, n: number, threads: number, reps: number): { eigh: number; qr: number } | null {
  const t = String(threads);
  const env = { ...process.env, OPENBLAS_NUM_THREADS: t, MKL_NUM_THREADS: t, OMP_NUM_THREADS: t };
  const r = spawnSync(python, ['-c', PY, String(n), String(reps)], { env, encoding: 'utf8' });
  if (r.status !== 0 || !r.stdout) {
    console.warn(`numpy n=${n} threads=${threads} failed: ${r.error?.message ?? r.stderr?.trim().split('\n').pop() ?? 'python3 failed'}`);
    return null;
  }
  return JSON.parse(r.stdout) as { eigh: number; qr: number };
}

function measure(n: number, tsMax: number, py: string | null): Row {
  const started = performance.now();
  const reps = n <= 1024 ? 3 : 1;
  const lapack = loadNativeLapack();
  const a = randomSymmetric(n, n);
  const g = randomMatrix(n, n, n + 1);
  let native = { eigh64: null as number | null, eigh32: null as number | null, qr64: null as number | null, qr32: null as number | null };
  if (lapack) {
    // Preallocated outputs; a fresh input copy per run (LAPACK may overwrite it), made untimed.
    const o64 = { values: new Float64Array(n), vectors: new Float64Array(n * n) };
    const o32 = { values: new Float32Array(n), vectors: new Float32Array(n * n) };
    const q64 = new Float64Array(n * n);
    const q32 = new Float32Array(n * n);
    native = {
      eigh64: best(reps, () => Float64Array.from(a), (x) => lapack.eigh(x, n, o64)),
      eigh32: best(reps, () => Float32Array.from(a), (x) => lapack.eigh(x, n, o32)),
      qr64: best(reps, () => Float64Array.from(g), (x) => lapack.qr(x, n, n, q64)),
      qr32: best(reps, () => Float32Array.from(g), (x) => lapack.qr(x, n, n, q32)),
    };
  }
  let tsEigh: number | null = null;
  let tsQr: number | null = null;
  let qrWasm: number | null = null;
  if (n <= tsMax) {
    const tsReps = n <= 512 ? 3 : 1;
    tsEigh = best(tsReps, () => a, (x) => eigh(x, n));
    tsQr = best(tsReps, () => g, (x) => householderQ(x, n, n));
    const gt = tf.tensor2d(Float32Array.from(g), [n, n]);
    // dataSync so the timing includes finishing the device work and reading Q back.
    qrWasm = best(tsReps, () => gt, (x) => tf.tidy(() => deviceHouseholderQ(x).dataSync()));
    gt.dispose();
  }
  const np1 = py ? numpyTimes(py, n, 1, reps) : null;
  const npAll = py ? numpyTimes(py, n, CORES, reps) : null;
  return {
    n,
    reps,
    native_eigh64_ms: native.eigh64,
    native_eigh32_ms: native.eigh32,
    native_qr64_ms: native.qr64,
    native_qr32_ms: native.qr32,
    ts_eigh_ms: tsEigh,
    ts_qr_ms: tsQr,
    qr_wasm_ms: qrWasm,
    numpy_eigh_1t_ms: np1?.eigh ?? null,
    numpy_eigh_all_ms: npAll?.eigh ?? null,
    numpy_qr_1t_ms: np1?.qr ?? null,
    numpy_qr_all_ms: npAll?.qr ?? null,
    eigh_ratio: native.eigh64 !== null && np1 ? native.eigh64 / np1.eigh : null,
    qr_ratio: native.qr64 !== null && np1 ? native.qr64 / np1.qr : null,
    row_s: (performance.now() - started) / 1000,
  };
}

/** One pool row: a set of one 360m layer's host jobs, and how to make a fresh copy of them. */
interface PoolSet {
  label: string;
  jobs: () => HostJob[];
}

/**
 * The pool rows, one 360m layer each (4 attention 1024² matrices, 2 MLP 1024×4096 ones): the
 * first-step eighs of the full-eigh path (2×4096 + 10×1024), the first step as SOAP now plans it
 * (the MLP pairs by the low-rank path), SOAP's refresh QRs (float32) and Shampoo's inverse roots.
 */
function poolSets(): PoolSet[] {
  const big = randomSymmetric(4096, 4096);
  const small = randomSymmetric(1024, 1024);
  const g = randomMatrix(1024, 4096, 4097);
  const sq32 = (n: number, seed: number) => Float32Array.from(randomMatrix(n, n, seed));
  const [q4096, q1024] = [sq32(4096, 11), sq32(1024, 12)];
  const times = <T,>(k: number, make: () => T): T[] => Array.from({ length: k }, make);
  return [
    { label: 'SOAP first step, full eigh: 2× eigh 4096 + 10× eigh 1024, float64', jobs: () => [...times(2, (): HostJob => ({ op: 'eigh', n: 4096, a: Float64Array.from(big) })), ...times(10, (): HostJob => ({ op: 'eigh', n: 1024, a: Float64Array.from(small) }))] },
    { label: 'SOAP first step as planned now: 2× gram_eigh 1024×4096 + 8× eigh 1024', jobs: () => [...times(2, (): HostJob => ({ op: 'gram_eigh', rows: 1024, cols: 4096, g: Float64Array.from(g), left: true, right: true })), ...times(8, (): HostJob => ({ op: 'eigh', n: 1024, a: Float64Array.from(small) }))] },
    { label: 'SOAP refresh: 2× QR 4096 + 10× QR 1024, float32', jobs: () => [...times(2, (): HostJob => ({ op: 'qr', n: 4096, a: Float32Array.from(q4096) })), ...times(10, (): HostJob => ({ op: 'qr', n: 1024, a: Float32Array.from(q1024) }))] },
    { label: 'Shampoo refresh: 2× inverse root 4096 + 10× 1024 (eigh f64 + f32 reassembly)', jobs: () => [...times(2, (): HostJob => ({ op: 'inverse_root', n: 4096, a: Float64Array.from(big), root: 2.5, epsilon: 1e-12 })), ...times(10, (): HostJob => ({ op: 'inverse_root', n: 1024, a: Float64Array.from(small), root: 2.5, epsilon: 1e-12 }))] },
  ];
}

/** One set's time on 1 worker and on one per core (workers started before the clock). */
async function poolRow(set: PoolSet): Promise<PoolRow> {
  const ms: Record<string, number> = {};
  for (const k of [...new Set([1, CORES])]) {
    const pool = new LinalgPool(k);
    try {
      // Start the workers (and load the binding in each) before timing.
      const tiny = randomSymmetric(8, 8);
      await pool.run(Array.from({ length: k }, (): HostJob => ({ op: 'eigh', n: 8, a: Float64Array.from(tiny) })));
      const batch = set.jobs();
      const start = performance.now();
      await pool.run(batch);
      ms[k] = performance.now() - start;
    } finally {
      await pool.terminate();
    }
    console.log(`  ${set.label}: ${k} worker${k === 1 ? '' : 's'} ${(ms[k] / 1000).toFixed(1)} s`);
  }
  return { jobs: set.label, ms, ratio: ms[CORES] / ms[1] };
}

/** Finish time of `jobs` (durations) on `workers`, each job to the first free worker, largest first (the pool's order). */
function lptMakespan(jobs: number[], workers: number): number {
  const free = new Array<number>(Math.max(1, workers)).fill(0);
  for (const j of [...jobs].sort((a, b) => b - a)) {
    const i = free.indexOf(Math.min(...free));
    free[i] += j;
  }
  return Math.max(...free);
}

const sec = (ms: number | null, w = 9): string => (ms === null ? '—' : (ms / 1000).toFixed(ms < 1000 ? 3 : ms < 10_000 ? 2 : 1)).padStart(w);
const ratio = (r: number | null, w = 8): string => (r === null ? '—' : `${r.toFixed(2)}×`).padStart(w);
const load = (): string => loadavg().map((x) => x.toFixed(2)).join(' ');

async function main(): Promise<void> {
  const t0 = performance.now();
  const { sizes, defaulted, tsMax, budgetS, pool } = parseArgs();
  const loadBefore = loadavg();
  await selectBackend('wasm');
  const lapack = loadNativeLapack();
  if (lapack) lapack.setNumThreads(1);
  const np = numpyPython();
  const header = [
    `LAPACK: ${lapack ? `${lapack.config}, 1 thread` : `not available (${nativeLapackStatus().reason})`}`,
    `numpy: ${np ? `${np.version} (${np.python}), float64, 1 thread and ${CORES} threads` : 'not available'}`,
    `${CORES} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}; load average at start ${load()}`,
  ];
  for (const line of header) console.log(line);

  // One untimed small run of each routine first: wasm kernel set-up, heap growth and JIT stay out of the timings.
  {
    const n = 96;
    const a = randomSymmetric(n, 1);
    eigh(a, n);
    householderQ(randomMatrix(n, n, 2), n, n);
    const gt = tf.tensor2d(Float32Array.from(randomMatrix(n, n, 3)), [n, n]);
    tf.tidy(() => deviceHouseholderQ(gt).dataSync());
    gt.dispose();
  }
  const rows: Row[] = [];
  const skipped: string[] = [];
  let poolResult: PoolRow[] | null = null;
  const largest = sizes[sizes.length - 1];
  const runPool = async () => {
    if (!pool || !lapack) return;
    console.log('pool rows: one 360m layer’s host jobs on 1 worker and on one per core');
    poolResult = [];
    for (const set of poolSets()) poolResult.push(await poolRow(set));
  };
  for (const n of sizes) {
    // With the default sizes the largest (5632) comes last, after the pool row, and only within the budget.
    if (defaulted && n === largest && n > 4096) {
      await runPool();
      const prev = rows[rows.length - 1];
      const elapsedS = (performance.now() - t0) / 1000;
      const projectedS = prev ? prev.row_s * (n / prev.n) ** 3 : 0;
      if (budgetS > 0 && elapsedS + projectedS > budgetS) {
        const why = `n=${n} skipped: projected ${projectedS.toFixed(0)} s (${prev.n}'s row × (${n}/${prev.n})³) after ${elapsedS.toFixed(0)} s exceeds --budget ${budgetS}; pass ${n} explicitly (or --budget 0) to run it`;
        console.log(why);
        skipped.push(why);
        continue;
      }
    }
    console.log(`n=${n}: measuring (load ${load()})`);
    rows.push(measure(n, tsMax, np?.python ?? null));
  }
  if (!poolResult && !(defaulted && largest > 4096)) await runPool();
  const loadAfter = loadavg();

  const lines: string[] = [];
  lines.push('eigh (seconds; best of 3 for n ≤ 1024, else 1 run; LAPACK and numpy: float64 unless noted)');
  lines.push('    n   LAPACK f64  LAPACK f32     TS f64   numpy 1t  numpy ' + `${CORES}t`.padEnd(3) + '  LAPACK/numpy 1t');
  for (const r of rows) {
    lines.push(
      `${String(r.n).padStart(5)}  ${sec(r.native_eigh64_ms, 11)} ${sec(r.native_eigh32_ms, 11)} ${sec(r.ts_eigh_ms, 10)} ${sec(r.numpy_eigh_1t_ms, 10)} ${sec(r.numpy_eigh_all_ms, 9)}  ${ratio(r.eigh_ratio, 15)}`,
    );
  }
  lines.push('QR, Q of a square A (seconds; wasm f32 = the blocked device QR SOAP’s refresh uses without the binding)');
  lines.push('    n   LAPACK f64  LAPACK f32     TS f64   wasm f32   numpy 1t  numpy ' + `${CORES}t`.padEnd(3) + '  LAPACK/numpy 1t');
  for (const r of rows) {
    lines.push(
      `${String(r.n).padStart(5)}  ${sec(r.native_qr64_ms, 11)} ${sec(r.native_qr32_ms, 11)} ${sec(r.ts_qr_ms, 10)} ${sec(r.qr_wasm_ms, 10)} ${sec(r.numpy_qr_1t_ms, 10)} ${sec(r.numpy_qr_all_ms, 9)}  ${ratio(r.qr_ratio, 15)}`,
    );
  }
  const tsCut = rows.filter((r) => r.n > tsMax).map((r) => r.n);
  if (tsCut.length > 0) {
    const ref = rows.filter((r) => r.ts_eigh_ms !== null).pop();
    const est = ref ? ` (n³ from ${ref.n}: ≈${tsCut.map((n) => `${(((ref.ts_eigh_ms ?? 0) * (n / ref.n) ** 3) / 60_000).toFixed(0)} min at ${n}`).join(', ')})` : '';
    lines.push(`TS and wasm columns only up to n=${tsMax} (--ts-max): the TypeScript eigh takes many minutes beyond${est}`);
  }
  for (const s of skipped) lines.push(s);
  const p = poolResult as PoolRow[] | null;
  if (p) {
    const e4 = rows.find((r) => r.n === 4096)?.native_eigh64_ms;
    const e1 = rows.find((r) => r.n === 1024)?.native_eigh64_ms;
    const ideal = e4 && e1 ? ` (ideal ${(lptMakespan([e4, e4, ...Array<number>(10).fill(e1)], CORES) / (2 * e4 + 10 * e1)).toFixed(2)} for the first from the single-job times above, largest first)` : '';
    lines.push(`pool (LinalgPool.run, LAPACK 1 thread per job; one 360m layer's jobs; ratio = ${CORES} workers ÷ 1)${ideal}:`);
    for (const row of p) {
      const parts = Object.entries(row.ms).map(([k, ms]) => `${k} worker${k === '1' ? '' : 's'} ${sec(ms, 0)} s`);
      lines.push(`  ${row.jobs}: ${parts.join(', ')}; ratio ${row.ratio.toFixed(2)}`);
    }
  } else if (pool) lines.push('pool rows: skipped (no native LAPACK)');
  lines.push(`load average (1/5/15 min) at start ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, at end ${loadAfter.map((x) => x.toFixed(2)).join(' ')}; ${CORES} cores; total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  console.log('\n' + [...header, ...lines].join('\n'));

  const outDir = join(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(outDir, { recursive: true });
  const result = {
    node: process.version,
    lapack: lapack?.config ?? null,
    numpy: np?.version ?? null,
    cores: CORES,
    cpu: cpus()[0]?.model ?? null,
    loadavg_start: loadBefore,
    loadavg_end: loadAfter,
    date: new Date().toISOString(),
    total_s: (performance.now() - t0) / 1000,
    ts_max: tsMax,
    skipped,
    rows,
    pool: poolResult,
    table: lines,
  };
  writeFileSync(join(outDir, 'linalg.json'), JSON.stringify(result, null, 2) + '\n');
  console.log(`wrote ${join(outDir, 'linalg.json')}`);
}

await main();
