/**
 * The memory a training step needs on its backend, estimated from the resolved config alone
 * (nothing is allocated), and the check that refuses a config that cannot fit before any work.
 *
 * A step (train/step.ts) passes through three phases; its peak is the largest:
 *   backward   W + S + A + G·(1 + [micro-batches > 1])   the new gradients, and the running sum
 *   accumulate W + S + 3G                                 sum + new + their sum; or mean + squares
 *   update     W + S + G·(1 + [grad_clip > 0]) + U + C   mean gradients, their clipped copies,
 *                                                        one parameter's update temporaries,
 *                                                        every parameter's plan carries
 * with W the float32 weights (4·params), G one set of gradients (4·params), S the optimizer
 * state (Σ stateBytes), A one micro-batch's activations ({@link activationBytes}), U the
 * largest parameter's update temporaries ({@link updateTransientBytes}) and C the statistics and
 * bases a refresh step plans for all parameters before updating any ({@link planCarryBytes}).
 * The step fits when peak × {@link SAFETY_FACTOR} ≤ the backend's ceiling ({@link backendCeiling}).
 */
import { fusedGeluActive } from '../backend/fused-gelu.js';
import { totalmem } from 'node:os';
import type { ExperimentConfig } from '../config/schema.js';
import { badInput, SoapTrainError } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import { paramShapes } from '../model/params.js';
import { loadNativeLapack } from '../optim/linalg/native.js';
import { createOptimizer, type OptimizerSection } from '../optim/registry.js';
import { shampooBlocks, shampooSchema } from '../optim/shampoo.js';
import { soapLayout, soapSchema } from '../optim/soap.js';
import { tf } from '../tf.js';

/**
 * Headroom for the allocator: peak × 1.25 must fit. tfjs-backend-wasm allocates every tensor
 * with dlmalloc inside one linear memory that can only grow (no mmap, nothing returned), so
 * blocks freed between differently sized tensors leave holes; the same margin covers the host
 * allocator (cpu) and TensorFlow's BFC allocator with its own reservations (tensorflow).
 */
export const SAFETY_FACTOR = 1.25;

/**
 * The largest wasm heap: tfjs-backend-wasm 4.22's emscripten `getHeapMax()` returns 4294901760
 * (65535 pages of 64 KiB; the .wasm modules declare a 65536-page maximum, and the heap can
 * never exceed 2³² bytes: the module is 32-bit). Malloc results are not checked by the backend
 * (`move()` in backend_wasm.js), so running out shows up as "memory access out of bounds".
 */
export const WASM_HEAP_MAX = 4294901760;

/** What the module itself holds in its heap: static data and stack (~100 KiB) inside the 16 MiB INITIAL_MEMORY, plus XNNPACK's own buffers. */
export const WASM_MODULE_RESERVE = 16 * 2 ** 20;

export interface Ceiling {
  /** Bytes a step may use on this backend, or null when unknown (a GPU without --device-memory). */
  bytes: number | null;
  /** Where the number comes from, for messages. */
  source: string;
}

export interface CeilingOptions {
  /** Memory of the accelerator (--device-memory); the ceiling of the tensorflow backend. */
  deviceBytes?: number;
  /** Host RAM (default os.totalmem()); the ceiling of cpu, and of tensorflow's CPU build. */
  hostBytes?: number;
  /** Whether the tensorflow backend runs on a GPU (default: asked of the loaded backend, unknown if none). */
  gpu?: boolean;
}

/** What a plan depends on besides the config: the machine, and where SOAP's refresh QR runs. */
export interface PlanOptions extends CeilingOptions {
  /**
   * Whether SOAP's refresh QR runs on the device (optim/linalg/host-jobs.ts `qrPlacement`: on the
   * host when native LAPACK loaded and the backend is not tensorflow). Default: that rule.
   */
  deviceQr?: boolean;
}

/**
 * The bytes a backend can give a step:
 *   wasm        min(4294901760 − 16 MiB, host RAM)   the 32-bit heap (see WASM_HEAP_MAX)
 *   cpu         host RAM                             tensors are ArrayBuffers outside the V8 heap
 *                                                    (--max-old-space-size does not bound them;
 *                                                    one tensor holds at most 2³² elements)
 *   tensorflow  --device-memory when given; host RAM for the CPU build of tfjs-node; else unknown
 */
