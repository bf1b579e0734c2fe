/**
 * One `npm run bench` case in its own process, so its peak RSS and time to first step are its
 * own: loads the config (with --set overrides), opens the shipped data, and runs `--steps` real
 * training steps through trainStep (the trainer's batches and schedule; no evaluation, no
 * checkpoints, no metrics files). Prints one JSON line (CaseOutput) on stdout; progress on stderr.
 *
 *   node --import tsx bench/speed/run-case.ts --config configs/tiny-soap.yaml [--set k=v]…
 *        --steps 40 [--backend wasm] [--t0 EPOCH_MS] [--label tiny/soap]
 *
 * --t0 is the parent's clock (performance.timeOrigin + performance.now(), epoch ms) just before
 * it spawned this process: time to first step counts Node's and tsx's start-up too.
 */
import { selectBackend } from '../../src/backend/select.js';
import { reserveWasmHeap } from '../../src/backend/wasm-heap.js';
import { checkMemoryFits } from '../../src/train/memory-plan.js';
import { loadConfig, parseOverride } from '../../src/config/load.js';
import type { BackendName } from '../../src/config/schema.js';
import { openTokenDataset } from '../../src/data/dataset.js';
import { trainBatch } from '../../src/data/sampler.js';
import { countParams, flopsPerToken, initParams } from '../../src/model/index.js';
import { LinalgPool } from '../../src/optim/linalg/pool.js';
import { createOptimizer } from '../../src/optim/registry.js';
import { buildSchedule } from '../../src/schedule/index.js';
import { tf } from '../../src/tf.js';
import { trainStep } from '../../src/train/step.js';
import type { StepRecord } from './stats.js';

/** What the parent reads back. Times in ms; epoch-based times share the parent's clock. */
export interface CaseOutput {
  backend: string;
  backend_reason: string;
  params: number;
  flops_per_token: number;
  tokens_per_step: number;
  /** Parent's spawn → the first step starting (Node + tsx start-up, imports, backend, init, data). */
  setup_ms: number;
  /** The first step's own time (SOAP's first eigenbasis, XNNPACK's first packing, …). */
  first_step_ms: number;
  /** setup_ms + first_step_ms: spawn → first step done. */
  time_to_first_step_ms: number;
  /** process.resourceUsage().maxRSS at the end, in MiB. */
  peak_rss_mib: number;
  final_loss: number;
  steps: StepRecord[];
}

const now = () => performance.timeOrigin + performance.now();

function parseArgs(argv: string[]): { config: string; sets: string[]; steps: number; backend: BackendName; t0: number; label: string } {
  const out = { config: '', sets: [] as string[], steps: 40, backend: 'wasm' as BackendName, t0: performance.timeOrigin, label: '' };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    if (argv[i] === '--config') out.config = v;
    else if (argv[i] === '--set') out.sets.push(v);
    else if (argv[i] === '--steps') out.steps = Number(v);
    else if (argv[i] === '--backend') out.backend = v as BackendName;
    else if (argv[i] === '--t0') out.t0 = Number(v);
    else if (argv[i] === '--label') out.label = v;
    else throw new Error(`run-case: unknown argument ${argv[i]}`);
    i++;
  }
  if (!out.config || !(out.steps >= 1)) throw new Error('run-case: needs --config FILE and --steps N ≥ 1');
  return out;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const loaded = loadConfig(args.config, args.sets.map(parseOverride));
  const { config } = loaded;
  const t = config.train;
  const micro = t.micro_batch_size ?? t.batch_size;
  const backend = await selectBackend(args.backend);
  // As the trainer does (src/run/experiment.ts): the heap grown to the planned step once, on
  // huge pages where the native binding can ask for them.
  reserveWasmHeap(checkMemoryFits(config, backend.name).required_bytes);
  const data = openTokenDataset(config.data.train, { baseDirs: loaded.baseDirs, vocabSize: config.model.vocab_size, raw: config.data.raw, field: 'data.train', configFile: loaded.file });
  const params = initParams(config.model, { seed: t.seed });
  const optimizer = createOptimizer(config.optimizer);
  const schedule = buildSchedule(config.schedule, t.steps);
  const pool = new LinalgPool();

  const steps: StepRecord[] = [];
  let setupMs = 0;
  let firstStepMs = 0;
  let loss = NaN;
  for (let step = 0; step < args.steps; step++) {
    const started = now();
    if (step === 0) setupMs = started - args.t0;
    const r = await trainStep({
      params,
      model: config.model,
      optimizer,
      lr: config.optimizer.lr * schedule(step),
      gradClip: t.grad_clip,
      microBatches: t.batch_size / micro,
      microBatchSize: micro,
      seqLen: t.seq_len,
      batch: (i) => trainBatch(data, { seed: t.seed, step, micro: i, batchSize: micro, seqLen: t.seq_len }),
      hostWork: { pool },
    });
    const total = now() - started;
    if (step === 0) firstStepMs = total;
    loss = r.ce;
    steps.push({ step: step + 1, total_ms: total, ...r.times });
    if (step === 0 || (step + 1) % 10 === 0 || step + 1 === args.steps) {
      process.stderr.write(`  ${args.label} step ${step + 1}/${args.steps}: ${total.toFixed(0)} ms, loss ${r.ce.toFixed(3)}\n`);
    }
  }
  await pool.terminate();
  optimizer.dispose();
  tf.dispose(Object.values(params));
  data.close();

  const out: CaseOutput = {
    backend: backend.name,
    backend_reason: backend.reason,
    params: countParams(config.model).total,
    flops_per_token: flopsPerToken(config.model, t.seq_len),
    tokens_per_step: t.batch_size * t.seq_len,
    setup_ms: setupMs,
    first_step_ms: firstStepMs,
    time_to_first_step_ms: setupMs + firstStepMs,
    // maxRSS is in kilobytes (KiB) on Linux.
    peak_rss_mib: process.resourceUsage().maxRSS / 1024,
    final_loss: loss,
    steps,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

await main();
