/**
 * Issue 9's measurements: how long the paper's models take to their first SOAP step, and what a
 * SOAP or Shampoo refresh costs, on this machine's wasm backend, extrapolated to the full depth
 * and to 16 cores. Prints tables and writes bench/results/scale.json.
 *
 *     node --import tsx bench/scale.ts [--models 360m,660m] [--optimizers soap,shampoo]
 *         [--layers 1,2] [--steps 3] [--freq 2] [--timeout 900] [--ts-timeout 420]
 *         [--no-variants] [--keep] [--report-only]
 *
 *   --report-only  re-print the tables (and rewrite the JSON's analysis) from the measurements
 *                  in bench/results/scale.json, running nothing
 *
 * Each case is a child process of the CLI (`node bin/soap-train train`, which runs the sources
 * through tsx in a checkout) on the full-width config (configs/<model>-<optimizer>.yaml) with
 * model.n_layers 2 and then 1, batch 1 × 64 tokens, backend wasm, no evaluation or checkpoints,
 * a metrics row per step, on a throwaway llm.c-format dataset of random tokens below the
 * vocabulary in a temp folder. The child is stopped (SIGKILL) once the last wanted row is in
 * metrics.jsonl, so the final evaluation and checkpoint are not waited for.
 *
 * Steps: SOAP's first step computes the initial eigenbases (metrics row 1) and refreshes (power
 * step + QR) on metrics step freq + 1; Shampoo's first step is a grafting step and it computes
 * its inverse roots on steps freq, 2·freq. The default --freq 2 --steps 3 gives, for both, step
 * 1, a plain step and a refresh step (a refresh costs the same whatever the frequency): one step
 * of one 360m layer takes tens of seconds on wasm here, so the issue's frequency 10 (11+ steps a
 * case) does not fit a bench run. Per step: its wall time (metrics wall_s), time_ms, and the
 * pool's elapsed time for its decompositions (the last log.jsonl `refresh_progress` event; only
 * batches of 2 s and more log one).
 *
 * Vocabulary: the configs' 50304 first; a run refused for memory (the step must fit the 4 GiB
 * wasm heap: src/train/memory-plan.ts) is retried with 32128 (the paper's T5 vocabulary), 16384,
 * 12288, 10240 (above max_precond_dim 10000, so the vocabulary side of the embedding and head
 * stays unpreconditioned), then with max_precond_dim lowered to the largest layer dimension D
 * and vocab 8192 and D + 64 (every layer matrix still preconditioned on both sides and the
 * vocabulary side not: the optimizers' host work is the configs'; the embedding and head's
 * device work shrinks with the vocabulary). The 2-layer case runs first; the 1-layer case starts
 * at its vocabulary, so the pair differs by one layer only.
 *
 * Variants (360m SOAP 1 layer, first step only): SOAP_TRAIN_LINALG_WORKERS=1 against one worker
 * per core (target: host time ratio ≤ 0.6), and SOAP_TRAIN_NATIVE=0 (TypeScript eigh, stopped
 * after --ts-timeout). When the CLI refuses the latter (without LAPACK the refresh QR runs on the
 * device, whose working set does not fit) the host work is measured alone: the first-step jobs
 * of one layer and the embedding and head as the optimizer plans them (`firstBasisRequests`), on
 * rank-64 gradients like the runs', through `LinalgPool` with LAPACK on 1 and on all workers and
 * with the TypeScript routines.
 *
 * Extrapolation to the config's depth L, for step 1 and the refresh step, two ways:
 *   (a) q(L) = q(1) + (L − 1)·(q(2) − q(1)) for the step and for its pool part (host work scales
 *       with the number of matrices); left out when a per-layer difference comes out negative
 *       (run-to-run noise larger than a layer's work);
 *   (b) the pool part ∝ the flops of the step's decompositions (Σ 9n³ per eigh, 8/3·n³ per QR,
 *       from the optimizers' own layout rules), fitted to both runs, the rest as in (a).
 * To 16 cores: the pool part × cores/16 (the jobs are independent and run largest first), but
 * not below the largest single job (a refresh cannot end before its largest decomposition); the
 * rest of the step (fwd+bwd, the optimizer's device work) as measured here. The "host model"
 * schedules the step's full job list on cores and on 16 workers from single-job LAPACK times on
 * random (full-rank) matrices: bench/results/linalg.json where it has the size, else measured
 * here. (The runs' statistics have rank ≤ 64 per step, which makes eigh cheaper than on the
 * paper's 2M-token batches.) A model with no pair of runs (refused) gets the host model only.
 *
 * The machine is shared: each case runs once, and the JSON records os.loadavg() around each.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, parseOverride } from '../src/config/load.js';
import type { ExperimentConfig } from '../src/config/schema.js';
import { paramShapes } from '../src/model/params.js';
import { gramEighRates, runHostJob, type HostJob } from '../src/optim/linalg/host-jobs.js';
import { prefersLowRank } from '../src/optim/linalg/low-rank.js';
import { loadNativeLapack } from '../src/optim/linalg/native.js';
import { LinalgPool } from '../src/optim/linalg/pool.js';
import { firstBasisRequests, LOW_RANK_MIN_ORDER } from '../src/optim/soap-refresh.js';
import { shampooBlocks, shampooSchema } from '../src/optim/shampoo.js';
import { soapLayout, soapSchema } from '../src/optim/soap.js';
import type { tf } from '../src/tf.js';
import { randomMatrix, randomSymmetric } from '../test/helpers/random.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(REPO, 'bin', 'soap-train');
const RESULTS = join(REPO, 'bench', 'results');
const CORES = availableParallelism();
const TARGET_CORES = 16;
const VOCABS = [50304, 32128, 16384, 12288, 10240];

/** A vocabulary to try, and the max_precond_dim it needs (null: the config's). */
interface Candidate {
  vocab: number;
  maxPrecond: number | null;
}

/**
 * The configs' vocabulary, the paper's, then smaller ones above max_precond_dim (10000); last,
 * with max_precond_dim lowered to the largest layer dimension D (every layer matrix still
 * preconditioned on both sides, so the layers' host work is unchanged), 8192 and D + 64.
 */
function candidates(model: Model): Candidate[] {
  const m = loadConfig(join(REPO, 'configs', `${model}.yaml`)).config.model;
  const D = Math.max(m.d_model, m.mlp_hidden);
  const low = [8192, D + 64].filter((v) => v > D && v < VOCABS[VOCABS.length - 1]);
  return [...VOCABS.map((vocab) => ({ vocab, maxPrecond: null })), ...low.map((vocab) => ({ vocab, maxPrecond: D }))];
}

const candidateName = (c: Candidate) => (c.maxPrecond === null ? String(c.vocab) : `${c.vocab}/${c.maxPrecond}`);
/** Minimum refresh_ms of a step counted as a refresh (plain steps log ~0.1 ms). */
const REFRESH_MS = 100;

type Model = '360m' | '660m';
type Optimizer = 'soap' | 'shampoo';
type Variant = 'workers1' | 'native0';

interface Options {
  models: Model[];
  optimizers: Optimizer[];
  layers: number[];
  steps: number;
  freq: number;
  timeoutS: number;
  tsTimeoutS: number;
  variants: boolean;
  keep: boolean;
  /** Re-render the tables from bench/results/scale.json without running anything. */
  reportOnly: boolean;
}

interface Case {
  name: string;
  model: Model;
  optimizer: Optimizer;
  layers: number;
  steps: number;
  env: Record<string, string>;
  timeoutS: number;
  variant: Variant | null;
}

