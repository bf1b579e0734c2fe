/**
 * Start-up self-check of the kernels that wasm-kernels.ts registers for the wasm backend.
 *
 * Those kernels reach into private parts of `@tensorflow/tfjs-backend-wasm` (the wasm module's
 * exported C functions, the backend's data map and heap layout), which the package does not
 * promise to keep. package.json pins the version they were written against; this check is the
 * second line of defence: each registered kernel runs on small deterministic cases (every
 * BatchMatMul route: plain, transposed operands, batched views, a shared b, the swapped
 * product, the stock fallback for a broadcast a; Identity's buffer sharing; UnsortedSegmentSum
 * with repeated, empty and out-of-range segments) and is compared with a plain-JS float64
 * reference. The harness itself uses only the public `KernelBackend` interface (write,
 * readSync, disposeData, numDataIds), so it works whatever the internals look like, and it
 * calls the registered kernel functions directly, so it does not matter which backend is
 * active. It also checks that no buffer is left behind. A few milliseconds in all.
 */
import type { KernelBackend, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { tf } from '../tf.js';

/** The kernels the check knows how to exercise. */
export type CheckedKernel = 'BatchMatMul' | 'Identity' | 'UnsortedSegmentSum' | 'Sum' | 'GatherV2' | 'SoapGelu' | 'SoapGeluGrad' | 'SoapRope';

/** x, gelu(x) and gelu'(x) in float64 (Python's math.erfc: x·Φ(x) and Φ(x) + x·φ(x)). */
const GELU_REFERENCE: Array<[number, number, number]> = [
  [-3.0, -0.004049694094890287, -0.011945647204183927],
  [-1.0, -0.15865525393145707, -0.08331547058768629],
  [-0.25, -0.10032341857926907, 0.30462664511636395],
  [0.0, 0.0, 0.5],
  [0.5, 0.34573123063700656, 0.8674951246561629],
  [1.0, 0.8413447460685429, 1.0833154705876864],
  [2.0, 1.9544997361036416, 1.085231801078197],
];

export interface SelfCheckResult {
  ok: boolean;
  /** Wall time of the check, in milliseconds. */
  ms: number;
  /** The first failure, one line: the kernel, the case and what went wrong. */
  failure?: string;
}

/** Relative tolerance, ‖got − want‖ / ‖want‖ (XNNPACK sums in another order: ~1e-7 here). */
export const SELF_CHECK_TOLERANCE = 1e-5;

/**
 * Test hooks, not part of any user-facing interface: `tamper` sees (and may alter, or throw on)
 * every result the check reads back, so a test can make it see a wrong answer.
 * @internal
 */
export const selfCheckTestHooks: {
  tamper?: (kernel: CheckedKernel, values: Float32Array | Int32Array) => void;
} = {};

class CheckFailure extends Error {}

/** The case being run, for the failure message when a kernel throws. */
let currentCase = '';

/** Deterministic values in [-1, 1) (an LCG; also the wasm tests' inputs). */
export function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

const size = (shape: number[]): number => shape.reduce((p, s) => p * s, 1);

function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) return Infinity;
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

/** a·b (each optionally transposed in its last two axes) in float64; batch dims of 1 broadcast. */
function matMulRef(
  a: Float32Array,
  aShape: number[],
  b: Float32Array,
  bShape: number[],
  tA: boolean,
  tB: boolean,
): { shape: number[]; data: Float64Array } {
  const rA = aShape.length;
  const rB = bShape.length;
  const m = tA ? aShape[rA - 1] : aShape[rA - 2];
  const k = tA ? aShape[rA - 2] : aShape[rA - 1];
  const n = tB ? bShape[rB - 2] : bShape[rB - 1];
  const batchDims = Math.max(rA, rB) - 2;
  const batchShape: number[] = [];
  for (let d = 0; d < batchDims; d++) {
    const da = aShape[rA - 2 - batchDims + d] ?? 1;
    const db = bShape[rB - 2 - batchDims + d] ?? 1;
    batchShape.push(Math.max(da, db));
  }
  const batch = size(batchShape);
  const batchA = size(aShape.slice(0, -2));
  const batchB = size(bShape.slice(0, -2));
  const out = new Float64Array(batch * m * n);
  for (let t = 0; t < batch; t++) {
    // Only "equal or 1" broadcasting of the flattened batch is needed by the cases below.
    const ao = (batchA === 1 ? 0 : t) * m * k;
    const bo = (batchB === 1 ? 0 : t) * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          s += a[ao + (tA ? p * m + i : i * k + p)] * b[bo + (tB ? j * k + p : p * n + j)];
        }
        out[t * m * n + i * n + j] = s;
      }
    }
  }
  return { shape: [...batchShape, m, n], data: out };
}

