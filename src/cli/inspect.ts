/**
 * `soap-train inspect --config X`: what a config costs, computed from shapes alone (nothing is
 * allocated, so the 660m config can be inspected on a laptop): parameter counts split
 * embedding / non-embedding, training FLOPs per token, and the memory of the weights and of
 * each registered optimizer's state.
 */
import { Command } from 'commander';
import type { ModelConfig } from '../model/config.js';
import { countParams, flopsPerToken, paramShapes } from '../model/index.js';
import { createOptimizer, OPTIMIZERS } from '../optim/registry.js';
import { addConfigOptions, loadFromOptions, type ConfigOptions } from './common-options.js';

export interface InspectReport {
  model: ModelConfig;
  params: { embedding: number; non_embedding: number; total: number };
  flops_per_token: number;
  seq_len: number;
  tokens_per_step: number;
  weights_bytes: number;
  /** Optimizer state bytes per registered optimizer (the config's own section for its type, defaults for the rest). */
  optimizer_state_bytes: Record<string, number>;
  optimizer: string;
}

export function inspectConfig(model: ModelConfig, optimizerSection: { type: string } & Record<string, unknown>, seqLen: number, tokensPerStep: number): InspectReport {
  const shapes = Object.values(paramShapes(model));
  const counts = countParams(model);
  const optimizerStateBytes: Record<string, number> = {};
  for (const entry of OPTIMIZERS) {
    const section = entry.name === optimizerSection.type ? optimizerSection : { type: entry.name };
    const opt = createOptimizer(section);
    optimizerStateBytes[entry.name] = shapes.reduce((sum, shape) => sum + opt.stateBytes(shape), 0);
    opt.dispose();
  }
  return {
    model,
    params: { embedding: counts.embedding, non_embedding: counts.nonEmbedding, total: counts.total },
    flops_per_token: flopsPerToken(model, seqLen),
    seq_len: seqLen,
    tokens_per_step: tokensPerStep,
    weights_bytes: 4 * counts.total,
    optimizer_state_bytes: optimizerStateBytes,
    optimizer: optimizerSection.type,
  };
}

const fmtCount = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n));
const fmtBytes = (b: number) => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(1)} MiB` : `${(b / 2 ** 10).toFixed(1)} KiB`);

export function formatInspect(r: InspectReport): string {
  const m = r.model;
  const lines = [
    `model        ${m.n_layers} layers × d_model ${m.d_model}, ${m.n_heads} heads, MLP ${m.mlp_hidden}, vocab ${m.vocab_size}`,
    `parameters   ${fmtCount(r.params.total)} total = ${fmtCount(r.params.embedding)} embedding (tok_emb + lm_head) + ${fmtCount(r.params.non_embedding)} non-embedding  (${r.params.total.toLocaleString('en-US')})`,
    `FLOPs/token  ${(r.flops_per_token / 1e9).toFixed(3)} GFLOP training (forward + backward) at seq_len ${r.seq_len}; ${(r.flops_per_token * r.tokens_per_step / 1e12).toFixed(2)} TFLOP per step of ${r.tokens_per_step.toLocaleString('en-US')} tokens`,
    `weights      ${fmtBytes(r.weights_bytes)} (float32)`,
    `optimizer state (float32):`,
    ...Object.entries(r.optimizer_state_bytes).map(
      ([name, bytes]) => `  ${name.padEnd(10)} ${fmtBytes(bytes).padStart(11)}  (${(bytes / r.weights_bytes).toFixed(2)}× weights)${name === r.optimizer ? '  ← this config' : ''}`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}

export function inspectCommand(): Command {
  return addConfigOptions(new Command('inspect').description('print parameter counts, FLOPs per token and memory of a config, without allocating it'))
    .option('--json', 'print JSON instead of text')
    .action((opts: ConfigOptions & { json?: boolean }) => {
      const { config } = loadFromOptions(opts);
      const report = inspectConfig(config.model, config.optimizer, config.train.seq_len, config.train.batch_size * config.train.seq_len);
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatInspect(report));
    });
}