interface StepTimes {
  data_ms: number;
  fwd_bwd_ms: number;
  optim_ms: number;
  refresh_ms: number;
}

interface MetricsRow {
  step: number;
  wall_s: number;
  time_ms: StepTimes;
}

interface Attempt {
  vocab: number;
  max_precond_dim: number | null;
  status: 'ok' | 'refused' | 'timeout' | 'failed';
  message: string | null;
  rows: MetricsRow[];
  /** Elapsed seconds of each step's pool batch (log.jsonl refresh_progress; only batches ≥ 2 s log). */
  pool_s: Record<string, number>;
  /** Process start to the first metrics row, minus that step (startup, data, model init). */
  init_s: number | null;
  process_s: number;
  loadavg_start: number[];
  loadavg_end: number[];
}

interface Summary {
  /** Step 1 (SOAP: the first eigenbases), wall ms. */
  first_ms: number;
  first_fwd_bwd_ms: number;
  first_refresh_ms: number;
  first_pool_ms: number | null;
  /** Median fwd+bwd over steps ≥ 2. */
  fwd_bwd_ms: number | null;
  /** Median wall of steps ≥ 2 without a refresh. */
  typical_ms: number | null;
  refresh: { step: number; ms: number; refresh_ms: number; pool_ms: number | null } | null;
  mean_2_n_ms: number | null;
}

interface CaseResult extends Case {
  vocab: number | null;
  /** Lowered max_precond_dim (null: the config's). */
  max_precond_dim: number | null;
  status: Attempt['status'] | 'skipped';
  message: string | null;
  refused: Array<{ vocab: number; max_precond_dim: number | null; message: string | null }>;
  attempt: Attempt | null;
  summary: Summary | null;
}

function parseArgs(): Options {
  const argv = process.argv.slice(2);
  const o: Options = { models: ['360m', '660m'], optimizers: ['soap', 'shampoo'], layers: [1, 2], steps: 3, freq: 2, timeoutS: 900, tsTimeoutS: 420, variants: true, keep: false, reportOnly: false };
  const list = (i: number) => (argv[i] ?? '').split(',').filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--models') o.models = list(++i) as Model[];
    else if (a === '--optimizers') o.optimizers = list(++i) as Optimizer[];
    else if (a === '--layers') o.layers = list(++i).map(Number);
    else if (a === '--steps') o.steps = Number(argv[++i]);
    else if (a === '--freq') o.freq = Number(argv[++i]);
    else if (a === '--timeout') o.timeoutS = Number(argv[++i]);
    else if (a === '--ts-timeout') o.tsTimeoutS = Number(argv[++i]);
    else if (a === '--no-variants') o.variants = false;
    else if (a === '--keep') o.keep = true;
    else if (a === '--report-only') o.reportOnly = true;
    else throw new Error(`unknown argument ${a}`);
  }
  for (const m of o.models) if (m !== '360m' && m !== '660m') throw new Error(`--models: ${m} is not 360m or 660m`);
  for (const p of o.optimizers) if (p !== 'soap' && p !== 'shampoo') throw new Error(`--optimizers: ${p} is not soap or shampoo`);
  o.layers = [...new Set(o.layers)].sort((a, b) => a - b);
  return o;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const fmtLoad = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
const median = (xs: number[]): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : 0.5 * (s[m - 1] + s[m]);
};

