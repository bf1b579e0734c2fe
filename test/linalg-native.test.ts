/**
 * The optional native LAPACK binding (src/optim/linalg/native.ts, native/lapack.c) against the
 * TypeScript eigh and householderQ. When the binding is not built or cannot load, the
 * comparison tests are skipped with the loader's reason; the loader's own degradation
 * (disabled, missing, broken file) is tested everywhere.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { eigh } from '../src/optim/linalg/eigh.js';
import { maxAbs, transpose } from '../src/optim/linalg/matrix.js';
import { loadNativeLapack, loadNativeLapackFrom, nativeLapackPath, nativeLapackStatus } from '../src/optim/linalg/native.js';
import { householderQ } from '../src/optim/linalg/householder.js';
import { runHostJob } from '../src/optim/linalg/host-jobs.js';
import { inverseRoot } from '../src/optim/linalg/roots.js';
import { frobenius, matmul } from './helpers/matrix.js';
import { randomMatrix, randomSymmetric, withSpectrum } from './helpers/random.js';
import { tempDirs } from './helpers/tmp.js';

const tempDir = tempDirs('soap-native-');
const lapack = loadNativeLapack();
const skip = lapack ? false : `native LAPACK not available: ${nativeLapackStatus().reason}`;

/** ‖QᵀQ − I‖_F for an m×n Q with (supposedly) orthonormal columns, in float64. */
function orthogonalityError(q: ArrayLike<number>, m: number, n: number): number {
  const qtq = matmul(transpose(q, m, n), q, n, m, n);
  for (let i = 0; i < n; i++) qtq[i * n + i] -= 1;
  return frobenius(qtq);
}

/** ‖A − V·diag(λ)·Vᵀ‖_F / ‖A‖_F, in float64. */
function reconstructionError(a: ArrayLike<number>, values: ArrayLike<number>, vectors: ArrayLike<number>, n: number): number {
  const scaled = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) scaled[i * n + j] = vectors[i * n + j] * values[j];
  const rec = matmul(scaled, transpose(vectors, n, n), n, n, n);
  for (let i = 0; i < n * n; i++) rec[i] -= a[i];
  return frobenius(rec) / Math.max(frobenius(a), Number.MIN_VALUE);
}

/** max_ij | |(VᵀW)_ij| − δ_ij |: zero when V and W hold the same unit vectors up to sign. */
function signFreeDistance(v: ArrayLike<number>, w: ArrayLike<number>, n: number): number {
  const m = matmul(transpose(v, n, n), w, n, n, n);
  let worst = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) worst = Math.max(worst, Math.abs(Math.abs(m[i * n + j]) - (i === j ? 1 : 0)));
  return worst;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

function isDescending(values: ArrayLike<number>): boolean {
  for (let i = 1; i < values.length; i++) if (values[i] > values[i - 1]) return false;
  return true;
}

/** Largest |(QᵀA)_ij| below the diagonal relative to ‖A‖_F: R = QᵀA must be upper-triangular. */
function belowDiagonal(q: ArrayLike<number>, a: ArrayLike<number>, m: number, n: number): number {
  const r = matmul(transpose(q, m, n), a, n, m, n);
  let worst = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) worst = Math.max(worst, Math.abs(r[i * n + j]));
  return worst / Math.max(frobenius(a), Number.MIN_VALUE);
}

const SIZES = [1, 2, 7, 64, 200];

test('native eigh, float64: agrees with the TypeScript eigh on random symmetric matrices', { skip }, () => {
  for (const n of SIZES) {
    const a = randomSymmetric(n, 1000 + n);
    const ref = eigh(a, n);
    const got = lapack!.eigh(a, n);
    assert.ok(got.values instanceof Float64Array && got.vectors instanceof Float64Array);
    const scale = Math.max(maxAbs(ref.values), Number.MIN_VALUE);
    assert.ok(isDescending(got.values), `n=${n}: eigenvalues not descending`);
    assert.ok(maxDiff(got.values, ref.values) <= 1e-10 * scale, `n=${n}: eigenvalues differ by ${maxDiff(got.values, ref.values)}`);
    const tol = 1e-14 * Math.max(n, 10);
    assert.ok(orthogonalityError(got.vectors, n, n) < tol, `n=${n}: ‖VᵀV − I‖ = ${orthogonalityError(got.vectors, n, n)}`);
    assert.ok(reconstructionError(a, got.values, got.vectors, n) < tol, `n=${n}: reconstruction ${reconstructionError(a, got.values, got.vectors, n)}`);
    assert.ok(signFreeDistance(got.vectors, ref.vectors, n) < 1e-8, `n=${n}: eigenvectors differ: ${signFreeDistance(got.vectors, ref.vectors, n)}`);
  }
});