/**
 * [a shape, b shape, transposeA, transposeB]. Together they take every route of the fast
 * BatchMatMul: a 2-D product, batched views with each transpose combination, the swapped
 * product (bᵀ·aᵀ)ᵀ (both transposed here, and a single transposeA with n ≫ m), a shared b
 * stacked into one product, and a broadcast a handed back to the stock kernel.
 */
const MATMUL_CASES: Array<[number[], number[], boolean, boolean]> = [
  [[5, 7], [3, 7], false, true],
  [[2, 5, 7], [2, 7, 3], false, false],
  [[2, 7, 5], [2, 7, 3], true, false],
  [[2, 5, 7], [2, 3, 7], false, true],
  [[2, 7, 5], [2, 3, 7], true, true],
  [[2, 9, 3], [2, 9, 17], true, false],
  [[2, 5, 7], [7, 3], false, false],
  [[1, 5, 7], [2, 7, 3], false, false],
];

/** Runs the currently registered wasm kernels on the cases above; see the file comment. */
export function selfCheckWasmKernels(kernels: readonly CheckedKernel[]): SelfCheckResult {
  const t0 = performance.now();
  const backend = tf.findBackend('wasm');
  if (backend == null) return { ok: false, ms: 0, failure: 'the wasm backend is not initialised' };
  const baseline = backend.numDataIds();
  const owned: TensorInfo[] = [];
  let failure: string | undefined;
  try {
    for (const name of kernels) {
      currentCase = name;
      CHECKS[name](backend, owned);
    }
  } catch (err) {
    failure = err instanceof CheckFailure ? err.message : `${currentCase}: threw ${String((err as Error)?.message ?? err).split('\n')[0]}`;
  } finally {
    for (const t of owned) {
      try {
        backend.disposeData(t.dataId, true);
      } catch {
        // Best effort: a broken kernel may have handed back something unusable.
      }
    }
  }
  if (failure === undefined && backend.numDataIds() !== baseline) {
    failure = `leaked ${backend.numDataIds() - baseline} wasm buffer(s)`;
  }
  const ms = performance.now() - t0;
  return failure === undefined ? { ok: true, ms } : { ok: false, ms, failure };
}

type Check = (backend: KernelBackend, owned: TensorInfo[]) => void;

function input(backend: KernelBackend, owned: TensorInfo[], data: Float32Array | Int32Array, shape: number[]): TensorInfo {
  const dtype = data instanceof Int32Array ? 'int32' : 'float32';
  const t: TensorInfo = { dataId: backend.write(data, shape, dtype), shape, dtype };
  owned.push(t);
  return t;
}

function run(
  name: CheckedKernel,
  backend: KernelBackend,
  owned: TensorInfo[],
  inputs: Record<string, TensorInfo>,
  attrs: Record<string, number | boolean | number[]>,
): TensorInfo {
  const kernel = tf.getKernel(name, 'wasm');
  if (!kernel) throw new CheckFailure(`${name}: no kernel registered for wasm`);
  const kernelFunc: KernelFunc = kernel.kernelFunc;
  const out = kernelFunc({ inputs, attrs, backend });
  const t = Array.isArray(out) ? out[0] : out;
  owned.push(t);
  return t;
}

