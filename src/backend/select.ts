/**
 * Chooses and initialises the TensorFlow.js backend.
 *
 * `auto` prefers the native TensorFlow build (`@tensorflow/tfjs-node-gpu`, then
 * `@tensorflow/tfjs-node`: optional dependencies that install only where libtensorflow can be
 * downloaded), then WebAssembly (XNNPACK), then the plain JS `cpu` backend, and says why.
 */
import { tf } from '../tf.js';
import type { BackendName } from '../config/schema.js';
import { badInput } from '../errors.js';

export interface BackendChoice {
  /** The tfjs backend name now active: `tensorflow`, `wasm` or `cpu`. */
  name: string;
  /** Why this one, for the log and the manifest. */
  reason: string;
}

const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

async function tryNative(): Promise<{ ok: true; pkg: string } | { ok: false; why: string }> {
  const failures: string[] = [];
  for (const pkg of NATIVE_PACKAGES) {
    try {
      // A variable specifier keeps TypeScript from requiring the optional package's types.
      const specifier = pkg;
      await import(specifier);
      if (await tf.setBackend('tensorflow')) return { ok: true, pkg };
      failures.push(`${pkg}: loaded but the tensorflow backend did not initialise`);
    } catch (err) {
      const code = (err as { code?: string }).code;
      failures.push(`${pkg}: ${code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' ? 'not installed' : String((err as Error).message).split('\n')[0]}`);
    }
  }
  return { ok: false, why: failures.join('; ') };
}

/**
 * Initialises wasm and installs the kernel overrides. When their self-check fails, the stock
 * kernels stay: `note` says so for the reason, and one warning line goes to stderr.
 */
async function tryWasm(): Promise<{ ok: true; note: string } | { ok: false; why: string }> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
    if (!(await tf.setBackend('wasm'))) return { ok: false, why: 'wasm backend failed to initialise' };
    const { installWasmKernelOverrides, wasmKernelStatus } = await import('./wasm-kernels.js');
    if (installWasmKernelOverrides()) {
      const { describeMatMulEngine } = await import('./blas-matmul.js');
      const gelu = wasmKernelStatus()?.fusedGelu;
      return { ok: true, note: `; matMul: ${describeMatMulEngine()}; fused GeLU: ${gelu?.registered ? 'native' : `off (${gelu?.reason ?? 'unknown'})`}` };
    }
    const status = wasmKernelStatus();
    const segmentSum = status?.segmentSumFallback === 'none' ? '; no UnsortedSegmentSum, so embedding gradients will fail' : '';
    const fallback = `kernel override self-check failed (${status?.selfCheck.failure ?? 'unknown'}): using the stock wasm kernels${segmentSum}`;
    process.stderr.write(`soap-train: warning: wasm ${fallback}; matMul will be slower\n`);
    return { ok: true, note: `; ${fallback}` };
  } catch (err) {
    return { ok: false, why: `wasm: ${String((err as Error).message).split('\n')[0]}` };
  }
}

/** Activates the requested backend; `auto` falls back tensorflow → wasm → cpu. */
export async function selectBackend(requested: BackendName): Promise<BackendChoice> {
  if (requested === 'cpu') {
    await tf.setBackend('cpu');
    return { name: 'cpu', reason: 'requested (backend: cpu)' };
  }
  if (requested === 'tensorflow') {
    const native = await tryNative();
    if (!native.ok) {
      throw badInput(`backend tensorflow is not available: ${native.why}`, {
        field: 'backend',
        fix: 'install @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node, or use backend: auto',
      });
    }
    return { name: 'tensorflow', reason: `requested; loaded ${native.pkg}` };
  }
  if (requested === 'wasm') {
    const wasm = await tryWasm();
    if (!wasm.ok) throw badInput(`backend wasm is not available: ${wasm.why}`, { field: 'backend', fix: 'use backend: cpu' });
    return { name: 'wasm', reason: `requested (backend: wasm)${wasm.note}` };
  }
  const native = await tryNative();
  if (native.ok) return { name: 'tensorflow', reason: `auto: ${native.pkg} loaded` };
  const wasm = await tryWasm();
  if (wasm.ok) return { name: 'wasm', reason: `auto: native TensorFlow unavailable (${native.why}); using WebAssembly${wasm.note}` };
  await tf.setBackend('cpu');
  return { name: 'cpu', reason: `auto: native TensorFlow unavailable (${native.why}); ${wasm.why}; using cpu` };
}