test('native eigh, float32: eigenvalues to ~1e-5, well-separated eigenvectors match up to sign', { skip }, () => {
  for (const n of SIZES) {
    const a = Float32Array.from(randomSymmetric(n, 2000 + n));
    const ref = eigh(a, n); // float64 eigh of the float32 matrix
    const got = lapack!.eigh(a, n);
    assert.ok(got.values instanceof Float32Array && got.vectors instanceof Float32Array);
    const scale = Math.max(maxAbs(ref.values), Number.MIN_VALUE);
    assert.ok(isDescending(got.values), `n=${n}: eigenvalues not descending`);
    assert.ok(maxDiff(got.values, ref.values) <= 1e-5 * scale, `n=${n}: eigenvalues differ by ${maxDiff(got.values, ref.values)}`);
    assert.ok(orthogonalityError(got.vectors, n, n) < 1e-5 * Math.sqrt(n) + 1e-6, `n=${n}: ‖VᵀV − I‖ = ${orthogonalityError(got.vectors, n, n)}`);
    assert.ok(reconstructionError(a, got.values, got.vectors, n) < 1e-5 * Math.sqrt(n) + 1e-6, `n=${n}: reconstruction`);
    // Eigenvectors are only as accurate as eps·‖A‖/gap: compare them on a spectrum 1, 2, …, n.
    const sep = Float32Array.from(withSpectrum(Float64Array.from({ length: n }, (_, i) => i + 1), 3000 + n));
    const refSep = eigh(sep, n);
    const gotSep = lapack!.eigh(sep, n);
    assert.ok(signFreeDistance(gotSep.vectors, refSep.vectors, n) < 1e-3, `n=${n}: eigenvectors differ: ${signFreeDistance(gotSep.vectors, refSep.vectors, n)}`);
  }
});

test('native eigh: repeated eigenvalues (vectors checked by reconstruction only), zero, identity, n = 0', { skip }, () => {
  for (const n of [7, 64]) {
    const spectrum = Float64Array.from({ length: n }, (_, i) => [4, 4, 4, 1, 1, -2][i % 6]);
    const a = withSpectrum(spectrum, 4000 + n);
    const sorted = Float64Array.from(spectrum).sort().reverse();
    const d64 = lapack!.eigh(a, n);
    assert.ok(maxDiff(d64.values, sorted) < 1e-12 * n, `n=${n}: float64 eigenvalues`);
    assert.ok(reconstructionError(a, d64.values, d64.vectors, n) < 1e-13 * n, `n=${n}: float64 reconstruction`);
    assert.ok(orthogonalityError(d64.vectors, n, n) < 1e-13 * n, `n=${n}: float64 orthogonality`);
    const a32 = Float32Array.from(a);
    const d32 = lapack!.eigh(a32, n);
    assert.ok(maxDiff(d32.values, sorted) < 1e-5 * 4 * Math.sqrt(n), `n=${n}: float32 eigenvalues`);
    assert.ok(reconstructionError(a32, d32.values, d32.vectors, n) < 1e-5 * Math.sqrt(n), `n=${n}: float32 reconstruction`);
  }
  const zero = lapack!.eigh(new Float64Array(16), 4);
  assert.deepEqual([...zero.values], [0, 0, 0, 0]);
  assert.ok(orthogonalityError(zero.vectors, 4, 4) < 1e-15);
  const diag = lapack!.eigh(Float64Array.from([1, 0, 0, 0, 3, 0, 0, 0, 2]), 3);
  assert.deepEqual([...diag.values], [3, 2, 1]);
  assert.deepEqual([...diag.vectors].map(Math.abs), [0, 0, 1, 1, 0, 0, 0, 1, 0]);
  const empty = lapack!.eigh(new Float32Array(0), 0);
  assert.equal(empty.values.length, 0);
  assert.equal(empty.vectors.length, 0);
});

