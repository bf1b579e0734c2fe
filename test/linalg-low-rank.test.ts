/**
 * The low-rank Gram eigendecomposition (src/optim/linalg/low-rank.ts, issue 9) against the full
 * float64 `eigh` of the explicitly formed s·G·Gᵀ / s·Gᵀ·G, on seeded random G of every shape
 * class, plus the SOAP-level consequence: the first Adam-in-the-eigenbasis direction does not
 * depend on which orthonormal completion of the null space is used.
 *
 * References are independent of the code under test: Gram matrices come from the naive
 * i-k-j `matmul` of test/helpers (not low-rank.ts's blocked kernel) and the eigendecomposition
 * from the full `eigh` of the n×n matrix.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { eigh, type EighResult } from '../src/optim/linalg/eigh.js';
import { householderQ } from '../src/optim/linalg/householder.js';
import {
  completeBasis,
  defaultRankTolerance,
  eighOfGram,
  eighOfGramPair,
  DEFAULT_COST_RATES,
  gramEighCost,
  gramMatrix,
  prefersLowRank,
  type GramEighOptions,
  type GramEighResult,
  type GramSide,
} from '../src/optim/linalg/low-rank.js';
import { maxAbs, transpose } from '../src/optim/linalg/matrix.js';
import { loadNativeLapack, nativeLapackStatus } from '../src/optim/linalg/native.js';
import { frobenius, identity, matmul } from './helpers/matrix.js';
import { randomMatrix, randomOrthogonal } from './helpers/random.js';

const SCALE = 0.05; // 1 − β_s with the project's default β_s = β2 = 0.95

/** scale·G·Gᵀ (left) or scale·Gᵀ·G (right) by the naive reference matmul. */
function referenceGram(g: Float64Array, rows: number, cols: number, side: GramSide, scale: number): Float64Array {
  const gt = transpose(g, rows, cols);
  const a = side === 'left' ? matmul(g, gt, rows, cols, rows) : matmul(gt, g, cols, rows, cols);
  for (let i = 0; i < a.length; i++) a[i] *= scale;
  return a;
}

/** ‖QᵀQ − I‖_F. */
function orthogonalityError(q: Float64Array, n: number): number {
  const qtq = matmul(transpose(q, n, n), q, n, n, n);
  for (let i = 0; i < n; i++) qtq[i * n + i] -= 1;
  return frobenius(qtq);
}

/** ‖Q·diag(λ)·Qᵀ − A‖_F / ‖A‖_F (absolute when A = 0). */
function reconstructionError(a: Float64Array, r: EighResult, n: number): number {
  const scaled = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) scaled[i * n + j] = r.vectors[i * n + j] * r.values[j];
  const rec = matmul(scaled, transpose(r.vectors, n, n), n, n, n);
  for (let i = 0; i < n * n; i++) rec[i] -= a[i];
  const norm = frobenius(a);
  return norm > 0 ? frobenius(rec) / norm : frobenius(rec);
}

/** The projector V[:, :r]·V[:, :r]ᵀ (n×n) onto the span of the first r columns. */
function projector(v: Float64Array, n: number, r: number): Float64Array {
  const p = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let c = 0; c < r; c++) acc += v[i * n + c] * v[j * n + c];
      p[i * n + j] = acc;
    }
  }
  return p;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

interface Errors {
  values: number;
  projector: number;
  orthogonality: number;
  reconstruction: number;
}

/** Largest errors seen over the whole file, reported at the end (test 'summary'). */
const worst: Errors = { values: 0, projector: 0, orthogonality: 0, reconstruction: 0 };

/**
 * Checks eighOfGram on one side against the full eigh of the explicit Gram matrix: all
 * eigenvalues (zeros included) to 1e-10·λ_max, the projector onto the first `rank` columns to
 * 1e-10, ‖QᵀQ − I‖ ≤ 1e-12, reconstruction ≤ 1e-12, values descending.
 */