function read(name: CheckedKernel, backend: KernelBackend, t: TensorInfo): Float32Array | Int32Array {
  const v = backend.readSync(t.dataId);
  if (!(v instanceof Float32Array || v instanceof Int32Array)) throw new CheckFailure(`${name}: read back ${Object.prototype.toString.call(v)}`);
  selfCheckTestHooks.tamper?.(name, v);
  return v;
}

function expect(name: string, got: TensorInfo, values: ArrayLike<number>, shape: number[], want: ArrayLike<number>): void {
  if (got.shape.length !== shape.length || got.shape.some((s, i) => s !== shape[i])) {
    throw new CheckFailure(`${name}: shape [${got.shape}], expected [${shape}]`);
  }
  const err = relErr(values, want);
  if (!(err <= SELF_CHECK_TOLERANCE)) {
    throw new CheckFailure(`${name}: relative error ${err.toPrecision(3)} > ${SELF_CHECK_TOLERANCE}`);
  }
}

const CHECKS: Record<CheckedKernel, Check> = {
  BatchMatMul(backend, owned) {
    MATMUL_CASES.forEach(([aShape, bShape, tA, tB], i) => {
      const label = `BatchMatMul [${aShape}]${tA ? 'ᵀ' : ''}×[${bShape}]${tB ? 'ᵀ' : ''}`;
      currentCase = label;
      const a = values(size(aShape), 2 * i + 1);
      const b = values(size(bShape), 2 * i + 2);
      const want = matMulRef(a, aShape, b, bShape, tA, tB);
      const out = run('BatchMatMul', backend, owned, { a: input(backend, owned, a, aShape), b: input(backend, owned, b, bShape) }, {
        transposeA: tA,
        transposeB: tB,
      });
      expect(label, out, read('BatchMatMul', backend, out), want.shape, want.data);
    });
  },

  Identity(backend, owned) {
    currentCase = 'Identity [3,4]';
    const data = values(12, 99);
    const x = input(backend, owned, data, [3, 4]);
    const y = run('Identity', backend, owned, { x }, {});
    // Shared or copied, the output must outlive the input and read the same values.
    backend.disposeData(x.dataId);
    owned.splice(owned.indexOf(x), 1);
    expect(currentCase, y, read('Identity', backend, y), [3, 4], data);
  },

  UnsortedSegmentSum(backend, owned) {
    currentCase = 'UnsortedSegmentSum [9,3] into 6';
    // Repeats (3, 0), an empty segment (2, 4), and ids outside [0, 6) that are dropped.
    const ids = new Int32Array([3, 0, 3, 5, 1, 3, 0, -1, 6]);
    const inner = 3;
    const numSegments = 6;
    const x = values(ids.length * inner, 7);
    const want = new Float64Array(numSegments * inner);
    ids.forEach((s, i) => {
      if (s < 0 || s >= numSegments) return;
      for (let j = 0; j < inner; j++) want[s * inner + j] += x[i * inner + j];
    });
    const out = run(
      'UnsortedSegmentSum',
      backend,
      owned,
      { x: input(backend, owned, x, [ids.length, inner]), segmentIds: input(backend, owned, ids, [ids.length]) },
      { numSegments },
    );
    expect(currentCase, out, read('UnsortedSegmentSum', backend, out), [numSegments, inner], want);
  },

  Sum(backend, owned) {
    // Leading axes (the override's own case, with and without keepDims, as a list and negative)
    // and a trailing axis (handed to the stock kernel).
    const shape = [3, 4, 5];
    const x = values(size(shape), 11);
    const cases: Array<{ axis: number | number[]; keepDims: boolean; outShape: number[]; keep: (i: number, j: number, l: number) => number }> = [
      { axis: 0, keepDims: false, outShape: [4, 5], keep: (_i, j, l) => j * 5 + l },
      { axis: [1, 0], keepDims: true, outShape: [1, 1, 5], keep: (_i, _j, l) => l },
      { axis: -1, keepDims: false, outShape: [3, 4], keep: (i, j) => i * 4 + j },
    ];
    for (const c of cases) {
      currentCase = `Sum [${shape}] over ${JSON.stringify(c.axis)}${c.keepDims ? ' keepDims' : ''}`;
      const want = new Float64Array(size(c.outShape));
      for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) for (let l = 0; l < 5; l++) want[c.keep(i, j, l)] += x[(i * 4 + j) * 5 + l];
      const out = run('Sum', backend, owned, { x: input(backend, owned, x, shape) }, { axis: c.axis, keepDims: c.keepDims });
      expect(currentCase, out, read('Sum', backend, out), c.outShape, want);
    }
  },

  SoapGelu(backend, owned) {
    currentCase = 'SoapGelu at x = −3 … 2';
    const x = Float32Array.from(GELU_REFERENCE, (r) => r[0]);
    const out = run('SoapGelu', backend, owned, { x: input(backend, owned, x, [x.length]) }, {});
    expect(currentCase, out, read('SoapGelu', backend, out), [x.length], GELU_REFERENCE.map((r) => r[1]));
  },

  SoapGeluGrad(backend, owned) {
    currentCase = "SoapGeluGrad: dy·gelu'(x) at x = −3 … 2";
    const x = Float32Array.from(GELU_REFERENCE, (r) => r[0]);
    const dy = Float32Array.from(GELU_REFERENCE, (_r, i) => 1 - i / 4);
    const inputs = { x: input(backend, owned, x, [x.length]), dy: input(backend, owned, dy, [x.length]) };
    const out = run('SoapGeluGrad', backend, owned, inputs, {});
    expect(currentCase, out, read('SoapGeluGrad', backend, out), [x.length], GELU_REFERENCE.map((r, i) => r[2] * dy[i]));
  },

  SoapRope(backend, owned) {
    // [B, T, H, hd] = [2, 3, 2, 4]: both directions against the rotation written out in float64.
    const [B, T, H, hd] = [2, 3, 2, 4];
    const x = values(B * T * H * hd, 17);
    const cos = new Float32Array(T * hd);
    const sin = new Float32Array(T * hd);
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < hd; i += 2) {
        const angle = t / 10 ** (i / hd);
        cos[t * hd + i] = cos[t * hd + i + 1] = Math.cos(angle);
        sin[t * hd + i] = -Math.sin(angle);
        sin[t * hd + i + 1] = Math.sin(angle);
      }
    }
    for (const inverse of [false, true]) {
      currentCase = `SoapRope [${B},${T},${H},${hd}]${inverse ? ' inverse' : ''}`;
      const want = new Float64Array(x.length);
      for (let p = 0; p < x.length; p += 2) {
        const t = Math.floor(p / (H * hd)) % T;
        const i = p % hd;
        const c = cos[t * hd + i];
        const s = (inverse ? -1 : 1) * sin[t * hd + i + 1];
        want[p] = x[p] * c - x[p + 1] * s;
        want[p + 1] = x[p] * s + x[p + 1] * c;
      }
      const inputs = {
        x: input(backend, owned, x, [B, T, H, hd]),
        cos: input(backend, owned, cos, [T, 1, hd]),
        sin: input(backend, owned, sin, [T, 1, hd]),
      };
      const out = run('SoapRope', backend, owned, inputs, { inverse });
      expect(currentCase, out, read('SoapRope', backend, out), [B, T, H, hd], want);
    }
  },

  GatherV2(backend, owned) {
    // Rows of a matrix (repeated and out of order) and single values of a vector.
    const ids = new Int32Array([2, 0, 2, 1]);
    for (const shape of [[3, 4], [3]]) {
      currentCase = `GatherV2 [${shape}] rows ${Array.from(ids)}`;
      const inner = size(shape.slice(1));
      const x = values(size(shape), 13);
      const want = new Float64Array(ids.length * inner);
      ids.forEach((r, i) => {
        for (let j = 0; j < inner; j++) want[i * inner + j] = x[r * inner + j];
      });
      const out = run(
        'GatherV2',
        backend,
        owned,
        { x: input(backend, owned, x, shape), indices: input(backend, owned, ids, [ids.length]) },
        { axis: 0, batchDims: 0 },
      );
      expect(currentCase, out, read('GatherV2', backend, out), [ids.length, ...shape.slice(1)], want);
    }
  },
};