/** Seconds, with minutes from 2 min up: `95.3 s`, `7.4 min`. */
function dur(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  const s = ms / 1000;
  return s >= 120 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(1)} s`;
}

// ---------------------------------------------------------------------------------------------
// Data: an llm.c-format shard pair of random tokens below the vocabulary, per vocabulary.

let tmp = '';
const dataDirs = new Map<number, string>();

/** Writes an llm.c shard (magic 20240520, version 1, count, uint16 tokens), as test/helpers/tiny-run.ts. */
function writeShard(file: string, count: number, vocab: number, seed: number): void {
  const buf = Buffer.alloc(1024 + 2 * count);
  buf.writeInt32LE(20240520, 0);
  buf.writeInt32LE(1, 4);
  buf.writeInt32LE(count, 8);
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    buf.writeUInt16LE((s >>> 8) % vocab, 1024 + 2 * i);
  }
  writeFileSync(file, buf);
}

function dataFor(vocab: number): string {
  let dir = dataDirs.get(vocab);
  if (!dir) {
    dir = join(tmp, `data-${vocab}`);
    mkdirSync(dir, { recursive: true });
    writeShard(join(dir, 'train_000000.bin'), 262_144, vocab, 1);
    writeShard(join(dir, 'val_000000.bin'), 32_768, vocab, 2);
    dataDirs.set(vocab, dir);
  }
  return dir;
}

// ---------------------------------------------------------------------------------------------
// Running one case.

let current: ChildProcess | null = null;

function readJsonl<T>(file: string): T[] {
  if (!existsSync(file)) return [];
  const out: T[] = [];
  // Only complete lines: the child may be mid-append.
  for (const line of readFileSync(file, 'utf8').split('\n').slice(0, -1)) {
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      // a torn line
    }
  }
  return out;
}

const MEMORY = /needs about [\d.]+ [KMG]i?B on|memory access out of bounds|out of memory|Cannot enlarge memory|Array buffer allocation failed/i;

async function attempt(c: Case, cand: Candidate, opts: Options): Promise<Attempt> {
  const vocab = cand.vocab;
  const data = dataFor(vocab);
  const tag = `${c.name}-v${vocab}`;
  const runDir = join(tmp, tag);
  const outFile = join(tmp, `${tag}.out`);
  const sets = [
    'backend=wasm',
    `model.n_layers=${c.layers}`,
    `model.vocab_size=${vocab}`,
    'train.batch_size=1',
    'train.micro_batch_size=1',
    'train.seq_len=64',
    `train.steps=${c.steps}`,
    `optimizer.precondition_frequency=${opts.freq}`,
    'train.eval_interval=0',
    'train.eval_steps=1',
    'train.log_interval=1',
    'checkpoint.interval=0',
    `data.train=${join(data, 'train_*.bin')}`,
    `data.val=${join(data, 'val_*.bin')}`,
    ...(cand.maxPrecond === null ? [] : [`optimizer.max_precond_dim=${cand.maxPrecond}`]),
  ];
  const args = [BIN, 'train', '--config', join(REPO, 'configs', `${c.model}-${c.optimizer}.yaml`), '--run-dir', runDir, ...sets.flatMap((s) => ['--set', s])];
  const env = { ...process.env, FORCE_COLOR: '0', SOAP_TRAIN_LINALG_WORKERS: String(CORES), ...c.env };
  const loadStart = loadavg();
  const started = performance.now();
  const fd = openSync(outFile, 'w');
  const child = spawn(process.execPath, args, { cwd: REPO, env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  current = child;
  const state: { exit: { code: number | null; signal: NodeJS.Signals | null } | null } = { exit: null };
  const exited = new Promise<void>((resolve) => child.on('exit', (code, signal) => ((state.exit = { code, signal }), resolve())));
  let rows: MetricsRow[] = [];
  const firstRow: { at: number | null } = { at: null };
  let stoppedFor: 'done' | 'timeout' | null = null;
  const metricsFile = join(runDir, 'metrics.jsonl');
  const seen = () => {
    const now = readJsonl<MetricsRow>(metricsFile);
    for (const r of now.slice(rows.length)) {
      if (r.step === 1) firstRow.at = performance.now();
      const t = r.time_ms;
      console.log(
        `    step ${r.step}: ${dur(stepMs(now, now.indexOf(r)))} (fwd+bwd ${dur(t.fwd_bwd_ms)}, optimizer ${dur(t.optim_ms)}, of which refresh ${dur(t.refresh_ms)}) load ${fmtLoad(loadavg())}`,
      );
    }
    rows = now;
  };
  while (!state.exit) {
    await Promise.race([exited, sleep(500)]);
    seen();
    if (state.exit) break;
    if (rows.length >= c.steps) stoppedFor = 'done';
    else if (performance.now() - started > c.timeoutS * 1000) stoppedFor = 'timeout';
    if (stoppedFor) {
      child.kill('SIGKILL');
      await exited;
    }
  }
  current = null;
  const processS = (performance.now() - started) / 1000;
  const out = existsSync(outFile) ? readFileSync(outFile, 'utf8') : '';
  let status: Attempt['status'];
  let message: string | null = null;
  if (rows.length >= c.steps) status = 'ok';
  else if (stoppedFor === 'timeout') {
    status = 'timeout';
    message = `stopped after ${c.timeoutS} s with ${rows.length}/${c.steps} steps`;
  } else {
    const lines = out.trim().split('\n');
    message = lines.filter((l) => /error/i.test(l)).pop() ?? lines.pop() ?? `exit ${state.exit?.code ?? state.exit?.signal}`;
    status = MEMORY.test(out) ? 'refused' : 'failed';
    if (status === 'failed') console.log(out.split('\n').slice(-15).join('\n'));
  }
  const poolS: Record<string, number> = {};
  for (const e of readJsonl<{ event?: string; step?: number; done?: number; total?: number; elapsed_s?: number }>(join(runDir, 'log.jsonl'))) {
    if (e.event === 'refresh_progress' && e.done === e.total && e.step !== undefined && e.elapsed_s !== undefined) poolS[e.step] = e.elapsed_s;
  }
  const first = rows.find((r) => r.step === 1);
  const initS = firstRow.at !== null && first ? (firstRow.at - started) / 1000 - first.wall_s : null;
  if (!opts.keep) rmSync(runDir, { recursive: true, force: true });
  return { vocab, max_precond_dim: cand.maxPrecond, status, message, rows, pool_s: poolS, init_s: initS === null ? null : round(initS, 1), process_s: round(processS, 1), loadavg_start: loadStart, loadavg_end: loadavg() };
}

/** Wall ms of rows[i] (from the cumulative wall_s). */
function stepMs(rows: MetricsRow[], i: number): number {
  return 1000 * (rows[i].wall_s - (i > 0 ? rows[i - 1].wall_s : 0));
}

function summarize(a: Attempt): Summary | null {
  const rows = a.rows;
  const first = rows.find((r) => r.step === 1);
  if (!first) return null;
  // Batches under 2 s log no progress event: null then.
  const pool = (step: number): number | null => (a.pool_s[step] !== undefined ? a.pool_s[step] * 1000 : null);
  const later = rows.map((r, i) => ({ r, ms: stepMs(rows, i) })).filter((x) => x.r.step >= 2);
  const plain = later.filter((x) => x.r.time_ms.refresh_ms < REFRESH_MS);
  const refreshes = later.filter((x) => x.r.time_ms.refresh_ms >= REFRESH_MS);
  const ref = refreshes[0];
  return {
    first_ms: stepMs(rows, rows.indexOf(first)),
    first_fwd_bwd_ms: first.time_ms.fwd_bwd_ms,
    first_refresh_ms: first.time_ms.refresh_ms,
    first_pool_ms: pool(1),
    fwd_bwd_ms: median(later.map((x) => x.r.time_ms.fwd_bwd_ms)),
    typical_ms: median(plain.map((x) => x.ms)),
    refresh: ref ? { step: ref.r.step, ms: ref.ms, refresh_ms: ref.r.time_ms.refresh_ms, pool_ms: pool(ref.r.step) } : null,
    mean_2_n_ms: later.length > 0 ? later.reduce((s, x) => s + x.ms, 0) / later.length : null,
  };
}

/** Runs a case from candidate `from` down the list until one is not refused for memory. */
async function runCase(c: Case, from: number, opts: Options): Promise<{ result: CaseResult; index: number }> {
  const refused: CaseResult['refused'] = [];
  const list = candidates(c.model);
  for (let i = from; i < list.length; i++) {
    const cand = list[i];
    const mpd = cand.maxPrecond === null ? '' : `, max_precond_dim ${cand.maxPrecond}`;
    console.log(`  ${c.name} (vocab ${cand.vocab}${mpd}${Object.keys(c.env).length ? `, ${Object.entries(c.env).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}) — load ${fmtLoad(loadavg())}`);
    const a = await attempt(c, cand, opts);
    if (a.status === 'refused') {
      console.log(`    refused for memory: ${a.message}`);
      refused.push({ vocab: cand.vocab, max_precond_dim: cand.maxPrecond, message: a.message });
      continue;
    }
    if (a.status !== 'ok') console.log(`    ${a.status}: ${a.message}`);
    return { result: { ...c, vocab: cand.vocab, max_precond_dim: cand.maxPrecond, status: a.status, message: a.message, refused, attempt: a, summary: summarize(a) }, index: i };
  }
  const tried = list.slice(from).map(candidateName).join(', ');
  return { result: { ...c, vocab: null, max_precond_dim: null, status: 'refused', message: `refused for memory on wasm at every vocabulary tried (${tried})`, refused, attempt: null, summary: null }, index: from };
}

// ---------------------------------------------------------------------------------------------
// Host jobs of one step, and single-job times.

interface JobKind {
  /** gram64: SOAP's first bases of one n×k matrix (n > k) by the low-rank path: eigh of the k side, the n side completed. */
  op: 'eigh64' | 'qr32' | 'gram64';
  n: number;
  k?: number;
}

interface HostPlan {
  /** One layer's jobs and the rest (embedding and head). */
  layer: JobKind[];
  other: JobKind[];
}

/** The config at `layers` layers with its own vocabulary (the host jobs do not depend on it: its side is unpreconditioned). */
function loadCase(model: Model, optimizer: Optimizer, layers: number): ExperimentConfig {
  return loadConfig(join(REPO, 'configs', `${model}-${optimizer}.yaml`), [parseOverride(`model.n_layers=${layers}`)]).config;
}

/** The decompositions of SOAP's first step (eigh, or the low-rank pair where the optimizer takes it), SOAP's refresh (QR f32) and Shampoo's refresh (inverse roots = eigh). */
function hostPlan(model: Model, kind: 'soap_first' | 'soap_refresh' | 'shampoo_refresh'): HostPlan {
  const optimizer: Optimizer = kind === 'shampoo_refresh' ? 'shampoo' : 'soap';
  const config = loadCase(model, optimizer, 1);
  const plan: HostPlan = { layer: [], other: [] };
  for (const [name, shape] of Object.entries(paramShapes(config.model))) {
    const into = name.startsWith('blocks.0.') ? plan.layer : plan.other;
    if (optimizer === 'soap') {
      const { workShape, preconditioned } = soapLayout(shape, soapSchema.parse(config.optimizer));
      const [rows, cols] = workShape;
      const big = rows >= cols ? 'left' : 'right';
      const lowRank =
        kind === 'soap_first' && workShape.length === 2 && preconditioned[0] && preconditioned[1] && Math.max(rows, cols) >= LOW_RANK_MIN_ORDER && prefersLowRank(rows, cols, big, gramEighRates());
      if (lowRank) into.push({ op: 'gram64', n: Math.max(rows, cols), k: Math.min(rows, cols) });
      else workShape.forEach((d, i) => preconditioned[i] && into.push({ op: kind === 'soap_first' ? 'eigh64' : 'qr32', n: d }));
    } else {
      for (const block of shampooBlocks(shape, shampooSchema.parse(config.optimizer))) {
        block.size.forEach((d, i) => block.precond[i] && into.push({ op: 'eigh64', n: d }));
      }
    }
  }
  return plan;
}

