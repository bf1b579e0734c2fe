/**
 * The memory plan of a training step: the activation formula against what the wasm backend
 * really allocates (every malloc and free counted), each optimizer's update temporaries against
 * a measured step, the step's phases, the ceilings, the refusal before work (with suggestions
 * that fit by the plan's own numbers), size parsing, and out-of-memory errors turned into one line.
 */
import '@tensorflow/tfjs-backend-wasm';
import assert from 'node:assert/strict';
import { productPlacement } from '../src/optim/tensor-modes.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { installWasmKernelOverrides } from '../src/backend/wasm-kernels.js';
import { fusedGeluActive } from '../src/backend/fused-gelu.js';
import { reportError } from '../src/cli/errors.js';
import type { ExperimentConfig } from '../src/config/schema.js';
import { loadConfig, parseOverride } from '../src/config/load.js';
import { SoapTrainError } from '../src/errors.js';
import { countParams, initParams, lossTerms, modelSchema } from '../src/model/index.js';
import { loadNativeLapack } from '../src/optim/linalg/native.js';
import { createOptimizer, OPTIMIZERS, type OptimizerSection } from '../src/optim/registry.js';
import { runExperiment } from '../src/run/experiment.js';
import { tf } from '../src/tf.js';
import {
  activationBytes,
  backendCeiling,
  checkMemoryFits,
  explainOutOfMemory,
  isOutOfMemory,
  parseBytes,
  planCarryBytes,
  planMemory,
  SAFETY_FACTOR,
  updateTransientBytes,
  WASM_HEAP_MAX,
  WASM_MODULE_RESERVE,
} from '../src/train/memory-plan.js';
import { tinyExperiment } from './helpers/tiny-run.js';

const GiB = 2 ** 30;
/** A host large enough that wasm's own 4 GiB is the ceiling, so results do not depend on this machine. */
const HOST = { hostBytes: 64 * GiB };
const CONFIGS = join(import.meta.dirname, '..', 'configs');

function config(file: string, sets: string[] = []): ExperimentConfig {
  return loadConfig(join(CONFIGS, file), sets.map(parseOverride)).config;
}

/** The issue's one-layer 360m run: batch 1 × 64 tokens. */
const ISSUE_SETS = ['model.n_layers=1', 'train.batch_size=1', 'train.micro_batch_size=1', 'train.seq_len=64'];

interface WasmHeap {
  _malloc(bytes: number): number;
  _free(ptr: number): void;
}

/** Counts the bytes the wasm backend holds (malloc minus free) and their peak since `reset()`. */
function trackWasmHeap(): { live(): number; peak(): number; reset(): void; stop(): void } {
  const heap = (tf.backend() as unknown as { wasm: WasmHeap }).wasm;
  const malloc = heap._malloc;
  const free = heap._free;
  const sizes = new Map<number, number>();
  let live = 0;
  let peak = 0;
  heap._malloc = (bytes: number): number => {
    const ptr = malloc(bytes);
    sizes.set(ptr >>> 0, bytes);
    live += bytes;
    peak = Math.max(peak, live);
    return ptr;
  };
  heap._free = (ptr: number): void => {
    live -= sizes.get(ptr >>> 0) ?? 0;
    sizes.delete(ptr >>> 0);
    free(ptr);
  };
  return {
    live: () => live,
    peak: () => peak,
    reset: () => (peak = live),
    stop: () => {
      heap._malloc = malloc;
      heap._free = free;
    },
  };
}