test('native eigh: in place (out.vectors = a), caller buffers, and input errors', { skip }, () => {
  const n = 33;
  const a = randomSymmetric(n, 5000);
  const expected = lapack!.eigh(a, n);
  assert.deepEqual([...a], [...randomSymmetric(n, 5000)], 'a is left alone without out');
  const values = new Float64Array(n);
  const inPlace = lapack!.eigh(a, n, { values, vectors: a });
  assert.equal(inPlace.vectors, a);
  assert.equal(inPlace.values, values);
  assert.deepEqual([...a], [...expected.vectors]);
  assert.deepEqual([...values], [...expected.values]);

  assert.throws(() => lapack!.eigh(Float64Array.from([1, Number.NaN, Number.NaN, 1]), 2), /non-finite/);
  assert.throws(() => lapack!.eigh(new Float64Array(5), 2), /expected 4 entries/);
  assert.throws(() => lapack!.eigh(new Float64Array(4), 2, { values: new Float64Array(3), vectors: new Float64Array(4) }), /expected/);
  // values inside the matrix buffer would be overwritten mid-call: refused.
  const shared = new Float64Array(6);
  assert.throws(() => lapack!.eigh(Float64Array.from([2, 1, 1, 2]), 2, { values: shared.subarray(3, 5), vectors: shared.subarray(0, 4) }), /overlaps/);
  // Mixed precisions are refused by the addon itself.
  const mixed = { values: new Float32Array(2), vectors: new Float32Array(4) } as unknown as { values: Float64Array; vectors: Float64Array };
  assert.throws(() => lapack!.eigh(new Float64Array(4), 2, mixed), /Float32Array or all Float64Array/);
});

test('native qr, float64: same Q as householderQ (same sign convention), orthonormal, QᵀA upper-triangular', { skip }, () => {
  for (const [m, n] of [[1, 1], [2, 2], [7, 3], [64, 64], [200, 50], [200, 200]]) {
    const a = randomMatrix(m, n, 6000 + m * 7 + n);
    const q = lapack!.qr(a, m, n);
    assert.ok(q instanceof Float64Array && q.length === m * n);
    assert.ok(orthogonalityError(q, m, n) < 1e-14 * Math.max(m, 10), `${m}×${n}: ‖QᵀQ − I‖ = ${orthogonalityError(q, m, n)}`);
    assert.ok(belowDiagonal(q, a, m, n) < 1e-14 * Math.max(m, 10), `${m}×${n}: R not upper-triangular`);
    const ref = householderQ(a, m, n);
    assert.ok(maxDiff(q, ref) < 1e-10, `${m}×${n}: Q differs from householderQ by ${maxDiff(q, ref)}`);
  }
});