export function backendCeiling(backend: string, opts: CeilingOptions = {}): Ceiling {
  const host = opts.hostBytes ?? totalmem();
  if (backend === 'wasm') {
    const heap = WASM_HEAP_MAX - WASM_MODULE_RESERVE;
    return host < heap ? { bytes: host, source: 'host RAM, below the 4 GiB wasm heap' } : { bytes: heap, source: 'wasm heap, 32-bit' };
  }
  if (backend === 'tensorflow') {
    if (opts.deviceBytes !== undefined) return { bytes: opts.deviceBytes, source: 'device memory, --device-memory' };
    const gpu = opts.gpu ?? tensorflowUsesGpu();
    return gpu === false ? { bytes: host, source: 'host RAM, tfjs-node CPU build' } : { bytes: null, source: 'GPU memory, unknown without --device-memory' };
  }
  return { bytes: host, source: 'host RAM' };
}

/** Whether the registered tensorflow backend (tfjs-node) runs on a GPU; undefined when none is loaded. */
function tensorflowUsesGpu(): boolean | undefined {
  // tfjs-node's NodeJSKernelBackend has `isUsingGpuDevice`; it is not part of the KernelBackend type.
  const backend = tf.findBackend('tensorflow') as unknown as { isUsingGpuDevice?: boolean } | null;
  return typeof backend?.isUsingGpuDevice === 'boolean' ? backend.isUsingGpuDevice : undefined;
}

/**
 * Bytes one micro-batch's forward + backward pass holds at its peak, besides the weights and the
 * weight gradients (float32). With N = B·T rows (B the micro-batch, T seq_len), d = d_model,
 * m = mlp_hidden, H = n_heads, V = vocab_size, L = n_layers, in floats:
 *
 *   L·(76·N·d + 16·N·m + 5·B·H·T² + 16·N·H)     the blocks
 *   + 12·N·d + 7·N·V + 4·N                      final norm, head, loss, token ids
 *   + V·(d + N) + N·d                           GEMM scratch of the head (transposed and packed operands)
 *
 * tfjs keeps two things until the backward pass ends: (S) every tensor an op saved for its
 * gradient (Add, Sub, Mul and MatMul save both inputs, Reshape its input, Erf its input,
 * Softmax its output, a customGrad what it `save`s), and (G) every gradient it computed: one dy
 * per use of a tensor (the last running sum included), plus whatever a gradient computes outside
 * its per-input closure (all of a customGrad's gradFunc; Erf's exp(−x²) chain; Softmax's dy·y).
 * Counted op by op in model/layers.ts, per block:
 *   S  27·N·d + 6·N·m + 2·BHT²: LN1 x̂ and output; q: projection, LN x̂ and output, swapped pairs,
 *      x·cos and swapped·sin, RoPE output, qᵀ (8); k the same without the RoPE output (7);
 *      v projection and vᵀ (2); y and the merged heads (2); the residual Add's inputs (2); LN2
 *      x̂ and output, the residual Add's inputs (4); u, u/2, u/√2, erf, 1+erf, gelu (6·N·m);
 *      the scores (saved by the mask Add) and the softmax (2·BHT²)
 *   G  49·N·d + 10·N·m + 3·BHT²: four LayerNorm gradFuncs of 7·N·d; 21·N·d of dy for the other
 *      N·d tensors' uses; GeLU 6·N·m of dy plus Erf's 4·N·m; dscores, dsoftmax and dy·y
 * so 76·N·d + 16·N·m + 5·BHT² (the N·H norm statistics are a bound). The head holds LN_f
 * (2 saved + 7 gradient)·N·d, the dx of the head N·d, the logits N·V, logSumExp's gradFunc
 * 3·N·V (x − lse, its exp, the product with dy), the gather's scatter N·V, the logits' summed
 * gradient N·V and a transposed copy of it for the head's GEMM N·V. A least-squares fit of the
 * bytes wasm runs allocate recovers the coefficients to 1%, and test/memory-plan.test.ts checks
 * that the formula bounds them within 30%. The GEMM scratch (XNNPACK's packed operand and the
 * matMul override's transposed copies, allocated outside the tensors) is taken at its worst case.
 * With the fused GeLU the MLP's 16·N·m is 4·N·m (`fusedGelu`); the fused RoPE and OpenBLAS's
 * products (no transposed copies) save more, which the formula keeps as margin.
 */
