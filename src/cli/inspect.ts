/**
 * `soap-train inspect --config X`: what a config costs, computed from shapes alone (nothing is
 * allocated, so the 660m config can be inspected on a laptop): parameter counts split
 * embedding / non-embedding, training FLOPs per token, the memory of the weights and of
 * each registered optimizer's state, the activations of one micro-batch, and whether a
 * training step fits on each backend (train/memory-plan.ts); with `--device-memory 80GB`, the
 * largest micro-batch that fits on that device.
 */
import { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkpointBytes, listCheckpoints } from '../checkpoint/checkpoint.js';
import { INDEX_FILE, type TensorIndex } from '../checkpoint/tensor-file.js';
import type { ExperimentConfig } from '../config/schema.js';
import { badInput } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import { countParams, flopsPerToken, paramShapes } from '../model/index.js';
import { createOptimizer, OPTIMIZERS } from '../optim/registry.js';
import {
  formatBytes,
  largestFittingLayers,
  largestFittingMicroBatch,
  parseBytes,
  planMemory,
  SAFETY_FACTOR,
  type PlanOptions,
  type MemoryPlan,
  type StepPhase,
} from '../train/memory-plan.js';
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
  /** Size of one checkpoint (parameters + this config's optimizer state + index). */
  checkpoint_bytes: number;
  optimizer: string;
  /** The training step's memory and where it fits (present when inspecting a whole config). */
  memory?: MemoryReport;
}

/** Whether the step fits on one backend, and what would. */
export interface BackendFit {
  /** The step's peak × the safety factor on this backend (SOAP's QR placement differs by backend). */
  required_bytes: number;
  ceiling_bytes: number | null;
  ceiling_source: string;
  /** null when the ceiling is unknown. */
  fits: boolean | null;
  /** The largest n_layers / micro_batch_size (dividing batch_size) that fit; null if none or unknown. */
  largest_n_layers: number | null;
  largest_micro_batch_size: number | null;
}

/** The step on the cpu backend (its peak and phase), and its fit on each backend. */
export interface MemoryReport {
  micro_batch_size: number;
  seq_len: number;
  activation_bytes: number;
  gradients_bytes: number;
  optimizer_transient_bytes: number;
  peak_bytes: number;
  peak_phase: StepPhase;
  required_bytes: number;
  safety_factor: number;
  /** wasm, cpu and tensorflow (the device of --device-memory when given). */
  backends: Record<string, BackendFit>;
  device_memory_bytes?: number;
}

/** The step's memory plan and its fit on wasm, cpu and tensorflow (see train/memory-plan.ts). */
export function inspectMemory(config: ExperimentConfig, opts: PlanOptions = {}): MemoryReport {
  const backends: Record<string, BackendFit> = {};
  const plans: Record<string, MemoryPlan> = {};
  for (const backend of ['wasm', 'cpu', 'tensorflow']) {
    const plan = (plans[backend] = planMemory(config, backend, opts));
    const known = plan.ceiling.bytes !== null;
    backends[backend] = {
      required_bytes: plan.required_bytes,
      ceiling_bytes: plan.ceiling.bytes,
      ceiling_source: plan.ceiling.source,
      fits: plan.fits,
      largest_n_layers: known ? largestFittingLayers(config, backend, opts) : null,
      largest_micro_batch_size: known ? largestFittingMicroBatch(config, backend, opts) : null,
    };
  }
  const p = plans.cpu;
  return {
    micro_batch_size: p.micro_batch_size,
    seq_len: p.seq_len,
    activation_bytes: p.activation_bytes,
    gradients_bytes: p.gradients_bytes,
    optimizer_transient_bytes: p.optimizer_transient_bytes,
    peak_bytes: p.peak_bytes,
    peak_phase: p.peak_phase,
    required_bytes: p.required_bytes,
    safety_factor: SAFETY_FACTOR,
    backends,
    ...(opts.deviceBytes !== undefined ? { device_memory_bytes: opts.deviceBytes } : {}),
  };
}

export function inspectConfig(model: ModelConfig, optimizerSection: { type: string } & Record<string, unknown>, seqLen: number, tokensPerStep: number): InspectReport {
  const shapes = Object.values(paramShapes(model));
  const counts = countParams(model);
  const optimizerStateBytes: Record<string, number> = {};
  let checkpoint = 0;
  for (const entry of OPTIMIZERS) {
    const section = entry.name === optimizerSection.type ? optimizerSection : { type: entry.name };
    const opt = createOptimizer(section);
    optimizerStateBytes[entry.name] = shapes.reduce((sum, shape) => sum + opt.stateBytes(shape), 0);
    if (entry.name === optimizerSection.type) checkpoint = checkpointBytes(paramShapes(model), (shape) => opt.stateBytes(shape)).total;
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
    checkpoint_bytes: checkpoint,
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
    `checkpoint   ${fmtBytes(r.checkpoint_bytes)} per step-<N>/ folder (weights + ${r.optimizer} state)`,
    ...(r.memory ? formatMemory(r.memory, r) : []),
  ];
  return `${lines.join('\n')}\n`;
}