test('native qr, float32: orthonormal, QᵀA upper-triangular, in place; rank-deficient input and errors', { skip }, () => {
  for (const [m, n] of [[1, 1], [7, 3], [64, 64], [200, 50], [200, 200]]) {
    const a = Float32Array.from(randomMatrix(m, n, 7000 + m * 7 + n));
    const q = lapack!.qr(a, m, n);
    assert.ok(q instanceof Float32Array);
    assert.ok(orthogonalityError(q, m, n) < 1e-6 * Math.max(m, 10), `${m}×${n}: ‖QᵀQ − I‖ = ${orthogonalityError(q, m, n)}`);
    assert.ok(belowDiagonal(q, a, m, n) < 1e-6 * Math.max(m, 10), `${m}×${n}: R not upper-triangular`);
    const copy = Float32Array.from(a);
    assert.equal(lapack!.qr(copy, m, n, copy), copy);
    assert.deepEqual([...copy], [...q]);
  }
  // A zero column and a repeated column: Q is still orthonormal (an orthonormal completion).
  const m = 9;
  const n = 4;
  const a = randomMatrix(m, n, 8000);
  for (let i = 0; i < m; i++) {
    a[i * n + 1] = 0;
    a[i * n + 3] = a[i * n + 0];
  }
  const q = lapack!.qr(a, m, n);
  assert.ok(orthogonalityError(q, m, n) < 1e-14 * m);
  assert.ok(belowDiagonal(q, a, m, n) < 1e-14 * m);
  assert.equal(lapack!.qr(new Float64Array(0), 3, 0).length, 0);
  assert.throws(() => lapack!.qr(new Float64Array(6), 2, 3), /rows ≥ columns/);
  assert.throws(() => lapack!.qr(new Float64Array(5), 3, 2), /expected 6 entries/);
  assert.throws(() => lapack!.qr(Float64Array.from([1, Number.POSITIVE_INFINITY]), 2, 1), /non-finite/);
});

test('native qrFull: first columns are qr\'s Q, the rest an orthonormal basis of range(A)⊥, float64 and float32', { skip }, () => {
  for (const [m, n] of [[1, 0], [1, 1], [5, 2], [64, 64], [200, 50], [130, 7]]) {
    const a = randomMatrix(m, n, 9000 + m * 7 + n);
    const full = lapack!.qrFull(a, m, n);
    assert.ok(full instanceof Float64Array && full.length === m * m);
    assert.ok(orthogonalityError(full, m, m) < 1e-14 * Math.max(m, 10), `${m}×${n}: ‖QᵀQ − I‖ = ${orthogonalityError(full, m, m)}`);
    const thin = householderQ(a, m, n);
    let dev = 0;
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) dev = Math.max(dev, Math.abs(full[i * m + j] - thin[i * n + j]));
    assert.ok(dev < 1e-10, `${m}×${n}: first columns differ from householderQ by ${dev}`);
    // Columns n… are orthogonal to every column of A (independent check: plain dot products).
    let cross = 0;
    for (let c = n; c < m; c++) {
      for (let j = 0; j < n; j++) {
        let dot = 0;
        let norm = 0;
        for (let i = 0; i < m; i++) {
          dot += full[i * m + c] * a[i * n + j];
          norm += a[i * n + j] ** 2;
        }
        cross = Math.max(cross, Math.abs(dot) / Math.sqrt(norm));
      }
    }
    assert.ok(cross < 1e-13 * Math.max(m, 10), `${m}×${n}: complement not ⟂ A: ${cross}`);
    const full32 = lapack!.qrFull(Float32Array.from(a), m, n);
    assert.ok(full32 instanceof Float32Array && orthogonalityError(full32, m, m) < 1e-6 * Math.max(m, 10));
  }
  assert.throws(() => lapack!.qrFull(new Float64Array(6), 2, 3), /rows ≥ columns/);
  assert.throws(() => lapack!.qrFull(new Float64Array(5), 3, 2), /expected 6 entries/);
  assert.throws(() => lapack!.qrFull(Float64Array.from([1, Number.NaN]), 2, 1), /non-finite/);
});

test('native gemm: op(A)·op(B) against the naive product, all four transpose cases, both precisions', { skip }, () => {
  const [m, n, k] = [37, 23, 51];
  const a = randomMatrix(m, k, 9100);
  const b = randomMatrix(k, n, 9101);
  const want = matmul(a, b, m, k, n);
  const at = transpose(a, m, k);
  const bt = transpose(b, k, n);
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    const got = lapack!.gemm(ta ? at : a, tb ? bt : b, m, n, k, ta, tb);
    assert.ok(maxDiff(got, want) < 1e-12, `trans ${ta}/${tb}: ${maxDiff(got, want)}`);
    const got32 = lapack!.gemm(Float32Array.from(ta ? at : a), Float32Array.from(tb ? bt : b), m, n, k, ta, tb);
    assert.ok(got32 instanceof Float32Array && maxDiff(got32, want) < 1e-4);
  }
  assert.deepEqual([...lapack!.gemm(new Float64Array(0), new Float64Array(0), 2, 2, 0)], [0, 0, 0, 0]);
  assert.throws(() => lapack!.gemm(new Float64Array(5), b, m, n, k), /expected/);
});