export function activationBytes(model: ModelConfig, microBatch: number, seqLen: number, opts: { fusedGelu?: boolean } = {}): number {
  const { d_model: d, mlp_hidden: m, n_heads: H, vocab_size: V, n_layers: L } = model;
  const N = microBatch * seqLen;
  // The fused GeLU (src/backend/fused-gelu.ts) saves its input and the next product its output,
  // and its gradient is one dy and one dx: 4·N·m instead of the composite's 6 + 10.
  const mlpFloats = (opts.fusedGelu ? 4 : 16) * N * m;
  const block = 76 * N * d + mlpFloats + 5 * microBatch * H * seqLen * seqLen + 16 * N * H;
  const head = 12 * N * d + 7 * N * V + 4 * N;
  const scratch = V * (d + N) + N * d;
  return 4 * (L * block + head + scratch);
}

/** Floats the device Householder QR (optim/linalg/qr-device.ts, block 32) holds at once for an n×n input. */
function deviceQrFloats(n: number): number {
  // One tf.tidy keeps every panel's trailing update (rest, Vᵀ·rest, V·Tᵀ·(…), their difference,
  // the next trail: 4 r·c) and every step of forming Q (two pads, their sum, Vᵀ·base, the
  // product, the difference: 5 r·c), r = c = n − k0 for the panel at k0.
  let floats = 0;
  for (let k0 = 0; k0 < n; k0 += 32) floats += 9 * (n - k0) ** 2;
  return floats;
}

/**
 * Bytes of the temporaries one parameter's update holds at its peak (the update runs in one
 * tf.tidy per parameter, so they add up until it returns), counted in the optimizer files with
 * n = numel, p = preconditioned dims, d_i their sizes:
 *   adamw      14·n        decay, two EMAs (3 + 4), the corrected direction (4), the step (2)
 *   adafactor  13·n + 8·(r + c) for an r×c factored shape: EMA 3, G² 1, r·cᵀ/Σr 2, direction 3,
 *              step 2, decay 2, and the row/column vectors; 14·n for a vector (EMA of G² 4)
 *   soap       (14 + 4p + s)·n + Σ 9·d_i² + max_i QR(d_i)
 *              EMAs 7, direction 3, step 2, decay 1, GEMM packing 1, rotations in and out 2p,
 *              the refresh's permutation of V and M's change of basis 2p, statistics s = 2 for a
 *              matrix (√w·G and its transpose) else p; per factor the statistic and its EMA (3)
 *              and the refresh's P·Q, its sorted columns, the new Q, the transition and the
 *              transposed copies the wasm matMul makes of them (6);
 *              QR(d) is the device QR's working set when it runs there (d ≥ 64), else d²
 *   shampoo    (19 + 2p + 2·[blocked])·n + Σ 12·d_i² over every block's factors
 *              EMA 3, M̂ 1, grafting 8, norms 2, scale 1, decay 1, step 2, packing 1, transposes
 *              and products 2p, the blocks' slices and reassembly 2; per factor the statistic and
 *              its EMA (4) and the root with its Newton or reassembly working set (8)
 *   others     24·n + Σ 12·d²            (a registered optimizer this table does not know yet)
 */
