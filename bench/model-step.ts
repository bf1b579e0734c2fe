/**
 * Tokens/s of one forward+backward pass of a tiny decoder (d_model 128, 4 layers, 4 heads,
 * MLP 512, vocab 256, seq 128, batch 16) on the cpu backend and on wasm, before and after
 * installWasmKernelOverrides().
 *
 *   node --import tsx bench/model-step.ts [--steps N] [--skip-cpu]
 * Prints a table and writes bench/results/model-step.json.
 */
import '@tensorflow/tfjs-backend-wasm';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tf } from '../src/tf.js';
import { installWasmKernelOverrides, uninstallWasmKernelOverrides } from '../src/backend/wasm-kernels.js';
import { flopsPerToken, initParams, lossTerms, modelSchema } from '../src/model/index.js';

const cfg = modelSchema.parse({ vocab_size: 256, d_model: 128, n_layers: 4, n_heads: 4, mlp_hidden: 512 });
const B = 16;
const T = 128;

function argValue(flag: string, fallback: number): number {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** Median seconds of a forward+backward step over `steps` timed steps after one warm-up. */
function timeSteps(steps: number, label: string): number {
  const params = initParams(cfg, { seed: 0, namePrefix: `${label}/` });
  const tokens = Int32Array.from({ length: B * (T + 1) }, (_, i) => (i * 7919 + 13) % cfg.vocab_size);
  const x = tf.tensor2d(tokens.filter((_, i) => i % (T + 1) !== T), [B, T], 'int32');
  const y = tf.tensor2d(tokens.filter((_, i) => i % (T + 1) !== 0), [B, T], 'int32');
  const times: number[] = [];
  for (let s = 0; s <= steps; s++) {
    const t0 = performance.now();
    const loss = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => lossTerms(params, x, y, cfg).loss, Object.values(params));
      // read one gradient entry so the backward pass is known to be finished
      grads[`${label}/tok_emb`].dataSync();
      return value.dataSync()[0];
    });
    const dt = (performance.now() - t0) / 1000;
    if (s > 0) times.push(dt);
    process.stderr.write(`  ${label} step ${s}${s === 0 ? ' (warm-up)' : ''}: ${dt.toFixed(2)} s, loss ${loss.toFixed(3)}\n`);
  }
  tf.dispose([x, y, ...Object.values(params)]);
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function main(): Promise<void> {
  const steps = argValue('--steps', 3);
  const rows: Array<{ backend: string; overrides: boolean; step_s: number; tokens_per_s: number; gflops: number }> = [];
  const record = (backend: string, overrides: boolean, stepS: number): void => {
    const tps = (B * T) / stepS;
    rows.push({ backend, overrides, step_s: stepS, tokens_per_s: tps, gflops: (tps * flopsPerToken(cfg, T)) / 1e9 });
  };
  if (!process.argv.includes('--skip-cpu')) {
    await tf.setBackend('cpu');
    record('cpu', false, timeSteps(Math.min(steps, 1), 'cpu'));
  }
  await tf.setBackend('wasm');
  // The stock wasm backend cannot differentiate the embedding at all: install once for the
  // UnsortedSegmentSum kernel, then put the stock BatchMatMul back for the "before" row.
  installWasmKernelOverrides();
  uninstallWasmKernelOverrides();
  record('wasm', false, timeSteps(Math.min(steps, 2), 'wasm-stock'));
  installWasmKernelOverrides();
  record('wasm', true, timeSteps(steps, 'wasm-fast'));

  console.log(`tiny model: d ${cfg.d_model}, ${cfg.n_layers} layers, ${cfg.n_heads} heads, mlp ${cfg.mlp_hidden}, vocab ${cfg.vocab_size}, B ${B}, T ${T}`);
  console.log(`${(flopsPerToken(cfg, T) / 1e6).toFixed(2)} MFLOP per token (training)`);
  console.log('backend  overrides  step s  tokens/s  GFLOP/s');
  for (const r of rows) {
    console.log(
      `${r.backend.padEnd(8)} ${String(r.overrides).padEnd(9)} ${r.step_s.toFixed(2).padStart(7)} ${r.tokens_per_s.toFixed(0).padStart(9)} ${r.gflops.toFixed(1).padStart(8)}`,
    );
  }
  const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'model-step.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, model: cfg, batch: B, seq_len: T, rows }, null, 2) + '\n');
  console.log(`wrote ${out}`);
}

await main();