describe('activations of one micro-batch', () => {
  it('follow the per-layer count written in activationBytes', () => {
    // N = 2·5 = 10 rows, d 8, m 12, H 2, V 11, L 2:
    //   block   76·80 + 16·120 + 5·2·2·25 + 16·20 = 6080 + 1920 + 500 + 320 = 8820
    //   head    12·80 + 7·110 + 4·10 = 960 + 770 + 40 = 1770
    //   scratch 11·(8 + 10) + 80 = 278
    const cfg = modelSchema.parse({ vocab_size: 11, d_model: 8, n_layers: 2, n_heads: 2, mlp_hidden: 12 });
    assert.equal(activationBytes(cfg, 2, 5), 4 * (2 * 8820 + 1770 + 278));
    // The fused GeLU: 4·N·m instead of 16·N·m, 12·120 = 1440 floats fewer per block.
    assert.equal(activationBytes(cfg, 2, 5, { fusedGelu: true }), 4 * (2 * (8820 - 1440) + 1770 + 278));
  });

  describe('on wasm', () => {
    let heap: ReturnType<typeof trackWasmHeap>;
    before(async () => {
      await tf.setBackend('wasm');
      installWasmKernelOverrides();
      heap = trackWasmHeap();
    });
    after(() => heap.stop());

    // [V, d, L, H, m, B, T]: a change of each of width, MLP, heads, length, vocabulary and depth
    const cases = [
      [64, 64, 2, 4, 256, 2, 32],
      [64, 64, 2, 8, 64, 2, 32],
      [64, 128, 1, 4, 64, 1, 64],
      [2048, 64, 2, 4, 64, 2, 32],
      [64, 96, 3, 6, 384, 3, 24],
    ];
    for (const [V, d, L, H, m, B, T] of cases) {
      it(`bound what forward + backward allocates, within 30%: V ${V}, d ${d}, ${L} layers, ${H} heads, MLP ${m}, ${B}×${T}`, () => {
        const cfg = modelSchema.parse({ vocab_size: V, d_model: d, n_layers: L, n_heads: H, mlp_hidden: m });
        const params = initParams(cfg, { seed: 0, namePrefix: `act-${V}-${d}-${L}-${H}-${m}/` });
        const x = tf.tensor2d(Array.from({ length: B * T }, (_, i) => (i * 7) % V), [B, T], 'int32');
        const y = tf.tensor2d(Array.from({ length: B * T }, (_, i) => (i * 13) % V), [B, T], 'int32');
        heap.reset();
        const before = heap.live();
        const { value, grads } = tf.variableGrads(() => lossTerms(params, x, y, cfg).loss, Object.values(params));
        // Beyond the weights, the peak holds the weight gradients (4·params) and the activations.
        const measured = heap.peak() - before - 4 * countParams(cfg).total;
        tf.dispose([x, y, value, ...Object.values(grads), ...Object.values(params)]);
        const predicted = activationBytes(cfg, B, T, { fusedGelu: fusedGeluActive() });
        assert.ok(measured <= predicted && predicted <= 1.3 * measured, `measured ${measured} bytes, predicted ${predicted}`);
      });
    }
  });
});

