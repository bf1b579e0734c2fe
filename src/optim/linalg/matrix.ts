/**
 * Dense float64 matrix helpers for the host-side linear algebra (eigh, QR, roots) and the
 * optimizers' host steps.
 *
 * Matrices are `Float64Array`s in row-major order with their sizes passed alongside; nothing
 * here allocates a class so the arrays move to and from tfjs (`dataSync()`, `tf.tensor`)
 * without copies beyond the float32↔float64 conversion.
 */

/** Bᵀ for a rows×cols row-major A (so B is cols×rows). Blocked for cache reuse. */
export function transpose(a: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  const bs = 32;
  for (let i0 = 0; i0 < rows; i0 += bs) {
    const i1 = Math.min(rows, i0 + bs);
    for (let j0 = 0; j0 < cols; j0 += bs) {
      const j1 = Math.min(cols, j0 + bs);
      for (let i = i0; i < i1; i++) {
        for (let j = j0; j < j1; j++) out[j * rows + i] = a[i * cols + j];
      }
    }
  }
  return out;
}

/** max |aᵢⱼ|, the scale against which tolerances and convergence are judged. */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const v = Math.abs(a[i]);
    if (v > m) m = v;
  }
  return m;
}

/** (A + Aᵀ)/2: removes the asymmetry float32 matMuls leave in a statistic like G·Gᵀ. */
export function symmetrize(a: ArrayLike<number>, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    out[i * n + i] = a[i * n + i];
    for (let j = i + 1; j < n; j++) {
      const v = 0.5 * (a[i * n + j] + a[j * n + i]);
      out[i * n + j] = v;
      out[j * n + i] = v;
    }
  }
  return out;
}

/** Indices that sort `values` from largest to smallest (stable: ties keep their order). */
export function argsortDescending(values: ArrayLike<number>): Int32Array {
  const idx = Array.from({ length: values.length }, (_, i) => i);
  idx.sort((i, j) => values[j] - values[i] || i - j);
  return Int32Array.from(idx);
}