export function updateTransientBytes(section: OptimizerSection, shape: readonly number[], opts: { deviceQr: boolean; hostProducts?: boolean }): number {
  const n = shape.reduce((a, b) => a * b, 1);
  const sumSquares = (dims: number[]): number => dims.reduce((a, b) => a + b * b, 0);
  switch (section.type) {
    case 'adamw':
      return 4 * 14 * n;
    case 'adafactor': {
      // Factored over [numel/last, last] for ≥2-D shapes; r, c, their sums and EMAs are 8 vectors.
      const last = shape[shape.length - 1] ?? 1;
      return 4 * (shape.length < 2 ? 14 * n : 13 * n + 8 * (n / last + last));
    }
    case 'soap': {
      const config = soapSchema.parse(section);
      const { workShape, preconditioned } = soapLayout(shape, config);
      const dims = workShape.filter((_, i) => preconditioned[i]);
      const p = dims.length;
      const stats = workShape.length === 2 ? 2 : p;
      const normalize = config.normalize_grads ? 4 : 0;
      if (opts.hostProducts && workShape.length === 2) {
        // The rotations run in OpenBLAS (tensor-modes.ts productPlacement 'host', or wasm's own
        // matMul engine, src/backend/blas-matmul.ts: no explicit transposes either way): on the
        // device only the moments' elementwise work and each product's result remain, plus a d²
        // basis transition when the cheaper order needs one.
        const cubes = dims.reduce((a, d) => a + d ** 3, 0);
        const sumDims = dims.reduce((a, d) => a + d, 0);
        return 4 * ((15 + 2 * p + normalize) * n + (cubes < n * sumDims ? sumSquares(dims) : 0));
      }
      const qr = Math.max(0, ...dims.map((d) => (opts.deviceQr && d >= 64 ? deviceQrFloats(d) : d * d)));
      return 4 * ((14 + 4 * p + stats + normalize) * n + 9 * sumSquares(dims) + qr);
    }
    case 'shampoo': {
      const blocks = shampooBlocks(shape, shampooSchema.parse(section));
      const factors = blocks.map((b) => b.size.filter((_, i) => b.precond[i]));
      const p = Math.max(...factors.map((f) => f.length));
      const blocked = blocks.length > 1 ? 2 : 0;
      return 4 * ((19 + 2 * p + blocked) * n + 12 * sumSquares(factors.flat()));
    }
    default:
      return 4 * (24 * n + 12 * sumSquares(shape.length < 2 ? [] : [...shape]));
  }
}

/**
 * Bytes a parameter's `plan` keeps for its update (optim/rule-optimizer.ts `applyGradientsAsync`
 * plans every parameter before updating any, so on a refresh step these add up over all of them):
 * the new statistics and, for SOAP with its QR on the device, the new bases, or Shampoo's new
 * roots: the factor part of the state, 2·4·Σd² per parameter (the moments are not carried).
 */
export function planCarryBytes(section: OptimizerSection, shape: readonly number[]): number {
  const sumSquares = (dims: number[]): number => dims.reduce((a, b) => a + b * b, 0);
  switch (section.type) {
    case 'adamw':
    case 'adafactor':
      return 0;
    case 'soap': {
      const { workShape, preconditioned } = soapLayout(shape, soapSchema.parse(section));
      const dims = workShape.filter((_, i) => preconditioned[i]);
      return 4 * (2 * sumSquares(dims) + dims.reduce((a, b) => a + b, 0));
    }
    case 'shampoo':
      return 4 * 2 * sumSquares(shampooBlocks(shape, shampooSchema.parse(section)).flatMap((b) => b.size.filter((_, i) => b.precond[i])));
    default:
      return 4 * 2 * sumSquares(shape.length < 2 ? [] : [...shape]);
  }
}

export type StepPhase = 'backward' | 'accumulate' | 'update';

export interface MemoryPlan {
  backend: string;
  /** The optimizer's type (whose state and temporaries are counted). */
  optimizer: string;
  micro_batch_size: number;
  seq_len: number;
  weights_bytes: number;
  /** Gradient buffers held in the peak phase (1–3 sets). */
  gradients_bytes: number;
  optimizer_state_bytes: number;
  /** The largest parameter's update temporaries plus every parameter's plan carries (counted in the update phase). */
  optimizer_transient_bytes: number;
  /** One micro-batch's forward + backward (counted in the backward phase). */
  activation_bytes: number;
  /** The step's peak before the safety factor, and its phase. */
  peak_bytes: number;
  peak_phase: StepPhase;
  /** peak × SAFETY_FACTOR: what must fit. */
  required_bytes: number;
  ceiling: Ceiling;
  /** null when the ceiling is unknown. */
  fits: boolean | null;
}