function checkSide(
  t: TestContext,
  g: Float64Array,
  rows: number,
  cols: number,
  side: GramSide,
  options: GramEighOptions,
  expected: { rank: number; method?: 'direct' | 'low-rank' },
): GramEighResult {
  const label = `${rows}×${cols} ${side} ${options.method ?? 'auto'}`;
  const n = side === 'left' ? rows : cols;
  const scale = options.scale ?? 1;
  const a = referenceGram(g, rows, cols, side, scale);
  const ref = eigh(a, n);
  const got = eighOfGram(g, rows, cols, side, options);
  assert.equal(got.values.length, n, label);
  assert.equal(got.vectors.length, n * n, label);
  if (expected.method) assert.equal(got.method, expected.method, `${label}: path`);
  assert.equal(got.rank, expected.rank, `${label}: rank`);
  for (let j = 1; j < n; j++) assert.ok(got.values[j] <= got.values[j - 1], `${label}: values not descending at ${j}`);
  const top = Math.max(ref.values[0], Number.MIN_VALUE);
  const errors: Errors = {
    values: maxDiff(got.values, ref.values) / top,
    projector: 0,
    orthogonality: orthogonalityError(got.vectors, n),
    reconstruction: reconstructionError(a, got, n),
  };
  if (expected.rank > 0) {
    const diff = projector(got.vectors, n, expected.rank);
    const p = projector(ref.vectors, n, expected.rank);
    for (let i = 0; i < diff.length; i++) diff[i] -= p[i];
    errors.projector = frobenius(diff);
  }
  t.diagnostic(
    `${label}: rank ${got.rank} (${got.method}); max|Δλ|/λ₀ ${errors.values.toExponential(2)}, ` +
      `‖ΔP‖ ${errors.projector.toExponential(2)}, ‖QᵀQ−I‖ ${errors.orthogonality.toExponential(2)}, ` +
      `rec ${errors.reconstruction.toExponential(2)}`,
  );
  assert.ok(errors.values <= 1e-10, `${label}: eigenvalue error ${errors.values}`);
  assert.ok(errors.projector <= 1e-10, `${label}: projector error ${errors.projector}`);
  assert.ok(errors.orthogonality <= 1e-12, `${label}: ‖QᵀQ − I‖ = ${errors.orthogonality}`);
  assert.ok(errors.reconstruction <= 1e-12, `${label}: reconstruction ${errors.reconstruction}`);
  for (const key of Object.keys(worst) as Array<keyof Errors>) worst[key] = Math.max(worst[key], errors[key]);
  return got;
}

/** Both sides with the automatic path, and each side forced through the low-rank path. */
function checkShape(t: TestContext, rows: number, cols: number, seed: number, rank = Math.min(rows, cols)): void {
  const g = randomMatrix(rows, cols, seed);
  for (const side of ['left', 'right'] as const) {
    const method = prefersLowRank(rows, cols, side) ? 'low-rank' : 'direct';
    checkSide(t, g, rows, cols, side, { scale: SCALE }, { rank, method });
    checkSide(t, g, rows, cols, side, { scale: SCALE, method: 'low-rank' }, { rank, method: 'low-rank' });
  }
}

test('eighOfGram: tall, wide and square G against the full eigh of the explicit Gram matrix', (t) => {
  checkShape(t, 96, 40, 11);
  checkShape(t, 40, 96, 12);
  checkShape(t, 48, 48, 13);
  checkShape(t, 50, 47, 14); // odd sizes: edge tiles of the kernels
});

test('eighOfGram: 360m proportions at reduced size (64×256 and 256×64, QR panels and kernel blocks)', (t) => {
  checkShape(t, 64, 256, 21);
  checkShape(t, 256, 64, 22);
});