function formatFit(name: string, fit: BackendFit): string {
  const head = `  ${name.padEnd(10)} `;
  if (fit.fits === null) return `${head}unknown (${fit.ceiling_source})`;
  const needs = `needs ${formatBytes(fit.required_bytes)} of ${formatBytes(fit.ceiling_bytes ?? 0)} (${fit.ceiling_source})`;
  if (fit.fits) return `${head}fits: ${needs}`;
  const smaller = [
    ...(fit.largest_micro_batch_size !== null ? [`micro_batch_size ≤ ${fit.largest_micro_batch_size}`] : []),
    ...(fit.largest_n_layers !== null ? [`n_layers ≤ ${fit.largest_n_layers}`] : []),
  ];
  return `${head}does not fit: ${needs}; ${smaller.length > 0 ? `fits with ${smaller.join(', or with ')}` : 'no smaller n_layers or micro_batch_size fits'}`;
}

function formatMemory(m: MemoryReport, r: InspectReport): string[] {
  return [
    `activations  ${formatBytes(m.activation_bytes)} per micro-batch of ${m.micro_batch_size} × ${m.seq_len} (forward + backward, float32)`,
    `step peak    ${formatBytes(m.peak_bytes)} in the ${m.peak_phase} phase (weights ${formatBytes(r.weights_bytes)}, gradients ${formatBytes(m.gradients_bytes)}, ${r.optimizer} state ${formatBytes(r.optimizer_state_bytes[r.optimizer] ?? 0)} + ${formatBytes(m.optimizer_transient_bytes)} update temporaries); × ${m.safety_factor} allocator margin = ${formatBytes(m.required_bytes)}`,
    `fits on:`,
    ...Object.entries(m.backends).map(([name, fit]) => formatFit(name, fit)),
    ...(m.device_memory_bytes !== undefined ? [formatDevice(m.device_memory_bytes, m.backends.tensorflow)] : []),
  ];
}

function formatDevice(bytes: number, fit: BackendFit): string {
  const largest = fit.largest_micro_batch_size;
  return `device       ${formatBytes(bytes)}: ${largest !== null ? `largest micro_batch_size that fits: ${largest}` : 'no micro_batch_size fits'}`;
}

/** One checkpoint of a run directory: step, size, validity, optimizer-state bytes per parameter group. */
export interface CheckpointReport {
  step: number;
  dir: string;
  bytes: number;
  valid: boolean;
  reason?: string;
  /** `blocks.*.mlp.w_up` → bytes of optimizer state over all blocks (from index.json). */
  optimizer_state_bytes?: Record<string, number>;
}

export function inspectRunDir(runDir: string): CheckpointReport[] {
  return listCheckpoints(runDir, { full: true }).map((c) => {
    if (!c.valid) return c;
    const index = JSON.parse(readFileSync(join(c.dir, INDEX_FILE), 'utf8')) as TensorIndex;
    const groups: Record<string, number> = {};
    for (const [key, entry] of Object.entries(index.tensors)) {
      const m = /^optim\/(.+)\/[^/]+$/.exec(key);
      if (!m) continue;
      const group = m[1].replace(/^blocks\.\d+\./, 'blocks.*.');
      groups[group] = (groups[group] ?? 0) + entry.bytes;
    }
    return { ...c, optimizer_state_bytes: groups };
  });
}

function formatRunDir(runDir: string, reports: CheckpointReport[]): string {
  if (reports.length === 0) return `${runDir}: no checkpoints\n`;
  const lines = [`${runDir}: ${reports.length} checkpoint(s)`];
  for (const r of reports) {
    lines.push(`  step ${String(r.step).padStart(7)}  ${fmtBytes(r.bytes).padStart(11)}  ${r.valid ? 'valid' : `INVALID: ${r.reason}`}`);
    for (const [group, bytes] of Object.entries(r.optimizer_state_bytes ?? {})) lines.push(`      ${group.padEnd(28)} ${fmtBytes(bytes).padStart(11)} optimizer state`);
  }
  return `${lines.join('\n')}\n`;
}

export function inspectCommand(): Command {
  return addConfigOptions(new Command('inspect'), false)
    .description(
      'print parameter counts, FLOPs per token, memory and whether a training step fits on each backend for a config (without allocating it), or list the checkpoints of a run directory',
    )
    .argument('[run-dir]', "a run directory: list its checkpoints with step, size, validity and optimizer-state bytes per parameter group")
    .option('--json', 'print JSON instead of text')
    .option('--device-memory <size>', 'memory of the accelerator for backend tensorflow (e.g. 80GB, 24GiB): prints the largest micro_batch_size that fits')
    .action((runDir: string | undefined, opts: ConfigOptions & { json?: boolean; deviceMemory?: string }) => {
      if (runDir) {
        if (!existsSync(runDir)) throw badInput('no such run directory', { file: runDir });
        const reports = inspectRunDir(runDir);
        process.stdout.write(opts.json ? `${JSON.stringify(reports, null, 2)}\n` : formatRunDir(runDir, reports));
        return;
      }
      const deviceBytes = opts.deviceMemory === undefined ? undefined : parseBytes(opts.deviceMemory);
      const { config } = loadFromOptions(opts);
      const report = inspectConfig(config.model, config.optimizer, config.train.seq_len, config.train.batch_size * config.train.seq_len);
      report.memory = inspectMemory(config, { deviceBytes });
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatInspect(report));
    });
}