/** Single-job times (ms, LAPACK one thread): from bench/results/linalg.json where it has them, else measured now. */
class JobTimes {
  readonly ms = new Map<string, number>();
  readonly source = new Map<string, string>();
  constructor(saved?: Record<string, number>, sources?: Record<string, string>) {
    if (saved) {
      for (const [k, v] of Object.entries(saved)) {
        this.ms.set(k, v);
        this.source.set(k, sources?.[k] ?? 'bench/results/scale.json');
      }
      return;
    }
    const file = join(RESULTS, 'linalg.json');
    if (!existsSync(file)) return;
    try {
      const j = JSON.parse(readFileSync(file, 'utf8')) as { date?: string; rows?: Array<{ n: number; native_eigh64_ms?: number | null; native_qr32_ms?: number | null }> };
      for (const r of j.rows ?? []) {
        if (typeof r.native_eigh64_ms === 'number') this.set({ op: 'eigh64', n: r.n }, r.native_eigh64_ms, `bench/results/linalg.json (${j.date ?? '?'})`);
        if (typeof r.native_qr32_ms === 'number') this.set({ op: 'qr32', n: r.n }, r.native_qr32_ms, `bench/results/linalg.json (${j.date ?? '?'})`);
      }
    } catch {
      // an older or torn file: measure instead
    }
  }
  private key(j: JobKind): string {
    return j.k === undefined ? `${j.op}:${j.n}` : `${j.op}:${j.n}x${j.k}`;
  }
  private set(j: JobKind, ms: number, source: string): void {
    this.ms.set(this.key(j), ms);
    this.source.set(this.key(j), source);
  }
  get(j: JobKind): number {
    const k = this.key(j);
    const known = this.ms.get(k);
    if (known !== undefined) return known;
    const lapack = loadNativeLapack();
    if (!lapack) return NaN;
    lapack.setNumThreads(1);
    const n = j.n;
    const reps = n <= 1024 ? 2 : 1;
    let best = Infinity;
    for (let r = 0; r < reps; r++) {
      const k = j.k ?? n;
      const input = j.op === 'eigh64' ? Float64Array.from(randomSymmetric(n, n)) : j.op === 'gram64' ? randomMatrix(k, n, n + k) : Float32Array.from(randomMatrix(n, n, n + 1));
      const start = performance.now();
      if (j.op === 'gram64') runHostJob({ op: 'gram_eigh', rows: k, cols: n, g: Float64Array.from(input), left: true, right: true });
      else if (input instanceof Float64Array) lapack.eigh(input, n);
      else lapack.qr(input, n, n);
      best = Math.min(best, performance.now() - start);
    }
    console.log(`  single job ${j.op} n=${n}${j.k === undefined ? '' : ` k=${j.k}`}: ${dur(best)} (measured now, load ${fmtLoad(loadavg())})`);
    this.set(j, best, 'measured by bench/scale.ts (see its log lines for the load)');
    return best;
  }
}

/** Finish time of jobs (ms) on `workers`, each to the first free worker, largest first (the pool's order). */
function lptMakespan(jobs: number[], workers: number): number {
  const free = new Array<number>(Math.max(1, workers)).fill(0);
  for (const j of [...jobs].sort((a, b) => b - a)) {
    const i = free.indexOf(Math.min(...free));
    free[i] += j;
  }
  return Math.max(0, ...free);
}

interface HostModel {
  kind: string;
  layers: number;
  jobs: number;
  serial_ms: number;
  largest: { op: string; n: number; ms: number };
  /** LPT makespan on `cores` and on 16 workers. */
  cores_ms: number;
  target_ms: number;
}

function hostModel(plan: HostPlan, layers: number, times: JobTimes, kind: string): HostModel {
  const jobs = [...plan.other, ...Array.from({ length: layers }, () => plan.layer).flat()];
  const ms = jobs.map((j) => times.get(j));
  const li = ms.indexOf(Math.max(...ms));
  return {
    kind,
    layers,
    jobs: jobs.length,
    serial_ms: ms.reduce((a, b) => a + b, 0),
    largest: { op: jobs[li].op, n: jobs[li].n, ms: ms[li] },
    cores_ms: lptMakespan(ms, CORES),
    target_ms: lptMakespan(ms, TARGET_CORES),
  };
}

// ---------------------------------------------------------------------------------------------
// SOAP's first-step host work outside the trainer: the jobs the optimizer plans for one layer and
// the embedding and head, on gradients of rank 64 (one batch of 64 tokens, as in the runs), through
// the pool with LAPACK on 1 and on `cores` workers and with the TypeScript routines.

/** A rank-r gradient G = A·B (A rows×r, B r×cols) and its Gram matrices, computed on demand. */
class LowRankGradient {
  private readonly a: Float64Array;
  private readonly b: Float64Array;
  constructor(
    readonly rows: number,
    readonly cols: number,
    readonly r: number,
    seed: number,
  ) {
    this.a = randomMatrix(rows, r, seed);
    this.b = randomMatrix(r, cols, seed + 7919);
  }
  /** G (rows×cols). */
  g(): Float64Array {
    const { rows, cols, r, a, b } = this;
    const out = new Float64Array(rows * cols);
    for (let i = 0; i < rows; i++) {
      for (let k = 0; k < r; k++) {
        const x = a[i * r + k];
        const bo = k * cols;
        const oo = i * cols;
        for (let j = 0; j < cols; j++) out[oo + j] += x * b[bo + j];
      }
    }
    return out;
  }
  /** G·Gᵀ = A·(B·Bᵀ)·Aᵀ (axis 0) or Gᵀ·G = Bᵀ·(Aᵀ·A)·B (axis 1). */
  gram(axis: 0 | 1): Float64Array {
    const { rows, cols, r } = this;
    // X (n×r) with the statistic X·M·Xᵀ: X = A, M = B·Bᵀ; or X = Bᵀ, M = Aᵀ·A.
    const n = axis === 0 ? rows : cols;
    const x = axis === 0 ? this.a : transpose(this.b, r, cols);
    const inner = axis === 0 ? this.b : this.a;
    const innerLen = axis === 0 ? cols : rows;
    const m = new Float64Array(r * r);
    // M = Y·Yᵀ with Y r×innerLen (B) or M = Aᵀ·A = Y·Yᵀ with Y = Aᵀ.
    const y = axis === 0 ? inner : transpose(inner, rows, r);
    for (let p = 0; p < r; p++) for (let q = p; q < r; q++) {
      let s = 0;
      for (let t = 0; t < innerLen; t++) s += y[p * innerLen + t] * y[q * innerLen + t];
      m[p * r + q] = s;
      m[q * r + p] = s;
    }
    const xm = new Float64Array(n * r);
    for (let i = 0; i < n; i++) for (let k = 0; k < r; k++) {
      const v = x[i * r + k];
      for (let j = 0; j < r; j++) xm[i * r + j] += v * m[k * r + j];
    }
    const out = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = i; j < n; j++) {
      let s = 0;
      for (let k = 0; k < r; k++) s += xm[i * r + k] * x[j * r + k];
      out[i * n + j] = s;
      out[j * n + i] = s;
    }
    return out;
  }
}