test('eighOfGram: vectors 1×m and n×1 (rank 1)', (t) => {
  checkShape(t, 1, 33, 31);
  checkShape(t, 33, 1, 32);
  // One sample: the small Gram is the 1×1 ‖g‖², and the large side's basis is g/‖g‖ plus a completion.
  const g = randomMatrix(1, 9, 33);
  const r = eighOfGram(g, 1, 9, 'right', { method: 'low-rank' });
  let norm2 = 0;
  for (const v of g) norm2 += v * v;
  assert.ok(Math.abs(r.values[0] - norm2) <= 1e-14 * norm2);
  for (let i = 0; i < 9; i++) assert.ok(Math.abs(r.vectors[i * 9] - g[i] / Math.sqrt(norm2)) <= 1e-15, 'first column is +g/‖g‖');
});

test('eighOfGram: rank-deficient G = A·B finds the rank through the threshold', (t) => {
  // Rank 7 in exact arithmetic; in float64 the other singular values are rounding noise, the
  // small Gram's eigenvalues there are ~1e-16·λ₀ of either sign, far below max(n,k)·ε·λ₀.
  const rows = 60;
  const cols = 45;
  const rank = 7;
  const g = matmul(randomMatrix(rows, rank, 41), randomMatrix(rank, cols, 42), rows, rank, cols);
  for (const side of ['left', 'right'] as const) {
    checkSide(t, g, rows, cols, side, { scale: SCALE, method: 'low-rank' }, { rank, method: 'low-rank' });
    const direct = checkSide(t, g, rows, cols, side, { scale: SCALE, method: 'direct' }, { rank, method: 'direct' });
    // The reference's own null eigenvalues are noise of size ~ε·λ₀; ours are exact zeros.
    assert.ok(Math.abs(direct.values[rank]) <= 1e-13 * direct.values[0]);
  }
  const low = eighOfGram(g, rows, cols, 'left', { method: 'low-rank' });
  for (let j = rank; j < rows; j++) assert.equal(low.values[j], 0);
  // Without the threshold (keep every λ > 0) noise eigenvalues of the small Gram pass as rank:
  // their U columns are rounding noise blown up by 1/σ. The QR still makes the basis
  // orthonormal, but the rank is wrong, which is what the threshold prevents.
  const noThreshold = eighOfGram(g, rows, cols, 'left', { method: 'low-rank', rankTolerance: 0 });
  t.diagnostic(`rank without threshold: ${noThreshold.rank} (true ${rank}); smallest kept λ/λ₀ ${(noThreshold.values[noThreshold.rank - 1] / noThreshold.values[0]).toExponential(2)}`);
  assert.ok(noThreshold.rank > rank, `rank without threshold ${noThreshold.rank}`);
  assert.ok(orthogonalityError(noThreshold.vectors, rows) <= 1e-12);
});

test('eighOfGram: known singular values either side of the threshold', (t) => {
  // G = U₀·diag(s)·V₀ᵀ (n×k) with exact orthogonal factors: eigenvalues of G·Gᵀ are s² then 0.
  const n = 128;
  const k = 32;
  const u0 = randomOrthogonal(n, 51);
  const v0 = randomOrthogonal(k, 52);
  const s = Float64Array.from({ length: k }, (_, j) => (j < 28 ? 2 ** (-j / 4) : [1e-5, 3e-6, 1e-9, 1e-12][j - 28]));
  const us = new Float64Array(n * k);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) us[i * k + j] = u0[i * n + j] * s[j];
  const g = matmul(us, transpose(v0, k, k), n, k, k);
  const tol = defaultRankTolerance(n, k); // 128·2⁻⁵² ≈ 2.8e-14: keeps s = 1e-5, 3e-6 (s² ≥ 9e-12), drops 1e-9, 1e-12
  const r = eighOfGram(g, n, k, 'left');
  assert.equal(r.method, 'low-rank');
  assert.equal(r.rank, 30, `rank with tol ${tol}`);
  let err = 0;
  for (let j = 0; j < n; j++) err = Math.max(err, Math.abs(r.values[j] - (j < 30 ? s[j] * s[j] : 0)));
  // The well-separated singular directions are recovered: |⟨q_j, u₀_j⟩| ≈ 1 for the top 28.
  let angle = 0;
  for (let j = 0; j < 28; j++) {
    let dot = 0;
    for (let i = 0; i < n; i++) dot += r.vectors[i * n + j] * u0[i * n + j];
    angle = Math.max(angle, 1 - Math.abs(dot));
  }
  t.diagnostic(`max|λ − s²| ${err.toExponential(2)}, max(1 − |cos|) over the top 28 ${angle.toExponential(2)}`);
  assert.ok(err <= 1e-14, `eigenvalue error ${err}`);
  assert.ok(angle <= 1e-12, `eigenvector angle ${angle}`);
  assert.ok(orthogonalityError(r.vectors, n) <= 1e-12);
  assert.ok(reconstructionError(referenceGram(g, n, k, 'left', 1), r, n) <= 1e-12);
});

