import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eigh } from '../src/optim/linalg/eigh.js';
import { transpose } from '../src/optim/linalg/matrix.js';
import { householderQ, reflect, reflector } from '../src/optim/linalg/householder.js';
import { inverseRoot } from '../src/optim/linalg/roots.js';
import { frobenius, identity, matmul } from './helpers/matrix.js';
import { randomMatrix, randomSymmetric, withSpectrum } from './helpers/random.js';

/** ‖QᵀQ − I‖_F for an m×n Q with (supposedly) orthonormal columns. */
function orthogonalityError(q: Float64Array, m: number, n: number): number {
  const qtq = matmul(transpose(q, m, n), q, n, m, n);
  for (let i = 0; i < n; i++) qtq[i * n + i] -= 1;
  return frobenius(qtq);
}

/** ‖A − V·diag(λ)·Vᵀ‖_F / ‖A‖_F. */
function reconstructionError(a: Float64Array, values: Float64Array, vectors: Float64Array, n: number): number {
  const scaled = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) scaled[i * n + j] = vectors[i * n + j] * values[j];
  const rec = matmul(scaled, transpose(vectors, n, n), n, n, n);
  for (let i = 0; i < n * n; i++) rec[i] -= a[i];
  return frobenius(rec) / Math.max(frobenius(a), Number.MIN_VALUE);
}

function isDescending(values: Float64Array): boolean {
  for (let i = 1; i < values.length; i++) if (values[i] > values[i - 1]) return false;
  return true;
}

/** Checks the three properties every eigendecomposition must have; tolerances scale with n. */
function checkEigh(a: Float64Array, n: number, label: string): ReturnType<typeof eigh> {
  const r = eigh(a, n);
  const tol = 1e-14 * Math.max(n, 10);
  const orth = orthogonalityError(r.vectors, n, n);
  const rec = reconstructionError(a, r.values, r.vectors, n);
  assert.ok(orth < tol, `${label}: ‖VᵀV − I‖ = ${orth}`);
  assert.ok(rec < tol, `${label}: reconstruction ${rec}`);
  assert.ok(isDescending(r.values), `${label}: eigenvalues not descending`);
  return r;
}

test('eigh: 2×2 hand case [[2,1],[1,2]] has eigenvalues 3, 1 with vectors (1,±1)/√2', () => {
  const { values, vectors } = eigh([2, 1, 1, 2], 2);
  assert.ok(Math.abs(values[0] - 3) < 1e-15 && Math.abs(values[1] - 1) < 1e-15);
  // Column 0 ∝ (1, 1), column 1 ∝ (1, −1); signs are free.
  assert.ok(Math.abs(Math.abs(vectors[0]) - Math.SQRT1_2) < 1e-15 && Math.abs(vectors[0] - vectors[2]) < 1e-15);
  assert.ok(Math.abs(vectors[1] + vectors[3]) < 1e-15);
});

test('eigh: trivial sizes, diagonal, zero and identity matrices', () => {
  assert.deepEqual([...eigh([5], 1).values], [5]);
  const diag = checkEigh(Float64Array.from([1, 0, 0, 0, 3, 0, 0, 0, 2]), 3, 'diagonal');
  assert.deepEqual([...diag.values], [3, 2, 1]);
  const zero = checkEigh(new Float64Array(16), 4, 'zero');
  assert.deepEqual([...zero.values], [0, 0, 0, 0]);
  checkEigh(identity(7), 7, 'identity');
  assert.throws(() => eigh([1, Number.NaN, Number.NaN, 1], 2), /non-finite/);
});

test('eigh: random symmetric matrices recover exactly known spectra', () => {
  for (const [n, seed] of [[3, 1], [17, 2], [64, 3], [200, 4]]) {
    checkEigh(randomSymmetric(n, seed), n, `random ${n}`);
    const spectrum = Float64Array.from({ length: n }, (_, i) => n - 2 * i + 0.5);
    const r = checkEigh(withSpectrum(spectrum, seed + 100), n, `spectrum ${n}`);
    for (let i = 0; i < n; i++) assert.ok(Math.abs(r.values[i] - spectrum[i]) < 1e-12 * n, `λ${i}`);
  }
});