function transpose(m: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = m[i * cols + j];
  return out;
}

/** Runs `fn` with SOAP_TRAIN_NATIVE set as given (workers started inside copy the environment). */
async function withNative<T>(native: boolean, fn: () => Promise<T> | T): Promise<T> {
  const before = process.env.SOAP_TRAIN_NATIVE;
  if (native) delete process.env.SOAP_TRAIN_NATIVE;
  else process.env.SOAP_TRAIN_NATIVE = '0';
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.SOAP_TRAIN_NATIVE;
    else process.env.SOAP_TRAIN_NATIVE = before;
  }
}

/**
 * The first-step jobs of one layer and the embedding and head, as `firstBasisRequests` plans
 * them for this process's method (LAPACK: an eigh per statistic; TypeScript: `gram_eigh` where the
 * low-rank path pays). Returns a factory: the pool transfers the jobs' buffers away.
 */
function firstStepJobs(model: Model, cache: Map<string, Float64Array>): () => HostJob[] {
  const config = loadCase(model, 'soap', 1);
  const soapConfig = soapSchema.parse(config.optimizer);
  const fake = (shape: number[]) => ({ rank: shape.length, shape }) as unknown as tf.Tensor;
  const makers: Array<() => HostJob> = [];
  let seed = 1;
  for (const [name, shape] of Object.entries(paramShapes(config.model))) {
    const { workShape, preconditioned } = soapLayout(shape, soapConfig);
    if (workShape.length !== 2 || !preconditioned.some(Boolean)) continue;
    const [rows, cols] = workShape;
    const low = new LowRankGradient(rows, cols, 64, seed++);
    const stats = preconditioned.map((p, i) => (p ? fake([workShape[i], workShape[i]]) : null));
    const once = (key: string, make: () => Float64Array) => {
      const k = `${name}:${key}`;
      if (!cache.has(k)) cache.set(k, make());
      return cache.get(k) as Float64Array;
    };
    for (const req of Object.values(firstBasisRequests(fake(workShape), stats))) {
      if (req.op === 'gram_eigh') {
        const g = once('g', () => low.g());
        makers.push(() => ({ op: 'gram_eigh', rows, cols, g: Float64Array.from(g), left: req.left, right: req.right }));
      } else if (req.op === 'eigh') {
        const axis = stats.indexOf(req.input) as 0 | 1;
        const n = workShape[axis];
        const a = once(`gram${axis}`, () => low.gram(axis));
        makers.push(() => ({ op: 'eigh', n, a: Float64Array.from(a) }));
      }
    }
  }
  return () => makers.map((m) => m());
}

/** Elapsed ms of one batch through a warm pool of `workers`, or null past `timeoutMs`. */
async function timePool(workers: number, jobs: () => HostJob[], timeoutMs: number): Promise<number | null> {
  const pool = new LinalgPool(workers);
  try {
    const tiny = randomSymmetric(8, 8);
    await pool.run(Array.from({ length: workers }, (): HostJob => ({ op: 'eigh', n: 8, a: Float64Array.from(tiny) })));
    const batch = jobs();
    const start = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const done = pool.run(batch).then(() => performance.now() - start);
    done.catch(() => {});
    const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)));
    const ms = await Promise.race([done, timeout]);
    clearTimeout(timer);
    return ms;
  } finally {
    await pool.terminate();
  }
}

interface HostFirstStep {
  model: Model;
  lapack: { jobs: number; ms: Record<string, number | null>; ratio: number | null };
  typescript: { jobs: number; workers: number; ms: number | null; timeout_s: number } | null;
}

