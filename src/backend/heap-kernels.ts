/**
 * What soap-train's own wasm kernels share: the two public-in-practice methods of
 * tfjs-backend-wasm's `BackendWasm` they read and write tensors with, and the registration of a
 * group of new kernels (names the stock backend does not have) that a failed self-check or an
 * uninstall takes away again.
 */
import type { DataType, KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import { tf } from '../tf.js';

/** A wasm tensor is a range of the wasm heap: a fresh output, and a view of any tensor's values. */
export interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  /** A view (no copy) of the tensor's values; an allocation may grow the heap and detach it. */
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** Kernels registered and unregistered together, with a switch for tests that compare paths. */
export class KernelGroup {
  private registered = false;
  private disabled = false;

  constructor(private readonly kernels: readonly KernelConfig[]) {}

  /** Registers every kernel (idempotent). */
  register(): void {
    if (this.registered) return;
    for (const k of this.kernels) tf.registerKernel(k);
    this.registered = true;
  }

  /** Takes them away again (idempotent). */
  unregister(): void {
    if (!this.registered) return;
    for (const k of this.kernels) tf.unregisterKernel(k.kernelName, k.backendName);
    this.registered = false;
  }

  /** Turns the group's path off (true) or on, to compare it with the composite one (tests). */
  disableForTests(disabled: boolean): void {
    this.disabled = disabled;
  }

  /** Registered, not switched off by a test or SOAP_TRAIN_FUSED=0, and wasm is the backend. */
  active(): boolean {
    return this.registered && !this.disabled && process.env.SOAP_TRAIN_FUSED !== '0' && tf.getBackend() === 'wasm';
  }
}