describe('update temporaries of one parameter', () => {
  let heap: ReturnType<typeof trackWasmHeap>;
  before(async () => {
    await tf.setBackend('wasm');
    installWasmKernelOverrides();
    heap = trackWasmHeap();
  });
  after(() => heap.stop());

  // Every registered optimizer (a new one is measured against the 24·n default) on a matrix and a
  // 3-D tensor, plus the layouts that change the count. SOAP and Shampoo refresh on every step, so
  // the refresh's temporaries and its plan's carries are in the measured peaks.
  const every: Record<string, Record<string, unknown>> = { soap: { precondition_frequency: 1 }, shampoo: { precondition_frequency: 1 } };
  const cases: Array<[Record<string, unknown>, number[]]> = [
    ...OPTIMIZERS.flatMap((e): Array<[Record<string, unknown>, number[]]> => [
      [{ type: e.name, ...every[e.name] }, [96, 64]],
      [{ type: e.name, ...every[e.name] }, [4, 6, 5]],
    ]),
    [{ type: 'soap', precondition_frequency: 1, max_precond_dim: 100 }, [200, 48]], // one side kept as identity, like tok_emb
    [{ type: 'soap', precondition_frequency: 1, merge_dims: true, max_precond_dim: 40 }, [6, 5, 7]],
    [{ type: 'shampoo', precondition_frequency: 1, root_method: 'newton' }, [96, 64]],
    [{ type: 'shampoo', precondition_frequency: 1, block_size: 40 }, [96, 64]],
  ];
  for (const [section, shape] of cases) {
    it(`${JSON.stringify(section)} [${shape}]: a step's measured peak is within the estimate, and the estimate within 2.5×`, () => {
      const optimizer = createOptimizer(section as { type: string });
      const config = optimizer.getConfig() as unknown as OptimizerSection;
      const v = tf.variable(tf.randomNormal(shape, 0, 1, 'float32', 1), true, `upd-${JSON.stringify(section)}-${shape}`);
      const g = tf.randomNormal(shape, 0, 1, 'float32', 2);
      let measured = 0;
      try {
        for (let step = 0; step < 4; step++) {
          heap.reset();
          const before = heap.live();
          optimizer.applyGradients({ [v.name]: g });
          // Step 0 creates the state itself; steps 1..3 measure the update alone.
          if (step > 0) measured = Math.max(measured, heap.peak() - before);
        }
      } finally {
        optimizer.dispose();
        tf.dispose([v, g]);
      }
      // SOAP's refresh QR runs on the device unless native LAPACK loaded (host-jobs.ts qrPlacement).
      const predicted = updateTransientBytes(config, shape, { deviceQr: loadNativeLapack() === null, hostProducts: productPlacement() === 'host' }) + planCarryBytes(config, shape);
      assert.ok(measured > 0 && measured <= predicted && predicted <= 2.5 * measured, `measured ${measured} bytes, predicted ${predicted}`);
    });
  }

  it('adamw holds exactly 14 numel-sized temporaries', () => {
    assert.equal(updateTransientBytes(createOptimizer({ type: 'adamw' }).getConfig() as unknown as OptimizerSection, [96, 64], { deviceQr: false }), 4 * 14 * 96 * 64);
  });
});

describe('the plan of a step', () => {
  it('adds weights, one set of gradients, the state and the activations when the backward pass peaks', () => {
    const cfg = config('tiny-adamw.yaml');
    const plan = planMemory(cfg, 'cpu', HOST);
    const W = 4 * countParams(cfg.model).total;
    const A = activationBytes(cfg.model, 16, 128);
    assert.equal(plan.peak_phase, 'backward');
    assert.equal(plan.weights_bytes, W);
    assert.equal(plan.optimizer_state_bytes, 2 * W); // AdamW: two moments
    assert.equal(plan.gradients_bytes, W);
    assert.equal(plan.peak_bytes, W + 2 * W + W + A);
    assert.equal(plan.required_bytes, plan.peak_bytes * SAFETY_FACTOR);
  });

  it('holds the running sum beside the new gradients when micro-batches accumulate', () => {
    const plan = planMemory(config('tiny-adamw.yaml', ['train.micro_batch_size=4']), 'cpu', HOST);
    assert.equal(plan.peak_phase, 'backward');
    assert.equal(plan.gradients_bytes, 2 * plan.weights_bytes);
    assert.equal(plan.micro_batch_size, 4);
    assert.equal(plan.activation_bytes, activationBytes(config('tiny-adamw.yaml').model, 4, 128));
  });

  it("peaks in SOAP's update for the issue's one-layer 360m run: the embedding's temporaries dwarf its activations", () => {
    const plan = planMemory(config('360m-soap.yaml', ISSUE_SETS), 'wasm', { ...HOST, deviceQr: false });
    assert.equal(plan.peak_phase, 'update');
    // tok_emb [50304, 1024]: only the 1024 side is preconditioned (p = 1), so (14 + 4 + 2)·n
    // temporaries, or (15 + 2)·n when the rotations run in OpenBLAS (native binding loaded).
    const perElement = loadNativeLapack() ? 15 + 2 : 14 + 4 + 2;
    assert.ok(plan.optimizer_transient_bytes >= 4 * perElement * 50304 * 1024);
    assert.equal(plan.fits, false);
  });
});