test('eighOfGram: G = 0 gives the identity basis and zero eigenvalues, like eigh of the zero matrix', () => {
  const zeroEigh = eigh(new Float64Array(36), 6);
  assert.deepEqual([...zeroEigh.vectors], [...identity(6)], 'eigh of 0 is the identity');
  for (const [rows, cols] of [
    [6, 3],
    [3, 6],
    [4, 4],
  ]) {
    const g = new Float64Array(rows * cols);
    for (const side of ['left', 'right'] as const) {
      const n = side === 'left' ? rows : cols;
      for (const method of ['auto', 'direct', 'low-rank'] as const) {
        const r = eighOfGram(g, rows, cols, side, { method, scale: SCALE });
        assert.equal(r.rank, 0);
        assert.deepEqual([...r.values], new Array<number>(n).fill(0), `${rows}×${cols} ${side} ${method}`);
        assert.deepEqual([...r.vectors], [...identity(n)], `${rows}×${cols} ${side} ${method}`);
      }
    }
  }
});

test('eighOfGram: float32 input, scale, and input validation', () => {
  const g = randomMatrix(20, 50, 61);
  const g32 = Float32Array.from(g);
  const a = eighOfGram(g32, 20, 50, 'right', { scale: 0.25 });
  const b = eighOfGram(Float64Array.from(g32), 20, 50, 'right', { scale: 0.25 });
  assert.deepEqual(a, b);
  const unscaled = eighOfGram(g, 20, 50, 'right');
  const scaled = eighOfGram(g, 20, 50, 'right', { scale: 0.25 });
  assert.ok(maxDiff(scaled.values, unscaled.values.map((v) => v * 0.25)) <= 1e-14 * scaled.values[0]);
  assert.ok(maxDiff(scaled.vectors, unscaled.vectors) <= 1e-12, 'scaling does not change the basis');
  assert.throws(() => eighOfGram(g, 20, 49, 'left'), /expected/);
  assert.throws(() => eighOfGram(g, 20, 50, 'left', { scale: 0 }), /scale/);
  assert.throws(() => eighOfGram(g, 20, 50, 'right', { rankTolerance: 1 }), /rankTolerance/);
  const bad = Float64Array.from(g);
  bad[7] = Number.NaN;
  assert.throws(() => eighOfGram(bad, 20, 50, 'left'), /non-finite/);
  // gramMatrix is the explicit (exactly symmetric) statistic.
  const l = gramMatrix(g, 20, 50, 'left', SCALE);
  assert.ok(maxDiff(l, referenceGram(g, 20, 50, 'left', SCALE)) <= 1e-13 * maxAbs(l));
  for (let i = 0; i < 20; i++) for (let j = 0; j < 20; j++) assert.equal(l[i * 20 + j], l[j * 20 + i]);
});

