/**
 * Peak memory of resuming: how much RSS loading a checkpoint and restoring it into tf tensors
 * costs, relative to the checkpoint's size.
 *
 * Writes one synthetic checkpoint with `saveCheckpoint` (default ≈ 0.96 GB: a model of vocab
 * 32768, d_model 1024, one block — two 128 MiB embedding matrices and a few 4–16 MiB ones — with
 * AdamW's two moments per parameter, i.e. the trainer's real key layout), then, for each backend
 * and path, in a fresh child process:
 *   streaming  what the trainer does: `loadLatestValidCheckpoint` (full verification: both
 *              checksums, tensors.bin hashed in one bounded streaming pass), `restoreParams`,
 *              `restoreOptimizer`; each tensor's bytes are read straight into the typed array
 *              handed to tf
 *   whole      the loader before issue 13, emulated: every tensor read into a Map of typed arrays
 *              (hashing as it goes), and only then tf tensors made from the Map
 * The checkpoint is read once before the children run (warm page cache: RSS does not count the
 * page cache, reads use pread, not mmap). Peak RSS comes from `/usr/bin/time -v` when it exists,
 * and from the child itself (`process.resourceUsage().maxRSS`); the baseline is the child's RSS
 * after imports and backend set-up, just before loading. The target: peak − baseline < 1.2 × the
 * checkpoint (tf itself must hold every tensor once).
 *
 * On `cpu`, tf keeps the typed array it is given (no copy), so `whole` costs ≈ 1× too; on `wasm`
 * (as on the native `tensorflow` backend or a GPU) tf copies the bytes into its own memory, and
 * `whole` holds the Map's copy besides: ≈ 2×.
 *
 *   node --import tsx bench/checkpoint-load.ts [--dir DIR] [--keep] [--backends cpu,wasm]
 *     [--paths streaming,whole] [--vocab 32768] [--d-model 1024] [--layers 1] [--mlp 4096]
 * Prints a table and writes bench/results/checkpoint-load.json. Not part of CI: it writes ~1 GB.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadLatestValidCheckpoint, saveCheckpoint, type TensorEntry } from '../src/checkpoint/checkpoint.js';
import { restoreOptimizer, restoreParams } from '../src/checkpoint/state.js';
import { INDEX_FILE, TENSORS_FILE, readTensorIndex, type TensorIndex } from '../src/checkpoint/tensor-file.js';
import { modelSchema, paramShapes, type ModelConfig } from '../src/model/index.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const TIME = '/usr/bin/time';
const MB = 1 << 20;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

// ---------------------------------------------------------------- the synthetic checkpoint

/** A deterministic, cheap, non-constant fill (a constant page could be deduplicated by the OS). */
function filled(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    a[i] = (x >>> 0) / 2 ** 32 - 0.5;
  }
  return a;
}

/** Params in the model's order, then AdamW's two moments per parameter, sorted (as snapshotTensors). */
async function* synthetic(model: ModelConfig): AsyncIterable<[string, TensorEntry]> {
  const shapes = Object.entries(paramShapes(model));
  let seed = 1;
  const entry = (shape: number[]): TensorEntry => ({ dtype: 'float32', shape, data: filled(shape.reduce((a, b) => a * b, 1), seed++) });
  for (const [name, shape] of shapes) yield [`params/${name}`, entry(shape)];
  for (const [name, shape] of [...shapes].sort(([a], [b]) => (a < b ? -1 : 1))) {
    yield [`optim/${name}/exp_avg`, entry(shape)];
    yield [`optim/${name}/exp_avg_sq`, entry(shape)];
  }
}

async function writeCheckpoint(run: string, model: ModelConfig): Promise<{ dir: string; bytes: number; tensors: number; largest: number }> {
  const counters = Object.fromEntries(Object.keys(paramShapes(model)).map((n) => [n, { step: 1 }]));
  const saved = await saveCheckpoint(run, {
    step: 1,
    tokens_seen: 0,
    wall_clock_s: 0,
    rng: { seed: 1 },
    schedule: { step: 1 },
    optimizer: { type: 'adamw', config: { type: 'adamw', lr: 1e-3 }, counters },
    model_config: model,
    tensors: synthetic(model),
  });
  return describeCheckpoint(saved.dir);
}

function describeCheckpoint(dir: string): { dir: string; bytes: number; tensors: number; largest: number } {
  const sizes = Object.values(readTensorIndex(dir).tensors).map((e) => e.bytes);
  return { dir, bytes: statSync(join(dir, TENSORS_FILE)).size, tensors: sizes.length, largest: Math.max(...sizes) };
}