describe('ceilings', () => {
  it('wasm: the 4 GiB heap less the module, or the host when smaller; cpu: the host', () => {
    assert.equal(WASM_HEAP_MAX, 2 ** 32 - 2 ** 16);
    assert.deepEqual(backendCeiling('wasm', HOST), { bytes: WASM_HEAP_MAX - WASM_MODULE_RESERVE, source: 'wasm heap, 32-bit' });
    assert.equal(backendCeiling('wasm', { hostBytes: 2 * GiB }).bytes, 2 * GiB);
    assert.equal(backendCeiling('cpu', HOST).bytes, 64 * GiB);
  });

  it('tensorflow: --device-memory when given, the host for the CPU build, else unknown (and then never refused)', () => {
    assert.equal(backendCeiling('tensorflow', { ...HOST, deviceBytes: 80e9 }).bytes, 80e9);
    assert.equal(backendCeiling('tensorflow', { ...HOST, gpu: false }).bytes, 64 * GiB);
    assert.equal(backendCeiling('tensorflow', { ...HOST, gpu: true }).bytes, null);
    const plan = checkMemoryFits(config('360m-soap.yaml'), 'tensorflow', { ...HOST, gpu: true });
    assert.equal(plan.fits, null);
  });
});

describe('refusing a config that cannot fit, before any work', () => {
  it("refuses the issue's 360m-soap run on wasm with exit 2, naming the sizes and the ceiling", () => {
    assert.throws(
      () => checkMemoryFits(config('360m-soap.yaml', ISSUE_SETS), 'wasm', HOST),
      (err: unknown) => {
        assert.ok(err instanceof SoapTrainError);
        assert.equal(err.exitCode, 2);
        const line = err.oneLine();
        assert.doesNotMatch(line, /\n/);
        assert.match(line, /weights 441\.0 MiB, gradients 882\.0 MiB, soap state [\d.]+ [MG]iB \+ [\d.]+ GiB update temporaries, activations [\d.]+ MiB per micro-batch of 1×64/);
        assert.match(line, /but wasm has 3\.98 GiB \(wasm heap, 32-bit\)/);
        assert.match(line, /backend: tensorflow/);
        return true;
      },
    );
  });

  it('lets the tiny config through', () => {
    const plan = checkMemoryFits(config('tiny-soap.yaml'), 'wasm', HOST);
    assert.equal(plan.fits, true);
  });

  it('suggests the largest n_layers and micro_batch_size that fit, by its own estimate', () => {
    // tiny-adamw at seq_len 512: ~0.9 GiB of activations per layer at 16 × 512
    const big = config('tiny-adamw.yaml', ['model.n_layers=40', 'train.seq_len=512']);
    let message = '';
    assert.throws(() => checkMemoryFits(big, 'wasm', HOST), (err: unknown) => ((message = (err as SoapTrainError).oneLine()), true));
    const layers = Number(/model\.n_layers=(\d+)/.exec(message)?.[1]);
    const micro = Number(/train\.micro_batch_size=(\d+)/.exec(message)?.[1]);
    const withLayers = (L: number) => planMemory({ ...big, model: { ...big.model, n_layers: L } }, 'wasm', HOST).fits;
    const withMicro = (b: number) => planMemory({ ...big, train: { ...big.train, micro_batch_size: b } }, 'wasm', HOST).fits;
    assert.ok(layers >= 1 && withLayers(layers) && !withLayers(layers + 1), `n_layers ${layers} in "${message}"`);
    // micro-batches must divide batch_size 16: the next larger one is twice as large
    assert.ok(micro >= 1 && withMicro(micro) && !withMicro(2 * micro), `micro_batch_size ${micro} in "${message}"`);
  });

  it('runExperiment refuses before the run directory exists', async () => {
    // d_model 2²⁰: 4·d² weights per block alone are 17 TB, more than any host
    const exp = tinyExperiment();
    const loaded = loadConfig(exp.config, ['model.d_model=1048576', 'model.n_heads=2'].map(parseOverride));
    const runDir = join(exp.dir, 'runs', 'huge');
    await assert.rejects(runExperiment(loaded, { runDir }), (err: unknown) => {
      assert.ok(err instanceof SoapTrainError && err.exitCode === 2, String(err));
      assert.match(err.oneLine(), /the training step needs about [\d.]+ GiB on cpu/);
      return true;
    });
    assert.ok(!existsSync(runDir));
  });
});

