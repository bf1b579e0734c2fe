/**
 * Optional native LAPACK (OpenBLAS) for the host-side linear algebra: symmetric
 * eigendecomposition (?syevd), the Q factor of a Householder QR (thin, or completed to a full
 * orthogonal matrix) and the matrix product (?gemm), in float32 or float64; and, for the
 * model's step on wasm, the exact GeLU and its derivative over float32 arrays.
 *
 * The binding is native/build/lapack.node, built by `npm run native` (scripts/build-native.mjs,
 * part of `prepare`) where a C compiler and libopenblas-dev exist. Everything here degrades to
 * `null`: callers keep the TypeScript eigh/householderQ when `loadNativeLapack()` returns null,
 * and `nativeLapackStatus().reason` says why. SOAP_TRAIN_NATIVE=0 disables it.
 *
 * Conventions match the TypeScript routines: row-major matrices; eigh returns eigenvalues in
 * descending order with the unit eigenvector of values[j] in column j of `vectors`
 * (as `eigh` in ./eigh.ts); qr returns the thin rows×cols Q with LAPACK's sign convention
 * (as `householderQ` in ./qr.ts, which uses the same reflectors).
 *
 * The module is context-aware: each worker_thread may load it. OpenBLAS's thread count is one
 * process-wide setting; with several workers, call `setNumThreads(1)`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The element types the binding accepts; float32 runs s* LAPACK routines, float64 d*. */
export type RealArray = Float32Array | Float64Array;

/** Eigenvalues (descending) and eigenvectors (column j ↔ values[j], row-major n×n). */
export interface NativeEighResult<T extends RealArray> {
  values: T;
  vectors: T;
}

/** The typed API over the addon. All calls are synchronous and throw on bad input. */
export interface NativeLapack {
  /** Absolute path of the loaded lapack.node. */
  readonly path: string;
  /** The LAPACK/BLAS in use, e.g. "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH … Haswell MAX_THREADS=64". */
  readonly config: string;
  /**
   * A = V·diag(λ)·Vᵀ for the symmetric row-major n×n `a` (only its upper triangle is read).
   * Returns new arrays, or fills `out` (its `vectors` may be `a` itself: then `a` is
   * overwritten and no n×n copy is made). Throws on non-finite entries.
   */
  eigh(a: Float64Array, n: number, out?: NativeEighResult<Float64Array>): NativeEighResult<Float64Array>;
  eigh(a: Float32Array, n: number, out?: NativeEighResult<Float32Array>): NativeEighResult<Float32Array>;
  /**
   * The thin Q (rows×cols, orthonormal columns) of A = Q·R for the row-major rows×cols `a`,
   * rows ≥ cols. Returns a new array, or fills `out` (which may be `a` itself).
   */
  qr(a: Float64Array, rows: number, cols: number, out?: Float64Array): Float64Array;
  qr(a: Float32Array, rows: number, cols: number, out?: Float32Array): Float32Array;
  /**
   * The full rows×rows orthogonal Q of the same QR: its first `cols` columns are `qr`'s (same
   * reflectors and signs), the rest an orthonormal basis of range(A)⊥ (≈ 2·rows·cols² +
   * 4·rows²·cols flops, not the 8/3·rows³ of a square QR of [A | 0]).
   */
  qrFull(a: Float64Array, rows: number, cols: number): Float64Array;
  qrFull(a: Float32Array, rows: number, cols: number): Float32Array;
  /** op(A)·op(B) (m×n) for row-major A (m×k, or k×m with transA) and B (k×n, or n×k with transB). */
  gemm(a: Float64Array, b: Float64Array, m: number, n: number, k: number, transA?: boolean, transB?: boolean): Float64Array;
  gemm(a: Float32Array, b: Float32Array, m: number, n: number, k: number, transA?: boolean, transB?: boolean): Float32Array;
  /**
   * `gemm` into the caller's `c` (m×n entries; any previous contents are overwritten), e.g. a
   * view of the wasm heap, so that nothing is allocated or copied per product.
   */
  gemmInto<T extends RealArray>(a: T, b: T, c: T, m: number, n: number, k: number, transA?: boolean, transB?: boolean): void;
  /** y ← gelu(x), the exact (erf) GeLU, elementwise; float32, equal lengths (native/elementwise_kernels.h). */
  geluForward(x: Float32Array, y: Float32Array): void;
  /** dx ← dy·gelu'(x), elementwise; float32, equal lengths. */
  geluBackward(x: Float32Array, dy: Float32Array, dx: Float32Array): void;
  /**
   * madvise(MADV_HUGEPAGE) on the 2 MiB-aligned interior of the memory under `bytes` (the wasm
   * heap): the bytes advised, 0 where transparent huge pages are not available.
   */
  adviseHugePages(bytes: Uint8Array): number;
  /** Sets OpenBLAS's (process-wide) thread count; false when the LAPACK is not OpenBLAS. */
  setNumThreads(threads: number): boolean;
  /** OpenBLAS's current thread count (1 when not OpenBLAS). */
  getNumThreads(): number;
}

