/**
 * Bounded memory: a run over a multi-GB dataset uses no more memory than over a 10 MB one.
 *
 * Generates two llm.c-format (gpt2 variant, uint16) datasets of random token ids below 256 — a
 * large one (default 11 shards × 100M tokens = 2.2 GB) and a 10 MB one (5M tokens) — each with a
 * small val shard, written with the streaming ShardWriter (1M-token chunks, so generating them is
 * bounded too). Then, for each dataset, in a fresh child process:
 *   - draw: open the dataset and draw N training micro-batches (`trainBatch` 16 × 1024 at random
 *     (seed, step)): random windows, read directly with pread;
 *   - scan: read the whole train stream front to back in 64Ki-token windows (through the block
 *     cache): every byte of the dataset passes through the reader once (on the large dataset also
 *     its first shard alone, 200 MB, to show the plateau);
 *   - train: `bin/soap-train` on a tiny vocab-256 model, backend wasm, ~20 steps.
 * Peak RSS comes from `/usr/bin/time -v` when it exists, else from the child itself
 * (`process.resourceUsage().maxRSS`, reported by an `--import` hook on exit); both are recorded.
 *
 *   node --import tsx bench/data-memory.ts [--dir DIR] [--keep] [--shards 11] [--shard-tokens 100M]
 *     [--batches 2000] [--steps 20]
 * Prints a table and writes bench/results/data-memory.json. Not part of CI: it writes GBs.
 * Note: the large dataset was just written, so its reads come mostly from the page cache (RSS does
 * not count the page cache: the reader uses pread, not mmap); MB/s is the reader's, not the disk's.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BLOCK_TOKENS, openTokenDataset } from '../src/data/dataset.js';
import { trainBatch } from '../src/data/sampler.js';
import { ShardWriter } from '../src/data/shard-format.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const TIME = '/usr/bin/time';
/** Prints the process's own peak RSS (kB) on exit: the fallback and cross-check for time -v. */
const RSS_HOOK = `data:text/javascript,process.on("exit",()=>process.stderr.write("\\nself_max_rss_kb="+process.resourceUsage().maxRSS+"\\n"))`;
const BATCH = 16;
const SEQ = 1024;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

/** `100M`, `5m`, `2000`, `1e8` → a whole number. */
function count(text: string): number {
  const m = /^([0-9.e]+)([kKmMgG]?)$/.exec(text.replace(/_/g, ''));
  const n = m ? Number(m[1]) * ({ '': 1, k: 1e3, K: 1e3, m: 1e6, M: 1e6, g: 1e9, G: 1e9 } as Record<string, number>)[m[2]] : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`not a whole count: ${text}`);
  return n;
}

/** mulberry32: a small seeded generator, so the datasets and the draws are the same every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------- child modes (one measurement)

interface ChildReport {
  seconds: number;
  bytes: number;
  tokens: number;
  /** Micro-batches drawn (draw) or 64Ki-token windows read (scan). */
  batches: number;
}

/** Draws `batches` training micro-batches at random (seed, step) and reports the bytes read. */
function childDraw(dir: string, batches: number): ChildReport {
  const ds = openTokenDataset(['train_*.bin'], { baseDirs: [dir], vocabSize: 256 });
  const rand = rng(12345);
  const t0 = performance.now();
  let checksum = 0;
  for (let i = 0; i < batches; i++) {
    const b = trainBatch(ds, { seed: Math.floor(rand() * 1e6), step: Math.floor(rand() * 1e9), micro: 0, batchSize: BATCH, seqLen: SEQ });
    checksum += b.inputs[0];
  }
  const seconds = (performance.now() - t0) / 1000;
  ds.close();
  const tokens = batches * BATCH * (SEQ + 1);
  if (checksum < 0) throw new Error('unreachable: keeps the batches alive');
  return { seconds, bytes: tokens * 2, tokens, batches };
}

/** Reads the whole train stream once, front to back, in 64Ki-token windows. */
function childScan(dir: string, glob: string): ChildReport {
  const ds = openTokenDataset([glob], { baseDirs: [dir], vocabSize: 256 });
  const t0 = performance.now();
  let tokens = 0;
  for (let at = 0; at < ds.numTokens; at += BLOCK_TOKENS) tokens += ds.read(at, Math.min(BLOCK_TOKENS, ds.numTokens - at)).length;
  const seconds = (performance.now() - t0) / 1000;
  ds.close();
  return { seconds, bytes: tokens * 2, tokens, batches: Math.ceil(tokens / BLOCK_TOKENS) };
}

// ---------------------------------------------------------------- generation

/**
 * Writes `shards` train shards of `shardTokens` random ids in [0, 256) and one val shard, 1M tokens
 * at a time (2 MiB of uint16 plus the writer's copy): memory does not grow with the dataset.
 */