test('eighOfGram: the eigensolver and the QR are injected (the small eigh only sees k×k)', (t) => {
  const rows = 24;
  const cols = 90;
  const g = randomMatrix(rows, cols, 71);
  const sizes: number[] = [];
  const spy = (a: Float64Array, n: number): EighResult => {
    sizes.push(n);
    return eigh(a, n);
  };
  const withSpy = eighOfGram(g, rows, cols, 'right', { scale: SCALE, smallEigh: spy });
  assert.deepEqual(sizes, [rows], 'one eigensolve, of the small side');
  const plain = eighOfGram(g, rows, cols, 'right', { scale: SCALE });
  assert.deepEqual(withSpy, plain);
  // A QR with householderQ's contract on [U | 0] gives the same basis as the built-in one.
  const viaQr = eighOfGram(g, rows, cols, 'right', { scale: SCALE, qr: householderQ });
  const dq = maxDiff(viaQr.vectors, plain.vectors);
  t.diagnostic(`injected householderQ vs built-in completion: max|ΔQ| ${dq.toExponential(2)}`);
  assert.ok(dq <= 1e-13);
  // eighOfGramPair: both sides from one small eigensolve.
  sizes.length = 0;
  const pair = eighOfGramPair(g, rows, cols, { scale: SCALE, smallEigh: spy });
  assert.deepEqual(sizes, [rows]);
  assert.deepEqual(pair.right, plain);
  assert.deepEqual(pair.left, eighOfGram(g, rows, cols, 'left', { scale: SCALE }));
  const tall = eighOfGramPair(transpose(g, rows, cols), cols, rows, { scale: SCALE, smallEigh: spy });
  assert.deepEqual(sizes, [rows, rows]);
  assert.deepEqual(tall.left.values, plain.values);
});

const lapack = loadNativeLapack();
test(
  'eighOfGram: with native LAPACK eigh and QR injected',
  { skip: lapack ? false : `native LAPACK not available: ${nativeLapackStatus().reason}` },
  (t) => {
    if (!lapack) return;
    const smallEigh = (a: Float64Array, n: number): EighResult => lapack.eigh(Float64Array.from(a), n);
    const qr = (a: Float64Array, m: number, n: number): Float64Array => lapack.qr(a, m, n);
    const g = randomMatrix(64, 256, 81);
    checkSide(t, g, 64, 256, 'right', { scale: SCALE, smallEigh }, { rank: 64, method: 'low-rank' });
    checkSide(t, g, 64, 256, 'right', { scale: SCALE, smallEigh, qr }, { rank: 64, method: 'low-rank' });
    checkSide(t, g, 64, 256, 'left', { scale: SCALE, smallEigh, qr }, { rank: 64, method: 'direct' });
    // The kernels the pool injects with LAPACK: ?gemm for the products, the unpadded full QR.
    const kernels = {
      gemm: (a: Float64Array, b: Float64Array, m: number, n: number, k: number, ta: boolean, tb: boolean) => lapack.gemm(a, b, m, n, k, ta, tb),
      qrFull: (u: Float64Array, n: number, r: number) => lapack.qrFull(u, n, r),
    };
    checkSide(t, g, 64, 256, 'right', { scale: SCALE, smallEigh, kernels }, { rank: 64, method: 'low-rank' });
    checkSide(t, g, 64, 256, 'left', { scale: SCALE, smallEigh, kernels }, { rank: 64, method: 'direct' });
    // A rank-deficient G (rank 9 < 64): the completion covers the whole null space.
    const deficient = matmul(randomMatrix(64, 9, 82), randomMatrix(9, 256, 83), 64, 9, 256);
    checkSide(t, deficient, 64, 256, 'right', { scale: SCALE, smallEigh, kernels }, { rank: 9, method: 'low-rank' });
  },
);