/** Whether the binding is loaded, and why (not). */
export interface NativeLapackStatus {
  available: boolean;
  /** What was loaded, or why nothing was: disabled, not built, or the loader's error. */
  reason: string;
  /** Where the binding is looked for. */
  path: string;
}

/** What native/lapack.c exports (ABI_VERSION 3). */
interface RawBinding {
  abi: number;
  config: string;
  eigh(a: RealArray, n: number, values: RealArray, vectors: RealArray): void;
  qr(a: RealArray, rows: number, cols: number, q: RealArray): void;
  qrFull(a: RealArray, rows: number, cols: number, q: RealArray): void;
  gemm(a: RealArray, b: RealArray, c: RealArray, m: number, n: number, k: number, transA: boolean, transB: boolean): void;
  geluForward(x: Float32Array, y: Float32Array): void;
  geluBackward(x: Float32Array, dy: Float32Array, dx: Float32Array): void;
  adviseHugePages(bytes: Uint8Array): number;
  setNumThreads(threads: number): boolean;
  getNumThreads(): number;
}

const ABI_VERSION = 3;

/** The package root: the nearest directory above this file whose package.json is soap-train's. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'soap-train') return dir;
      } catch {
        // unreadable package.json: keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  // Not found (unusual layout): src/optim/linalg → three levels up.
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

/** Where `npm run native` puts the binding (same for src/ via tsx and for dist/src). */
export function nativeLapackPath(): string {
  return join(packageRoot(), 'native', 'build', 'lapack.node');
}

function isRawBinding(x: unknown): x is RawBinding {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as Record<string, unknown>;
  return (
    typeof r.abi === 'number' &&
    typeof r.config === 'string' &&
    typeof r.eigh === 'function' &&
    typeof r.qr === 'function' &&
    typeof r.qrFull === 'function' &&
    typeof r.gemm === 'function' &&
    typeof r.geluForward === 'function' &&
    typeof r.geluBackward === 'function' &&
    typeof r.adviseHugePages === 'function' &&
    typeof r.setNumThreads === 'function' &&
    typeof r.getNumThreads === 'function'
  );
}

function checkSize(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new RangeError(`${what} must be a non-negative integer, got ${v}`);
}