describe('memory sizes', () => {
  it('parse decimal and binary units, case-insensitively', () => {
    assert.equal(parseBytes('80GB'), 80e9);
    assert.equal(parseBytes('80GiB'), 80 * GiB);
    assert.equal(parseBytes('512 MiB'), 512 * 2 ** 20);
    assert.equal(parseBytes('1.5gb'), 1.5e9);
    assert.equal(parseBytes('2T'), 2e12);
    assert.equal(parseBytes('4096'), 4096);
  });

  it('refuse anything else with exit 2', () => {
    for (const text of ['lots', '80XB', '', '-1GB', '80 G B']) {
      assert.throws(() => parseBytes(text), (err: unknown) => err instanceof SoapTrainError && err.exitCode === 2 && /--device-memory/.test(err.message), text);
    }
  });
});

describe('out of memory anyway', () => {
  const plan = planMemory(config('tiny-soap.yaml'), 'wasm', HOST);

  it('recognises wasm, host and TensorFlow allocation failures, and nothing else', () => {
    assert.ok(isOutOfMemory(new WebAssembly.RuntimeError('memory access out of bounds')));
    assert.ok(isOutOfMemory(new RangeError('Array buffer allocation failed')));
    assert.ok(isOutOfMemory(new Error('OOM when allocating tensor with shape[50304,1024]')));
    assert.ok(isOutOfMemory(new Error('Failed to allocate 3.1 GB')));
    assert.ok(!isOutOfMemory(new Error('matMul: inner dimensions 3 and 4 differ')));
    assert.ok(!isOutOfMemory('memory access out of bounds'));
  });

  it('becomes one line with exit 1 naming the plan, and other errors pass through unchanged', () => {
    const err = explainOutOfMemory(new WebAssembly.RuntimeError('memory access out of bounds'), plan);
    assert.ok(err instanceof SoapTrainError);
    assert.equal(err.exitCode, 1);
    assert.match(err.oneLine(), /^out of memory on wasm \(RuntimeError: memory access out of bounds\); the plan predicted [\d.]+ MiB with margin \(weights [\d.]+ MiB, .*activations [\d.]+ MiB per micro-batch of 16×128\) of 3\.98 GiB/);
    assert.match(err.oneLine(), /lower train\.micro_batch_size or model\.n_layers, or use backend: tensorflow/);
    const other = new Error('something else');
    assert.equal(explainOutOfMemory(other, plan), other);
  });

  it('runExperiment turns an allocation failure during training into that line, with its plan', async () => {
    // The cpu backend's Erf (the GeLU) fails the way a full host does.
    await tf.setBackend('cpu');
    const stock = tf.getKernel('Erf', 'cpu')!;
    tf.unregisterKernel('Erf', 'cpu');
    tf.registerKernel({
      ...stock,
      kernelFunc: () => {
        throw new RangeError('Array buffer allocation failed');
      },
    });
    try {
      const exp = tinyExperiment();
      await assert.rejects(runExperiment(loadConfig(exp.config), { runDir: join(exp.dir, 'runs', 'oom') }), (err: unknown) => {
        assert.ok(err instanceof SoapTrainError && err.exitCode === 1, String(err));
        assert.match(err.oneLine(), /^out of memory on cpu \(RangeError: Array buffer allocation failed\); the plan predicted [\d.]+ MiB with margin \(weights [\d.]+ MiB, gradients [\d.]+ MiB, adamw state/);
        return true;
      });
    } finally {
      tf.unregisterKernel('Erf', 'cpu');
      tf.registerKernel(stock);
    }
  });

  it('reportError prints it as an error, not an internal error, and exits 1', () => {
    const lines: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => (lines.push(String(chunk)), true)) as typeof process.stderr.write;
    let code: number;
    try {
      code = reportError(new WebAssembly.RuntimeError('memory access out of bounds'));
    } finally {
      process.stderr.write = write;
    }
    assert.equal(code, 1);
    assert.equal(lines.length, 1);
    assert.match(lines[0], /^soap-train: error: out of memory on \w+ \(RuntimeError: memory access out of bounds\)/);
    assert.doesNotMatch(lines[0], /internal error/);
  });
});
