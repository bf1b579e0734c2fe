/**
 * An optimizer's trajectory with its matrix products placed on the host (native ?gemm) or the
 * device (tf.matMul): the SOAP and Shampoo tests run it twice and compare the two. On wasm the
 * device run multiplies with XNNPACK: the default engine there is the same OpenBLAS sgemm
 * (src/backend/blas-matmul.ts), which would make the two runs one path.
 */
import { createOptimizer, tf } from '../../src/index.js';
import { setProductPlacement, type ProductPlacement } from '../../src/optim/tensor-modes.js';
import { setMatMulEngine } from '../../src/backend/blas-matmul.js';
import { normalRng } from './random.js';

export interface PlacedRun {
  optimizer: Record<string, unknown>;
  /** Parameter shapes by name (initial values and every gradient drawn from one seeded stream). */
  shapes: Record<string, number[]>;
  calls: number;
  seed: number;
  /** Part of the variables' names, so runs on different backends do not collide. */
  tag: string;
}

/** All parameters (flattened, in `shapes` order) after each of `calls` steps. */
export function placedTrajectory(run: PlacedRun, placement: ProductPlacement): number[][] {
  const rng = normalRng(run.seed);
  const random = (s: number[]) => tf.tensor(Float32Array.from({ length: s.reduce((a, c) => a * c, 1) }, rng), s);
  const vars = Object.fromEntries(
    Object.entries(run.shapes).map(([k, s]) => [k, tf.variable(random(s), true, `${String(run.optimizer.type)}_place_${run.tag}_${placement}.${k}`)]),
  );
  const opt = createOptimizer(run.optimizer as Parameters<typeof createOptimizer>[0]);
  const out: number[][] = [];
  setProductPlacement(placement);
  setMatMulEngine(placement === 'device' ? 'xnnpack' : undefined);
  try {
    for (let call = 0; call < run.calls; call++) {
      const grads = Object.fromEntries(Object.entries(run.shapes).map(([k, s]) => [vars[k].name, random(s)]));
      opt.applyGradients(grads);
      tf.dispose(Object.values(grads));
      out.push(Object.values(vars).flatMap((v) => [...v.dataSync()]));
    }
  } finally {
    setProductPlacement(null);
    setMatMulEngine(undefined);
    opt.dispose();
    tf.dispose(Object.values(vars));
  }
  return out;
}