function wrap(raw: RawBinding, path: string): NativeLapack {
  function eigh(a: Float64Array, n: number, out?: NativeEighResult<Float64Array>): NativeEighResult<Float64Array>;
  function eigh(a: Float32Array, n: number, out?: NativeEighResult<Float32Array>): NativeEighResult<Float32Array>;
  function eigh(a: RealArray, n: number, out?: NativeEighResult<RealArray>): NativeEighResult<RealArray> {
    checkSize('eigh: n', n);
    if (a.length !== n * n) throw new Error(`eigh: expected ${n * n} entries, got ${a.length}`);
    const result =
      out ?? (a instanceof Float32Array ? { values: new Float32Array(n), vectors: new Float32Array(n * n) } : { values: new Float64Array(n), vectors: new Float64Array(n * n) });
    raw.eigh(a, n, result.values, result.vectors);
    return result;
  }
  function qr(a: Float64Array, rows: number, cols: number, out?: Float64Array): Float64Array;
  function qr(a: Float32Array, rows: number, cols: number, out?: Float32Array): Float32Array;
  function qr(a: RealArray, rows: number, cols: number, out?: RealArray): RealArray {
    checkSize('qr: rows', rows);
    checkSize('qr: cols', cols);
    if (a.length !== rows * cols) throw new Error(`qr: expected ${rows * cols} entries, got ${a.length}`);
    if (rows < cols) throw new Error(`qr: needs rows ≥ columns, got ${rows}×${cols}`);
    const q = out ?? (a instanceof Float32Array ? new Float32Array(rows * cols) : new Float64Array(rows * cols));
    raw.qr(a, rows, cols, q);
    return q;
  }
  function qrFull(a: Float64Array, rows: number, cols: number): Float64Array;
  function qrFull(a: Float32Array, rows: number, cols: number): Float32Array;
  function qrFull(a: RealArray, rows: number, cols: number): RealArray {
    checkSize('qrFull: rows', rows);
    checkSize('qrFull: cols', cols);
    if (a.length !== rows * cols) throw new Error(`qrFull: expected ${rows * cols} entries, got ${a.length}`);
    if (rows < cols) throw new Error(`qrFull: needs rows ≥ columns, got ${rows}×${cols}`);
    const q = a instanceof Float32Array ? new Float32Array(rows * rows) : new Float64Array(rows * rows);
    raw.qrFull(a, rows, cols, q);
    return q;
  }
  function gemm(a: Float64Array, b: Float64Array, m: number, n: number, k: number, transA?: boolean, transB?: boolean): Float64Array;
  function gemm(a: Float32Array, b: Float32Array, m: number, n: number, k: number, transA?: boolean, transB?: boolean): Float32Array;
  function gemm(a: RealArray, b: RealArray, m: number, n: number, k: number, transA = false, transB = false): RealArray {
    for (const [what, v] of [['m', m], ['n', n], ['k', k]] as const) checkSize(`gemm: ${what}`, v);
    const c = a instanceof Float32Array ? new Float32Array(m * n) : new Float64Array(m * n);
    raw.gemm(a, b, c, m, n, k, transA, transB);
    return c;
  }
  function gemmInto<T extends RealArray>(a: T, b: T, c: T, m: number, n: number, k: number, transA = false, transB = false): void {
    for (const [what, v] of [['m', m], ['n', n], ['k', k]] as const) checkSize(`gemm: ${what}`, v);
    raw.gemm(a, b, c, m, n, k, transA, transB);
  }
  return {
    path,
    config: raw.config,
    eigh,
    qr,
    qrFull,
    gemm,
    gemmInto,
    geluForward: (x, y) => raw.geluForward(x, y),
    geluBackward: (x, dy, dx) => raw.geluBackward(x, dy, dx),
    adviseHugePages: (bytes) => raw.adviseHugePages(bytes),
    setNumThreads: (threads: number) => {
      if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`setNumThreads: threads must be an integer ≥ 1, got ${threads}`);
      return raw.setNumThreads(threads);
    },
    getNumThreads: () => raw.getNumThreads(),
  };
}

/**
 * Loads the binding at `path`, uncached (for tests and custom builds; normal callers use
 * `loadNativeLapack`). Never throws: a missing file, a load error (wrong platform, missing
 * libopenblas.so) or a stale build all give `lapack: null` and the reason.
 */
export function loadNativeLapackFrom(path: string): { lapack: NativeLapack | null; reason: string } {
  if (!existsSync(path)) return { lapack: null, reason: `not built: ${path} does not exist (npm run native needs a C compiler and libopenblas-dev)` };
  let raw: unknown;
  try {
    raw = createRequire(import.meta.url)(path);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    return { lapack: null, reason: `failed to load ${path}: ${msg.split('\n')[0]}` };
  }
  if (!isRawBinding(raw)) return { lapack: null, reason: `${path} is not soap-train's LAPACK binding` };
  if (raw.abi !== ABI_VERSION) return { lapack: null, reason: `${path} is a stale build (abi ${raw.abi}, want ${ABI_VERSION}): run npm run native` };
  return { lapack: wrap(raw, path), reason: `loaded ${path} (${raw.config})` };
}

let cached: NativeLapackStatus & { lapack: NativeLapack | null } | undefined;

function disabled(): boolean {
  return process.env.SOAP_TRAIN_NATIVE === '0';
}

/** The one load attempt of this process (or worker), made on first use. */
function attempt(): NativeLapackStatus & { lapack: NativeLapack | null } {
  if (!cached) {
    const path = nativeLapackPath();
    const { lapack, reason } = loadNativeLapackFrom(path);
    cached = { lapack, reason, path, available: lapack !== null };
  }
  return cached;
}

/**
 * The native LAPACK, or null when it is unavailable or disabled (SOAP_TRAIN_NATIVE=0, checked
 * on every call). The first call loads it; later calls return the same object.
 */
export function loadNativeLapack(): NativeLapack | null {
  return disabled() ? null : attempt().lapack;
}

/** Whether `loadNativeLapack()` gives the binding, and why (not). Loads it if not yet tried. */
export function nativeLapackStatus(): NativeLapackStatus {
  if (disabled()) return { available: false, reason: 'disabled by SOAP_TRAIN_NATIVE=0', path: nativeLapackPath() };
  const { available, reason, path } = attempt();
  return { available, reason, path };
}
