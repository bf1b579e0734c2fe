/**
 * The wasm kernel overrides' start-up self-check: it passes on the installed (pinned)
 * tfjs-backend-wasm, and when it sees a wrong answer or a throw, selectBackend keeps the stock
 * kernels, says so in its reason and warns once on stderr. Also: the pins match what is installed.
 */
import '@tensorflow/tfjs-backend-wasm';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, afterEach, before, describe, it } from 'node:test';
import type { KernelFunc } from '@tensorflow/tfjs';
import { tf } from '../src/tf.js';
import { selectBackend } from '../src/backend/select.js';
import {
  installWasmKernelOverrides,
  resetWasmKernelOverridesForTests,
  wasmKernelOverridesInstalled,
  wasmKernelStatus,
} from '../src/backend/wasm-kernels.js';
import { selfCheckTestHooks, selfCheckWasmKernels, type CheckedKernel } from '../src/backend/wasm-self-check.js';
import { fusedGeluActive } from '../src/backend/fused-gelu.js';
import { loadNativeLapack } from '../src/optim/linalg/native.js';

/** The reason of a wasm backend whose overrides passed: the matMul engine and the fused GeLU named. */
const READY_REASON = loadNativeLapack()
  ? /^requested \(backend: wasm\); matMul: OpenBLAS sgemm on the wasm heap, \d+ thread\(s\) \(.*\); fused GeLU: native$/
  : /^requested \(backend: wasm\); matMul: XNNPACK \(wasm, one thread\); fused GeLU: off \(the native binding is not loaded\)$/;

let stockBatchMatMul: KernelFunc;
let stockIdentity: KernelFunc;

before(async () => {
  await tf.setBackend('wasm');
  stockBatchMatMul = tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc;
  stockIdentity = tf.getKernel('Identity', 'wasm')!.kernelFunc;
});

afterEach(() => {
  selfCheckTestHooks.tamper = undefined;
  resetWasmKernelOverridesForTests();
});

after(() => {
  selfCheckTestHooks.tamper = undefined;
});

/** Runs fn with process.stderr captured; returns its result and the lines written. */
async function capturingStderr<T>(fn: () => Promise<T>): Promise<{ result: T; lines: string[] }> {
  const chunks: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
    return true;
  }) as typeof process.stderr.write;
  try {
    const result = await fn();
    return { result, lines: chunks.join('').split('\n').filter((l) => l.length > 0) };
  } finally {
    process.stderr.write = write;
  }
}

/** A matMul with both operands transposed and batched, and the embedding-style gradient. */
function stillComputesCorrectly(): void {
  const got = tf.tidy(() => tf.matMul(tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]), tf.tensor3d([1, 0, 0, 1, 2, 0, 0, 2], [2, 2, 2]), true, true).arraySync());
  assert.deepEqual(got, [
    [
      [1, 3],
      [2, 4],
    ],
    [
      [10, 14],
      [12, 16],
    ],
  ]);
  const table = tf.variable(tf.zeros([4, 2]), true, 'backend-wasm-test/table');
  try {
    const grad = tf.tidy(() => tf.grad((t: tf.Tensor) => tf.gather(t, tf.tensor1d([2, 0, 2], 'int32')).sum())(table).arraySync());
    assert.deepEqual(grad, [
      [1, 1],
      [0, 0],
      [2, 2],
      [0, 0],
    ]);
  } finally {
    table.dispose();
  }
}

