/**
 * The optimizers' matrix products (src/optim/tensor-modes.ts) on both placements, against
 * float64 references computed here: native ?gemm on host copies or views (wasm heap views
 * included) and tf.matMul must agree with plain loops to float32 rounding; the host
 * permutation must move exactly the entries tf.gather would.
 */
import '@tensorflow/tfjs-backend-wasm';
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { tf } from '../src/tf.js';
import { selectBackend } from '../src/backend/select.js';
import { loadNativeLapack } from '../src/optim/linalg/native.js';
import {
  gramPair,
  hostView,
  matMul2d,
  modeProduct,
  permuteAxis,
  permuteHost,
  productPlacement,
  setProductPlacement,
  type ProductPlacement,
} from '../src/optim/tensor-modes.js';
import { setMatMulEngine } from '../src/backend/blas-matmul.js';
import { normalRng } from './helpers/random.js';

const noNative = loadNativeLapack() ? false : 'the native BLAS is not built (npm run native)';
const placements: ProductPlacement[] = noNative ? ['device'] : ['device', 'host'];

after(() => setProductPlacement(null));

/** Row-major float64 product op(a)·op(b) (a: ra×ca, b: rb×cb as stored). */
function reference(a: ArrayLike<number>, ra: number, ca: number, ta: boolean, b: ArrayLike<number>, rb: number, cb: number, tb: boolean): Float64Array {
  const [m, k] = ta ? [ca, ra] : [ra, ca];
  const n = tb ? rb : cb;
  const at = (i: number, p: number) => (ta ? a[p * ca + i] : a[i * ca + p]);
  const bt = (p: number, j: number) => (tb ? b[j * cb + p] : b[p * cb + j]);
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += at(i, p) * bt(p, j);
    out[i * n + j] = s;
  }
  return out;
}

/** max |got − want| / max |want|: float32 products of these sizes land near 1e-7. */
function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  assert.equal(got.length, want.length);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return err / scale;
}

function matrix(rows: number, cols: number, seed: number): { t: tf.Tensor2D; v: Float32Array } {
  const rng = normalRng(seed);
  const v = Float32Array.from({ length: rows * cols }, rng);
  return { t: tf.tensor2d(v, [rows, cols]), v };
}