/** Reads a file once so that every child starts from the same warm page cache. */
function warm(path: string): void {
  const fd = openSync(path, 'r');
  const buf = new Uint8Array(8 * MB);
  try {
    while (readSync(fd, buf, 0, buf.byteLength, null) > 0);
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------- the child

interface ChildReport {
  backend: string;
  path: string;
  baseline_rss_mb: number;
  after_load_rss_mb: number;
  after_restore_rss_mb: number;
  self_max_rss_mb: number;
  tf_bytes: number;
  load_s: number;
  restore_s: number;
}

/**
 * The pre-issue-13 loader, emulated: every tensor read into its own typed array (hashing as it
 * goes) and kept in a Map until all are read; then tf tensors are made from the Map.
 */
function wholeFileSource(dir: string, expectSha256: string): { index: TensorIndex; readTensor: (key: string) => TensorEntry } {
  const index = readTensorIndex(dir);
  const hash = createHash('sha256');
  const all = new Map<string, TensorEntry>();
  const fd = openSync(join(dir, TENSORS_FILE), 'r');
  try {
    let position = 0;
    for (const [key, e] of Object.entries(index.tensors).sort(([, a], [, b]) => a.offset - b.offset)) {
      if (e.offset > position) {
        const pad = new Uint8Array(e.offset - position);
        readSync(fd, pad, 0, pad.byteLength, position);
        hash.update(pad);
      }
      const buffer = new ArrayBuffer(e.bytes);
      const bytes = new Uint8Array(buffer);
      for (let done = 0; done < bytes.byteLength; ) done += readSync(fd, bytes, done, Math.min(64 * MB, bytes.byteLength - done), e.offset + done);
      hash.update(bytes);
      all.set(key, { dtype: e.dtype, shape: e.shape, data: e.dtype === 'int32' ? new Int32Array(buffer) : new Float32Array(buffer) });
      position = e.offset + e.bytes;
    }
  } finally {
    closeSync(fd);
  }
  if (hash.digest('hex') !== expectSha256) throw new Error(`${dir}: checksum mismatch`);
  return { index, readTensor: (key) => all.get(key)! };
}

async function child(run: string, backend: string, path: string): Promise<ChildReport> {
  const { tf } = await import('../src/tf.js');
  const { selectBackend } = await import('../src/backend/select.js');
  const { createOptimizer } = await import('../src/optim/registry.js');
  await selectBackend(backend as 'cpu' | 'wasm');
  const rss = () => process.memoryUsage().rss / MB;
  const baseline = rss();
  let t0 = performance.now();
  const loaded = loadLatestValidCheckpoint(run);
  if (!loaded) throw new Error(`no checkpoint in ${run}`);
  const source = path === 'whole' ? wholeFileSource(loaded.dir, loaded.meta.files[TENSORS_FILE].sha256) : loaded;
  const loadS = (performance.now() - t0) / 1000;
  const afterLoad = rss();
  t0 = performance.now();
  const model = modelSchema.parse(loaded.meta.model_config);
  const params = restoreParams(model, source, loaded.dir);
  const optimizer = createOptimizer(loaded.meta.optimizer.config as { type: string });
  restoreOptimizer(optimizer, loaded.meta.optimizer.counters, source);
  const restoreS = (performance.now() - t0) / 1000;
  const afterRestore = rss();
  const tfBytes = tf.memory().numBytes;
  // Keep everything alive until measured.
  if (Object.keys(params).length === 0 || optimizer.stateEntries().length === 0) throw new Error('nothing restored');
  return {
    backend: tf.getBackend(),
    path,
    baseline_rss_mb: baseline,
    after_load_rss_mb: afterLoad,
    after_restore_rss_mb: afterRestore,
    self_max_rss_mb: process.resourceUsage().maxRSS / 1024,
    tf_bytes: tfBytes,
    load_s: loadS,
    restore_s: restoreS,
  };
}

// ---------------------------------------------------------------- measuring a child

interface Row extends ChildReport {
  checkpoint_mb: number;
  time_v_max_rss_mb: number | null;
  peak_rss_mb: number;
  /** (peak − baseline) ÷ checkpoint size. */
  growth_ratio: number;
  /** peak ÷ checkpoint size (includes the process's baseline: node, tf, the backend). */
  peak_ratio: number;
}

function measure(run: string, backend: string, path: string, checkpointBytes: number): Row {
  const argv = ['--import', 'tsx', SELF, '--child', '--run', run, '--backend', backend, '--path', path];
  const useTime = existsSync(TIME);
  const r = useTime
    ? spawnSync(TIME, ['-v', process.execPath, ...argv], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * MB })
    : spawnSync(process.execPath, argv, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * MB });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  if (r.status !== 0 || !line) throw new Error(`child ${backend}/${path} failed (${r.status}):\n${r.stderr}`);
  const report = JSON.parse(line) as ChildReport;
  const time = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  const timeMB = time ? Number(time[1]) / 1024 : null;
  const peak = Math.max(timeMB ?? 0, report.self_max_rss_mb);
  const size = checkpointBytes / MB;
  return {
    ...report,
    checkpoint_mb: size,
    time_v_max_rss_mb: timeMB,
    peak_rss_mb: peak,
    growth_ratio: (peak - report.baseline_rss_mb) / size,
    peak_ratio: peak / size,
  };
}