function generate(dir: string, shards: number, shardTokens: number, valTokens: number, seed: number): number {
  mkdirSync(dir, { recursive: true });
  const chunk = new Uint16Array(1 << 20);
  const words = new Uint32Array(chunk.length / 4);
  const bytes = new Uint8Array(words.buffer);
  let x = seed >>> 0 || 1;
  const write = (name: string, n: number) => {
    const w = new ShardWriter(join(dir, name), 'gpt2');
    for (let left = n; left > 0; ) {
      // xorshift32, four byte-sized ids per word: fast enough that the disk is the limit.
      for (let i = 0; i < words.length; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        words[i] = x >>> 0;
      }
      const take = Math.min(left, chunk.length);
      for (let i = 0; i < take; i++) chunk[i] = bytes[i];
      w.append(chunk.subarray(0, take));
      left -= take;
    }
    w.finish();
  };
  for (let s = 0; s < shards; s++) write(`train_${String(s).padStart(6, '0')}.bin`, shardTokens);
  write('val_000000.bin', valTokens);
  let total = 0;
  for (let s = 0; s < shards; s++) total += statSync(join(dir, `train_${String(s).padStart(6, '0')}.bin`)).size;
  return total;
}

// ---------------------------------------------------------------- measuring a child

interface Measured {
  peakRssMB: number;
  selfRssMB: number | null;
  timeRssMB: number | null;
  stdout: string;
  wallS: number;
}