for (const backend of ['cpu', 'wasm'] as const) {
  for (const placement of placements) {
    test(`${backend}, ${placement}: matMul2d, modeProduct and gramPair equal float64 products to float32 rounding`, async () => {
      await selectBackend(backend);
      setProductPlacement(placement);
      tf.tidy(() => {
        const x = matrix(6, 9, 1);
        const a0 = matrix(6, 6, 2);
        const a1 = matrix(9, 9, 3);
        for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
          const b = matrix(9, 9, 4);
          const a = ta ? matrix(9, 6, 5) : x;
          const got = matMul2d(a.t, b.t, ta, tb);
          assert.deepEqual(got.shape, [6, 9]);
          assert.ok(relErr(got.dataSync(), reference(a.v, a.t.shape[0], a.t.shape[1], ta, b.v, 9, 9, tb)) < 1e-6, `matMul2d ${ta} ${tb}`);
        }
        // A₀·X·A₁ᵀ with each factor as given or transposed (the `transposed` flag means A = mᵀ).
        for (const [t0, t1] of [[false, false], [true, true], [true, false]] as const) {
          const left = reference(a0.v, 6, 6, t0, x.v, 6, 9, false);
          const want = reference(left, 6, 9, false, a1.v, 9, 9, !t1);
          const got = modeProduct(x.t, [{ m: a0.t, transposed: t0 }, { m: a1.t, transposed: t1 }]);
          assert.ok(relErr(got.dataSync(), want) < 1e-6, `modeProduct ${t0} ${t1}`);
        }
        const onlyRight = modeProduct(x.t, [null, { m: a1.t, transposed: true }]);
        assert.ok(relErr(onlyRight.dataSync(), reference(x.v, 6, 9, false, a1.v, 9, 9, false)) < 1e-6, 'modeProduct, right factor only');
        assert.equal(modeProduct(x.t, [null, null]), x.t);
        // A 3-D tensor: X ×₀ A₀ ×₂ A₂ against the definition Σ A₀[i,p]·X[p,j,q]·A₂[k,q].
        const rng = normalRng(6);
        const x3v = Float32Array.from({ length: 2 * 3 * 4 }, rng);
        const a2 = matrix(4, 4, 7);
        const b0 = matrix(2, 2, 8);
        const got3 = modeProduct(tf.tensor3d(x3v, [2, 3, 4]), [{ m: b0.t }, null, { m: a2.t }]).dataSync();
        const want3 = new Float64Array(24);
        for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) {
          let s = 0;
          for (let p = 0; p < 2; p++) for (let q = 0; q < 4; q++) s += b0.v[i * 2 + p] * x3v[p * 12 + j * 4 + q] * a2.v[k * 4 + q];
          want3[i * 12 + j * 4 + k] = s;
        }
        assert.ok(relErr(got3, want3) < 1e-6, 'modeProduct, rank 3');
        // (sX)·(sX)ᵀ and (sX)ᵀ·(sX) with s = 0.5: a quarter of the plain Gram matrices.
        const [l, r] = gramPair(x.t, 0.5, true, true);
        const ggt = reference(x.v, 6, 9, false, x.v, 6, 9, true).map((e) => e / 4);
        const gtg = reference(x.v, 6, 9, true, x.v, 6, 9, false).map((e) => e / 4);
        assert.ok(relErr(l!.dataSync(), ggt) < 1e-6 && relErr(r!.dataSync(), gtg) < 1e-6, 'gramPair');
        assert.deepEqual(gramPair(x.t, 1, false, true)[0], null);
      });
    });
  }

  test(`${backend}: permuteAxis moves exactly the entries tf.gather names, on every axis`, async () => {
    await selectBackend(backend);
    tf.tidy(() => {
      const values = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 1.5 - 7);
      const x = tf.tensor3d(values, [2, 3, 4]);
      for (const [axis, order] of [[0, [1, 0]], [1, [2, 0, 1]], [2, [3, 1, 0, 2]]] as const) {
        const idx = tf.tensor1d(order as readonly number[] as number[], 'int32');
        const want = [...tf.gather(x, idx, axis).dataSync()];
        assert.deepEqual([...permuteAxis(x, axis, idx).dataSync()], want, `axis ${axis}`);
        assert.deepEqual([...permuteHost(values, [2, 3, 4], axis, order)], want, `permuteHost axis ${axis}`);
      }
    });
  });
}

test('wasm: hostView reads a tensor in place (values equal, nothing copied); products run on the host only with the native BLAS and the XNNPACK engine', async () => {
  await selectBackend('wasm');
  setProductPlacement(null);
  tf.tidy(() => {
    const { t, v } = matrix(5, 7, 11);
    const view = hostView(t);
    assert.deepEqual([...view], [...v]);
    // The same buffer twice: a view into the backend's heap, not a fresh copy per read.
    assert.equal(hostView(t).buffer, view.buffer);
    assert.notEqual(t.dataSync().buffer, view.buffer);
  });
  // With the native BLAS, wasm's own matMul is OpenBLAS on the heap: the device path is the
  // same sgemm without the upload. With the XNNPACK engine the products go to the host.
  assert.equal(productPlacement(), 'device');
  setMatMulEngine('xnnpack');
  try {
    assert.equal(productPlacement(), noNative ? 'device' : 'host');
  } finally {
    setMatMulEngine(undefined);
  }
  const saved = process.env.SOAP_TRAIN_NATIVE;
  process.env.SOAP_TRAIN_NATIVE = '0';
  try {
    assert.equal(productPlacement(), 'device');
  } finally {
    if (saved === undefined) delete process.env.SOAP_TRAIN_NATIVE;
    else process.env.SOAP_TRAIN_NATIVE = saved;
  }
});