test('completeBasis: orthonormal completion whose first columns keep u (signs included)', () => {
  const n = 70;
  const r = 33;
  // u = an orthonormal n×r block perturbed by 1e-9 (what U = X·V·Σ⁻¹ looks like).
  const base = randomOrthogonal(n, 91);
  const noise = randomMatrix(n, r, 92);
  const u = new Float64Array(n * r);
  for (let i = 0; i < n; i++) for (let j = 0; j < r; j++) u[i * r + j] = (j % 2 ? -1 : 1) * base[i * n + j] + 1e-9 * noise[i * r + j];
  const q = completeBasis(u, n, r);
  assert.ok(orthogonalityError(q, n) <= 1e-13);
  let dev = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < r; j++) dev = Math.max(dev, Math.abs(q[i * n + j] - u[i * r + j]));
  assert.ok(dev <= 1e-8, `first columns stay u up to its non-orthogonality: ${dev}`);
  // Columns r… are orthogonal to u.
  let cross = 0;
  for (let c = r; c < n; c++) {
    for (let j = 0; j < r; j++) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += q[i * n + c] * u[i * r + j];
      cross = Math.max(cross, Math.abs(dot));
    }
  }
  assert.ok(cross <= 1e-14, `complement ⟂ u: ${cross}`);
  assert.deepEqual([...completeBasis(new Float64Array(0), 5, 0)], [...identity(5)]);
  assert.throws(() => completeBasis(new Float64Array(12), 3, 4), /r ≤ n/);
});

test('gramEighCost / prefersLowRank: the low-rank path for the larger side, when it pays', () => {
  const c = gramEighCost(1024, 4096, 'right');
  assert.ok(c.lowRank.seconds < c.direct.seconds / 4, JSON.stringify(c));
  assert.equal(c.direct.eigh, (17 / 3) * 4096 ** 3);
  assert.ok(prefersLowRank(1024, 4096, 'right'));
  assert.ok(prefersLowRank(4096, 1024, 'left'));
  assert.ok(!prefersLowRank(1024, 4096, 'left'), 'never for the smaller side');
  assert.ok(!prefersLowRank(1024, 1024, 'right'), 'nor for square');
  assert.ok(!prefersLowRank(1024, 1100, 'right'), 'nor for nearly square');
  // A 20× faster (native) eigh with the TypeScript completion: the direct path wins at 1024×4096;
  // with a native QR for the completion as well, the low-rank path wins again.
  const native = { eigh: 20 * DEFAULT_COST_RATES.eigh };
  assert.ok(!prefersLowRank(1024, 4096, 'right', native));
  assert.ok(prefersLowRank(1024, 4096, 'right', { ...native, qr: 20 * DEFAULT_COST_RATES.gemm }));
  // The rank enters the estimate (the k×k eigh does not shrink with it).
  assert.ok(gramEighCost(1024, 4096, 'right', { rank: 64 }).lowRank.seconds < c.lowRank.seconds / 3);
});

// ------------------------------------------------------------------------------------------
// SOAP level

/**
 * The first SOAP direction for gradient g in bases (qL, qR), on the host in float64:
 * G' = Q_Lᵀ·G·Q_R, M = (1−β1)G', V = (1−β2)G'², N = Q_L·(M/(√V + eps))·Q_Rᵀ.
 * `keepL`/`keepR` zero the normalised entries outside the first keepL rows / keepR columns.
 */
function adamDirection(
  g: Float64Array,
  rows: number,
  cols: number,
  qL: Float64Array,
  qR: Float64Array,
  eps: number,
  keep: { rows: number; cols: number } = { rows, cols },
): Float64Array {
  const [beta1, beta2] = [0.95, 0.95];
  const rotated = matmul(matmul(transpose(qL, rows, rows), g, rows, rows, cols), qR, rows, cols, cols);
  const f = new Float64Array(rows * cols);
  for (let i = 0; i < keep.rows; i++) {
    for (let j = 0; j < keep.cols; j++) {
      const x = rotated[i * cols + j];
      f[i * cols + j] = ((1 - beta1) * x) / (Math.sqrt((1 - beta2) * x * x) + eps);
    }
  }
  return matmul(matmul(qL, f, rows, rows, cols), transpose(qR, cols, cols), rows, cols, cols);
}

function relativeDiff(a: Float64Array, b: Float64Array): number {
  const d = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) d[i] = a[i] - b[i];
  return frobenius(d) / frobenius(b);
}

/** Eigenvectors of A from eigh of the reversed-index P·A·Pᵀ: an equally valid eigh with other rounding. */
function permutedEighVectors(a: Float64Array, n: number): Float64Array {
  const pa = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) pa[i * n + j] = a[(n - 1 - i) * n + (n - 1 - j)];
  const v = eigh(pa, n).vectors;
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) out.set(v.subarray(i * n, i * n + n), (n - 1 - i) * n);
  return out;
}