/** The memory plan of `config`'s training step on `backend` (see the module comment for the phases). */
export function planMemory(config: ExperimentConfig, backend: string, opts: PlanOptions = {}): MemoryPlan {
  const t = config.train;
  const micro = t.micro_batch_size ?? t.batch_size;
  const shapes = Object.values(paramShapes(config.model));
  const params = shapes.reduce((sum, s) => sum + s.reduce((a, b) => a * b, 1), 0);
  const optimizer = createOptimizer(config.optimizer);
  let state = 0;
  try {
    for (const s of shapes) state += optimizer.stateBytes(s);
  } finally {
    optimizer.dispose();
  }
  const deviceQr = opts.deviceQr ?? (backend === 'tensorflow' || loadNativeLapack() === null);
  const hostProducts = (backend === 'wasm' || backend === 'cpu') && loadNativeLapack() !== null;
  const transient =
    Math.max(...shapes.map((s) => updateTransientBytes(config.optimizer, s, { deviceQr, hostProducts }))) +
    shapes.reduce((sum, s) => sum + planCarryBytes(config.optimizer, s), 0);
  const W = 4 * params;
  const G = 4 * params;
  const A = activationBytes(config.model, micro, t.seq_len, { fusedGelu: backend === 'wasm' && fusedGeluActive() });
  const phases: Array<[StepPhase, number, number]> = [
    ['backward', G * (micro < t.batch_size ? 2 : 1), A],
    ['accumulate', 3 * G, 0],
    ['update', G * (t.grad_clip > 0 ? 2 : 1), transient],
  ];
  const [phase, grads, extra] = phases.reduce((best, p) => (p[1] + p[2] > best[1] + best[2] ? p : best));
  const peak = W + state + grads + extra;
  const ceiling = backendCeiling(backend, opts);
  const required = peak * SAFETY_FACTOR;
  return {
    backend,
    optimizer: config.optimizer.type,
    micro_batch_size: micro,
    seq_len: t.seq_len,
    weights_bytes: W,
    gradients_bytes: grads,
    optimizer_state_bytes: state,
    optimizer_transient_bytes: transient,
    activation_bytes: A,
    peak_bytes: peak,
    peak_phase: phase,
    required_bytes: required,
    ceiling,
    fits: ceiling.bytes === null ? null : required <= ceiling.bytes,
  };
}

function withTrain(config: ExperimentConfig, train: Partial<ExperimentConfig['train']>): ExperimentConfig {
  return { ...config, train: { ...config.train, ...train } };
}

/** The largest n_layers ≤ the config's whose step fits (null when not even one layer does). */
export function largestFittingLayers(config: ExperimentConfig, backend: string, opts: PlanOptions = {}): number | null {
  for (let L = config.model.n_layers; L >= 1; L--) {
    if (planMemory({ ...config, model: { ...config.model, n_layers: L } }, backend, opts).fits) return L;
  }
  return null;
}

/** The largest micro_batch_size dividing batch_size whose step fits (null when not even 1 does). */
export function largestFittingMicroBatch(config: ExperimentConfig, backend: string, opts: PlanOptions = {}): number | null {
  for (let micro = config.train.batch_size; micro >= 1; micro--) {
    if (config.train.batch_size % micro !== 0) continue;
    if (planMemory(withTrain(config, { micro_batch_size: micro }), backend, opts).fits) return micro;
  }
  return null;
}

const GiB = 2 ** 30;
const MiB = 2 ** 20;

/** `1.23 GiB` / `456.7 MiB`. */
export function formatBytes(bytes: number): string {
  return bytes >= GiB ? `${(bytes / GiB).toFixed(2)} GiB` : `${(bytes / MiB).toFixed(1)} MiB`;
}

/** The sizes of a plan on one line: what goes into its peak. */
export function describePlan(plan: MemoryPlan): string {
  return (
    `weights ${formatBytes(plan.weights_bytes)}, gradients ${formatBytes(plan.gradients_bytes)}, ` +
    `${plan.optimizer} state ${formatBytes(plan.optimizer_state_bytes)} + ${formatBytes(plan.optimizer_transient_bytes)} update temporaries, ` +
    `activations ${formatBytes(plan.activation_bytes)} per micro-batch of ${plan.micro_batch_size}×${plan.seq_len}`
  );
}