describe('wasm kernel override self-check', () => {
  it('passes on the installed @tensorflow/tfjs-backend-wasm and keeps the overrides', async () => {
    const { result, lines } = await capturingStderr(() => selectBackend('wasm'));
    assert.equal(result.name, 'wasm');
    assert.match(result.reason, READY_REASON);
    assert.deepEqual(lines, []);
    const status = wasmKernelStatus();
    assert.ok(status?.selfCheck.ok, status?.selfCheck.failure);
    assert.ok(status.installed && wasmKernelOverridesInstalled());
    assert.notEqual(tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc, stockBatchMatMul);
    assert.notEqual(tf.getKernel('Identity', 'wasm')!.kernelFunc, stockIdentity);
    // Cheap: a few ms (generous bound for a loaded 2-core machine and a cold JIT).
    assert.ok(status.selfCheck.ms < 500, `self-check took ${status.selfCheck.ms} ms`);
    stillComputesCorrectly();
  });

  it('checks each kernel without leaving tensors or wasm buffers behind', () => {
    assert.ok(installWasmKernelOverrides());
    const backend = tf.findBackend('wasm')!;
    const before = [tf.memory().numTensors, backend.numDataIds()];
    for (let i = 0; i < 3; i++) {
      const r = selfCheckWasmKernels(['BatchMatMul', 'Identity', 'UnsortedSegmentSum', 'Sum', 'GatherV2', 'SoapRope']);
      assert.ok(r.ok, r.failure);
    }
    assert.deepEqual([tf.memory().numTensors, backend.numDataIds()], before);
  });

  for (const kernel of ['BatchMatMul', 'Identity', 'UnsortedSegmentSum', 'Sum', 'GatherV2', 'SoapRope'] as const) {
    it(`a wrong ${kernel} answer falls back to the stock kernels with one warning`, async () => {
      let tampered = 0;
      selfCheckTestHooks.tamper = (name: CheckedKernel, values) => {
        // Only the first result: the portable UnsortedSegmentSum checked afterwards is fine.
        if (name === kernel && tampered++ === 0) values[values.length - 1] += 0.5;
      };
      const { result, lines } = await capturingStderr(() => selectBackend('wasm'));
      assert.equal(result.name, 'wasm');
      assert.match(result.reason, new RegExp(`^requested \\(backend: wasm\\); kernel override self-check failed \\(${kernel}.*relative error.*\\): using the stock wasm kernels$`));
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(lines[0], /^soap-train: warning: wasm kernel override self-check failed \(.*\): using the stock wasm kernels; matMul will be slower$/);
      const status = wasmKernelStatus();
      assert.equal(status?.selfCheck.ok, false);
      assert.equal(status.installed, false);
      assert.equal(status.segmentSumFallback, 'portable');
      assert.equal(wasmKernelOverridesInstalled(), false);
      assert.equal(tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc, stockBatchMatMul);
      assert.equal(tf.getKernel('Identity', 'wasm')!.kernelFunc, stockIdentity);
      // Later installs do not retry: the answer stays "stock kernels".
      assert.equal(installWasmKernelOverrides(), false);
      assert.equal(tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc, stockBatchMatMul);
      stillComputesCorrectly();
    });
  }

  it('a kernel that throws during the check falls back as well', async () => {
    selfCheckTestHooks.tamper = (name) => {
      if (name === 'BatchMatMul') throw new Error('simulated internals mismatch');
    };
    const { result, lines } = await capturingStderr(() => selectBackend('auto'));
    assert.equal(result.name, 'wasm'); // no native TensorFlow here
    assert.match(result.reason, /using WebAssembly; kernel override self-check failed \(BatchMatMul \[5,7\]×\[3,7\]ᵀ: threw simulated internals mismatch\): using the stock wasm kernels$/);
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.equal(tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc, stockBatchMatMul);
    stillComputesCorrectly();
  });

  it('says so when not even the portable UnsortedSegmentSum checks out', async () => {
    selfCheckTestHooks.tamper = (name, values) => {
      if (name === 'UnsortedSegmentSum') values[0] = Number.NaN;
    };
    const { result, lines } = await capturingStderr(() => selectBackend('wasm'));
    assert.match(result.reason, /using the stock wasm kernels; no UnsortedSegmentSum, so embedding gradients will fail$/);
    assert.equal(lines.length, 1);
    assert.equal(wasmKernelStatus()?.segmentSumFallback, 'none');
    assert.equal(tf.getKernel('UnsortedSegmentSum', 'wasm'), undefined);
  });

  it('catches a genuinely wrong kernel, not only a tampered read-back', () => {
    assert.ok(installWasmKernelOverrides());
    const shared = tf.getKernel('Identity', 'wasm')!;
    tf.unregisterKernel('Identity', 'wasm');
    // An "Identity" that drops the last element: the kind of error a layout change would cause.
    tf.registerKernel({
      kernelName: 'Identity',
      backendName: 'wasm',
      kernelFunc: ({ inputs, backend }) => {
        const x = inputs.x!;
        const kb = backend as ReturnType<typeof tf.backend>;
        const v = (kb.readSync(x.dataId) as Float32Array).slice();
        v[v.length - 1] = 0;
        return { dataId: kb.write(v, x.shape, x.dtype), shape: x.shape, dtype: x.dtype };
      },
    });
    try {
      const r = selfCheckWasmKernels(['Identity']);
      assert.equal(r.ok, false);
      assert.match(r.failure ?? '', /^Identity \[3,4\]: relative error/);
    } finally {
      tf.unregisterKernel('Identity', 'wasm');
      tf.registerKernel(shared);
    }
  });

  it('a wrong fused GeLU turns only the GeLU off, and the reason says so', { skip: loadNativeLapack() ? false : 'no native binding' }, async () => {
    selfCheckTestHooks.tamper = (name, values) => {
      if (name === 'SoapGeluGrad') values[2] += 0.01;
    };
    const { result, lines } = await capturingStderr(() => selectBackend('wasm'));
    assert.match(result.reason, /; fused GeLU: off \(self-check failed: SoapGeluGrad.*relative error.*\)$/);
    assert.deepEqual(lines, []);
    assert.ok(wasmKernelOverridesInstalled());
    assert.equal(tf.getKernel('SoapGelu', 'wasm'), undefined);
    assert.equal(fusedGeluActive(), false);
    stillComputesCorrectly();
  });

  it('checks afresh after the test reset, and passes again', async () => {
    const { result, lines } = await capturingStderr(() => selectBackend('wasm'));
    assert.match(result.reason, READY_REASON);
    assert.deepEqual(lines, []);
    assert.ok(wasmKernelOverridesInstalled());
    stillComputesCorrectly();
  });
});

describe('dependency pins', () => {
  it('pins the tfjs packages whose internals the wasm kernels use to the installed versions', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      dependencies: Record<string, string>;
      optionalDependencies: Record<string, string>;
    };
    const require = createRequire(import.meta.url);
    for (const name of ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm']) {
      const installed = (require(`${name}/package.json`) as { version: string }).version;
      assert.equal(pkg.dependencies[name], installed, `${name} should be pinned to exactly ${installed}`);
    }
    assert.match(pkg.optionalDependencies['@tensorflow/tfjs-node-gpu'], /^\d+\.\d+\.\d+$/);
  });
});
