/**
 * The exact (erf) GeLU as one kernel forward and one backward on wasm, computed by the native
 * binding (native/elementwise_kernels.h) on views of the wasm heap.
 *
 * Why: as tfjs ops, gelu(x) = x/2·(1 + erf(x/√2)) is Erf, Multiply and Add forward, and its
 * gradient another Erf, an Exp and a handful of products and casts; wasm's Erf and Exp are
 * scalar libm at 7–11 ns per element. In a tiny step (MLP 512 wide, 2048 tokens) that was
 * ~90 ms of ~415 (bench/kernel-profile.ts); fused, ~6 ms.
 *
 * Used by the model's `gelu` (src/model/layers.ts) when {@link fusedGeluActive}: wasm is the
 * backend, the kernels are registered (installWasmKernelOverrides, after their self-check) and
 * the native binding is loaded. Elsewhere the composite of tfjs ops stays.
 */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { tf } from '../tf.js';
import { loadNativeLapack } from '../optim/linalg/native.js';
import { KernelGroup, type WasmHeapBackend } from './heap-kernels.js';

export const GELU_KERNEL = 'SoapGelu';
export const GELU_GRAD_KERNEL = 'SoapGeluGrad';

function native(): NonNullable<ReturnType<typeof loadNativeLapack>> {
  const lapack = loadNativeLapack();
  if (!lapack) throw new Error(`${GELU_KERNEL}: the native binding (npm run native) is not loaded`);
  return lapack;
}

const geluKernel: KernelFunc = (args) => {
  const backend = args.backend as unknown as WasmHeapBackend;
  const { x } = args.inputs as { x: TensorInfo };
  if (x.dtype !== 'float32') throw new Error(`${GELU_KERNEL}: x must be float32, got ${x.dtype}`);
  const out = backend.makeOutput(x.shape, 'float32');
  // Views taken after makeOutput: an allocation may grow (and so detach) the heap.
  native().geluForward(backend.typedArrayFromHeap(x) as Float32Array, backend.typedArrayFromHeap(out) as Float32Array);
  return out;
};

const geluGradKernel: KernelFunc = (args) => {
  const backend = args.backend as unknown as WasmHeapBackend;
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  if (x.dtype !== 'float32' || dy.dtype !== 'float32' || x.shape.join() !== dy.shape.join()) {
    throw new Error(`${GELU_GRAD_KERNEL}: x and dy must be float32 of one shape, got ${x.dtype} [${x.shape}] and ${dy.dtype} [${dy.shape}]`);
  }
  const out = backend.makeOutput(x.shape, 'float32');
  native().geluBackward(
    backend.typedArrayFromHeap(x) as Float32Array,
    backend.typedArrayFromHeap(dy) as Float32Array,
    backend.typedArrayFromHeap(out) as Float32Array,
  );
  return out;
};

const kernels = new KernelGroup([
  { kernelName: GELU_KERNEL, backendName: 'wasm', kernelFunc: geluKernel },
  { kernelName: GELU_GRAD_KERNEL, backendName: 'wasm', kernelFunc: geluGradKernel },
]);

/** Registers the two kernels for wasm (idempotent); wasm-kernels.ts calls it at install. */
export function registerFusedGeluKernels(): void {
  kernels.register();
}

/** Takes the two kernels away again (a failed self-check, an uninstall). */
export function unregisterFusedGeluKernels(): void {
  kernels.unregister();
}

/**
 * Turns the fused path off (true) or back on, to compare it with the composite one.
 * @internal
 */
export function disableFusedGeluForTests(disabled: boolean): void {
  kernels.disableForTests(disabled);
}

/** Whether `gelu` should take the fused kernels now; SOAP_TRAIN_FUSED=0 turns them off. */
export function fusedGeluActive(): boolean {
  return kernels.active() && loadNativeLapack() !== null;
}

/** gelu(x) by the fused kernels, with its gradient; call only when {@link fusedGeluActive}. */
export const fusedGelu: (x: tf.Tensor) => tf.Tensor = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
  save([x]);
  return {
    value: tf.engine().runKernel(GELU_KERNEL, { x }) as tf.Tensor,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.engine().runKernel(GELU_GRAD_KERNEL, { x: saved[0], dy }) as tf.Tensor,
  };
}) as (x: tf.Tensor) => tf.Tensor;