/** Runs `node [args]` under /usr/bin/time -v when present, with the self-report hook. */
function measure(nodeArgs: string[], cwd: string): Measured {
  const useTime = existsSync(TIME);
  const argv = ['--import', RSS_HOOK, ...nodeArgs];
  const t0 = performance.now();
  const r = useTime
    ? spawnSync(TIME, ['-v', process.execPath, ...argv], { cwd, encoding: 'utf8', maxBuffer: 64 << 20 })
    : spawnSync(process.execPath, argv, { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  const wallS = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`child failed (exit ${r.status}): node ${nodeArgs.join(' ')}\n${r.stderr}`);
  const self = /self_max_rss_kb=(\d+)/.exec(r.stderr);
  const time = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  const selfRssMB = self ? Number(self[1]) / 1024 : null;
  const timeRssMB = time ? Number(time[1]) / 1024 : null;
  const peak = timeRssMB ?? selfRssMB;
  if (peak === null) throw new Error(`no peak RSS in the child's output:\n${r.stderr}`);
  return { peakRssMB: peak, selfRssMB, timeRssMB, stdout: r.stdout, wallS };
}

interface Row {
  dataset: string;
  dataset_mb: number;
  run: 'draw' | 'scan' | 'train';
  batches: number;
  peak_rss_mb: number;
  time_v_rss_mb: number | null;
  self_rss_mb: number | null;
  read_mb_per_s: number | null;
  seconds: number;
}

async function main(): Promise<void> {
  const mode = arg('--child', '');
  if (mode) {
    const dir = arg('--data', '');
    const report = mode === 'draw' ? childDraw(dir, count(arg('--batches', '2000'))) : childScan(dir, arg('--glob', 'train_*.bin'));
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }

  const shards = count(arg('--shards', '11'));
  const shardTokens = count(arg('--shard-tokens', '100M'));
  const batches = count(arg('--batches', '2000'));
  const steps = count(arg('--steps', '20'));
  const keep = process.argv.includes('--keep');
  const given = arg('--dir', '');
  const root = given || mkdtempSync(join(tmpdir(), 'soap-bench-mem-'));
  mkdirSync(root, { recursive: true });
  const datasets: Array<{ name: string; dir: string; shards: number; shardTokens: number }> = [
    { name: 'small', dir: join(root, 'small'), shards: 1, shardTokens: 5_000_000 },
    { name: 'large', dir: join(root, 'large'), shards, shardTokens },
  ];
  // Only what this script makes is removed, so a --dir with other things in it keeps them.
  const made = [...datasets.map((d) => d.dir), join(root, 'runs'), join(root, 'tiny.yaml')];
  for (const p of made) rmSync(p, { recursive: true, force: true });
  // Refuse up front rather than fill the disk halfway through a 2 GB write.
  const needBytes = 2 * (shards * shardTokens + 5_000_000 + 2_000_000) * 1.1;
  const fs = statfsSync(root);
  if (fs.bavail * fs.bsize < needBytes) {
    throw new Error(`${root}: ${(fs.bavail * fs.bsize / 1e9).toFixed(1)} GB free, the datasets need ${(needBytes / 1e9).toFixed(1)} GB (use --dir elsewhere or fewer --shards)`);
  }
  const rows: Row[] = [];
  try {
    const config = join(root, 'tiny.yaml');
    writeFileSync(
      config,
      [
        'backend: wasm',
        'model: {vocab_size: 256, d_model: 64, n_layers: 2, n_heads: 2, mlp_hidden: 256}',
        'data: {train: small/train_*.bin, val: small/val_*.bin}',
        'optimizer: {type: adamw, lr: 1.0e-3}',
        'schedule: {type: constant}',
        `train: {steps: ${steps}, batch_size: 16, seq_len: 256, eval_interval: 0, eval_steps: 2, log_interval: 5, seed: 0}`,
        '',
      ].join('\n'),
    );
    for (const [i, d] of datasets.entries()) {
      const t0 = performance.now();
      const bytes = generate(d.dir, d.shards, d.shardTokens, 1_000_000, 0x9e3779b9 + i);
      const gen = (performance.now() - t0) / 1000;
      const mb = bytes / 1e6;
      process.stderr.write(`generated ${d.name}: ${d.shards} × ${d.shardTokens} tokens, ${mb.toFixed(1)} MB in ${gen.toFixed(1)} s (${(mb / gen).toFixed(0)} MB/s)\n`);

      // On the large dataset, also a scan of its first shard alone: RSS should plateau once the
      // block cache is full and the GC is in steady state, not keep growing with the bytes read.
      const runs: Array<['draw' | 'scan', string, string, number]> = [
        ['draw', 'train_*.bin', d.name, mb],
        ...(d.shards > 1 ? [['scan', 'train_000000.bin', `${d.name}[0]`, d.shardTokens * 2 / 1e6] as ['scan', string, string, number]] : []),
        ['scan', 'train_*.bin', d.name, mb],
      ];
      for (const [run, glob, label, size] of runs) {
        const m = measure(['--import', 'tsx', SELF, '--child', run, '--data', d.dir, '--glob', glob, '--batches', String(batches)], ROOT);
        const rep = JSON.parse(m.stdout.trim().split('\n').pop() ?? '{}') as ChildReport;
        rows.push({ dataset: label, dataset_mb: size, run, batches: rep.batches, peak_rss_mb: m.peakRssMB, time_v_rss_mb: m.timeRssMB, self_rss_mb: m.selfRssMB, read_mb_per_s: rep.bytes / 1e6 / rep.seconds, seconds: rep.seconds });
        process.stderr.write(`  ${run} ${label}: peak RSS ${m.peakRssMB.toFixed(0)} MB, ${(rep.bytes / 1e6 / rep.seconds).toFixed(0)} MB/s\n`);
      }
      const runDir = join(root, 'runs', d.name);
      const m = measure(
        [join(ROOT, 'bin', 'soap-train'), '--config', config, '--run-dir', runDir, '--set', `data.train=${d.dir}/train_*.bin`, '--set', `data.val=${d.dir}/val_*.bin`],
        root,
      );
      rows.push({ dataset: d.name, dataset_mb: mb, run: 'train', batches: steps, peak_rss_mb: m.peakRssMB, time_v_rss_mb: m.timeRssMB, self_rss_mb: m.selfRssMB, read_mb_per_s: null, seconds: m.wallS });
      process.stderr.write(`  train ${steps} steps: peak RSS ${m.peakRssMB.toFixed(0)} MB, ${m.wallS.toFixed(1)} s\n`);
    }
  } finally {
    if (keep) process.stderr.write(`kept ${root}\n`);
    else for (const p of given ? made : [root]) rmSync(p, { recursive: true, force: true });
  }

  const fmt = (x: number | null, d = 0) => (x === null ? '-' : x.toFixed(d));
  console.log(`peak RSS by ${existsSync(TIME) ? '/usr/bin/time -v (self-reported maxRSS alongside)' : 'process.resourceUsage().maxRSS'}; ${availableParallelism()} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`);
  console.log('dataset    size MB   run     batches/windows/steps  peak RSS MB  self RSS MB  read MB/s  seconds');
  for (const r of rows) {
    console.log(
      `${r.dataset.padEnd(11)}${fmt(r.dataset_mb).padStart(7)}   ${r.run.padEnd(8)}${String(r.batches).padStart(21)}${fmt(r.peak_rss_mb).padStart(13)}${fmt(r.self_rss_mb).padStart(13)}${fmt(r.read_mb_per_s).padStart(11)}${fmt(r.seconds, 2).padStart(9)}`,
    );
  }
  const out = join(ROOT, 'bench', 'results', 'data-memory.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.version,
        cores: availableParallelism(),
        cpu: cpus()[0]?.model,
        method: existsSync(TIME) ? '/usr/bin/time -v' : 'process.resourceUsage().maxRSS',
        draw: { batch_size: BATCH, seq_len: SEQ },
        train: { steps, batch_size: 16, seq_len: 256, backend: 'wasm', model: 'vocab 256, d_model 64, 2 layers' },
        rows,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`wrote ${out}`);
}

await main();
