/**
 * Rotary embedding as one wasm kernel forward and one backward: a loop over the wasm heap.
 *
 * Why: as tfjs ops, RoPE is a product with a pair-swapping permutation, two broadcast products
 * and a sum, and its gradient the same again: ~25 ms of a tiny step (8 calls a step forward and
 * 8 backward over [16, 128, 4, 32]; bench/kernel-profile.ts). The rotation itself is 6 flops
 * per pair; one pass over the values does it in well under a millisecond.
 *
 * Kernel `SoapRope`: inputs x [B, T, H, hd] and the model's tables cos, sin [T, 1, hd]
 * (src/model/layers.ts ropeTables: cos[t, 2i] = cos θ, sin[t, 2i + 1] = sin θ), attribute
 * `inverse`. Forward (inverse false), for each pair (x₀, x₁) = (x_{2i}, x_{2i+1}):
 *   y₀ = x₀·cos θ − x₁·sin θ,   y₁ = x₀·sin θ + x₁·cos θ
 * and the rotation by −θ with inverse true, which is also the gradient (a rotation's
 * transpose is its inverse). The arithmetic is the composite's, term for term, in float32
 * (Math.fround), so the two paths agree to the last bit or one rounding.
 */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { tf } from '../tf.js';
import { KernelGroup, type WasmHeapBackend } from './heap-kernels.js';

export const ROPE_KERNEL = 'SoapRope';

const ropeKernel: KernelFunc = (args) => {
  const backend = args.backend as unknown as WasmHeapBackend;
  const { x, cos, sin } = args.inputs as { x: TensorInfo; cos: TensorInfo; sin: TensorInfo };
  const { inverse } = args.attrs as { inverse: boolean };
  const [B, T, H, hd] = x.shape;
  if (x.shape.length !== 4 || x.dtype !== 'float32' || hd % 2 !== 0 || cos.shape.join() !== `${T},1,${hd}` || sin.shape.join() !== cos.shape.join()) {
    throw new Error(`${ROPE_KERNEL}: x must be float32 [B, T, H, even hd] and cos, sin [T, 1, hd]; got [${x.shape}], [${cos.shape}], [${sin.shape}]`);
  }
  const out = backend.makeOutput(x.shape, 'float32');
  // Views taken after makeOutput: an allocation may grow (and so detach) the heap.
  const xs = backend.typedArrayFromHeap(x) as Float32Array;
  const ys = backend.typedArrayFromHeap(out) as Float32Array;
  const c = backend.typedArrayFromHeap(cos) as Float32Array;
  const s = backend.typedArrayFromHeap(sin) as Float32Array;
  const sign = inverse ? -1 : 1;
  const f = Math.fround;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const table = t * hd;
      for (let h = 0; h < H; h++) {
        const base = ((b * T + t) * H + h) * hd;
        for (let i = 0; i < hd; i += 2) {
          const x0 = xs[base + i];
          const x1 = xs[base + i + 1];
          const ct = c[table + i];
          const st = sign * s[table + i + 1];
          ys[base + i] = f(f(x0 * ct) - f(x1 * st));
          ys[base + i + 1] = f(f(x0 * st) + f(x1 * ct));
        }
      }
    }
  }
  return out;
};

const kernels = new KernelGroup([{ kernelName: ROPE_KERNEL, backendName: 'wasm', kernelFunc: ropeKernel }]);

/** Registers the kernel for wasm (idempotent); wasm-kernels.ts calls it at install. */
export function registerFusedRopeKernel(): void {
  kernels.register();
}

export function unregisterFusedRopeKernel(): void {
  kernels.unregister();
}

/**
 * Turns the fused path off (true) or back on, to compare it with the composite one.
 * @internal
 */
export function disableFusedRopeForTests(disabled: boolean): void {
  kernels.disableForTests(disabled);
}

/** Whether `rope` should take the fused kernel now; SOAP_TRAIN_FUSED=0 turns it off. */
export function fusedRopeActive(): boolean {
  return kernels.active();
}

/** RoPE of x [B, T, H, hd] by the fused kernel, with its gradient; call only when {@link fusedRopeActive}. */
export function fusedRope(x: tf.Tensor4D, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor4D {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xIn] = args as [tf.Tensor];
    return {
      value: tf.engine().runKernel(ROPE_KERNEL, { x: xIn, cos, sin }, { inverse: false }) as tf.Tensor,
      gradFunc: (dy: tf.Tensor) => tf.engine().runKernel(ROPE_KERNEL, { x: dy, cos, sin }, { inverse: true }) as tf.Tensor,
    };
  });
  return f(x) as tf.Tensor4D;
}