test('eigh: ill-conditioned (cond 1e12), rank-deficient and repeated-eigenvalue matrices', () => {
  const n = 120;
  const ill = Float64Array.from({ length: n }, (_, i) => 10 ** (-12 * (i / (n - 1))));
  const r = checkEigh(withSpectrum(ill, 7), n, 'ill-conditioned');
  // Large eigenvalues are accurate to working precision relative to ‖A‖.
  for (let i = 0; i < n; i++) assert.ok(Math.abs(r.values[i] - ill[i]) < 1e-13, `ill λ${i}`);

  const k = 10;
  const g = randomMatrix(n, k, 8);
  const gram = matmul(g, transpose(g, n, k), n, k, n); // rank k
  const rd = checkEigh(gram, n, 'rank-deficient');
  for (let i = k; i < n; i++) assert.ok(Math.abs(rd.values[i]) < 1e-12 * rd.values[0], `null λ${i} = ${rd.values[i]}`);
  assert.ok(rd.values[k - 1] > 1e-3 * rd.values[0]);

  const repeated = Float64Array.from({ length: 60 }, (_, i) => (i < 20 ? 3 : i < 45 ? 1 : -2));
  const rr = checkEigh(withSpectrum(repeated, 9), 60, 'repeated');
  for (let i = 0; i < 60; i++) assert.ok(Math.abs(rr.values[i] - repeated[i]) < 1e-13, `rep λ${i}`);
});

test('eigh: convergence is relative to the matrix scale (statistics of 1e-12 and 1e+12)', () => {
  const n = 40;
  const a = randomSymmetric(n, 11);
  const base = eigh(a, n);
  for (const s of [1e-12, 1e-24, 1e12]) {
    const scaled = a.map((x) => x * s);
    const r = checkEigh(scaled, n, `scale ${s}`);
    for (let i = 0; i < n; i++) assert.ok(Math.abs(r.values[i] / s - base.values[i]) < 1e-12, `scaled λ${i}`);
    // Same eigenvectors up to sign.
    for (let j = 0; j < n; j++) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += r.vectors[i * n + j] * base.vectors[i * n + j];
      assert.ok(Math.abs(Math.abs(dot) - 1) < 1e-10, `vector ${j} at scale ${s}`);
    }
  }
});

test('householderQ: orthonormal Q with QᵀA upper triangular, for square, tall and rank-deficient A', () => {
  const cases: Array<[number, number, Float64Array]> = [
    [1, 1, Float64Array.from([-2])],
    [50, 50, randomMatrix(50, 50, 21)],
    [300, 100, randomMatrix(300, 100, 22)],
  ];
  const low = randomMatrix(80, 5, 23);
  cases.push([80, 80, matmul(low, randomMatrix(5, 80, 24), 80, 5, 80)]); // rank 5
  const zeroCol = randomMatrix(30, 30, 25);
  for (let i = 0; i < 30; i++) zeroCol[i * 30 + 4] = 0;
  cases.push([30, 30, zeroCol]);
  for (const [m, n, a] of cases) {
    const q = householderQ(a, m, n);
    assert.ok(orthogonalityError(q, m, n) < 1e-13 * Math.max(m, 10), `${m}×${n}: orthogonality`);
    const r = matmul(transpose(q, m, n), a, n, m, n);
    let below = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) below = Math.max(below, Math.abs(r[i * n + j]));
    assert.ok(below < 1e-12 * Math.max(1, frobenius(a)), `${m}×${n}: QᵀA not triangular (${below})`);
    const back = matmul(q, r, m, n, n);
    for (let i = 0; i < m * n; i++) back[i] -= a[i];
    assert.ok(frobenius(back) < 1e-13 * Math.max(m, 10) * frobenius(a), `${m}×${n}: QR ≠ A`);
  }
});