/**
 * Refuses, before any work, a config whose training step cannot fit on `backend`: throws a
 * one-line bad-input error naming the sizes, the peak × safety factor against the ceiling, and
 * what would fit (the largest n_layers, the largest micro_batch_size, or backend: tensorflow).
 * Returns the plan otherwise (also when the ceiling is unknown).
 */
export function checkMemoryFits(config: ExperimentConfig, backend: string, opts: PlanOptions = {}): MemoryPlan {
  const plan = planMemory(config, backend, opts);
  if (plan.fits !== false) return plan;
  const fixes: string[] = [];
  const layers = largestFittingLayers(config, backend, opts);
  if (layers !== null) fixes.push(`model.n_layers=${layers}`);
  const micro = largestFittingMicroBatch(config, backend, opts);
  if (micro !== null) fixes.push(`train.micro_batch_size=${micro}`);
  if (backend !== 'tensorflow') fixes.push('backend: tensorflow on a large enough GPU');
  const fix = fixes.length > 0 ? `fits with ${fixes.join(', or ')}` : 'lower model.vocab_size, model.d_model or the micro-batch';
  throw badInput(
    `the training step needs about ${formatBytes(plan.required_bytes)} on ${backend} (${describePlan(plan)}; ` +
      `peak ${formatBytes(plan.peak_bytes)} in the ${plan.peak_phase} phase × ${SAFETY_FACTOR} allocator margin) ` +
      `but ${backend} has ${formatBytes(plan.ceiling.bytes ?? 0)} (${plan.ceiling.source})`,
    { fix },
  );
}

const OUT_OF_MEMORY =
  /memory access out of bounds|Array buffer allocation failed|Failed to allocate|out of memory|OOM when allocating|Cannot enlarge memory|Maximum memory size exceeded|Invalid typed array length/i;

/** Whether an error is the backend (or the host) running out of memory. */
export function isOutOfMemory(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return OUT_OF_MEMORY.test(`${err.name}: ${err.message}`);
}

/**
 * The one-line failure (exit 1) for an out-of-memory error that escaped the plan: what happened,
 * the sizes the plan predicted (when there is one) and the fix. Other errors come back unchanged.
 */
export function explainOutOfMemory(err: unknown, plan?: MemoryPlan): unknown {
  if (!isOutOfMemory(err)) return err;
  const what = `${(err as Error).name}: ${(err as Error).message.split('\n')[0]}`;
  // engine().backendName reads the active backend without initialising one (tf.getBackend() would).
  const backend = plan?.backend ?? (tf.engine().backendName || 'the backend');
  const predicted = plan
    ? `; the plan predicted ${formatBytes(plan.required_bytes)} with margin (${describePlan(plan)}) of ${plan.ceiling.bytes === null ? 'unknown' : formatBytes(plan.ceiling.bytes)} (${plan.ceiling.source})`
    : '';
  return new SoapTrainError(`out of memory on ${backend} (${what})${predicted}`, {
    exitCode: 1,
    fix: 'lower train.micro_batch_size or model.n_layers, or use backend: tensorflow; `soap-train inspect --config …` shows the plan',
  });
}

/**
 * Parses a memory size: a number with an optional unit, decimal (kB, MB, GB, TB = 10³ⁿ bytes)
 * or binary (KiB, MiB, GiB, TiB = 2¹⁰ⁿ), case-insensitive; a bare number is bytes. `80GB` is
 * 80·10⁹ bytes, `80GiB` 80·2³⁰. Throws a bad-input error naming `option` otherwise.
 */
export function parseBytes(text: string, option = '--device-memory'): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([kmgt]i?b?|b)?\s*$/i.exec(text);
  if (!m) throw badInput(`${option} ${text}: expected a size such as 80GB, 24GiB or 512MiB`);
  const value = Number(m[1]);
  const unit = (m[2] ?? 'b').toLowerCase();
  if (unit === 'b') return Math.round(value);
  const power = 'kmgt'.indexOf(unit[0]) + 1;
  const binary = unit.includes('i');
  return Math.round(value * (binary ? 1024 : 1000) ** power);
}