test('SOAP: on the first gradient the rotated G is diagonal up to rounding, so the completion enters only through eps-amplified noise', (t) => {
  // With Q_L, Q_R the eigenbases of G·Gᵀ and Gᵀ·G (G's singular vectors), G' = Q_Lᵀ·G·Q_R = Σ
  // in exact arithmetic: the null-space columns AND the off-diagonal range entries are 0, so
  // N = Q_L·(M/(√V+eps))·Q_Rᵀ = N* = Σⱼ c(σⱼ)·uⱼvⱼᵀ, c(σ) = (1−β1)σ/(√(1−β2)σ + eps), whatever
  // the completion. Computed, those zeros are rounding noise δ, which the elementwise map turns
  // into (1−β1)·δ/eps while δ ≪ eps, and into ±(1−β1)/√(1−β2) once eps ≲ δ (eps = 0 would give 0/0 on exact zeros). So every valid
  // basis gives N* plus noise ∝ δ/eps: ours (δ ≈ 1e-15·σ_max: Q_R = Gᵀ·Q_L·Σ⁻¹ is paired with
  // Q_L by construction) no more than two independent full eighs (δ ≈ 1e-13·σ_max: each basis
  // carries its own eigenvector error ε·λ₀/gap), nor than an eigh of the index-reversed matrix.
  const rows = 48;
  const cols = 192; // R = (1−β)GᵀG is 192×192 of rank 48: 144 null directions
  const [beta1, beta2] = [0.95, 0.95];
  for (const gradScale of [1, 1e-3]) {
    const g = randomMatrix(rows, cols, 101).map((v) => v * gradScale);
    const ours = eighOfGramPair(g, rows, cols, { scale: SCALE });
    assert.equal(ours.right.method, 'low-rank');
    const lRef = referenceGram(g, rows, cols, 'left', SCALE);
    const rRef = referenceGram(g, rows, cols, 'right', SCALE);
    const bases: Record<string, [Float64Array, Float64Array]> = {
      ours: [ours.left.vectors, ours.right.vectors],
      eigh: [eigh(lRef, rows).vectors, eigh(rRef, cols).vectors],
      'eigh(PAPᵀ)': [permutedEighVectors(lRef, rows), permutedEighVectors(rRef, cols)],
    };
    const sigma = Float64Array.from({ length: rows }, (_, j) => Math.sqrt(ours.left.values[j] / SCALE));
    const sigmaMax = sigma[0];
    for (const [name, [qL, qR]] of Object.entries(bases)) {
      const rotated = matmul(matmul(transpose(qL, rows, rows), g, rows, rows, cols), qR, rows, cols, cols);
      let nullMax = 0;
      let offMax = 0;
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < cols; j++) {
          const v = Math.abs(rotated[i * cols + j]);
          if (j >= rows) nullMax = Math.max(nullMax, v);
          else if (j !== i) offMax = Math.max(offMax, v);
        }
      }
      t.diagnostic(
        `scale ${gradScale}, ${name}: max|G'| null columns ${(nullMax / sigmaMax).toExponential(2)}·σ_max, ` +
          `off-diagonal range ${(offMax / sigmaMax).toExponential(2)}·σ_max`,
      );
      assert.ok(nullMax <= 1e-14 * sigmaMax, `${name}: null-space entries ${nullMax} vs σ_max ${sigmaMax}`);
      assert.ok(offMax <= (name === 'ours' ? 1e-14 : 1e-11) * sigmaMax, `${name}: off-diagonal ${offMax} vs σ_max ${sigmaMax}`);
    }
    const report: string[] = [];
    for (const eps of [1e-4, 1e-6, 1e-8, 1e-12, 1e-30]) {
      // N* from our singular pairs (uⱼ = Q_L[:, j], vⱼ = Q_R[:, j]) and the exact diagonal.
      const [uL, vR] = bases.ours;
      const exact = new Float64Array(rows * cols);
      for (let i = 0; i < rows; i++) {
        for (let c = 0; c < cols; c++) {
          let acc = 0;
          for (let j = 0; j < rows; j++) acc += uL[i * rows + j] * vR[c * cols + j] * (((1 - beta1) * sigma[j]) / (Math.sqrt(1 - beta2) * sigma[j] + eps));
          exact[i * cols + c] = acc;
        }
      }
      const d: Record<string, number> = {};
      for (const [name, [qL, qR]] of Object.entries(bases)) d[name] = relativeDiff(adamDirection(g, rows, cols, qL, qR, eps), exact);
      report.push(`eps ${eps}: ` + Object.entries(d).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', '));
      // The law: ≲ 1e3·ε·σ_max/eps (√entries noise terms of ≲ 10 ε σ_max each against ‖N‖),
      // and never worse than the full eighs'.
      const law = (1e3 * 2 ** -52 * sigmaMax) / eps;
      if (law < 1e-2) assert.ok(d.ours <= law, `eps ${eps}, scale ${gradScale}: ${d.ours} > ${law}`);
      assert.ok(d.ours <= 2 * Math.min(d.eigh, d['eigh(PAPᵀ)']) + 1e-13, `eps ${eps}, scale ${gradScale}: ${JSON.stringify(d)}`);
      if (eps === 1e-30) assert.ok(d.ours > 0.1, `eps ≈ 0: the normalised noise is O(1) for any basis: ${JSON.stringify(d)}`);
    }
    t.diagnostic(`scale ${gradScale} (σ_max ${sigmaMax.toPrecision(3)}): ‖N_basis − N*‖/‖N*‖ — ${report.join('; ')}`);
  }
});