test('inverse_root job with LAPACK from n = 64: the worker returns the float32 root, equal to the float64 reference', { skip }, () => {
  const n = 96;
  // A PSD statistic with a spread spectrum (1e-6 … 1), as Shampoo's are.
  const a = withSpectrum(Float64Array.from({ length: n }, (_, i) => 10 ** (-6 * (i / (n - 1)))), 9200);
  const result = runHostJob({ op: 'inverse_root', n, a: Float64Array.from(a), root: 2.5, epsilon: 1e-12 });
  assert.ok(result.root instanceof Float32Array && result.root.length === n * n && !('vectors' in result));
  const want = inverseRoot(a, n, 2.5, 1e-12);
  assert.ok(maxDiff(result.root, want) / maxAbs(want) < 1e-5, `relative error ${maxDiff(result.root, want) / maxAbs(want)}`);
  // Below 64 the factors come back for Shampoo's float64 reassembly (the fixtures' path).
  const small = runHostJob({ op: 'inverse_root', n: 8, a: withSpectrum(Float64Array.from([8, 7, 6, 5, 4, 3, 2, 1]), 9201), root: 4, epsilon: 1e-12 });
  assert.deepEqual(Object.keys(small).sort(), ['scaled', 'vectors']);
});

test('native thread control: setNumThreads/getNumThreads', { skip }, () => {
  const before = lapack!.getNumThreads();
  try {
    const controllable = lapack!.setNumThreads(1);
    assert.equal(controllable, lapack!.config.startsWith('OpenBLAS'));
    assert.equal(lapack!.getNumThreads(), 1);
    assert.throws(() => lapack!.setNumThreads(0), RangeError);
  } finally {
    lapack!.setNumThreads(Math.max(1, before));
  }
});

