/**
 * `npm run bench`: one command, one table, one JSON. For each shape (tiny; small = d_model 256,
 * 6 layers, seq 256) and each optimizer (adamw, soap, shampoo, adafactor): tokens/s, model FLOP
 * utilisation against this machine's fp32 GEMM rate measured in the same run, the per-step split
 * (data, forward+backward, optimizer, refresh), the optimizer's cost ÷ AdamW's, time to first
 * step and peak RSS; and the PyTorch peer (bench/peers/torch_gpt.py) on the same shapes with
 * torch on 1 and 2 threads, with our tokens/s ÷ its.
 *
 *   npm run bench [-- --quick | --shapes tiny --optimizers adamw,soap --steps 20 | --help]
 *
 * Each case runs in its own process (bench/speed/run-case.ts) so its peak RSS and start-up are
 * its own; cases run one after another, never concurrently. Statistics are over the steps after
 * the warm-up (tiny: steps 11–40). Method and baseline: bench/NOTES.md. Writes
 * bench/results/speed.json (git-ignored).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { countParams, flopsPerToken, modelSchema } from '../src/model/index.js';
import { parseSpeedArgs, stepsFor, USAGE, type SpeedOptions } from './speed/args.js';
import { caseConfigFile, SHAPES, type BenchShape } from './speed/cases.js';
import { gemmLines, measureGemm, peakRates, type GemmRates } from './speed/gemm.js';
import { load, machine } from './speed/machine.js';
import { ensureTorch, runPeer, type TorchSetup } from './speed/peer.js';
import { derive, splitTable, throughputTable, type CaseResult, type PeerRow, type ShapeResult } from './speed/report.js';
import type { CaseOutput } from './speed/run-case.js';
import { summarizeCase } from './speed/stats.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const log = (line: string) => process.stderr.write(`${line}\n`);
const now = () => performance.timeOrigin + performance.now();

/** Peer steps after its warm-up, by shape and mode (its steps are fast; a few suffice). */
const PEER_STEPS: Record<string, { steps: number; warmup: number }> = { tiny: { steps: 20, warmup: 3 }, small: { steps: 10, warmup: 2 } };
const PEER_QUICK = { steps: 5, warmup: 1 };

/** `npm run data` when the shipped byte-level data is not there yet (a fresh clone without `prepare`). */
function ensureData(): void {
  if (existsSync(join(ROOT, 'data', 'sotu-byte', 'meta.json'))) return;
  log('data/sotu-byte is missing: running npm run data (once)…');
  const r = spawnSync('npm', ['run', 'data'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error('npm run data failed: the cases need data/sotu-byte');
}

/** One case in a child process; its JSON line, or why there is none. */
function runCase(shape: BenchShape, optimizer: string, steps: number, o: SpeedOptions): { run: CaseOutput | null; why: string | null; wallS: number } {
  const label = `${shape.name}/${optimizer}`;
  const args = ['--import', 'tsx', 'bench/speed/run-case.ts', '--config', caseConfigFile(optimizer), '--steps', String(steps), '--backend', o.backend, '--label', label];
  for (const s of shape.overrides) args.push('--set', s);
  log(`${label}: ${steps} steps…`);
  const t0 = now();
  const r = spawnSync(process.execPath, [...args, '--t0', String(t0)], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: o.caseTimeoutS * 1000,
    maxBuffer: 64 * 2 ** 20,
  });
  const wallS = (now() - t0) / 1000;
  if (r.error || r.status !== 0) {
    const why = r.signal === 'SIGTERM' ? `killed after --case-timeout-s ${o.caseTimeoutS}` : (r.error?.message ?? `exit ${r.status ?? r.signal}`);
    return { run: null, why, wallS };
  }
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return { run: JSON.parse(line) as CaseOutput, why: null, wallS };
  } catch {
    return { run: null, why: `no JSON line from run-case (${line.slice(0, 80)})`, wallS };
  }
}

function shapeInfo(shape: BenchShape): Pick<ShapeResult, 'params' | 'flops_per_token' | 'tokens_per_step'> {
  const model = modelSchema.parse(shape.model);
  return {
    params: countParams(model).total,
    flops_per_token: flopsPerToken(model, shape.batch.seq_len),
    tokens_per_step: shape.batch.batch_size * shape.batch.seq_len,
  };
}

/** Rounds every non-integer in the JSON to 6 significant digits (keeps the file readable). */
function rounded(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isInteger(value) ? +value.toPrecision(6) : value;
}

