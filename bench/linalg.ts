/**
 * Times the float64 eigensolver and Householder QR against numpy/LAPACK at growing sizes, plus
 * the float32 blocked QR on the wasm backend that SOAP's refresh uses, and writes
 * bench/results/linalg.json.
 *
 *     node --import tsx bench/linalg.ts [sizes…]     (default 128 256 512 1024 2048)
 *
 * numpy runs single-threaded (OPENBLAS/MKL/OMP threads = 1) so the ratio compares one core
 * with one core; if python3 or numpy is missing its columns are left empty.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eigh } from '../src/optim/linalg/eigh.js';
import { householderQ } from '../src/optim/linalg/householder.js';
import { deviceHouseholderQ } from '../src/optim/linalg/qr-device.js';
import { selectBackend } from '../src/backend/select.js';
import { tf } from '../src/tf.js';
import { randomMatrix, randomSymmetric } from '../test/helpers/random.js';

interface Row {
  n: number;
  eigh_ms: number;
  qr_ms: number;
  /** Blocked QR with matMul block updates on the wasm backend, float32 (SOAP's refresh path). */
  qr_wasm_ms: number;
  numpy_eigh_ms: number | null;
  numpy_qr_ms: number | null;
  eigh_ratio: number | null;
  qr_ratio: number | null;
}

/** Best wall time of `reps` runs, in ms. */
function best(reps: number, fn: () => void): number {
  let t = Infinity;
  for (let i = 0; i < reps; i++) {
    const start = performance.now();
    fn();
    t = Math.min(t, performance.now() - start);
  }
  return t;
}

const PY = `
import json, sys, time
import numpy as np
out = {}
rng = np.random.default_rng(0)
for n in map(int, sys.argv[1:]):
    g = rng.standard_normal((n, n)); a = (g + g.T) / 2
    reps = 3 if n <= 1024 else 1
    def t(f):
        b = float('inf')
        for _ in range(reps):
            s = time.perf_counter(); f(); b = min(b, time.perf_counter() - s)
        return b * 1000
    out[n] = {'eigh': t(lambda: np.linalg.eigh(a)), 'qr': t(lambda: np.linalg.qr(g))}
print(json.dumps(out))
`;

/** numpy timings per size, or null when python3/numpy is unavailable. */
function numpyTimes(sizes: number[]): Record<string, { eigh: number; qr: number }> | null {
  const threads = { OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1', OMP_NUM_THREADS: '1' };
  const r = spawnSync('python3', ['-c', PY, ...sizes.map(String)], { env: { ...process.env, ...threads }, encoding: 'utf8' });
  if (r.status !== 0 || !r.stdout) {
    console.warn(`numpy timings skipped: ${r.error?.message ?? r.stderr?.trim().split('\n').pop() ?? 'python3 failed'}`);
    return null;
  }
  return JSON.parse(r.stdout) as Record<string, { eigh: number; qr: number }>;
}

async function main(): Promise<void> {
  await selectBackend('wasm');
  const args = process.argv.slice(2).map(Number).filter((n) => n > 0);
  const sizes = args.length > 0 ? args : [128, 256, 512, 1024, 2048];
  const np = numpyTimes(sizes);
  const rows: Row[] = [];
  console.log('    n   eigh ms  numpy ms   ratio |    qr ms  numpy ms   ratio | qr wasm ms');
  for (const n of sizes) {
    const reps = n <= 512 ? 3 : 1;
    const a = randomSymmetric(n, n);
    const g = randomMatrix(n, n, n + 1);
    const eighMs = best(reps, () => eigh(a, n));
    const qrMs = best(reps, () => householderQ(g, n, n));
    const gt = tf.tensor2d(Float32Array.from(g), [n, n]);
    // dataSync so the timing includes finishing the device work and reading Q back.
    const qrWasmMs = best(reps, () => tf.tidy(() => deviceHouseholderQ(gt).dataSync()));
    gt.dispose();
    const ref = np?.[String(n)];
    const row: Row = {
      n,
      eigh_ms: eighMs,
      qr_ms: qrMs,
      qr_wasm_ms: qrWasmMs,
      numpy_eigh_ms: ref?.eigh ?? null,
      numpy_qr_ms: ref?.qr ?? null,
      eigh_ratio: ref ? eighMs / ref.eigh : null,
      qr_ratio: ref ? qrMs / ref.qr : null,
    };
    rows.push(row);
    const f = (x: number | null, d = 1) => (x === null ? '-' : x.toFixed(d)).padStart(9);
    console.log(`${String(n).padStart(5)} ${f(eighMs)} ${f(row.numpy_eigh_ms)} ${f(row.eigh_ratio)}x | ${f(qrMs)} ${f(row.numpy_qr_ms)} ${f(row.qr_ratio)}x | ${f(qrWasmMs)}`);
  }
  const outDir = join(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(outDir, { recursive: true });
  const result = { node: process.version, numpy_threads: 1, date: new Date().toISOString(), rows };
  writeFileSync(join(outDir, 'linalg.json'), JSON.stringify(result, null, 2) + '\n');
  console.log(`wrote ${join(outDir, 'linalg.json')}`);
}

await main();