async function main(): Promise<void> {
  if (process.argv.includes('--child')) {
    const report = await child(arg('--run', ''), arg('--backend', 'cpu'), arg('--path', 'streaming'));
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const model = modelSchema.parse({
    vocab_size: Number(arg('--vocab', '32768')),
    d_model: Number(arg('--d-model', '1024')),
    n_layers: Number(arg('--layers', '1')),
    n_heads: 16,
    mlp_hidden: Number(arg('--mlp', '4096')),
  });
  const backends = arg('--backends', 'cpu,wasm').split(',');
  const paths = arg('--paths', 'streaming,whole').split(',');
  const given = arg('--dir', '');
  const run = given || mkdtempSync(join(tmpdir(), 'soap-ckpt-load-'));
  const keep = process.argv.includes('--keep') || given !== '';
  try {
    mkdirSync(run, { recursive: true });
    const t0 = performance.now();
    const existing = loadLatestValidCheckpoint(run);
    const ckpt = existing ? describeCheckpoint(existing.dir) : await writeCheckpoint(run, model);
    const writeS = (performance.now() - t0) / 1000;
    warm(join(ckpt.dir, TENSORS_FILE));
    console.log(`checkpoint ${ckpt.dir}: ${(ckpt.bytes / MB).toFixed(0)} MiB in ${ckpt.tensors} tensors (largest ${(ckpt.largest / MB).toFixed(0)} MiB); written in ${writeS.toFixed(1)} s`);
    const rows: Row[] = [];
    for (const backend of backends) {
      for (const path of paths) {
        const row = measure(run, backend, path, ckpt.bytes);
        rows.push(row);
        console.log(`  ${backend}/${path}: peak ${row.peak_rss_mb.toFixed(0)} MiB`);
      }
    }
    const header = ['backend', 'path', 'ckpt MiB', 'base MiB', 'after load', 'after restore', 'peak MiB', 'peak−base ÷ size', 'load s', 'restore s'];
    const table = rows.map((r) => [
      r.backend,
      r.path,
      r.checkpoint_mb.toFixed(0),
      r.baseline_rss_mb.toFixed(0),
      r.after_load_rss_mb.toFixed(0),
      r.after_restore_rss_mb.toFixed(0),
      r.peak_rss_mb.toFixed(0),
      `${r.growth_ratio.toFixed(2)}×`,
      r.load_s.toFixed(2),
      r.restore_s.toFixed(2),
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
    const fmt = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ');
    console.log(`\n${fmt(header)}\n${table.map(fmt).join('\n')}`);
    const out = join(ROOT, 'bench', 'results', 'checkpoint-load.json');
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(
      out,
      `${JSON.stringify(
        {
          date: new Date().toISOString(),
          node: process.version,
          cpus: `${availableParallelism()} × ${cpus()[0]?.model ?? '?'}`,
          total_mem_gb: totalmem() / 2 ** 30,
          model: existing ? existing.meta.model_config : model,
          checkpoint: { bytes: ckpt.bytes, tensors: ckpt.tensors, largest_bytes: ckpt.largest, index_file: INDEX_FILE },
          target: 'peak RSS − baseline RSS < 1.2 × checkpoint size',
          rows,
        },
        null,
        2,
      )}\n`,
    );
    console.log(`\nwrote ${out}`);
  } finally {
    if (!keep) rmSync(run, { recursive: true, force: true });
  }
}

await main();