async function main(): Promise<void> {
  const o = parseSpeedArgs(process.argv.slice(2));
  if (o.help) {
    console.log(USAGE);
    return;
  }
  process.chdir(ROOT);
  ensureData();
  const loadBefore = load();
  const dirtyAtStart = machine().dirty_files;
  const torch: TorchSetup = o.peer ? ensureTorch(log) : { ok: false, why: 'skipped (--no-peer)' };
  // The budget clock starts after a one-time torch install, which is not part of the measurement.
  const started = now();
  const elapsedS = () => (now() - started) / 1000;

  log(`GEMM rates (${o.backend} matMul and OpenBLAS sgemm, 1024³)…`);
  const gemmBefore: GemmRates = await measureGemm(o.backend);

  const shapes: ShapeResult[] = [];
  const optimizers = [...o.optimizers].sort((a, b) => Number(b === 'adamw') - Number(a === 'adamw'));
  for (const shape of SHAPES.filter((s) => o.shapes.includes(s.name))) {
    const { steps, warmup } = stepsFor(shape, o);
    const result: ShapeResult = { name: shape.name, about: shape.about, ...shapeInfo(shape), steps, warmup, cases: [], peer: [], peer_missing: null };
    shapes.push(result);
    for (const optimizer of optimizers) {
      if (elapsedS() > o.budgetS) {
        result.cases.push({ optimizer, missing: `skipped: past --budget-s ${o.budgetS}`, wall_s: 0, summary: null, run: null, derived: null });
        continue;
      }
      const { run, why, wallS } = runCase(shape, optimizer, steps, o);
      // The child's config must be the shape the peer and the FLOP count assume.
      const mismatch = run && run.flops_per_token !== result.flops_per_token ? `the case's model is not the shape's (FLOPs/token ${run.flops_per_token} ≠ ${result.flops_per_token})` : null;
      const summary = run && !mismatch ? summarizeCase(run.steps, { from: warmup + 1, to: steps }, run.tokens_per_step) : null;
      const c: CaseResult = { optimizer, missing: why ?? mismatch, wall_s: wallS, summary, run: mismatch ? null : run, derived: null };
      result.cases.push(c);
    }
    if (!torch.ok) result.peer_missing = torch.why;
    else {
      const p = o.quick ? PEER_QUICK : PEER_STEPS[shape.name];
      for (const threads of o.peerThreads) {
        if (elapsedS() > o.budgetS) {
          result.peer.push({ result: { ok: false, threads, why: `skipped: past --budget-s ${o.budgetS}` }, model_gflops: null, mfu: null });
          continue;
        }
        log(`${shape.name}/torch ${threads} thread(s): ${p.warmup} + ${p.steps} steps…`);
        const row: PeerRow = { result: runPeer(shape, threads, p.steps, p.warmup, o.caseTimeoutS), model_gflops: null, mfu: null };
        result.peer.push(row);
      }
    }
  }
  log('GEMM rates again…');
  const gemmAfter: GemmRates = await measureGemm(o.backend);
  const peaks = peakRates([gemmBefore, gemmAfter]);
  for (const result of shapes) derive(result, peaks);
  const loadAfter = load();

  const m = machine();
  console.log(`\n${m.cpu}, ${m.cores} cores, node ${m.node}, tfjs ${m.tfjs}${torch.ok ? `, torch ${torch.torch}` : ''}; load ${loadBefore.join(' ')} → ${loadAfter.join(' ')}`);
  console.log(gemmLines(gemmBefore, gemmAfter, peaks).join('\n'));
  console.log('MFU = flopsPerToken (6·N_matmul + 12·L·T·d) × tokens/s ÷ the peak GEMM rate (ours: the backend\'s; torch: OpenBLAS at its thread count)\n');
  console.log(throughputTable(shapes, torch.ok ? o.peerThreads : [], o.markdown));
  console.log('\nPer-step split, ms (means over the measured steps; optim excludes refresh; ÷AdamW on means)\n');
  console.log(splitTable(shapes, o.markdown));

  const out = resolve(ROOT, o.out);
  mkdirSync(dirname(out), { recursive: true });
  const json = {
    when: new Date().toISOString(),
    argv: process.argv.slice(2),
    options: o,
    elapsed_s: elapsedS(),
    machine: m,
    dirty_files_at_start: dirtyAtStart,
    load_before: loadBefore,
    load_after: loadAfter,
    gemm: { at_start: gemmBefore, at_end: gemmAfter, peak: peaks },
    torch,
    flops_per_token: 'src/model/params.ts flopsPerToken: 6·(L·(4d² + 2·d·m) + d·V) + 12·L·T·d (weight matmuls ×3 for fwd+bwd, attention over the full T×T)',
    shapes,
  };
  writeFileSync(out, `${JSON.stringify(json, rounded, 2)}\n`);
  console.log(`\n${elapsedS().toFixed(0)} s; wrote ${out}`);
}

await main();