test('reflector: H = I − β·v·vᵀ maps x to α·e₁ with α = −sign(x₀)·‖x‖; H = I for x ∝ e₁', () => {
  // Without scaling ‖x‖² would underflow (1e-200) or overflow (1e150); eigh needs none (scaled input).
  const cases: Array<[number[], boolean]> = [[[3, 4], false], [[3, 4], true], [[-1e-200, 2e-200, 2e-200], true], [[1e150, -1e150, 1e150, 1e150], true]];
  for (const [x, scaleFree] of cases) {
    const v = new Float64Array(x.length);
    const { beta, alpha } = reflector(x, v, 0, x.length, scaleFree);
    const s = Math.max(...x.map(Math.abs));
    const norm = s * Math.hypot(...x.map((e) => e / s));
    assert.ok(Math.abs(alpha + Math.sign(x[0]) * norm) <= 1e-15 * norm, `α = ${alpha} for ${x}`);
    const y = Float64Array.from(x);
    reflect(v, 0, y, 0, x.length, beta);
    assert.ok(Math.abs(y[0] - alpha) <= 1e-14 * norm, `(Hx)₀ = ${y[0]}`);
    for (let i = 1; i < x.length; i++) assert.ok(Math.abs(y[i]) <= 1e-14 * norm, `(Hx)${i} = ${y[i]}`);
  }
  const untouched = new Float64Array(3);
  assert.deepEqual(reflector([-5, 0, 0], untouched, 0, 3, true), { beta: 0, alpha: -5 });
  assert.deepEqual(reflector([0, 0, 0], untouched, 0, 3, true), { beta: 0, alpha: 0 });
  assert.deepEqual([...untouched], [0, 0, 0]);
});

test('inverseRoot: (A + εI)^(−1/p) raised to the p-th power inverts A + εI', () => {
  const n = 30;
  const spectrum = Float64Array.from({ length: n }, (_, i) => 1e-6 * (1 + i));
  const a = withSpectrum(spectrum, 31);
  for (const p of [2, 4]) {
    const root = inverseRoot(a, n, p, 1e-9);
    let power = identity(n);
    for (let i = 0; i < p; i++) power = matmul(power, root, n, n, n);
    const shifted = Float64Array.from(a);
    for (let i = 0; i < n; i++) shifted[i * n + i] += 1e-9;
    const prod = matmul(power, shifted, n, n, n);
    for (let i = 0; i < n; i++) prod[i * n + i] -= 1;
    assert.ok(frobenius(prod) < 1e-9, `p=${p}: ‖R^p (A+εI) − I‖ = ${frobenius(prod)}`);
  }
  // A singular PSD matrix stays finite thanks to ε; roundoff negatives are floored at 0.
  const singular = withSpectrum(Float64Array.from([1, 0, 0, 0]), 32);
  assert.ok(inverseRoot(singular, 4, 2, 1e-12).every(Number.isFinite));
  assert.throws(() => inverseRoot(singular, 4, 2, 0), /singular/);
});

test('eigh and QR at 1024×1024: orthogonal, reconstructing, descending', () => {
  const n = 1024;
  const a = randomSymmetric(n, 41);
  checkEigh(a, n, 'random 1024');
  const q = householderQ(randomMatrix(n, n, 42), n, n);
  assert.ok(orthogonalityError(q, n, n) < 1e-11);
});

test('deviceHouseholderQ: float32 blocked QR matches householderQ column by column, orthonormal, leak-free', async () => {
  const { tf } = await import('../src/tf.js');
  const { deviceHouseholderQ } = await import('../src/optim/linalg/qr-device.js');
  const low = matmul(randomMatrix(90, 6, 51), randomMatrix(6, 90, 52), 90, 6, 90); // rank 6
  const cases: Array<[number, number, Float64Array, number]> = [
    [100, 100, randomMatrix(100, 100, 50), 100],
    [150, 70, randomMatrix(150, 70, 53), 70],
    [90, 90, low, 6], // only the range's columns are determined well in float32
  ];
  const before = tf.memory().numTensors;
  for (const [m, n, a, determined] of cases) {
    const a32 = Float32Array.from(a);
    const ref = householderQ(a32, m, n);
    const t = tf.tensor2d(a32, [m, n]);
    const qt = deviceHouseholderQ(t, 16); // several panels, and a ragged last one for n = 70
    const q = Float64Array.from(qt.dataSync());
    tf.dispose([t, qt]);
    assert.ok(orthogonalityError(q, m, n) < 1e-5 * Math.sqrt(n), `${m}×${n}: orthogonality ${orthogonalityError(q, m, n)}`);
    for (let j = 0; j < determined; j++) {
      let dot = 0;
      for (let i = 0; i < m; i++) dot += q[i * n + j] * ref[i * n + j];
      // Same LAPACK sign convention, so the columns agree with sign, not just up to it.
      assert.ok(Math.abs(dot - 1) < 1e-4, `${m}×${n} column ${j}: ⟨q, ref⟩ = ${dot}`);
    }
  }
  assert.equal(tf.memory().numTensors, before);
});
