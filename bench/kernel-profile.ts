/**
 * Where a forward+backward pass spends its time, kernel by kernel: tf.profile over one
 * training step of a decoder on wasm (after two warm-up steps), summed per kernel name.
 *
 *   node --import tsx bench/kernel-profile.ts [--shape tiny|small] [--steps N]
 * Prints a table and writes bench/results/kernel-profile.json. SOAP_TRAIN_MATMUL=xnnpack
 * profiles the XNNPACK matMul route instead of OpenBLAS.
 */
import '@tensorflow/tfjs-backend-wasm';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tf } from '../src/tf.js';
import { installWasmKernelOverrides } from '../src/backend/wasm-kernels.js';
import { describeMatMulEngine } from '../src/backend/blas-matmul.js';
import { initParams, lossTerms, modelSchema } from '../src/model/index.js';

const SHAPES = {
  tiny: { model: { vocab_size: 256, d_model: 128, n_layers: 4, n_heads: 4, mlp_hidden: 512 }, batch: 16, seq: 128 },
  small: { model: { vocab_size: 256, d_model: 256, n_layers: 6, n_heads: 4, mlp_hidden: 1024 }, batch: 8, seq: 256 },
} as const;

function arg(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const shapeName = (arg('--shape') ?? 'tiny') as keyof typeof SHAPES;
  const shape = SHAPES[shapeName];
  if (!shape) throw new Error(`--shape must be one of ${Object.keys(SHAPES).join(', ')}`);
  const steps = Number(arg('--steps') ?? 3);
  await tf.setBackend('wasm');
  installWasmKernelOverrides();
  const cfg = modelSchema.parse(shape.model);
  const { batch: B, seq: T } = shape;
  const params = initParams(cfg, { seed: 0 });
  const tokens = Int32Array.from({ length: B * T }, (_, i) => (i * 7919 + 13) % cfg.vocab_size);
  const x = tf.tensor2d(tokens, [B, T], 'int32');
  const y = tf.tensor2d(tokens.map((t) => (t * 31 + 7) % cfg.vocab_size), [B, T], 'int32');
  const step = (): void => {
    const { value, grads } = tf.variableGrads(() => lossTerms(params, x, y, cfg).loss);
    tf.dispose([value, ...Object.values(grads)]);
  };
  step();
  step();
  const perKernel = new Map<string, { ms: number; calls: number }>();
  let wallMs = 0;
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    const info = await tf.profile(step);
    wallMs += performance.now() - t0;
    for (const k of info.kernels) {
      const e = perKernel.get(k.name) ?? { ms: 0, calls: 0 };
      e.ms += (await k.kernelTimeMs) as number;
      e.calls += 1;
      perKernel.set(k.name, e);
    }
  }
  const rows = [...perKernel.entries()]
    .map(([name, e]) => ({ name, ms_per_step: e.ms / steps, calls_per_step: e.calls / steps }))
    .sort((a, b) => b.ms_per_step - a.ms_per_step);
  const kernelMs = rows.reduce((s, r) => s + r.ms_per_step, 0);
  console.log(`${shapeName}: ${describeMatMulEngine()}; wall ${(wallMs / steps).toFixed(0)} ms/step under tf.profile, kernels ${kernelMs.toFixed(0)} ms`);
  console.log(`${'kernel'.padEnd(24)} ${'ms/step'.padStart(8)} ${'share'.padStart(6)} ${'calls'.padStart(6)}`);
  for (const r of rows.slice(0, 25)) {
    console.log(`${r.name.padEnd(24)} ${r.ms_per_step.toFixed(1).padStart(8)} ${((100 * r.ms_per_step) / kernelMs).toFixed(1).padStart(5)}% ${String(r.calls_per_step).padStart(6)}`);
  }
  const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'kernel-profile.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), shape: shapeName, engine: describeMatMulEngine(), wall_ms_per_step: wallMs / steps, rows }, null, 2) + '\n');
  console.log(`wrote ${out}`);
}

await main();