test('SOAP: the first real update (G₂ in the basis of G₁) depends on the completion, as with any eigh', (t) => {
  // The project's SOAP (like the reference) takes no step on G₁; the first Adam step rotates G₂,
  // which has components in G₁'s null space. Those entries are not noise, and an elementwise
  // normalisation is not invariant under a rotation within the null space, so the direction
  // depends on the completion exactly as it depends on which eigh (TS, LAPACK, torch) picked
  // the null basis. What is basis-independent is the range × range block.
  const rows = 48;
  const cols = 192;
  const g1 = randomMatrix(rows, cols, 111);
  const g2 = randomMatrix(rows, cols, 112);
  const ours = eighOfGramPair(g1, rows, cols, { scale: SCALE });
  const refL = eigh(referenceGram(g1, rows, cols, 'left', SCALE), rows).vectors;
  const refR = eigh(referenceGram(g1, rows, cols, 'right', SCALE), cols).vectors;
  const rangeOnly = { rows, cols: rows };
  const dRange = relativeDiff(
    adamDirection(g2, rows, cols, ours.left.vectors, ours.right.vectors, 1e-8, rangeOnly),
    adamDirection(g2, rows, cols, refL, refR, 1e-8, rangeOnly),
  );
  const dFull = relativeDiff(
    adamDirection(g2, rows, cols, ours.left.vectors, ours.right.vectors, 1e-8),
    adamDirection(g2, rows, cols, refL, refR, 1e-8),
  );
  t.diagnostic(`G₂ in G₁'s basis: range-block direction differs by ${dRange.toExponential(2)}, full direction by ${dFull.toExponential(2)} (relative)`);
  assert.ok(dRange <= 1e-12);
  assert.ok(dFull > 0.05, 'the null-space part of the first real step is completion-dependent');
});

test('summary: largest errors against the full eigh over this file', (t) => {
  t.diagnostic(
    `max|Δλ|/λ₀ ${worst.values.toExponential(2)}, ‖ΔP‖_F ${worst.projector.toExponential(2)}, ` +
      `‖QᵀQ−I‖_F ${worst.orthogonality.toExponential(2)}, reconstruction ${worst.reconstruction.toExponential(2)}`,
  );
});