async function hostFirstStep(model: Model, tsTimeoutS: number, withTs: boolean): Promise<HostFirstStep> {
  const cache = new Map<string, Float64Array>();
  const native = await withNative(true, () => firstStepJobs(model, cache));
  const ms: Record<string, number | null> = {};
  for (const k of [...new Set([1, CORES])]) {
    ms[k] = await withNative(true, () => timePool(k, native, 3_600_000));
    console.log(`  host-only first step (${model}, 1 layer + embedding/head), LAPACK, ${k} worker(s): ${dur(ms[k])} — load ${fmtLoad(loadavg())}`);
  }
  const one = ms[1];
  const all = ms[CORES];
  const result: HostFirstStep = { model, lapack: { jobs: native().length, ms, ratio: one && all ? all / one : null }, typescript: null };
  if (withTs) {
    const tsJobs = await withNative(false, () => firstStepJobs(model, cache));
    const tsMs = await withNative(false, () => timePool(CORES, tsJobs, tsTimeoutS * 1000));
    console.log(`  host-only first step, TypeScript, ${CORES} workers: ${tsMs === null ? `> ${tsTimeoutS} s (stopped)` : dur(tsMs)} — load ${fmtLoad(loadavg())}`);
    result.typescript = { jobs: tsJobs().length, workers: CORES, ms: tsMs, timeout_s: tsTimeoutS };
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Extrapolation.

/** A step's time and its pool part (ms). */
interface Point {
  total: number;
  pool: number | null;
}

/** One estimate of a step at the full depth, here and on 16 cores. */
interface Estimate {
  total: number | null;
  pool: number | null;
  total_16: number | null;
}

interface StepExtrapolation {
  l1: Point;
  l2: Point;
  /** Per added layer (L2 − L1). */
  per_layer: { total: number; pool: number | null };
  /** q(1) + (L−1)·(q(2) − q(1)) for the step and its pool part. */
  by_difference: Estimate;
  /**
   * The pool part ∝ the flops of the step's decompositions (both runs: Σpool / ΣF × F(L)), the
   * rest by the per-layer difference: less sensitive to one noisy run.
   */
  by_flops: Estimate;
  largest: HostModel['largest'] | null;
  /** The per-layer difference of the step or its pool part is negative: run-to-run noise exceeds a layer's work. */
  noisy: boolean;
}

interface Extrapolation {
  model: Model;
  optimizer: Optimizer;
  vocab: number;
  max_precond_dim: number | null;
  layers: number;
  /** SOAP's step 1 (wall: the first eigenbases and the update). Shampoo's step 1 is a grafting step: none. */
  first: StepExtrapolation | null;
  /** The refresh step's refresh_ms (the refresh itself: device products and the pool's decompositions). */
  refresh: StepExtrapolation | null;
  typical_ms: number | null;
  model_first: HostModel | null;
  model_refresh: HostModel;
}

const lin = (a: number, b: number, L: number): number => a + (L - 1) * (b - a);

/** A step's time on 16 cores: the pool part ÷ (16/cores), but not below the largest job; the rest as measured. */
function to16(total: number | null, pool: number | null, largest: number | null): number | null {
  if (total === null || pool === null) return null;
  return total - pool + Math.max((pool * CORES) / TARGET_CORES, largest ?? 0);
}

/** Flops of one job: 9n³ per eigh, 8/3·n³ per QR; the low-rank pair ≈ 9k³ (small eigh) + 4nk² (products) + 4n²k (completion). */
function jobFlops(j: JobKind): number {
  if (j.op === 'gram64') {
    const k = j.k ?? j.n;
    return 9 * k ** 3 + 4 * j.n * k * k + 4 * j.n * j.n * k;
  }
  return (j.op === 'eigh64' ? 9 : 8 / 3) * j.n ** 3;
}

/** Flops of a step's decompositions at `layers` layers. */
function planFlops(plan: HostPlan, layers: number): number {
  const f = (jobs: JobKind[]) => jobs.reduce((sum, j) => sum + jobFlops(j), 0);
  return f(plan.other) + layers * f(plan.layer);
}

function extrapolateStep(p1: Point, p2: Point, depth: number, plan: HostPlan, largest: HostModel['largest'] | null): StepExtrapolation {
  const perLayer = { total: p2.total - p1.total, pool: p1.pool !== null && p2.pool !== null ? p2.pool - p1.pool : null };
  const noisy = perLayer.total < 0 || (perLayer.pool ?? 0) < 0;
  // A negative per-layer difference says nothing about a layer's work: no estimate (a) then.
  const pool = !noisy && p1.pool !== null && p2.pool !== null ? lin(p1.pool, p2.pool, depth) : null;
  const total = noisy ? null : lin(p1.total, p2.total, depth);
  const byDifference: Estimate = { total, pool, total_16: to16(total, pool, largest?.ms ?? null) };
  let byFlops: Estimate = { total: null, pool: null, total_16: null };
  if (p1.pool !== null && p2.pool !== null && p2.total - p2.pool >= p1.total - p1.pool) {
    const rest = lin(p1.total - p1.pool, p2.total - p2.pool, depth);
    const poolF = ((p1.pool + p2.pool) / (planFlops(plan, 1) + planFlops(plan, 2))) * planFlops(plan, depth);
    byFlops = { total: rest + poolF, pool: poolF, total_16: to16(rest + poolF, poolF, largest?.ms ?? null) };
  }
  return { l1: p1, l2: p2, per_layer: perLayer, by_difference: byDifference, by_flops: byFlops, largest, noisy };
}

function extrapolate(r1: CaseResult, r2: CaseResult, depth: number, times: JobTimes): Extrapolation | null {
  const a = r1.summary;
  const b = r2.summary;
  if (!a || !b || r1.vocab === null || r1.vocab !== r2.vocab || r1.max_precond_dim !== r2.max_precond_dim) return null;
  const soap = r1.optimizer === 'soap';
  const planFirst = hostPlan(r1.model, 'soap_first');
  const planRefresh = hostPlan(r1.model, soap ? 'soap_refresh' : 'shampoo_refresh');
  const modelFirst = soap ? hostModel(planFirst, depth, times, 'SOAP first step: eigh float64 / low-rank pair') : null;
  const modelRefresh = hostModel(planRefresh, depth, times, soap ? 'SOAP refresh: QR float32' : 'Shampoo refresh: inverse roots (eigh float64)');
  const first = soap ? extrapolateStep({ total: a.first_ms, pool: a.first_pool_ms }, { total: b.first_ms, pool: b.first_pool_ms }, depth, planFirst, modelFirst?.largest ?? null) : null;
  const refresh =
    a.refresh && b.refresh
      ? extrapolateStep({ total: a.refresh.refresh_ms, pool: a.refresh.pool_ms }, { total: b.refresh.refresh_ms, pool: b.refresh.pool_ms }, depth, planRefresh, modelRefresh.largest)
      : null;
  return {
    model: r1.model,
    optimizer: r1.optimizer,
    vocab: r1.vocab,
    max_precond_dim: r1.max_precond_dim,
    layers: depth,
    first,
    refresh,
    typical_ms: a.typical_ms !== null && b.typical_ms !== null ? lin(a.typical_ms, b.typical_ms, depth) : null,
    model_first: modelFirst,
    model_refresh: modelRefresh,
  };
}

// ---------------------------------------------------------------------------------------------

function depthOf(model: Model): number {
  return loadConfig(join(REPO, 'configs', `${model}.yaml`)).config.model.n_layers;
}

/** What a run measured (and what --report-only reads back from bench/results/scale.json). */
interface Measured {
  options: Options;
  cases: CaseResult[];
  host_first_step: HostFirstStep | null;
  loadavg_start: number[];
  loadavg_end: number[];
  measure_s: number;
  single_job_ms?: Record<string, number>;
  single_job_sources?: Record<string, string>;
}

async function measure(opts: Options): Promise<Measured> {
  const t0 = performance.now();
  const loadStart = loadavg();
  tmp = mkdtempSync(join(tmpdir(), 'soap-scale-'));
  const cleanup = () => {
    current?.kill('SIGKILL');
    if (!opts.keep) rmSync(tmp, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  const lapack = loadNativeLapack();
  console.log(
    `scale bench: wasm, batch 1×64, precondition_frequency ${opts.freq}, ${opts.steps} steps a case; ${CORES} cores (${cpus()[0]?.model ?? '?'}), ` +
      `${CORES} linalg workers; LAPACK ${lapack ? lapack.config : 'not available'}; load ${fmtLoad(loadStart)}; temp ${tmp}`,
  );
  const results: CaseResult[] = [];
  let hostFirst: HostFirstStep | null = null;
  try {
    for (const model of opts.models) {
      let soapL1Index = 0;
      for (const optimizer of opts.optimizers) {
        // The most layers first: the fewer-layer case then runs at the same vocabulary, so the two differ by layers only.
        let paired: number | null = null;
        for (const layers of [...opts.layers].reverse()) {
          const c: Case = { name: `${model}-${optimizer}-L${layers}`, model, optimizer, layers, steps: opts.steps, env: {}, timeoutS: opts.timeoutS, variant: null };
          const { result, index } = await runCase(c, paired ?? 0, opts);
          results.push(result);
          if (result.vocab !== null) paired ??= index;
          if (optimizer === 'soap' && layers === 1 && result.vocab !== null) soapL1Index = index;
        }
      }
      if (model === '360m' && opts.variants && opts.optimizers.includes('soap') && opts.layers.includes(1)) {
        const variants: Array<[Variant, Record<string, string>, number]> = [
          ['workers1', { SOAP_TRAIN_LINALG_WORKERS: '1' }, opts.timeoutS],
          ['native0', { SOAP_TRAIN_NATIVE: '0' }, opts.tsTimeoutS],
        ];
        for (const [variant, env, timeoutS] of variants) {
          const c: Case = { name: `360m-soap-L1-${variant}`, model, optimizer: 'soap', layers: 1, steps: 1, env, timeoutS, variant };
          results.push((await runCase(c, soapL1Index, opts)).result);
        }
        // The CLI refuses SOAP_TRAIN_NATIVE=0 on wasm (the device QR's memory) or it ran out of time: measure the host work alone.
        const ts = results.find((r) => r.variant === 'native0');
        if (lapack && ts && !ts.summary) hostFirst = await hostFirstStep('360m', opts.tsTimeoutS, true);
      }
    }
  } finally {
    cleanup();
  }
  return { options: opts, cases: results, host_first_step: hostFirst, loadavg_start: loadStart, loadavg_end: loadavg(), measure_s: (performance.now() - t0) / 1000 };
}

function report(m: Measured, times: JobTimes): { lines: string[]; extrapolations: Extrapolation[]; hostOnly: Array<{ model: Model; vocab: number; layers: number; models: HostModel[] }>; workersRatio: { refresh: number; pool: number | null } | null } {
  const opts = m.options;
  const results = m.cases;
  const lapack = loadNativeLapack();
  const extrapolations: Extrapolation[] = [];
  const hostOnly: Array<{ model: Model; vocab: number; layers: number; models: HostModel[] }> = [];
  if (lapack) {
    for (const model of opts.models) {
      const depth = depthOf(model);
      for (const optimizer of opts.optimizers) {
        const r1 = results.find((r) => r.model === model && r.optimizer === optimizer && r.layers === 1 && !r.variant);
        const r2 = results.find((r) => r.model === model && r.optimizer === optimizer && r.layers === 2 && !r.variant);
        const e = r1 && r2 ? extrapolate(r1, r2, depth, times) : null;
        if (e) extrapolations.push(e);
      }
      if (!extrapolations.some((e) => e.model === model)) {
        const vocab = loadCase(model, 'soap', 1).model.vocab_size;
        const models = [hostModel(hostPlan(model, 'soap_first'), depth, times, 'SOAP first step: eigh float64 / low-rank pair')];
        models.push(hostModel(hostPlan(model, 'soap_refresh'), depth, times, 'SOAP refresh: QR float32'));
        models.push(hostModel(hostPlan(model, 'shampoo_refresh'), depth, times, 'Shampoo refresh: inverse roots (eigh float64)'));
        hostOnly.push({ model, vocab, layers: depth, models });
      }
    }
  }

  const lines: string[] = [];
  lines.push(
    `wasm, batch 1×64 tokens, full width, precondition_frequency ${opts.freq}, ${opts.steps} steps a case (1 for the variants), ${CORES} cores / ${CORES} linalg workers (LAPACK 1 thread a job); ` +
      `vocab V/D = vocab V with max_precond_dim lowered to D, the largest layer dimension (layers' host work unchanged)`,
  );
  lines.push('case                          vocab    init   step 1 (fwd+bwd, host refresh / pool)      plain step   refresh step (refresh_ms / pool)   mean 2..N');
  for (const r of results) {
    const s = r.summary;
    const a = r.attempt;
    const vocab = r.vocab === null ? '—' : candidateName({ vocab: r.vocab, maxPrecond: r.max_precond_dim });
    const head = `${r.name.padEnd(25)} ${vocab.padStart(10)} ${(a?.init_s !== null && a?.init_s !== undefined ? `${a.init_s.toFixed(0)} s` : '—').padStart(6)}`;
    if (!s) {
      lines.push(`${head}   ${r.status}: ${r.message ?? ''}`);
      continue;
    }
    const first = `${dur(s.first_ms)} (${dur(s.first_fwd_bwd_ms)}, ${dur(s.first_refresh_ms)} / ${dur(s.first_pool_ms)})`;
    const refresh = s.refresh ? `${dur(s.refresh.ms)} @${s.refresh.step} (${dur(s.refresh.refresh_ms)} / ${dur(s.refresh.pool_ms)})` : '—';
    const tail = r.status === 'ok' ? '' : `  [${r.status}: ${r.message}]`;
    lines.push(`${head}   ${first.padEnd(40)} ${dur(s.typical_ms).padStart(10)}   ${refresh.padEnd(33)} ${dur(s.mean_2_n_ms).padStart(9)}${tail}`);
  }
  lines.push('(init: process start to step 1; pool: elapsed time of the step’s decompositions in the worker pool, from log.jsonl; — where none ran or it took < 2 s)');
  const refusals = results.filter((r) => r.refused.length > 0).map((r) => `${r.name} ${r.refused.map((x) => candidateName({ vocab: x.vocab, maxPrecond: x.max_precond_dim })).join(', ')}`);
  if (refusals.length > 0) lines.push(`refused by the wasm memory check (vocab tried): ${refusals.join('; ')}`);
  const firstRefusal = results.flatMap((r) => r.refused).find((x) => x.message);
  if (firstRefusal) lines.push(`  e.g. ${firstRefusal.message?.replace(/^soap-train: error: /, '')}`);

  // Variants
  const base = results.find((r) => r.name === '360m-soap-L1');
  const w1 = results.find((r) => r.variant === 'workers1');
  const ts = results.find((r) => r.variant === 'native0');
  let workersRatio: { refresh: number; pool: number | null } | null = null;
  if (base?.summary && w1?.summary) {
    const rr = base.summary.first_refresh_ms / w1.summary.first_refresh_ms;
    const pr = base.summary.first_pool_ms !== null && w1.summary.first_pool_ms !== null ? base.summary.first_pool_ms / w1.summary.first_pool_ms : null;
    workersRatio = { refresh: rr, pool: pr };
    lines.push(
      `workers: 360m SOAP 1 layer, first step's host refresh with ${CORES} workers ${dur(base.summary.first_refresh_ms)} (pool ${dur(base.summary.first_pool_ms)}) vs 1 worker ${dur(w1.summary.first_refresh_ms)} (pool ${dur(w1.summary.first_pool_ms)}): ` +
        `ratio ${rr.toFixed(2)} (pool ${pr === null ? '—' : pr.toFixed(2)}); target ≤ 0.6 → ${rr <= 0.6 ? 'met' : 'NOT met'}`,
    );
  }
  if (base?.summary && ts) {
    if (ts.summary) {
      lines.push(
        `TypeScript eigh (SOAP_TRAIN_NATIVE=0), 360m SOAP 1 layer, vocab ${ts.vocab}: first step ${dur(ts.summary.first_ms)} (host refresh ${dur(ts.summary.first_refresh_ms)}) vs LAPACK ${dur(base.summary.first_ms)} (${dur(base.summary.first_refresh_ms)}): ` +
          `host ${(ts.summary.first_refresh_ms / base.summary.first_refresh_ms).toFixed(1)}× slower`,
      );
    } else {
      lines.push(`TypeScript eigh (SOAP_TRAIN_NATIVE=0), 360m SOAP 1 layer through the CLI: ${ts.status}: ${ts.message}`);
    }
  }
  const hostFirst = m.host_first_step;
  if (hostFirst) {
    const lap = hostFirst.lapack;
    const parts = Object.entries(lap.ms).map(([k, ms]) => `${k} worker${k === '1' ? '' : 's'} ${dur(ms)}`);
    lines.push(
      `host-only first step (${hostFirst.model}, 1 layer + embedding and head, jobs as the optimizer plans them, rank-64 gradients): LAPACK ${lap.jobs} jobs ${parts.join(', ')}` +
        (lap.ratio === null ? '' : `, ratio ${lap.ratio.toFixed(2)} (target ≤ 0.6 → ${lap.ratio <= 0.6 ? 'met' : 'NOT met'})`),
    );
    if (hostFirst.typescript) {
      const t = hostFirst.typescript;
      const lapAll = lap.ms[CORES];
      const vs = t.ms !== null && lapAll ? `: ${(t.ms / lapAll).toFixed(1)}× LAPACK's` : lapAll ? `: > ${((t.timeout_s * 1000) / lapAll).toFixed(1)}× LAPACK's` : '';
      lines.push(`  TypeScript (SOAP_TRAIN_NATIVE=0) ${t.jobs} jobs, ${t.workers} workers: ${t.ms === null ? `> ${t.timeout_s} s (stopped)` : dur(t.ms)}${vs}`);
    }
  }

  // Extrapolations
  if (extrapolations.length > 0) {
    lines.push(
      `extrapolated to the configs' depth, step 1 (its wall time) and the refresh (the refresh step's refresh_ms): (a) by difference: q(L) = q(1) + (L−1)·(q(2) − q(1)); (b) the pool part ∝ the flops of the step's decompositions, ` +
        `fitted to both runs, the rest by difference. 16 cores: pool part × ${CORES}/${TARGET_CORES} (independent jobs, largest first), not below the largest ` +
        `single job; the rest (fwd+bwd, the optimizer's device work) as measured here. The embedding and head's device work is that of the run's vocabulary.`,
    );
    const row = (label: string, x: StepExtrapolation, depth: number) => {
      const d = x.by_difference;
      const f = x.by_flops;
      lines.push(
        `  ${label.padEnd(8)} L1 ${dur(x.l1.total)} (pool ${dur(x.l1.pool)}), L2 ${dur(x.l2.total)} (pool ${dur(x.l2.pool)}); per layer ${dur(x.per_layer.total)} (pool ${dur(x.per_layer.pool)})` +
          (x.noisy ? '  [negative per-layer difference: run-to-run noise exceeds a layer’s work, no estimate (a)]' : ''),
      );
      lines.push(
        `  ${''.padEnd(8)} → ${depth} layers: (a) ${dur(d.total)} (pool ${dur(d.pool)}), 16 cores ${dur(d.total_16)}; (b) ${dur(f.total)} (pool ${dur(f.pool)}), 16 cores ${dur(f.total_16)}` +
          (x.largest ? `; largest job ${x.largest.op} ${x.largest.n}: ${dur(x.largest.ms)}` : ''),
      );
    };
    for (const e of extrapolations) {
      lines.push(`${e.model}-${e.optimizer}, vocab ${candidateName({ vocab: e.vocab, maxPrecond: e.max_precond_dim })}, to ${e.layers} layers; plain step by difference ${dur(e.typical_ms)}`);
      if (e.first) row('step 1', e.first, e.layers);
      if (e.refresh) row('refresh', e.refresh, e.layers);
    }
    lines.push(
      'host model (the step’s decompositions at full depth from single-job LAPACK times on random, full-rank matrices, scheduled largest first; no device work): ' +
        `serial / ${CORES} workers / ${TARGET_CORES} workers`,
    );
    const seen = new Set<string>();
    for (const e of extrapolations) {
      for (const hm of [e.model_first, e.model_refresh]) {
        if (!hm || seen.has(`${e.model}:${hm.kind}`)) continue;
        seen.add(`${e.model}:${hm.kind}`);
        lines.push(`  ${e.model.padEnd(5)} ${hm.kind.padEnd(46)} ${String(hm.jobs).padStart(4)} jobs: ${dur(hm.serial_ms)} / ${dur(hm.cores_ms)} / ${dur(hm.target_ms)}`);
      }
    }
    lines.push(
      '  (the runs’ statistics have rank ≤ 64 per step (64 tokens), which makes eigh cheaper than on the paper’s 2M-token batches; the host model’s ' +
        'full-rank times are the closer guide for those)',
    );
    const soap360 = extrapolations.find((e) => e.model === '360m' && e.optimizer === 'soap');
    const sh360 = extrapolations.find((e) => e.model === '360m' && e.optimizer === 'shampoo');
    const verdict = (est: Array<number | null>, limit: number) => {
      const known = est.filter((x): x is number => x !== null && x > 0);
      if (known.length === 0) return 'unknown';
      return known.every((x) => x <= limit) ? 'met' : known.some((x) => x <= limit) ? 'met by one estimate only' : 'NOT met';
    };
    if (soap360?.first) {
      const f = soap360.first;
      lines.push(
        `target: 360m-soap time to first step at ${soap360.layers} layers ≤ 5 min here: (a) ${dur(f.by_difference.total)}, (b) ${dur(f.by_flops.total)} → ${verdict([f.by_difference.total, f.by_flops.total], 300_000)} ` +
          `(16 cores: ${dur(f.by_difference.total_16)} / ${dur(f.by_flops.total_16)})`,
      );
    }
    if (sh360?.refresh) {
      const r = sh360.refresh;
      lines.push(
        `target: one 360m Shampoo refresh (refresh_ms) ≤ 10 min here: (a) ${dur(r.by_difference.total)}, (b) ${dur(r.by_flops.total)} → ${verdict([r.by_difference.total, r.by_flops.total], 600_000)} ` +
          `(16 cores: ${dur(r.by_difference.total_16)} / ${dur(r.by_flops.total_16)})`,
      );
    }
  }
  for (const h of hostOnly) {
    const why = results.some((r) => r.model === h.model && r.status === 'refused') ? 'refused by the wasm memory check' : 'no pair of runs';
    lines.push(`${h.model} (${h.layers} layers; ${why}): host work only, from single-job LAPACK times scheduled largest first — serial / ${CORES} workers / ${TARGET_CORES} workers (largest job); no fwd/bwd, no device work`);
    for (const hm of h.models) {
      lines.push(`  ${hm.kind.padEnd(46)} ${String(hm.jobs).padStart(4)} jobs: ${dur(hm.serial_ms)} / ${dur(hm.cores_ms)} / ${dur(hm.target_ms)} (${hm.largest.op} ${hm.largest.n}: ${dur(hm.largest.ms)})`);
    }
  }
  const sources = [...new Set(times.source.values())];
  if (sources.length > 0) lines.push(`single-job times: ${sources.join('; ')}`);
  lines.push(`load average (1/5/15 min) at start ${fmtLoad(m.loadavg_start)}, at end ${fmtLoad(m.loadavg_end)}; measuring took ${dur(m.measure_s * 1000)}`);
  return { lines, extrapolations, hostOnly, workersRatio };
}

async function main(): Promise<void> {
  const opts = parseArgs();
  const file = join(RESULTS, 'scale.json');
  let measured: Measured;
  let times: JobTimes;
  if (opts.reportOnly) {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as Measured & { total_s?: number };
    measured = {
      options: { ...opts, ...saved.options, reportOnly: true },
      cases: saved.cases,
      host_first_step: saved.host_first_step ?? null,
      loadavg_start: saved.loadavg_start,
      loadavg_end: saved.loadavg_end,
      measure_s: saved.measure_s ?? saved.total_s ?? NaN,
      single_job_ms: saved.single_job_ms,
      single_job_sources: saved.single_job_sources,
    };
    // Summaries recomputed from the saved metrics rows, so a change to summarize() applies to old runs.
    for (const c of measured.cases) c.summary = c.attempt ? summarize(c.attempt) : null;
    times = new JobTimes(measured.single_job_ms, measured.single_job_sources);
  } else {
    measured = await measure(opts);
    times = new JobTimes();
  }
  const { lines, extrapolations, hostOnly, workersRatio } = report(measured, times);
  console.log('\n' + lines.join('\n'));
  const lapack = loadNativeLapack();
  mkdirSync(RESULTS, { recursive: true });
  const out = {
    date: new Date().toISOString(),
    node: process.version,
    cores: CORES,
    cpu: cpus()[0]?.model ?? null,
    lapack: lapack?.config ?? null,
    vocab_candidates: Object.fromEntries(measured.options.models.map((m) => [m, candidates(m)])),
    options: measured.options,
    cases: measured.cases,
    host_first_step: measured.host_first_step,
    loadavg_start: measured.loadavg_start,
    loadavg_end: measured.loadavg_end,
    measure_s: measured.measure_s,
    workers_ratio: workersRatio,
    extrapolations,
    host_only: hostOnly,
    single_job_ms: Object.fromEntries(times.ms),
    single_job_sources: Object.fromEntries(times.source),
    table: lines,
  };
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  console.log(`wrote ${file}`);
}

await main();