test('native binding loads and runs in several worker_threads at once (context-aware addon)', { skip }, async () => {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const l = require(workerData.path);
    l.setNumThreads(1);
    const n = workerData.n;
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = 1 / (1 + i + j) + (i === j ? workerData.shift : 0);
    const w = new Float64Array(n), v = new Float64Array(n * n);
    l.eigh(a, n, w, v);
    parentPort.postMessage(Array.from(w));`;
  const run = (shift: number) =>
    new Promise<number[]>((resolve, reject) => {
      const worker = new Worker(code, { eval: true, workerData: { path: lapack!.path, n: 96, shift } });
      worker.once('message', (m: number[]) => resolve(m));
      worker.once('error', reject);
      worker.once('exit', (c) => (c === 0 ? undefined : reject(new Error(`worker exited with ${c}`))));
    });
  const [w0, w1, w2] = await Promise.all([run(0), run(1), run(2)]);
  // The same Hilbert-like matrix shifted by k·I: eigenvalues shift by exactly k.
  for (let i = 0; i < 96; i++) {
    assert.ok(Math.abs(w1[i] - w0[i] - 1) < 1e-12 && Math.abs(w2[i] - w0[i] - 2) < 1e-12);
  }
});

test('loader: SOAP_TRAIN_NATIVE=0 disables it, with a reason', () => {
  const saved = process.env.SOAP_TRAIN_NATIVE;
  process.env.SOAP_TRAIN_NATIVE = '0';
  try {
    assert.equal(loadNativeLapack(), null);
    const status = nativeLapackStatus();
    assert.equal(status.available, false);
    assert.match(status.reason, /SOAP_TRAIN_NATIVE=0/);
  } finally {
    if (saved === undefined) delete process.env.SOAP_TRAIN_NATIVE;
    else process.env.SOAP_TRAIN_NATIVE = saved;
  }
  // Re-enabling gives the cached result of the first attempt again.
  assert.equal(loadNativeLapack(), lapack);
});

test('loader: a missing, broken or foreign .node file gives null and says why; never throws', () => {
  assert.match(nativeLapackPath(), /native[\\/]build[\\/]lapack\.node$/);
  const dir = tempDir();
  const missing = loadNativeLapackFrom(join(dir, 'build', 'lapack.node'));
  assert.equal(missing.lapack, null);
  assert.match(missing.reason, /not built: .* does not exist/);
  const garbage = join(dir, 'garbage.node');
  writeFileSync(garbage, 'this is not a shared object');
  const broken = loadNativeLapackFrom(garbage);
  assert.equal(broken.lapack, null);
  assert.match(broken.reason, /^failed to load /);
  const foreign = join(dir, 'foreign.cjs');
  writeFileSync(foreign, 'module.exports = { abi: 1 };');
  const wrong = loadNativeLapackFrom(foreign);
  assert.equal(wrong.lapack, null);
  assert.match(wrong.reason, /is not soap-train's LAPACK binding/);
  const status = nativeLapackStatus();
  assert.equal(status.available, lapack !== null);
  assert.ok(status.reason.length > 0);
});

/** x, gelu(x), gelu'(x) in float64 from Python's math.erfc (see the fixture's provenance). */
const GELU_ROWS = (JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'gelu_reference.json'), 'utf8')) as { rows: Array<[number, number, number]> }).rows;

test('native GeLU: forward and derivative equal float64 references within float32 rounding', { skip }, () => {
  const x = Float32Array.from(GELU_ROWS, (r) => r[0]);
  const y = new Float32Array(x.length);
  const dy = Float32Array.from(x, (_, i) => 0.5 + (i % 3)); // dx = dy·gelu'(x)
  const dx = new Float32Array(x.length);
  lapack!.geluForward(x, y);
  lapack!.geluBackward(x, dy, dx);
  GELU_ROWS.forEach(([xi, gelu, slope], i) => {
    // |error| ≤ 2e-7 relative (float32 rounding and the erfc fit's 1.2e-7) + 1e-30 absolute.
    assert.ok(Math.abs(y[i] - gelu) <= 2e-7 * Math.abs(gelu) + 1e-30, `gelu(${xi}) = ${y[i]}, want ${gelu}`);
    const want = dy[i] * slope;
    assert.ok(Math.abs(dx[i] - want) <= 2e-7 * Math.abs(want) + 1e-30, `dy·gelu'(${xi}) = ${dx[i]}, want ${want}`);
  });
  // Far tails: exactly x for large x, an underflow to (−)0 for very negative x, no NaN.
  const tails = Float32Array.from([-200, -50, 50, 200]);
  const out = new Float32Array(4);
  lapack!.geluForward(tails, out);
  assert.deepEqual(Array.from(out).map((v) => (Object.is(v, -0) ? 0 : v)), [0, 0, 50, 200]);
});

test('native GeLU: arrays of different lengths or types are refused', { skip }, () => {
  assert.throws(() => lapack!.geluForward(new Float32Array(3), new Float32Array(4)), /same length/);
  assert.throws(() => lapack!.geluBackward(new Float32Array(3), new Float32Array(3), new Float64Array(3) as unknown as Float32Array), /Float32Array/);
});

test('native gemmInto: writes op(A)·op(B) into a view inside a larger buffer, leaving the rest alone', { skip }, () => {
  const [m, n, k] = [3, 4, 5];
  const a = randomMatrix(k, m, 1); // used transposed: Aᵀ is m×k
  const b = randomMatrix(k, n, 2);
  const a32 = Float32Array.from(a);
  const b32 = Float32Array.from(b);
  const buffer = new Float32Array(2 + m * n + 2).fill(7);
  lapack!.gemmInto(a32, b32, buffer.subarray(2, 2 + m * n), m, n, k, true, false);
  const want = matmul(transpose(a, k, m), b, m, k, n);
  assert.ok(maxDiff(buffer.subarray(2, 2 + m * n), want) < 1e-5);
  assert.deepEqual([buffer[0], buffer[1], buffer[2 + m * n], buffer[3 + m * n]], [7, 7, 7, 7]);
});
